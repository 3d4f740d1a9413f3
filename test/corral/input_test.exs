defmodule Corral.InputTest do
  # Stdin is flow-controlled as output is: the helper confirms what reached
  # the child's pipe (W frames), and the BEAM keeps at most a window of
  # input unconfirmed (docs/protocol.md, "Flow control").
  use ExUnit.Case, async: true

  alias Corral.Daemon

  @chunk :binary.copy("x", 65_536)

  # An endless input that counts the bytes it handed out.
  defp counted_input do
    counter = :counters.new(1, [:atomics])

    stream =
      Stream.repeatedly(fn ->
        :counters.add(counter, 1, byte_size(@chunk))
        @chunk
      end)

    {stream, fn -> :counters.get(counter, 1) end}
  end

  test "a child that does not read takes at most a window of an endless input" do
    {input, pulled} = counted_input()
    window = 256 * 1024

    assert Corral.cmd("sleep", ["1"], input: input, stdio_window: window) == {"", 0}

    # A window, one chunk sent on the last credit, and the child's pipe
    # (at most 1 MiB): not the gigabytes a second of sending would be.
    assert pulled.() <= window + byte_size(@chunk) + 1024 * 1024
  end

  test "an input that halts itself (Stream.take/2) arrives whole, its last element too" do
    for n <- [1, 3, 1000] do
      input = Stream.repeatedly(fn -> "ab" end) |> Stream.take(n)
      assert Corral.cmd("wc", ["-c"], input: input) == {"#{2 * n}\n", 0}
    end

    assert Corral.cmd("cat", [], input: Stream.take(["x", "y", "z"], 2)) == {"xy", 0}
  end

  test "input larger than many windows arrives whole" do
    data = for i <- 1..320, do: :binary.copy(<<rem(i, 256)>>, 65_536)
    {out, 0} = Corral.cmd("sha256sum", [], input: data, stdio_window: 128 * 1024)
    expected = :crypto.hash(:sha256, data) |> Base.encode16(case: :lower)
    assert String.starts_with?(out, expected)
  end

  test "Daemon.send_input/2 waits while the program lags a window behind" do
    window = 128 * 1024

    pid =
      start_supervised!(
        {Daemon, ["sh", ["-c", "echo ready; sleep 1000"], [stdin: true, stdio_window: window]]},
        restart: :temporary
      )

    parent = self()
    sent = :counters.new(1, [:atomics])

    writer =
      spawn(fn ->
        result =
          Enum.reduce_while(1..200, :ok, fn _, :ok ->
            case Daemon.send_input(pid, @chunk) do
              :ok ->
                :counters.add(sent, 1, byte_size(@chunk))
                {:cont, :ok}

              error ->
                {:halt, error}
            end
          end)

        send(parent, {:writer, result})
      end)

    Process.sleep(500)
    # 200 chunks are 12.5 MiB; the program reads none of them.
    assert :counters.get(sent, 1) <= window + byte_size(@chunk) + 1024 * 1024
    assert Process.alive?(writer)

    # The waiting call is answered when the daemon stops.
    stop_supervised!(Daemon)
    assert_receive {:writer, {:error, :closed}}, 5000
  end
end

defmodule Corral.ClientTest do
  # The protocol client without processes: golden frames in, events out.
  use ExUnit.Case, async: true

  alias Corral.Client
  alias Corral.Protocol
  alias Corral.Test.Golden

  # The body of a golden frame, without its length.
  defp body(name) do
    <<_len::32, body::binary>> = Golden.read!(name)
    body
  end

  # The body a {:send, frame} event puts on the wire.
  defp wire({:send, frame}), do: IO.iodata_to_binary(Protocol.encode(frame))

  defp running(window \\ 1_048_576, stdin \\ true) do
    {[{:started, _}], client} = Client.handle(Client.new(window, stdin), body("started.hex"))
    client
  end

  describe "the start handshake" do
    test "S first: the child runs, with its pid and cgroups" do
      {events, client} = Client.handle(Client.new(65_536, false), body("started.hex"))

      assert [{:started, %{os_pid: 4242, containment: :hybrid, paths: [_, _]}}] = events
      refute Client.done?(client)
    end

    test "F first: the reason Corral.Error carries, the run over" do
      {events, client} = Client.handle(Client.new(65_536, false), body("failed.hex"))

      assert events == [{:error, :enoent, nil}]
      assert Client.done?(client)
    end

    test "another spawn failure keeps the helper's message as details" do
      failed = %{version: 1, errno: 13, errno_name: "eacces", stage: "exec", message: "no"}
      body = IO.iodata_to_binary(Protocol.encode({:failed, failed}))

      assert {[{:error, {:spawn_failed, :eacces, "exec"}, "no"}], _} =
               Client.handle(Client.new(65_536, false), body)
    end

    test "F after S: exec failed after the child sent S, the run fails as a start" do
      failed = %{version: 1, errno: 8, errno_name: "enoexec", stage: "exec", message: "no"}
      body = IO.iodata_to_binary(Protocol.encode({:failed, failed}))

      assert {[{:error, {:spawn_failed, _, "exec"}, "no"}], client} =
               Client.handle(running(), body)

      assert Client.done?(client)
    end

    test "output, an exit or garbage before S is a protocol error" do
      for name <- ["stdout.hex", "exit_code.hex", "written.hex"] do
        assert {[{:error, {:protocol, {:unexpected_frame, _}}, nil}], client} =
                 Client.handle(Client.new(65_536, false), body(name))

        assert Client.done?(client)
      end

      assert {[{:error, {:protocol, {:unknown_tag, ?Z}}, nil}], _} =
               Client.handle(Client.new(65_536, false), "Zzz")
    end

    test "another protocol version is refused" do
      body =
        IO.iodata_to_binary(
          Protocol.encode({:started, %{version: 2, os_pid: 1, containment: :none, paths: []}})
        )

      assert {[{:error, {:protocol, {:version, 2}}, nil}], _} =
               Client.handle(Client.new(65_536, false), body)
    end
  end

  describe "output and acks" do
    test "O and E frames become output events, nothing acked before consumed/2" do
      client = running()
      assert {[{:output, :stdout, "hello\n"}], client} = Client.handle(client, body("stdout.hex"))
      assert {[{:output, :stderr, "oops"}], _} = Client.handle(client, body("stderr.hex"))
    end

    test "acks in batches of a quarter window: the golden ack after 65536 bytes of 262144" do
      client = running(262_144)

      {[], client} = Client.consumed(client, 65_535)
      {[ack], client} = Client.consumed(client, 1)
      assert wire(ack) == body("ack.hex")

      # The batch starts again from zero.
      assert {[], _} = Client.consumed(client, 65_535)
    end

    test "a batch that overshoots is acked whole" do
      {[ack], _} = Client.consumed(running(16), 9)
      assert ack == {:send, {:ack, 9}}
    end
  end

  describe "stdin credit" do
    test "writes go out at once while credit lasts, then wait for W" do
      client = running(65_536)

      {events, client} = Client.write(client, :a, "hi")

      assert Enum.map(Enum.filter(events, &match?({:send, _}, &1)), &wire/1) == [
               body("stdin.hex")
             ]

      assert {:reply, :a, :ok} in events

      # 65534 bytes of credit left: this write goes, and leaves none.
      big = :binary.copy("x", 65_536)
      {events, client} = Client.write(client, :b, big)
      assert [{:send, {:stdin, ^big}}, {:reply, :b, :ok}] = events
      refute Client.writable?(client)

      # Now it waits, and so does the close behind it.
      assert {[], client} = Client.write(client, :c, "later")
      assert {[], client} = Client.close_input(client, :d)
      assert {[{:reply, :e, {:error, :closed}}], client} = Client.write(client, :e, "refused")

      # The helper confirms 65536 bytes: what waited goes, in order.
      {events, client} = Client.handle(client, body("written.hex"))

      assert events == [
               {:send, {:stdin, "later"}},
               {:reply, :c, :ok},
               {:send, :close_stdin},
               {:reply, :d, :ok}
             ]

      assert wire({:send, :close_stdin}) == body("close_stdin.hex")
      refute Client.writable?(client)
    end

    test "a write larger than one frame is split into frames of 64 KiB" do
      {events, _} = Client.write(running(), nil, :binary.copy("y", 65_536 * 2 + 1))
      sizes = for {:send, {:stdin, chunk}} <- events, do: byte_size(chunk)
      assert sizes == [65_536, 65_536, 1]
      # No reply for a write without a caller.
      refute Enum.any?(events, &match?({:reply, _, _}, &1))
    end

    test "without a stdin pipe every write and close is refused" do
      client = running(65_536, false)
      refute Client.writable?(client)
      assert {[{:reply, :a, {:error, :closed}}], _} = Client.write(client, :a, "x")
      assert {[{:reply, :b, {:error, :closed}}], _} = Client.close_input(client, :b)
    end
  end

  describe "the exit report" do
    test "X ends the run with its report; writes still waiting are refused" do
      client = running(4)
      {_, client} = Client.write(client, :a, "12345")
      {[], client} = Client.write(client, :b, "waits")

      {events, client} = Client.handle(client, body("exit_code.hex"))
      assert [{:reply, :b, {:error, :closed}}, {:exit, %{reason: :exit, exit_status: 3}}] = events
      assert Client.done?(client)

      # After X nothing counts any more.
      assert {[], _} = Client.handle(client, body("stdout.hex"))
      assert {[], _} = Client.consumed(client, 1_000_000)
      assert {[{:reply, :c, {:error, :closed}}], _} = Client.write(client, :c, "x")
    end

    test "a signal's status is 128 + the signal, derived when the helper left it out" do
      assert {[{:exit, %{reason: :signal, exit_status: 137}}], _} =
               Client.handle(running(), body("exit_signal.hex"))

      {:ok, {:exit, report}} = Protocol.decode(body("exit_signal.hex"))
      body = IO.iodata_to_binary(Protocol.encode({:exit, %{report | exit_status: nil}}))
      assert {[{:exit, %{exit_status: 137}}], _} = Client.handle(running(), body)

      body =
        IO.iodata_to_binary(Protocol.encode({:exit, %{report | exit_status: nil, signal: nil}}))

      assert {[{:error, {:protocol, {:no_exit_status, _}}, nil}], _} =
               Client.handle(running(), body)
    end
  end

  describe "a helper gone without X" do
    test "after S: clean up what S named, then the error" do
      {events, client} = Client.gone(running(), {:helper_exit, 137})

      assert [{:cleanup, %{paths: [_, _]}}, {:error, {:helper_exit, 137}, nil}] = events
      assert Client.done?(client)
      assert {[], _} = Client.gone(client, {:helper_closed, :epipe})
    end

    test "before S there is nothing to clean up" do
      assert {[{:error, {:helper_closed, :epipe}, nil}], _} =
               Client.gone(Client.new(65_536, false), {:helper_closed, :epipe})
    end
  end

  describe "flow control, as test/fixtures/proto/flow/ says" do
    test "acks follow the quarter-window rule corral_proto::Acks follows" do
      {events, _} =
        Enum.flat_map_reduce([1, 1, 3, 1, 0, 7], Client.new(8, false), fn n, client ->
          Client.consumed(client, n)
        end)

      sent = for {:send, frame} <- events, into: "", do: Protocol.frame(Protocol.encode(frame))
      assert sent == Golden.read!("flow/acks_window_8.hex")
    end
  end
end

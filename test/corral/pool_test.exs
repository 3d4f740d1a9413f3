defmodule Corral.PoolTest do
  # The application's pool is shared with every other test: these run alone.
  use ExUnit.Case, async: false

  alias Corral.Pool
  alias Corral.Port, as: Proto
  alias Corral.Test.OSProc

  defp waiting, do: length(:sys.get_state(Pool).ports)

  defp frames(port, acc \\ []) do
    receive do
      {^port, {:data, body}} ->
        {:ok, frame} = Proto.decode(body)

        if match?({:exit, _}, frame),
          do: Enum.reverse([frame | acc]),
          else: frames(port, [frame | acc])
    after
      5000 -> flunk("no X frame; got #{inspect(Enum.reverse(acc))}")
    end
  end

  test "checkout hands over a waiting helper, owned by and linked to the caller alone" do
    assert OSProc.wait_until(fn -> waiting() == 2 end, 5000)
    assert {:ok, port} = Pool.checkout(self(), Proto.helper_path())
    assert Port.info(port, :connected) == {:connected, self()}
    assert Port.info(port, :links) == {:links, [self()]}

    Port.command(
      port,
      Proto.encode({:run, Proto.run_args("/bin/echo", ["hi"], %Corral.Options{})})
    )

    assert [{:started, _}, {:stdout, "hi\n"}, {:exit, %{exit_status: 0}}] = frames(port)
    Proto.close(port)

    # The pool starts a replacement once it has replied.
    assert OSProc.wait_until(fn -> waiting() == 2 end, 5000)
  end

  test "a caller that wants another helper gets none from the pool" do
    assert Pool.checkout(self(), "/somewhere/else/corral") == :none
  end

  test "cmd/3 goes through the pool and still ends the tree with its caller" do
    assert OSProc.wait_until(fn -> waiting() == 2 end, 5000)
    before = :sys.get_state(Pool).ports
    file = OSProc.tmp_path("pool-tree")
    on_exit(fn -> File.rm(file) end)

    caller =
      spawn(fn ->
        Corral.cmd("sh", [
          "-c",
          "sleep 1000 & echo $! >> #{file}; setsid sleep 1000 & echo $! >> #{file}; wait"
        ])
      end)

    pids = OSProc.wait_for_pids(file, 2)
    # The helper serving the caller is one the pool had waiting.
    assert Enum.any?(
             before,
             &(Port.info(&1, :connected) == {:connected, caller})
           )

    Process.exit(caller, :kill)
    assert OSProc.wait_gone(pids, 1000) == []
  end

  test "helpers waiting in a pool that stops exit with it" do
    {:ok, pool} = GenServer.start(Pool, size: 3)
    assert OSProc.wait_until(fn -> length(:sys.get_state(pool).ports) == 3 end, 5000)
    os_pids = for port <- :sys.get_state(pool).ports, do: elem(Port.info(port, :os_pid), 1)
    assert OSProc.alive(os_pids) == os_pids
    GenServer.stop(pool)
    assert OSProc.wait_gone(os_pids, 1000) == []
  end
end

defmodule Corral.PoolTest do
  # The application's pool is shared with every other test: these run alone.
  use ExUnit.Case, async: false

  alias Corral.Pool
  alias Corral.Helper
  alias Corral.Protocol, as: Proto
  alias Corral.Test.OSProc

  defp waiting, do: Pool.waiting()

  # As many wait as the pool aims for (2 unless callers found none waiting).
  defp settled, do: waiting() == elem(Pool.target(), 0)

  # Other tests' concurrent runs grow the pool (it sizes itself to demand):
  # each test here starts from the minimum.
  setup do
    Pool.shrink()
  end

  defp ports(pool),
    do: for({n, port, _env} <- :ets.tab2list(:sys.get_state(pool).table), is_integer(n), do: port)

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
    assert OSProc.wait_until(&settled/0, 5000)
    assert {:ok, port, _env} = Pool.checkout(self(), Helper.helper_path())
    assert Port.info(port, :connected) == {:connected, self()}
    # The pool unlinks once it has read the caller's note.
    assert OSProc.wait_until(fn -> Port.info(port, :links) == {:links, [self()]} end, 1000)

    Port.command(
      port,
      Proto.encode({:run, Helper.run_args("/bin/echo", ["hi"], %Corral.Options{})})
    )

    assert [{:started, _}, {:stdout, "hi\n"}, {:exit, %{exit_status: 0}}] = frames(port)
    Helper.close(port)

    # Closed rather than handed back: the pool opens another.
    assert OSProc.wait_until(&settled/0, 5000)
  end

  defp helper_pids,
    do: for(port <- ports(Pool), {:os_pid, p} <- [Port.info(port, :os_pid)], do: p)

  test "a helper serves one cmd after another, and goes back to the pool after each" do
    assert OSProc.wait_until(&settled/0, 5000)
    before = helper_pids()

    served =
      for i <- 1..50 do
        {out, 0} = Corral.cmd("sh", ["-c", "echo $PPID"])
        assert Corral.cmd("echo", [Integer.to_string(i)]) == {"#{i}\n", 0}
        String.to_integer(String.trim(out))
      end

    # Every run had a helper of the pool's, and none was lost. (A helper a
    # caller opens for itself when none waits is closed after its run, so
    # it is in neither list. One closed by an earlier test may be replaced
    # meanwhile, and a helper coming back then finds the pool full.)
    assert OSProc.wait_until(&settled/0, 1000)
    pool = before ++ helper_pids()
    assert Enum.all?(served, &(&1 in pool)), "#{inspect(served -- pool)} not from the pool"
  end

  # checkout and checkin leave the pool notes and wait for nothing from it:
  # a pool that is busy (here suspended) does not make callers miss.
  test "helpers go out and come back while the pool itself is busy" do
    assert OSProc.wait_until(&settled/0, 5000)
    before = helper_pids()
    :sys.suspend(Pool)

    served =
      try do
        for _ <- 1..6 do
          {out, 0} = Corral.cmd("sh", ["-c", "echo $PPID"])
          String.to_integer(String.trim(out))
        end
      after
        :sys.resume(Pool)
      end

    assert Enum.all?(served, &(&1 in before)), "#{inspect(served)} not all in #{inspect(before)}"
    assert OSProc.wait_until(&settled/0, 1000)
  end

  test "a run that did not end with X does not go back" do
    assert OSProc.wait_until(&settled/0, 5000)
    before = helper_pids()
    assert_raise Corral.Error, fn -> Corral.cmd("/dev/null", []) end
    # The failed run's helper is replaced before the next run: otherwise that
    # run finds one helper waiting, the pool fills up behind it, and the
    # helper it hands back finds the pool full and is closed.
    assert OSProc.wait_until(&settled/0, 5000)
    assert {"", :timeout} = Corral.cmd("sleep", ["10"], timeout: 50)
    assert OSProc.wait_until(&settled/0, 5000)
    # The helper whose spawn failed was closed and replaced; the one that
    # timed out ended with X and came back.
    assert length(helper_pids() -- before) == 1
  end

  test "after System.put_env/2, helpers started before are not used" do
    assert OSProc.wait_until(&settled/0, 5000)
    before = helper_pids()
    System.put_env("CORRAL_POOL_PROBE", "changed")

    try do
      # As with System.cmd/3, the child sees the variable at once.
      for _ <- 1..3 do
        assert Corral.cmd("sh", ["-c", "echo $CORRAL_POOL_PROBE"]) == {"changed\n", 0}
      end

      assert OSProc.wait_until(&settled/0, 5000)
      assert helper_pids() -- before == helper_pids()
      assert OSProc.wait_gone(before, 1000) == []
    after
      # Back as it was; one cmd retires the helpers that saw the variable.
      System.delete_env("CORRAL_POOL_PROBE")
      assert Corral.cmd("sh", ["-c", "echo $CORRAL_POOL_PROBE"]) == {"\n", 0}
      assert OSProc.wait_until(&settled/0, 5000)
    end
  end

  test "concurrent checkouts never share a helper" do
    assert OSProc.wait_until(&settled/0, 5000)
    parent = self()

    callers =
      for _ <- 1..20 do
        spawn(fn ->
          result = Pool.checkout(self(), Helper.helper_path())
          send(parent, {:got, self(), result})
          receive do: (:done -> :ok)
        end)
      end

    results = for c <- callers, do: receive(do: ({:got, ^c, r} -> r))
    ports = for {:ok, port, _env} <- results, do: port
    assert ports != []
    assert Enum.uniq(ports) == ports
    assert length(ports) + Enum.count(results, &(&1 == :none)) == 20
    Enum.each(callers, &send(&1, :done))
  end

  test "helpers killed while they wait are skipped and replaced" do
    assert OSProc.wait_until(&settled/0, 5000)
    os_pids = for port <- ports(Pool), do: elem(Port.info(port, :os_pid), 1)
    Enum.each(os_pids, &System.cmd("kill", ["-9", Integer.to_string(&1)]))
    assert OSProc.wait_gone(os_pids, 1000) == []

    # Whatever the pool has noticed by now, cmd/3 still runs, and the pool
    # fills up again with live helpers.
    assert Corral.cmd("echo", ["ok"]) == {"ok\n", 0}

    assert OSProc.wait_until(
             fn ->
               fresh = for port <- ports(Pool), {:os_pid, p} <- [Port.info(port, :os_pid)], do: p
               length(fresh) == elem(Pool.target(), 0) and OSProc.alive(fresh) == fresh
             end,
             5000
           )
  end

  # A pooled helper started in the VM's working directory of its own start;
  # each run gets the VM's of now, as System.cmd/3's child does.
  test "a pooled helper's run starts in the VM's working directory of now" do
    assert OSProc.wait_until(&settled/0, 5000)
    before = helper_pids()
    dir = OSProc.tmp_path("pool-cwd")
    File.mkdir_p!(Path.join(dir, "sub"))
    old = File.cwd!()

    try do
      File.cd!(dir)
      assert Corral.cmd("pwd", []) == System.cmd("pwd", [])
      assert Corral.cmd("pwd", []) == {dir <> "\n", 0}
      assert Corral.cmd("pwd", [], cd: "sub") == {Path.join(dir, "sub") <> "\n", 0}
      # A helper of the pool's ran it, as it did the runs above: one started
      # before the cd, unless a refill owed to an earlier test replaced it
      # meanwhile (so the pool's list after counts too).
      {out, 0} = Corral.cmd("sh", ["-c", "pwd; echo $PPID"])
      [pwd, ppid] = String.split(out, "\n", trim: true)
      assert pwd == dir
      assert String.to_integer(ppid) in (before ++ helper_pids())
    after
      File.cd!(old)
      File.rm_rf!(dir)
    end
  end

  test "a caller that wants another helper gets none from the pool" do
    assert Pool.checkout(self(), "/somewhere/else/corral") == :none
  end

  test "cmd/3 goes through the pool and still ends the tree with its caller" do
    assert OSProc.wait_until(&settled/0, 5000)
    before = ports(Pool)
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

  test "grows while callers find none waiting, then serves the same burst without a miss" do
    assert OSProc.wait_until(&settled/0, 5000)
    assert Pool.target() == {2, false}

    burst = fn ->
      1..6
      |> Task.async_stream(fn _ -> Corral.cmd("sleep", ["0.3"]) end, max_concurrency: 6)
      |> Enum.to_list()
    end

    burst.()
    {target, armed} = Pool.target()
    assert target > 2 and armed, "target #{target}, timer #{armed}"
    assert OSProc.wait_until(fn -> waiting() == target end, 5000)

    # Enough wait now: the same burst finds one each and asks for no more.
    if target >= 6 do
      burst.()
      assert Pool.target() == {target, true}
    end
  end

  test "falls back to its minimum after idle time, with no timer left running" do
    {:ok, pool} = GenServer.start(Pool, min: 1, max: 4, idle_ms: 200)
    on_exit(fn -> Process.exit(pool, :kill) end)
    assert OSProc.wait_until(fn -> Pool.waiting(pool) == 1 end, 5000)
    assert Pool.target(pool) == {1, false}

    # What a caller that finds none waiting sends; the fifth stays at :max.
    for _ <- 1..5, do: send(pool, :fill)
    assert OSProc.wait_until(fn -> Pool.waiting(pool) == 4 end, 5000)
    assert {4, true} = Pool.target(pool)
    os_pids = for port <- ports(pool), do: elem(Port.info(port, :os_pid), 1)

    assert OSProc.wait_until(fn -> Pool.target(pool) == {1, false} end, 5000)
    assert Pool.waiting(pool) == 1
    [kept] = for port <- ports(pool), do: elem(Port.info(port, :os_pid), 1)
    assert OSProc.wait_gone(os_pids -- [kept], 1000) == []
  end

  test "a fixed size does not grow" do
    {:ok, pool} = GenServer.start(Pool, size: 2)
    on_exit(fn -> Process.exit(pool, :kill) end)
    for _ <- 1..5, do: send(pool, :fill)
    assert OSProc.wait_until(fn -> Pool.waiting(pool) == 2 end, 5000)
    assert Pool.target(pool) == {2, false}
  end

  test "helpers waiting in a pool that stops exit with it" do
    {:ok, pool} = GenServer.start(Pool, size: 3)
    assert OSProc.wait_until(fn -> Pool.waiting(pool) == 3 end, 5000)
    os_pids = for port <- ports(pool), do: elem(Port.info(port, :os_pid), 1)
    assert OSProc.alive(os_pids) == os_pids
    GenServer.stop(pool)
    assert OSProc.wait_gone(os_pids, 1000) == []
  end
end

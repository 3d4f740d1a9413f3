# Port-mode smoke test of a cross-built helper, run by .ci/cross under the
# host's BEAM with CORRAL_HELPER pointing at a wrapper that starts the
# helper under qemu-user. Prints one line per check; exits 1 if any fails.
#
#   CORRAL_HELPER=/tmp/corral-qemu mix run .ci/cross_smoke.exs

defmodule CrossSmoke do
  def alive?(pid) do
    case File.read("/proc/#{pid}/stat") do
      {:ok, stat} -> stat |> String.split(") ") |> List.last() |> String.first() != "Z"
      {:error, _} -> false
    end
  end

  # Polls with a deadline rather than sleeping a fixed time.
  def gone?(pids, ms) do
    deadline = System.monotonic_time(:millisecond) + ms

    Stream.repeatedly(fn ->
      Process.sleep(10)
      Enum.reject(pids, &alive?/1) == pids or System.monotonic_time(:millisecond) > deadline
    end)
    |> Enum.find(& &1)

    Enum.filter(pids, &alive?/1) == []
  end

  def pids(path) do
    case File.read(path) do
      {:ok, text} -> for l <- String.split(text), do: String.to_integer(l)
      _ -> []
    end
  end

  def check(name, fun) do
    {ok, detail} =
      try do
        fun.()
      rescue
        e -> {false, Exception.message(e)}
      end

    IO.puts("#{if ok, do: "ok  ", else: "FAIL"} #{name}: #{detail}")
    ok
  end
end

tmp = fn name -> Path.join(System.tmp_dir!(), "corral-cross-#{System.unique_integer([:positive])}-#{name}") end

results = [
  CrossSmoke.check("Corral.cmd echo", fn ->
    r = Corral.cmd("echo", ["hi"])
    {r == {"hi\n", 0}, inspect(r)}
  end),
  CrossSmoke.check("Corral.cmd exit status 7", fn ->
    r = Corral.cmd("sh", ["-c", "echo out; exit 7"], stderr_to_stdout: true)
    {r == {"out\n", 7}, inspect(r)}
  end),
  CrossSmoke.check("containment without a cgroup", fn ->
    {:ok, r} = Corral.run("true", [], no_cgroup: true)
    {r.containment in [:none, :process_group], inspect(r.containment)}
  end),
  CrossSmoke.check("containment by default", fn ->
    {:ok, r} = Corral.run("true", [])
    {r.exit_status == 0, inspect(r.containment)}
  end),
  CrossSmoke.check("timeout ends an orphaned grandchild (process group)", fn ->
    file = tmp.("orphan")
    script = "sh -c 'sleep 300 >/dev/null 2>&1 & echo $! > #{file}'; echo started; exec sleep 300"
    {out, status} = Corral.cmd("sh", ["-c", script], no_cgroup: true, timeout: 3000)
    [orphan] = CrossSmoke.pids(file)
    File.rm(file)
    gone = CrossSmoke.gone?([orphan], 3000)
    unless gone, do: System.cmd("kill", ["-9", "#{orphan}"])
    {gone and out == "started\n" and status == :timeout,
     "#{inspect({out, status})}, grandchild #{orphan} #{if gone, do: "gone", else: "ALIVE"}"}
  end),
  CrossSmoke.check("closing the port ends a forked tree", fn ->
    file = tmp.("tree")
    script = "sleep 300 & echo $! > #{file}; sleep 300 & echo $! >> #{file}; echo ready; wait"
    task = Task.async(fn -> Corral.cmd("sh", ["-c", script], no_cgroup: true) end)

    pids =
      Enum.find_value(1..500, fn _ ->
        Process.sleep(10)
        p = CrossSmoke.pids(file)
        length(p) == 2 and p
      end) || []

    Task.shutdown(task, :brutal_kill)
    File.rm(file)
    gone = pids != [] and CrossSmoke.gone?(pids, 3000)
    unless gone, do: Enum.each(pids, &System.cmd("kill", ["-9", "#{&1}"]))
    {gone, "children #{inspect(pids)} #{if gone, do: "gone", else: "ALIVE"} after the owner died"}
  end)
]

if Enum.all?(results), do: IO.puts("all passed"), else: System.halt(1)

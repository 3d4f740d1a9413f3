# Teardown latency: from the owner's death (Process.exit(owner, :kill)) until
# the program is dead, for a direct child and for a 3-process tree with a
# setsid grandchild, with Corral's default cgroup and with `no_cgroup: true`.
# "Dead" is the moment the process exited (a zombie or gone): it ran its
# last instruction (reaping is the helper's business). A small watcher,
# bench/support/deathwatch.py, waits on a pidfd(2) for each process and
# stamps each death with the realtime clock that System.os_time/1 reads; it
# takes no CPU while it waits. (Polling /proc in a loop from the BEAM, as
# this script did first, took one of the machine's 2 cores from the very
# teardown it measured: medians twice as long, and 30-80 ms outliers.)
#
# MuonTrap, when MUONTRAP_PATH names a built `muontrap` (bench/muontrap-build),
# is measured the same way, driven as MuonTrap.cmd/3 drives it
# (bench/support/muontrap.exs): the owner runs the command through the port
# and is killed; the port closes, muontrap sees its stdin hang up, SIGTERMs
# its direct child and exits once that child is reaped. Only its cgroup-less
# mode runs here (its --group needs cgroup v2 mounted at /sys/fs/cgroup;
# this machine is hybrid, v2 at /sys/fs/cgroup/unified), and in that mode it
# signals the direct child alone: in the 3-process tree its time is the
# direct child's (the `sh`), and the background `sleep` and the setsid
# `sleep` stay alive. They are counted as survivors (still alive 1 s after
# the owner's death) and then killed by pid here. Its tree case runs at
# most 20 times, since each run waits out that second.
#
# Writes bench/results/teardown.{md,csv} (bench/support/results.exs).
#
# Usage: MIX_ENV=dev mix run bench/teardown.exs [runs]

Code.require_file("support/results.exs", __DIR__)
Code.require_file("support/muontrap.exs", __DIR__)
Code.require_file("support/stats.exs", __DIR__)

runs =
  case System.argv() do
    [r] -> String.to_integer(r)
    [] -> 200
  end

defmodule Bench.Teardown do
  @tmp Path.join(System.tmp_dir!(), "corral-teardown-#{System.pid()}")
  def tmp, do: @tmp

  # How long the rest of a tree may take after the owner's death before
  # what is left counts as a survivor.
  @rest_deadline_us 1_000_000

  @doc "The death watcher (bench/support/deathwatch.py), as a port."
  def watcher do
    script = Path.join(__DIR__, "support/deathwatch.py")
    python = System.find_executable("python3") || raise "bench/teardown.exs needs python3"
    Port.open({:spawn_executable, python}, [:binary, {:line, 256}, args: [script]])
  end

  def pids(file, n) do
    case File.read(file) do
      {:ok, text} ->
        pids = for l <- String.split(text, "\n", trim: true), do: String.to_integer(l)
        if length(pids) >= n, do: pids, else: pids(file, n)

      _ ->
        pids(file, n)
    end
  end

  @doc """
  One run: `start` runs `sh -c script` in a fresh owner process, which is
  killed once the script's `n` pids are written (the direct child's last).
  Returns {µs until the direct child is dead, µs until all are dead or nil,
  survivors}; survivors are killed by pid before it returns.
  """
  def once(start, script, n, watcher) do
    file = Path.join(@tmp, "run-#{System.unique_integer([:positive])}")
    owner = spawn(fn -> start.(["-c", script.(file)]) end)
    pids = pids(file, n)
    direct = List.last(pids)
    # Let the shell reach `wait`/`exec` so the tree is at rest.
    Process.sleep(5)
    Port.command(watcher, Enum.join(pids, " ") <> "\n")
    receive do: ({^watcher, {:data, {:eol, "ready"}}} -> :ok)
    t0 = System.os_time(:microsecond)
    Process.exit(owner, :kill)
    %{^direct => t_direct} = died = deaths(watcher, [direct], %{}, 10 * @rest_deadline_us)
    rest = pids -- [direct]
    deadline = @rest_deadline_us - (System.os_time(:microsecond) - t0)
    died = deaths(watcher, rest, died, max(deadline, 0))

    case rest -- Map.keys(died) do
      [] ->
        {t_direct - t0, Enum.max(Map.values(died)) - t0, 0}

      survivors ->
        {_, 0} = System.cmd("kill", ["-KILL" | Enum.map(survivors, &Integer.to_string/1)])
        deaths(watcher, survivors, died, 10 * @rest_deadline_us)
        {t_direct - t0, nil, length(survivors)}
    end
  end

  # Death times of `pids` (and any other the watcher reports meanwhile) into
  # `acc`, until all of `pids` are in or `within_us` has passed.
  defp deaths(watcher, pids, acc, within_us),
    do: deaths_by(watcher, pids, acc, System.os_time(:microsecond) + within_us)

  defp deaths_by(watcher, pids, acc, deadline) do
    if Enum.all?(pids, &Map.has_key?(acc, &1)) do
      acc
    else
      receive do
        {^watcher, {:data, {:eol, line}}} ->
          [pid, us] = line |> String.split() |> Enum.map(&String.to_integer/1)
          deaths_by(watcher, pids, Map.put(acc, pid, us), deadline)
      after
        max(0, div(deadline - System.os_time(:microsecond), 1000)) -> acc
      end
    end
  end

  def stats(us), do: {Bench.Stats.median(us), Bench.Stats.percentile(us, 99), Enum.max(us)}
end

alias Bench.Teardown
File.mkdir_p!(Teardown.tmp())

context = Bench.Results.context()
muontrap = Bench.MuonTrap.path()

direct = fn f -> "echo $$ > #{f}; exec sleep 1000" end

tree = fn f ->
  "sleep 1000 & echo $! >> #{f}; setsid sleep 1000 & echo $! >> #{f}; echo $$ >> #{f}; wait"
end

cases = [
  {"direct child", direct, 1},
  {"3-process tree, setsid grandchild", tree, 3}
]

corral = fn opts -> fn args -> Corral.run("sh", args, opts) end end

# {tool, containment, start}
tools =
  [{"Corral", "cgroup", corral.([])}, {"Corral", "no cgroup", corral.(no_cgroup: true)}] ++
    if muontrap,
      do: [{"MuonTrap", "no cgroup", fn args -> Bench.MuonTrap.cmd(muontrap, "sh", args) end}],
      else: []

watcher = Teardown.watcher()

# Warm up: pool, code loading.
for _ <- 1..10, {_, _, start} <- tools, do: Teardown.once(start, direct, 1, watcher)

rows =
  for {name, script, n} <- cases, {tool, mode, start} <- tools do
    runs = if tool == "MuonTrap" and n > 1, do: min(runs, 20), else: runs
    results = for _ <- 1..runs, do: Teardown.once(start, script, n, watcher)
    survivors = results |> Enum.map(&elem(&1, 2)) |> Enum.sum()

    # The whole tree's time when every run ended the whole tree, else the
    # direct child's.
    {measured, us} =
      if survivors == 0 and n > 1,
        do: {"whole tree", Enum.map(results, &elem(&1, 1))},
        else:
          {if(n > 1, do: "direct child only", else: "direct child"),
           Enum.map(results, &elem(&1, 0))}

    {med, p99, max} = Teardown.stats(us)
    {name, tool, mode, runs, measured, med, p99, max, survivors, runs * n}
  end

ms = fn v -> :erlang.float_to_binary(v / 1000, decimals: 2) <> " ms" end

Bench.Results.table(
  "teardown",
  "teardown: owner killed until the program is dead, #{runs} runs each " <>
    "(#{context.machine}, load #{context.load1}, #{context.date})",
  ["case", "tool", "containment", "runs", "dead", "median", "p99", "max", "survivors"],
  for {name, tool, mode, r, measured, med, p99, max, surv, of} <- rows do
    [name, tool, mode, "#{r}", measured, ms.(med), ms.(p99), ms.(max), "#{surv} of #{of}"]
  end
)

Bench.Results.csv(
  "teardown",
  context,
  [
    "case",
    "tool",
    "containment",
    "runs",
    "dead",
    "median_ms",
    "p99_ms",
    "max_ms",
    "survivors",
    "processes"
  ],
  for {name, tool, mode, r, measured, med, p99, max, surv, of} <- rows do
    [name, tool, mode, r, measured, med / 1000, p99 / 1000, max / 1000, surv, of]
  end
)

File.rm_rf!(Teardown.tmp())

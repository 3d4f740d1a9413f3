# N supervised Corral.Daemons running `sleep`: what each costs the VM, what
# each helper costs the machine, and whether idle helpers wake up.
# Usage: mix run bench/daemons.exs [n]

Code.require_file("support/stats.exs", __DIR__)

n =
  case System.argv() do
    [count] -> String.to_integer(count)
    [] -> 500
  end

# The helper's pid is the port's; the daemon keeps its port in its state.
helper_pid = fn daemon ->
  {:os_pid, pid} = Port.info(:sys.get_state(daemon).port, :os_pid)
  pid
end

# Fields of /proc/<pid>/status, as integers ("VmRSS:  1234 kB" -> 1234).
status = fn pid, keys ->
  for line <- String.split(File.read!("/proc/#{pid}/status"), "\n"),
      [key, value] <- [String.split(line, ":", parts: 2)],
      key in keys,
      into: %{},
      do: {key, value |> String.split() |> hd() |> String.to_integer()}
end

switches = fn pid ->
  s = status.(pid, ["voluntary_ctxt_switches", "nonvoluntary_ctxt_switches"])
  s["voluntary_ctxt_switches"] + s["nonvoluntary_ctxt_switches"]
end

summary = fn list ->
  "median #{Bench.Stats.percentile(list, 50)}, p95 #{Bench.Stats.percentile(list, 95)}, " <>
    "max #{Enum.max(list)}"
end

# Warm up: code loading, the helper binary in the page cache.
{:ok, warm} = Corral.Daemon.start_link("sleep", ["1000"])
GenServer.stop(warm)

:erlang.garbage_collect()
before = :erlang.memory(:total)

children =
  for i <- 1..n, do: Supervisor.child_spec({Corral.Daemon, ["sleep", ["1000"]]}, id: {:sleep, i})

{start_us, {:ok, sup}} =
  :timer.tc(fn -> Supervisor.start_link(children, strategy: :one_for_one) end)

daemons = for {_, pid, :worker, _} <- Supervisor.which_children(sup), do: pid
true = length(daemons) == n

for pid <- daemons, do: :erlang.garbage_collect(pid)
:erlang.garbage_collect()
vm_bytes = :erlang.memory(:total) - before
daemon_bytes = Enum.map(daemons, &elem(Process.info(&1, :memory), 1))

helpers = Enum.map(daemons, helper_pid)
rss = Enum.map(helpers, &status.(&1, ["VmRSS", "RssAnon"]))
rss_kib = Enum.map(rss, & &1["VmRSS"])
anon_kib = Enum.map(rss, & &1["RssAnon"])

{stats_us, stats} = :timer.tc(fn -> Enum.map(daemons, &Corral.Daemon.statistics/1) end)
true = Enum.all?(stats, &(&1.output_byte_count == 0))

# Idle: nothing is written, no signal arrives; a helper that polls would
# show up here as context switches.
first = Enum.map(helpers, switches)
Process.sleep(2000)
woke = Enum.zip_with(Enum.map(helpers, switches), first, &(&1 - &2))

{stop_us, :ok} = :timer.tc(fn -> Supervisor.stop(sup) end)

IO.puts("""
#{n} Corral.Daemons running `sleep 1000`
  start (one supervisor, in order)   #{div(start_us, 1000)} ms (#{div(start_us, n)} us each)
  statistics/1 of all                #{div(stats_us, 1000)} ms
  stop (Supervisor.stop/1)           #{div(stop_us, 1000)} ms
  VM memory per daemon               #{div(vm_bytes, n)} bytes (total growth #{div(vm_bytes, 1024)} KiB)
  daemon process memory              #{summary.(daemon_bytes)} bytes
  helper RSS (VmRSS)                 #{summary.(rss_kib)} KiB
  helper private RSS (RssAnon)       #{summary.(anon_kib)} KiB, sum #{div(Enum.sum(anon_kib), 1024)} MiB
  helper context switches idle 2 s   total #{Enum.sum(woke)} (#{Enum.count(woke, &(&1 > 0))} of #{n} helpers woke)
""")

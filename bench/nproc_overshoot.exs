# How far past `max_processes: 64` a bash fork bomb gets without a cgroup
# (`no_cgroup: true`) before the helper ends it, side by side:
#
# - "polled": CORRAL_PROC_EVENTS=0, the helper counts the tree in /proc,
#   sooner the closer the count is to the limit (what a helper without
#   CAP_NET_ADMIN does);
# - "fork events": the helper follows the tree's forks through the
#   kernel's process events connector (root, or CAP_NET_ADMIN).
#
# For safety each run happens in a second VM that is itself held by a
# Corral run with a cgroup `pids_max` of 3,000 and a 60 s timeout: the bomb
# can never take more than that, and everything ends with that run. The
# figure is that cgroup's `pids.peak` (tasks: the bomb's processes plus the
# second VM's threads) minus the peak of the same VM running `true`.
# Usage: MIX_ENV=dev mix run bench/nproc_overshoot.exs [runs]

Code.require_file("support/stats.exs", __DIR__)

runs =
  case System.argv() do
    [r] -> String.to_integer(r)
    [] -> 10
  end

limit = 64
cap = 3000
ebin = Path.dirname(:code.which(Corral))
bomb = "b() { b & b & wait; }; b"

in_vm = fn program, args, events ->
  code = """
  #{if events, do: "", else: ~s|System.put_env("CORRAL_PROC_EVENTS", "0")|}
  {:ok, r} = Corral.run(#{inspect(program)}, #{inspect(args)},
    no_cgroup: true, max_processes: #{limit}, delay_to_sigkill: 100, timeout: 20_000,
    stderr_to_stdout: true, into: "")
  IO.puts("RESULT \#{r.reason} \#{r.usage.wall_time}")
  """

  {:ok, r} =
    Corral.run("elixir", ["-pa", ebin, "-e", code],
      cgroup: %{pids_max: cap},
      timeout: 60_000,
      stderr_to_stdout: true,
      env: %{"CORRAL_HELPER" => Corral.Helper.helper_path()}
    )

  case Regex.run(~r/RESULT (\w+) (\d+)/, r.output) do
    [_, reason, wall] -> {reason, r.usage.peak_processes, String.to_integer(wall)}
    _ -> {"vm #{r.reason}", r.usage.peak_processes, 0}
  end
end

percentile = &Bench.Stats.percentile/2

IO.puts("bash fork bomb under max_processes: #{limit}, no cgroup, #{runs} runs each")
IO.puts("load average before: #{File.read!("/proc/loadavg") |> String.trim()}")

for {name, events} <- [{"polled", false}, {"fork events", true}] do
  {_, baseline, _} = in_vm.("true", [], events)

  results = for _ <- 1..runs, do: in_vm.("bash", ["-c", bomb], events)
  peaks = results |> Enum.map(&(elem(&1, 1) - baseline)) |> Enum.sort()
  walls = results |> Enum.map(&elem(&1, 2)) |> Enum.sort()
  reasons = results |> Enum.map(&elem(&1, 0)) |> Enum.frequencies()

  IO.puts(
    "  #{String.pad_trailing(name, 12)} peak processes: median #{percentile.(peaks, 50)}, " <>
      "min #{hd(peaks)}, max #{List.last(peaks)} (cap #{cap - baseline}); " <>
      "run wall median #{div(percentile.(walls, 50), 1000)} ms; reasons #{inspect(reasons)}"
  )
end

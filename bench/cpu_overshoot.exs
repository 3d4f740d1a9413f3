# How far past a 1 s :cpu_time limit a busy tree gets before the helper
# ends it: reported user + system CPU minus 1 s, over N runs (default 20),
# with cgroups (Corral's default where the system allows them) and with
# no_cgroup: true (the /proc + RUSAGE_CHILDREN fallback). The busy loops
# are a one-thread shell loop and a two-thread Python loop (hashlib lets go
# of the GIL, so it uses two cores).
# Usage: MIX_ENV=dev mix run bench/cpu_overshoot.exs [runs]

Code.require_file("support/stats.exs", __DIR__)

runs =
  case System.argv() do
    [r] -> String.to_integer(r)
    [] -> 20
  end

limit_ms = 1000

{python, 0} = System.cmd("python3", ["-c", "import sys; print(sys.executable)"])
python = String.trim(python)

two_threads = """
import hashlib, threading
buf = b"x" * (1 << 20)
def spin():
    while True:
        hashlib.sha256(buf).digest()
for _ in range(2):
    threading.Thread(target=spin, daemon=True).start()
threading.Event().wait()
"""

loops = [
  {"sh busy loop, 1 thread", "sh", ["-c", "while :; do :; done"]},
  {"python, 2 threads", python, ["-c", two_threads]}
]

modes = [{"cgroups", []}, {"no_cgroup", [no_cgroup: true]}]

# Nearest rank: the smallest value with at least p% of the runs at or below it.
percentile = &Bench.Stats.percentile/2

IO.puts("CPU-time overshoot of a #{limit_ms} ms :cpu_time limit, #{runs} runs each (ms)")
IO.puts("load average before: #{File.read!("/proc/loadavg") |> String.trim()}")

for {loop_name, program, args} <- loops, {mode_name, opts} <- modes do
  results =
    for _ <- 1..runs do
      {:ok, result} = Corral.run(program, args, [cpu_time: limit_ms, timeout: 60_000] ++ opts)
      cpu = result.usage.user_time + result.usage.system_time
      {result.reason, result.containment, (cpu - limit_ms * 1000) / 1000}
    end

  overshoots = results |> Enum.map(&elem(&1, 2)) |> Enum.sort()
  others = Enum.count(results, &(elem(&1, 0) != :cpu_time))
  containment = results |> Enum.map(&elem(&1, 1)) |> Enum.uniq() |> Enum.map_join(",", &inspect/1)

  IO.puts(
    "  #{String.pad_trailing(loop_name, 24)} #{String.pad_trailing(mode_name, 10)} " <>
      "median #{Float.round(percentile.(overshoots, 50), 1)}  " <>
      "p95 #{Float.round(percentile.(overshoots, 95), 1)}  " <>
      "min #{Float.round(hd(overshoots), 1)}  max #{Float.round(List.last(overshoots), 1)}" <>
      "  (containment #{containment}" <>
      if(others > 0, do: ", #{others} runs NOT ended by :cpu_time)", else: ")")
  )
end

IO.puts("load average after: #{File.read!("/proc/loadavg") |> String.trim()}")

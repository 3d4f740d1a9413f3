# Spawn latency of `true`, System.cmd/3 and Corral.cmd/3, with Corral's
# default containment (a fresh cgroup) and helper pool.
# Usage: mix run bench/spawn.exs [runs]
#
#   1. side by side: the two calls alternate, so both see the same machine;
#   2. back to back: each in a row of its own, as a loop of cmd/3 would;
#   3. 1, 2, 4, 8 and 16 callers at once, `runs` calls in all: wall time.
#      The pool grows to the number of callers (Corral.Pool); a first,
#      uncounted burst at each level lets it, as a steady load would.

runs =
  case System.argv() do
    [r] -> String.to_integer(r)
    [] -> 500
  end

time = fn fun ->
  {us, {"", 0}} = :timer.tc(fun)
  us
end

system = fn -> System.cmd("true", []) end
corral = fn -> Corral.cmd("true", []) end

# Warm up both paths (code loading, executable lookup caches).
for _ <- 1..20, do: {system.(), corral.()}

median = fn l -> l |> Enum.sort() |> Enum.at(div(length(l), 2)) end
p95 = fn l -> l |> Enum.sort() |> Enum.at(div(length(l) * 95, 100)) end

{sys, cor} =
  Enum.reduce(1..runs, {[], []}, fn _, {s, c} ->
    {[time.(system) | s], [time.(corral) | c]}
  end)

IO.puts("spawn of `true`, #{runs} runs each (microseconds)")
IO.puts("side by side")
IO.puts("  System.cmd  median #{median.(sys)}  p95 #{p95.(sys)}")
IO.puts("  Corral.cmd  median #{median.(cor)}  p95 #{p95.(cor)}")
IO.puts("  ratio       #{Float.round(median.(cor) / median.(sys), 2)}x (median)")

sys = for _ <- 1..runs, do: time.(system)
cor = for _ <- 1..runs, do: time.(corral)
IO.puts("back to back")
IO.puts("  System.cmd  median #{median.(sys)}  p95 #{p95.(sys)}")
IO.puts("  Corral.cmd  median #{median.(cor)}  p95 #{p95.(cor)}")
IO.puts("  ratio       #{Float.round(median.(cor) / median.(sys), 2)}x (median)")

wall = fn fun, callers ->
  {us, :ok} =
    :timer.tc(fn ->
      1..runs |> Task.async_stream(fn _ -> fun.() end, max_concurrency: callers) |> Stream.run()
    end)

  div(us, 1000)
end

# Corral's pool sizes itself to demand (Corral.Pool): a first burst at each
# level grows it, as a steady load would, and is not counted.
IO.puts("callers at once, #{runs} calls each way (milliseconds of wall time)")
IO.puts("| callers | System.cmd | Corral.cmd | ratio |")
IO.puts("|---|---|---|---|")

for callers <- [1, 2, 4, 8, 16] do
  wall.(corral, callers)
  {ws, wc} = {wall.(system, callers), wall.(corral, callers)}
  IO.puts("| #{callers} | #{ws} | #{wc} | #{Float.round(wc / ws, 2)}x |")
end

# Spawn latency of `true`, System.cmd/3 and Corral.cmd/3 side by side, with
# Corral's default containment. Usage: mix run bench/spawn.exs [runs]

runs =
  case System.argv() do
    [r] -> String.to_integer(r)
    [] -> 500
  end

time = fn fun ->
  {us, {"", 0}} = :timer.tc(fun)
  us
end

# Warm up both paths (code loading, executable lookup caches).
for _ <- 1..20, do: {System.cmd("true", []), Corral.cmd("true", [])}

{sys, cor} =
  Enum.reduce(1..runs, {[], []}, fn _, {s, c} ->
    {[time.(fn -> System.cmd("true", []) end) | s], [time.(fn -> Corral.cmd("true", []) end) | c]}
  end)

stats = fn l ->
  l = Enum.sort(l)
  {Enum.at(l, div(length(l), 2)), Enum.at(l, div(length(l) * 95, 100))}
end

{sm, sp} = stats.(sys)
{cm, cp} = stats.(cor)
IO.puts("spawn of `true`, #{runs} runs each (microseconds)")
IO.puts("  System.cmd  median #{sm}  p95 #{sp}")
IO.puts("  Corral.cmd  median #{cm}  p95 #{cp}")
IO.puts("  ratio       #{Float.round(cm / sm, 2)}x (median)")

# Spawn latency of `true`, System.cmd/3 and Corral.cmd/3, with Corral's
# default containment (a fresh cgroup) and helper pool; and MuonTrap, driven
# as MuonTrap.cmd/3 drives it (bench/support/muontrap.exs), when
# MUONTRAP_PATH names a built `muontrap` (bench/muontrap-build).
# Usage: mix run bench/spawn.exs [runs]
#
#   1. side by side: the calls alternate, so all see the same machine;
#   2. back to back: each in a row of its own, as a loop of cmd/3 would;
#   3. 1, 2, 4, 8 and 16 callers at once, `runs` calls in all: wall time,
#      and microseconds per call (wall time / runs).
#      The pool grows to the number of callers (Corral.Pool); a first,
#      uncounted burst at each level lets it, as a steady load would.
#
# Writes bench/results/spawn.{md,csv} (the callers table; the CSV's
# `callers` 0 row is the side-by-side median of one call).

Code.require_file("support/results.exs", __DIR__)
Code.require_file("support/muontrap.exs", __DIR__)
Code.require_file("support/stats.exs", __DIR__)

runs =
  case System.argv() do
    [r] -> String.to_integer(r)
    [] -> 500
  end

context = Bench.Results.context()
muontrap = Bench.MuonTrap.path()

time = fn fun ->
  {us, {"", 0}} = :timer.tc(fun)
  us
end

tools =
  [
    {"System.cmd", fn -> System.cmd("true", []) end},
    {"Corral.cmd", fn -> Corral.cmd("true", []) end}
  ] ++
    if(muontrap, do: [{"MuonTrap", fn -> Bench.MuonTrap.cmd(muontrap, "true", []) end}], else: [])

# Warm up every path (code loading, executable lookup caches).
for _ <- 1..20, {_, f} <- tools, do: f.()

median = &round(Bench.Stats.median(&1))
p95 = &Bench.Stats.percentile(&1, 95)
x = fn a, b -> "#{Float.round(a / b, 2)}x" end

show = fn samples ->
  [{_, sys} | _] = samples

  for {name, us} <- samples do
    ratio = if name == "System.cmd", do: "", else: "  #{x.(median.(us), median.(sys))} (median)"
    IO.puts("  #{String.pad_trailing(name, 11)} median #{median.(us)}  p95 #{p95.(us)}#{ratio}")
  end
end

side =
  Enum.reduce(1..runs, Enum.map(tools, fn {n, _} -> {n, []} end), fn _, acc ->
    Enum.zip_with(tools, acc, fn {_, f}, {n, l} -> {n, [time.(f) | l]} end)
  end)

IO.puts("spawn of `true`, #{runs} runs each (microseconds)")
IO.puts("side by side")
show.(side)

IO.puts("back to back")
show.(for {n, f} <- tools, do: {n, for(_ <- 1..runs, do: time.(f))})

wall = fn fun, callers ->
  {us, :ok} =
    :timer.tc(fn ->
      1..runs |> Task.async_stream(fn _ -> fun.() end, max_concurrency: callers) |> Stream.run()
    end)

  us
end

# Corral's pool sizes itself to demand (Corral.Pool): a first burst at each
# level grows it, as a steady load would, and is not counted.
rows =
  for callers <- [1, 2, 4, 8, 16] do
    {_, corral} = Enum.at(tools, 1)
    wall.(corral, callers)
    {callers, for({_, f} <- tools, do: wall.(f, callers))}
  end

ms = fn us -> "#{div(us, 1000)} ms" end
per = fn us -> "#{round(us / runs)} µs" end

cells =
  for {callers, [ws, wc | wm]} <- rows do
    [
      Integer.to_string(callers),
      "#{ms.(ws)} (#{per.(ws)})",
      "#{ms.(wc)} (#{per.(wc)})",
      x.(wc, ws)
    ] ++
      Enum.flat_map(wm, fn m -> ["#{ms.(m)} (#{per.(m)})", x.(wc, m)] end)
  end

header =
  ["callers", "System.cmd", "Corral.cmd", "Corral / System.cmd"] ++
    if(muontrap, do: ["MuonTrap", "Corral / MuonTrap"], else: [])

IO.puts("")

Bench.Results.table(
  "spawn",
  "callers at once, #{runs} calls of `true` each way: wall time (per call) " <>
    "(#{context.machine}, load #{context.load1}, #{context.date})",
  header,
  cells
)

pad = fn l -> l ++ List.duplicate(nil, 3 - length(l)) end

Bench.Results.csv(
  "spawn",
  context,
  ["callers", "runs", "system_cmd_us_per_call", "corral_us_per_call", "muontrap_us_per_call"],
  [[0, runs | pad.(for {_, us} <- side, do: median.(us))]] ++
    for({callers, walls} <- rows, do: [callers, runs | pad.(Enum.map(walls, &(&1 / runs)))])
)

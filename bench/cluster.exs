# Corral.cmd/3 on this node and on another (`node:`), side by side: the
# throughput of a `head -c` stream and the spawn latency of `true`, with
# the caller's memory peak during the remote stream. The other node is a
# :peer on this machine, so this measures Corral's remote path and Erlang
# distribution over loopback, not a network.
#
# Usage: MIX_ENV=dev mix run bench/cluster.exs [runs] [bytes] [spawns]
# (defaults 3 runs of 10^9 bytes, 300 spawns)

{runs, bytes, spawns} =
  case Enum.map(System.argv(), &String.to_integer/1) do
    [r, b, s] -> {r, b, s}
    [r, b] -> {r, b, 300}
    [r] -> {r, 1_000_000_000, 300}
    [] -> {3, 1_000_000_000, 300}
  end

unless Node.alive?() do
  {_, 0} = System.cmd("epmd", ["-daemon"])
  {:ok, _} = :net_kernel.start([:"corral_bench_#{System.unique_integer([:positive])}", :shortnames])
end

paths = Enum.flat_map(:code.get_path(), &[~c"-pa", &1])

{:ok, peer, node} =
  :peer.start(%{name: :"corral_bench_peer_#{System.unique_integer([:positive])}", args: paths})

{:ok, _} = :erpc.call(node, Application, :ensure_all_started, [:corral])

# Counts the stream's bytes and keeps none, so only the window is held.
count = fn opts ->
  Corral.stream!("head", ["-c", "#{bytes}", "/dev/zero"], opts)
  |> Enum.reduce(0, &(byte_size(&1) + &2))
end

# The caller's VM memory, sampled every 5 ms while `fun` runs: {result, peak above start}.
with_peak = fn fun ->
  :erlang.garbage_collect()
  before = :erlang.memory(:total)
  parent = self()

  sampler =
    spawn_link(fn ->
      loop = fn loop, peak ->
        receive do
          :stop -> send(parent, {:peak, peak})
        after
          5 -> loop.(loop, max(peak, :erlang.memory(:total)))
        end
      end

      loop.(loop, before)
    end)

  result = fun.()
  send(sampler, :stop)

  receive do
    {:peak, peak} -> {result, peak - before}
  end
end

median = fn l -> l |> Enum.sort() |> Enum.at(div(length(l), 2)) end
p95 = fn l -> l |> Enum.sort() |> Enum.at(div(length(l) * 95, 100)) end

stream =
  for _ <- 1..runs, reduce: %{local: [], remote: [], peak: 0} do
    acc ->
      {l_us, ^bytes} = :timer.tc(fn -> count.([]) end)
      {{r_us, ^bytes}, peak} = with_peak.(fn -> :timer.tc(fn -> count.(node: node) end) end)

      %{
        acc
        | local: [bytes / l_us | acc.local],
          remote: [bytes / r_us | acc.remote],
          peak: max(acc.peak, peak)
      }
  end

time = fn opts ->
  {us, {"", 0}} = :timer.tc(fn -> Corral.cmd("true", [], opts) end)
  us
end

for _ <- 1..20, do: {time.([]), time.(node: node)}

{local, remote} =
  Enum.reduce(1..spawns, {[], []}, fn _, {l, r} -> {[time.([]) | l], [time.(node: node) | r]} end)

:peer.stop(peer)

l = median.(stream.local)
r = median.(stream.remote)
IO.puts("stream of #{bytes} bytes (stream!/3, counted), #{runs} runs each, median MB/s")
IO.puts("  this node   #{round(l)} MB/s")
IO.puts("  node:       #{round(r)} MB/s  (#{Float.round(r / l, 2)}x)")
IO.puts("  caller's memory peak during the remote streams: #{div(stream.peak, 1024)} KiB above the start")
IO.puts("spawn of `true` with cmd/3, #{spawns} runs each (microseconds)")
IO.puts("  this node   median #{median.(local)}  p95 #{p95.(local)}")
IO.puts("  node:       median #{median.(remote)}  p95 #{p95.(remote)}  (#{Float.round(median.(remote) / median.(local), 2)}x)")

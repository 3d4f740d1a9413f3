# Corral.cmd/3 on this node and on another (`node:`), side by side: the
# throughput of a `head -c` stream and the spawn latency of `true`, with
# the caller's memory peak during the remote stream. The other node is a
# :peer on this machine, so this measures Corral's remote path and Erlang
# distribution over loopback, not a network.
#
# Usage: MIX_ENV=dev mix run bench/cluster.exs [runs] [bytes] [spawns]
# (defaults 3 runs of 10^9 bytes, 300 spawns)

Code.require_file("support/stats.exs", __DIR__)

{runs, bytes, spawns} =
  case Enum.map(System.argv(), &String.to_integer/1) do
    [r, b, s] -> {r, b, s}
    [r, b] -> {r, b, 300}
    [r] -> {r, 1_000_000_000, 300}
    [] -> {3, 1_000_000_000, 300}
  end

unless Node.alive?() do
  {_, 0} = System.cmd("epmd", ["-daemon"])

  {:ok, _} =
    :net_kernel.start([:"corral_bench_#{System.unique_integer([:positive])}", :shortnames])
end

paths = Enum.flat_map(:code.get_path(), &[~c"-pa", &1])

{:ok, peer, node} =
  :peer.start(%{name: :"corral_bench_peer_#{System.unique_integer([:positive])}", args: paths})

{:ok, _} = :erpc.call(node, Application, :ensure_all_started, [:corral])

head = ["-c", "#{bytes}", "/dev/zero"]

# stream!/3, its chunks counted: exact, and only the window is held.
count = fn opts -> Corral.stream!("head", head, opts) |> Enum.reduce(0, &(byte_size(&1) + &2)) end

# cmd/3 into /dev/null: the same for both sides, nothing held.
drain = fn opts ->
  {_, 0} = Corral.cmd("head", head, [into: File.stream!("/dev/null")] ++ opts)
  bytes
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

median = &Bench.Stats.median/1
p95 = &Bench.Stats.percentile(&1, 95)

rate = fn fun, opts ->
  {us, ^bytes} = :timer.tc(fn -> fun.(opts) end)
  bytes / us
end

streams =
  for _ <- 1..runs, reduce: %{stream: {[], []}, cmd: {[], []}, peak: 0} do
    acc ->
      s_local = rate.(count, [])
      {s_remote, peak1} = with_peak.(fn -> rate.(count, node: node) end)
      c_local = rate.(drain, [])
      {c_remote, peak2} = with_peak.(fn -> rate.(drain, node: node) end)
      {sl, sr} = acc.stream
      {cl, cr} = acc.cmd

      %{
        stream: {[s_local | sl], [s_remote | sr]},
        cmd: {[c_local | cl], [c_remote | cr]},
        peak: Enum.max([acc.peak, peak1, peak2])
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

IO.puts("#{bytes} bytes from head -c, #{runs} runs each, median MB/s: this node | node:")

for {label, {l, r}} <- [
      {"stream!/3, counted ", streams.stream},
      {"cmd/3 into /dev/null", streams.cmd}
    ] do
  {l, r} = {median.(l), median.(r)}
  IO.puts("  #{label}  #{round(l)} | #{round(r)}  (#{Float.round(r / l, 2)}x)")
end

IO.puts(
  "  caller's memory peak during the remote runs: #{div(streams.peak, 1024)} KiB above the start"
)

IO.puts("spawn of `true` with cmd/3, #{spawns} runs each (microseconds)")
IO.puts("  this node   median #{median.(local)}  p95 #{p95.(local)}")

IO.puts(
  "  node:       median #{median.(remote)}  p95 #{p95.(remote)}  (#{Float.round(median.(remote) / median.(local), 2)}x)"
)

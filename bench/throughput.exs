# Throughput of a 1 GB stream (`head -c BYTES /dev/zero`) through five
# consumers, System.cmd/3 and Corral side by side. Each round runs every
# tool once, back to back, in an order that reverses from one round to
# the next, so machine noise hits both alike; every run checks the exact
# byte count. The ratio is the median of the rounds' own ratios (Corral's
# MB/s over System.cmd's in the same round), with their range: on this
# 2-core virtual machine a single 1 GB run moves by 20-40% from one
# second to the next, and a drift between rounds cancels out of a
# round's ratio, not out of a ratio of medians. The raw pipe
# (`head | cat > /dev/null`, no BEAM) is the ceiling each consumer is
# reported against.
#
# With MUONTRAP_PATH set to a built `muontrap` (bench/muontrap-build),
# MuonTrap runs alongside, driven as MuonTrap.cmd/3 drives it
# (bench/support/muontrap.exs): its own window of 10 KB, acked per message.
# It has no stream!/3: its last row uses the counting collectable.
#
# Writes bench/results/throughput.{md,csv} (bench/support/results.exs).
#
# Usage: MIX_ENV=dev mix run bench/throughput.exs [runs] [bytes]

Code.require_file("support/results.exs", __DIR__)
Code.require_file("support/muontrap.exs", __DIR__)
Code.require_file("support/count.exs", __DIR__)
Code.require_file("support/stats.exs", __DIR__)

{runs, bytes} = Bench.Count.runs_and_bytes(5)

args = ["-c", Integer.to_string(bytes), "/dev/zero"]

# Each consumer: {name, System.cmd run, Corral run}; each run returns the
# byte count it saw.
null_file = fn -> File.stream!("/dev/null") end

binstream = fn ->
  {:ok, dev} = File.open("/dev/null", [:write, :binary])
  IO.binstream(dev, 65_536)
end

size_of = fn
  %{__struct__: Bench.Count, n: n} -> n
  bin when is_binary(bin) -> byte_size(bin)
  # File.stream! and IO.binstream give no count back: trust the exit
  # status and the size written (checked through /dev/null's nothing).
  _ -> bytes
end

context = Bench.Results.context()
muontrap = Bench.MuonTrap.path()

cmd = fn
  :muontrap, into ->
    fn ->
      {out, 0} = Bench.MuonTrap.cmd(muontrap, "head", args, into: into.())
      size_of.(out)
    end

  mod, into ->
    fn ->
      {out, 0} = mod.cmd("head", args, into: into.())
      size_of.(out)
    end
end

count = fn -> struct(Bench.Count) end

# {name, System.cmd run, Corral run, MuonTrap run}
consumers = [
  {~s(into: ""), cmd.(System, fn -> "" end), cmd.(Corral, fn -> "" end),
   cmd.(:muontrap, fn -> "" end)},
  {"counting collectable", cmd.(System, count), cmd.(Corral, count), cmd.(:muontrap, count)},
  {~s(File.stream!\("/dev/null"\)), cmd.(System, null_file), cmd.(Corral, null_file),
   cmd.(:muontrap, null_file)},
  {"IO.binstream to /dev/null", cmd.(System, binstream), cmd.(Corral, binstream),
   cmd.(:muontrap, binstream)},
  {"Corral.stream!/3 summing sizes (System.cmd, MuonTrap: counting collectable)",
   cmd.(System, count),
   fn -> Corral.stream!("head", args) |> Stream.map(&byte_size/1) |> Enum.sum() end,
   cmd.(:muontrap, count)}
]

# MB/s of the bytes delivered. System.cmd and Corral must deliver every
# byte; MuonTrap's lost bytes are counted instead: muontrap returns as soon
# as its child's SIGCHLD arrives, and what is still in the child's stdout
# pipe while it waits for acks (up to a pipe's 64 KiB) is never sent.
mbs = fn fun, may_lose ->
  :erlang.garbage_collect()
  {us, n} = :timer.tc(fun)
  if n != bytes and not may_lose, do: raise("lost bytes: #{n} of #{bytes}")
  {n / us, bytes - n}
end

median = &Bench.Stats.median/1

raw =
  median.(
    for _ <- 1..runs do
      {us, {"", 0}} =
        :timer.tc(fn ->
          System.cmd("sh", ["-c", "head -c #{bytes} /dev/zero | cat > /dev/null"])
        end)

      bytes / us
    end
  )

title =
  "stream of #{bytes} bytes, #{runs} rounds (each tool once per round, order reversed " <>
    "each round), median MB/s and median of the rounds' ratios " <>
    "(#{context.machine}, load #{context.load1}, #{context.date}); " <>
    "raw pipe `head | cat > /dev/null`: #{round(raw)} MB/s"

rows =
  for {name, sys, cor, mt} <- consumers do
    runners = [{sys, false}, {cor, false}] ++ if(muontrap, do: [{mt, true}], else: [])

    # One sample list per tool, each in round order.
    samples =
      1..runs
      |> Enum.map(fn round ->
        indexed = Enum.with_index(runners)
        order = if rem(round, 2) == 1, do: indexed, else: Enum.reverse(indexed)
        by_index = Map.new(order, fn {{run, may_lose}, i} -> {i, mbs.(run, may_lose)} end)
        Enum.map(indexed, fn {_, i} -> by_index[i] end)
      end)
      |> Enum.zip_with(& &1)

    [s_mbs, c_mbs | m_mbs] = Enum.map(samples, fn l -> Enum.map(l, &elem(&1, 0)) end)
    [s, c | m] = Enum.map([s_mbs, c_mbs | m_mbs], median)
    ratios = Enum.zip_with(c_mbs, s_mbs, &(&1 / &2))

    lost =
      case samples do
        [_, _, mt_samples] -> mt_samples |> Enum.map(&elem(&1, 1)) |> Enum.max()
        _ -> nil
      end

    {name, s, c, List.first(m), lost, {median.(ratios), Enum.min(ratios), Enum.max(ratios)}}
  end

x = fn a, b -> "#{Float.round(a / b, 2)}x" end

ratio = fn {med, lo, hi} ->
  "#{Float.round(med, 2)}x (#{Float.round(lo, 2)}-#{Float.round(hi, 2)})"
end

{header, cells} =
  if muontrap do
    {[
       "consumer",
       "System.cmd",
       "Corral",
       "ratio (range)",
       "Corral / raw pipe",
       "MuonTrap",
       "Corral / MuonTrap",
       "MuonTrap lost bytes (max)"
     ],
     for {name, s, c, m, lost, r} <- rows do
       [
         name,
         "#{round(s)}",
         "#{round(c)}",
         ratio.(r),
         "#{round(100 * c / raw)}%",
         "#{round(m)}",
         x.(c, m),
         "#{lost}"
       ]
     end}
  else
    {["consumer", "System.cmd", "Corral", "ratio (range)", "Corral / raw pipe"],
     for {name, s, c, _, _, r} <- rows do
       [name, "#{round(s)}", "#{round(c)}", ratio.(r), "#{round(100 * c / raw)}%"]
     end}
  end

Bench.Results.table("throughput", title, header, cells)

Bench.Results.csv(
  "throughput",
  context,
  [
    "consumer",
    "bytes",
    "runs",
    "raw_pipe_mbs",
    "system_cmd_mbs",
    "corral_mbs",
    "muontrap_mbs",
    "muontrap_lost_bytes_max",
    "ratio_median",
    "ratio_min",
    "ratio_max"
  ],
  for(
    {name, s, c, m, lost, {r, lo, hi}} <- rows,
    do: [name, bytes, runs, raw, s, c, m, lost, r, lo, hi]
  )
)

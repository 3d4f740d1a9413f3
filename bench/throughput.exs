# Throughput of a 1 GB stream (`head -c BYTES /dev/zero`) through five
# consumers, System.cmd/3 and Corral side by side. Runs alternate so
# machine noise hits both alike; every run checks the exact byte count.
# The raw pipe (`head | cat > /dev/null`, no BEAM) is the ceiling each
# consumer is reported against.
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

{runs, bytes} = Bench.Count.runs_and_bytes(3)

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

median = fn l -> l |> Enum.sort() |> Enum.at(div(length(l), 2)) end

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
  "stream of #{bytes} bytes, #{runs} alternating runs each, median MB/s " <>
    "(#{context.machine}, load #{context.load1}, #{context.date}); " <>
    "raw pipe `head | cat > /dev/null`: #{round(raw)} MB/s"

rows =
  for {name, sys, cor, mt} <- consumers do
    runners = [{sys, false}, {cor, false}] ++ if(muontrap, do: [{mt, true}], else: [])

    samples =
      Enum.reduce(1..runs, Enum.map(runners, fn _ -> [] end), fn _, acc ->
        Enum.zip_with(runners, acc, fn {run, may_lose}, l -> [mbs.(run, may_lose) | l] end)
      end)

    [s, c | m] = Enum.map(samples, fn l -> l |> Enum.map(&elem(&1, 0)) |> median.() end)

    lost =
      case samples do
        [_, _, mt_samples] -> mt_samples |> Enum.map(&elem(&1, 1)) |> Enum.max()
        _ -> nil
      end

    {name, s, c, List.first(m), lost}
  end

x = fn a, b -> "#{Float.round(a / b, 2)}x" end

{header, cells} =
  if muontrap do
    {[
       "consumer",
       "System.cmd",
       "Corral",
       "ratio",
       "Corral / raw pipe",
       "MuonTrap",
       "Corral / MuonTrap",
       "MuonTrap lost bytes (max)"
     ],
     for {name, s, c, m, lost} <- rows do
       [
         name,
         "#{round(s)}",
         "#{round(c)}",
         x.(c, s),
         "#{round(100 * c / raw)}%",
         "#{round(m)}",
         x.(c, m),
         "#{lost}"
       ]
     end}
  else
    {["consumer", "System.cmd", "Corral", "ratio", "Corral / raw pipe"],
     for {name, s, c, _, _} <- rows do
       [name, "#{round(s)}", "#{round(c)}", x.(c, s), "#{round(100 * c / raw)}%"]
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
    "muontrap_lost_bytes_max"
  ],
  for({name, s, c, m, lost} <- rows, do: [name, bytes, runs, raw, s, c, m, lost])
)

# Throughput of a 1 GB stream (`head -c BYTES /dev/zero`) through five
# consumers, System.cmd/3 and Corral side by side. Runs alternate so
# machine noise hits both alike; every run checks the exact byte count.
# The raw pipe (`head | cat > /dev/null`, no BEAM) is the ceiling each
# consumer is reported against.
#
# Usage: MIX_ENV=dev mix run bench/throughput.exs [runs] [bytes]

{runs, bytes} =
  case System.argv() do
    [r, b] -> {String.to_integer(r), String.to_integer(b)}
    [r] -> {String.to_integer(r), 1_000_000_000}
    [] -> {3, 1_000_000_000}
  end

# `mix run` loads consolidated protocols, which know no implementation
# defined in a script: go back to Elixir's own Collectable, which
# dispatches to any.
Code.delete_path(Mix.Project.consolidation_path())
:code.purge(Collectable)
:code.delete(Collectable)

defmodule Bench.Count do
  # A collectable that only counts bytes.
  defstruct n: 0

  defimpl Collectable do
    def into(c) do
      {c,
       fn
         acc, {:cont, data} -> %{acc | n: acc.n + byte_size(data)}
         acc, :done -> acc
         _acc, :halt -> :ok
       end}
    end
  end
end

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

cmd = fn mod, into ->
  fn ->
    {out, 0} = mod.cmd("head", args, into: into.())
    size_of.(out)
  end
end

consumers = [
  {~s(into: ""), cmd.(System, fn -> "" end), cmd.(Corral, fn -> "" end)},
  {"counting collectable", cmd.(System, fn -> struct(Bench.Count) end),
   cmd.(Corral, fn -> struct(Bench.Count) end)},
  {~s(File.stream!\("/dev/null"\)), cmd.(System, null_file), cmd.(Corral, null_file)},
  {"IO.binstream to /dev/null", cmd.(System, binstream), cmd.(Corral, binstream)},
  {"Corral.stream!/3 summing sizes (System.cmd: counting collectable)",
   cmd.(System, fn -> struct(Bench.Count) end),
   fn -> Corral.stream!("head", args) |> Stream.map(&byte_size/1) |> Enum.sum() end}
]

mbs = fn fun ->
  :erlang.garbage_collect()
  {us, n} = :timer.tc(fun)
  if n != bytes, do: raise("lost bytes: #{n} of #{bytes}")
  bytes / us
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

IO.puts(
  "stream of #{bytes} bytes, #{runs} alternating runs each, median MB/s " <>
    "(#{:erlang.system_info(:logical_processors)} CPUs, #{Date.utc_today()}); " <>
    "raw pipe `head | cat > /dev/null`: #{round(raw)} MB/s"
)

IO.puts("| consumer | System.cmd | Corral | ratio | Corral / raw pipe |")
IO.puts("|---|---|---|---|---|")

for {name, sys, cor} <- consumers do
  {s, c} = Enum.reduce(1..runs, {[], []}, fn _, {s, c} -> {[mbs.(sys) | s], [mbs.(cor) | c]} end)

  {s, c} = {median.(s), median.(c)}

  IO.puts(
    "| #{name} | #{round(s)} | #{round(c)} | #{Float.round(c / s, 2)}x | " <>
      "#{round(100 * c / raw)}% |"
  )
end

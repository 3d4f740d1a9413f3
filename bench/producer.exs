# Who is the limit of a fast stream into a consumer that only counts:
# `head -c BYTES /dev/zero` through System.cmd/3 and Corral.cmd/3 with a
# counting collectable, alternating. For each run: MB/s, the share of the
# wall time `head` was on a CPU (its user + system time from
# /usr/bin/time, GNU time), and the VM's CPU for the stream
# (:erlang.statistics(:runtime), all its threads). When `head` is busy
# nearly all the time under both, the producer bounds them, not the VM.
#
# Usage: MIX_ENV=dev mix run bench/producer.exs [runs] [bytes]

Code.require_file("support/count.exs", __DIR__)

{runs, bytes} = Bench.Count.runs_and_bytes(5)

time = "/usr/bin/time"

unless File.exists?(time) do
  IO.puts("producer: skipped (no #{time}; Debian's package `time`)")
  System.halt(0)
end

out = Path.join(System.tmp_dir!(), "corral-producer-#{System.pid()}.time")
args = ["-o", out, "-f", "%e %U %S", "head", "-c", Integer.to_string(bytes), "/dev/zero"]

run = fn mod ->
  :erlang.garbage_collect()
  {cpu0, _} = :erlang.statistics(:runtime)
  {us, {%{n: n}, 0}} = :timer.tc(fn -> mod.cmd(time, args, into: struct(Bench.Count)) end)
  {cpu1, _} = :erlang.statistics(:runtime)
  if n != bytes, do: raise("#{inspect(mod)} delivered #{n} of #{bytes} bytes")
  [wall, user, sys] = out |> File.read!() |> String.split() |> Enum.map(&String.to_float/1)
  %{mbs: n / us, head_busy: (user + sys) / wall, vm_ms_per_gb: (cpu1 - cpu0) * 1.0e9 / bytes}
end

median = fn l -> l |> Enum.sort() |> Enum.at(div(length(l), 2)) end

samples =
  Enum.reduce(1..runs, %{System => [], Corral => []}, fn _, acc ->
    Map.new(acc, fn {mod, l} -> {mod, [run.(mod) | l]} end)
  end)

File.rm(out)

IO.puts(
  "#{bytes} bytes of head through a counting collectable, #{runs} alternating runs, medians\n"
)

IO.puts("| | MB/s | head on a CPU | VM CPU per GB |")
IO.puts("| --- | --- | --- | --- |")

for mod <- [System, Corral] do
  l = samples[mod]
  mbs = l |> Enum.map(& &1.mbs) |> median.() |> round()
  busy = l |> Enum.map(& &1.head_busy) |> median.()
  vm = l |> Enum.map(& &1.vm_ms_per_gb) |> median.() |> round()
  IO.puts("| #{inspect(mod)}.cmd | #{mbs} | #{round(busy * 100)}% | #{vm} ms |")
end

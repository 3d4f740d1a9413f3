# Who is the limit of a fast stream into a consumer that only counts:
# `head -c BYTES /dev/zero` through System.cmd/3 and Corral.cmd/3 with a
# counting collectable, alternating. For each run: MB/s, the share of the
# wall time `head` was on a CPU (its user + system time from
# /usr/bin/time, GNU time), and the VM's CPU for the stream (user +
# system time of all its threads, from /proc/self/stat:
# :erlang.statistics(:runtime) counts user time only, and most of a
# stream's cost is in the kernel). When `head` is busy nearly all the
# time under both, the producer bounds them, not the VM.
#
# Usage: MIX_ENV=dev mix run bench/producer.exs [runs] [bytes]

Code.require_file("support/count.exs", __DIR__)
Code.require_file("support/stats.exs", __DIR__)

{runs, bytes} = Bench.Count.runs_and_bytes(5)

time = "/usr/bin/time"

unless File.exists?(time) do
  IO.puts("producer: skipped (no #{time}; Debian's package `time`)")
  System.halt(0)
end

out = Path.join(System.tmp_dir!(), "corral-producer-#{System.pid()}.time")
args = ["-o", out, "-f", "%e %U %S", "head", "-c", Integer.to_string(bytes), "/dev/zero"]

# The VM's user + system CPU in ms, from /proc/self/stat (utime and
# stime, the 14th and 15th fields, in clock ticks).
ticks_per_s = :os.cmd(~c"getconf CLK_TCK") |> to_string() |> String.trim() |> String.to_integer()

vm_cpu_ms = fn ->
  [_, fields] = "/proc/self/stat" |> File.read!() |> String.split(") ", parts: 2)
  [utime, stime] = fields |> String.split() |> Enum.slice(11, 2) |> Enum.map(&String.to_integer/1)
  (utime + stime) * 1000 / ticks_per_s
end

run = fn mod ->
  :erlang.garbage_collect()
  cpu0 = vm_cpu_ms.()
  {us, {%{n: n}, 0}} = :timer.tc(fn -> mod.cmd(time, args, into: struct(Bench.Count)) end)
  cpu1 = vm_cpu_ms.()
  if n != bytes, do: raise("#{inspect(mod)} delivered #{n} of #{bytes} bytes")
  [wall, user, sys] = out |> File.read!() |> String.split() |> Enum.map(&String.to_float/1)
  %{mbs: n / us, head_busy: (user + sys) / wall, vm_ms_per_gb: (cpu1 - cpu0) * 1.0e9 / bytes}
end

median = &Bench.Stats.median/1

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

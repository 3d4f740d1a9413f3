# `make demo`: a tree killed when its owner dies, and a flood of output
# streamed through the flow-control window.

defmodule Demo do
  def alive?(pid) do
    case File.read("/proc/#{pid}/stat") do
      {:ok, stat} -> not String.contains?(stat, ") Z ")
      _ -> false
    end
  end

  def wait_for_lines(path, n, deadline) do
    lines = if File.exists?(path), do: path |> File.read!() |> String.split(), else: []

    cond do
      length(lines) >= n -> Enum.map(lines, &String.to_integer/1)
      System.monotonic_time(:millisecond) > deadline -> raise "the tree did not start"
      true -> Process.sleep(10) && wait_for_lines(path, n, deadline)
    end
  end
end

IO.puts("""
== 1. The owner dies, the tree goes with it

A process runs Corral.cmd/3 on a shell that starts two background sleeps and
a third in a new session (setsid), as a daemon would. Then the owner is
killed with Process.exit(pid, :kill).
""")

pids_file = Path.join(System.tmp_dir!(), "corral-demo-#{System.os_time()}")

script = """
sleep 1000 & echo $! >> #{pids_file}
sleep 1000 & echo $! >> #{pids_file}
setsid sleep 1000 & echo $! >> #{pids_file}
echo $$ >> #{pids_file}
wait
"""

owner = spawn(fn -> Corral.cmd("sh", ["-c", script]) end)
pids = Demo.wait_for_lines(pids_file, 4, System.monotonic_time(:millisecond) + 5000)

for pid <- pids,
    do:
      IO.puts(
        "  #{pid} alive=#{Demo.alive?(pid)}  " <>
          (File.read!("/proc/#{pid}/cmdline")
           |> String.replace(<<0>>, " ")
           |> String.replace("\n", "; ")
           |> String.slice(0, 60))
      )

t0 = System.monotonic_time(:millisecond)
Process.exit(owner, :kill)

gone_after =
  Enum.find_value(1..200, fn _ ->
    if Enum.any?(pids, &Demo.alive?/1),
      do: Process.sleep(5) && nil,
      else: System.monotonic_time(:millisecond) - t0
  end)

IO.puts(
  "\n  owner killed; every one of the #{length(pids)} processes gone after #{gone_after} ms"
)

for pid <- pids, do: IO.puts("  #{pid} alive=#{Demo.alive?(pid)}")
File.rm(pids_file)

IO.puts("""

== 2. A flood through the window

`head -c 1000000000 /dev/zero` streams 1 GB into the caller. The helper never
has more than one window (1 MiB by default) unacknowledged, so the VM's
memory stays flat while the bytes go by at pipe speed.
""")

sampler =
  spawn(fn ->
    loop = fn loop, max ->
      receive do
        {:done, from} -> send(from, {:max, max})
      after
        5 -> loop.(loop, max(max, :erlang.memory(:total)))
      end
    end

    loop.(loop, :erlang.memory(:total))
  end)

before = :erlang.memory(:total)
devnull = File.stream!("/dev/null")

{us, {_, 0}} =
  :timer.tc(fn -> Corral.cmd("head", ["-c", "1000000000", "/dev/zero"], into: devnull) end)

send(sampler, {:done, self()})
peak = receive do: ({:max, m} -> m)

IO.puts("  1,000,000,000 bytes in #{Float.round(us / 1.0e6, 2)} s = #{round(1.0e9 / us)} MB/s")

IO.puts(
  "  VM memory before #{div(before, 1_048_576)} MiB, peak during the run #{div(peak, 1_048_576)} MiB"
)

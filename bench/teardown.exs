# Teardown latency: from the owner's death (Process.exit(owner, :kill)) until
# the program is dead, for a direct child and for a 3-process tree with a
# setsid grandchild, with Corral's default cgroup and with `no_cgroup: true`.
# "Dead" is the moment /proc/<pid>/stat is gone or says Z: the process ran
# its last instruction (reaping is the helper's business). This script
# polls /proc in a tight loop, so its own resolution is some microseconds.
#
# Usage: MIX_ENV=dev mix run bench/teardown.exs [runs]
#
# MuonTrap's figure is not measured here (no copy of it on this machine);
# the issue's measurement of MuonTrap 2.0-rc.1 on the same machine was a
# 0.56 ms median for the direct child.

runs =
  case System.argv() do
    [r] -> String.to_integer(r)
    [] -> 200
  end

defmodule Bench.Teardown do
  @tmp Path.join(System.tmp_dir!(), "corral-teardown-#{System.pid()}")
  def tmp, do: @tmp

  def dead?(pid) do
    case File.read("/proc/#{pid}/stat") do
      {:ok, stat} -> stat |> String.split(") ") |> List.last() |> String.starts_with?("Z")
      {:error, _} -> true
    end
  end

  def pids(file, n) do
    case File.read(file) do
      {:ok, text} ->
        pids = for l <- String.split(text, "\n", trim: true), do: String.to_integer(l)
        if length(pids) >= n, do: pids, else: pids(file, n)

      _ ->
        pids(file, n)
    end
  end

  # Microseconds from the owner's kill until every pid is dead.
  def once(script, n, opts) do
    file = Path.join(@tmp, "run-#{System.unique_integer([:positive])}")
    owner = spawn(fn -> Corral.run("sh", ["-c", script.(file)], opts) end)
    pids = pids(file, n)
    # Let the shell reach `wait`/`exec` so the tree is at rest.
    Process.sleep(5)
    t0 = System.monotonic_time(:microsecond)
    Process.exit(owner, :kill)
    wait_dead(pids)
    System.monotonic_time(:microsecond) - t0
  end

  defp wait_dead([]), do: :ok

  defp wait_dead([p | rest] = pids) do
    if dead?(p), do: wait_dead(rest), else: wait_dead(pids)
  end

  def stats(us) do
    s = Enum.sort(us)
    at = fn q -> Enum.at(s, min(length(s) - 1, trunc(length(s) * q))) end
    {at.(0.5), at.(0.99), List.last(s)}
  end
end

alias Bench.Teardown
File.mkdir_p!(Teardown.tmp())

direct = fn f -> "echo $$ > #{f}; exec sleep 1000" end

tree = fn f ->
  "sleep 1000 & echo $! >> #{f}; setsid sleep 1000 & echo $! >> #{f}; echo $$ >> #{f}; wait"
end

cases = [
  {"direct child", direct, 1},
  {"3-process tree, setsid grandchild", tree, 3}
]

modes = [{"cgroup", []}, {"no cgroup", [no_cgroup: true]}]

# Warm up: pool, code loading.
for _ <- 1..10, do: Teardown.once(direct, 1, [])

IO.puts(
  "teardown: owner killed until the program is dead, #{runs} runs each " <>
    "(#{:erlang.system_info(:logical_processors)} CPUs, #{Date.utc_today()})"
)

IO.puts("| case | containment | median | p99 | max |")
IO.puts("|---|---|---|---|---|")

for {name, script, n} <- cases, {mode, opts} <- modes do
  us = for _ <- 1..runs, do: Teardown.once(script, n, opts)
  {med, p99, max} = Teardown.stats(us)
  ms = fn v -> :erlang.float_to_binary(v / 1000, decimals: 2) <> " ms" end
  IO.puts("| #{name} | #{mode} | #{ms.(med)} | #{ms.(p99)} | #{ms.(max)} |")
end

File.rm_rf!(Teardown.tmp())

# Throughput of a 1 GB stream, System.cmd/3 and Corral.cmd/3 side by side,
# both with default options (into: ""). Runs alternate so machine noise hits
# both alike. Usage: mix run bench/throughput.exs [runs] [bytes]

{runs, bytes} =
  case System.argv() do
    [r, b] -> {String.to_integer(r), String.to_integer(b)}
    [r] -> {String.to_integer(r), 1_000_000_000}
    [] -> {5, 1_000_000_000}
  end

args = ["-c", Integer.to_string(bytes), "/dev/zero"]

time = fn fun ->
  :erlang.garbage_collect()
  {us, {out, 0}} = :timer.tc(fun)
  ^bytes = byte_size(out)
  bytes / us
end

results =
  for _ <- 1..runs, reduce: %{system: [], corral: []} do
    acc ->
      s = time.(fn -> System.cmd("head", args) end)
      c = time.(fn -> Corral.cmd("head", args) end)
      %{acc | system: [s | acc.system], corral: [c | acc.corral]}
  end

median = fn l -> l |> Enum.sort() |> Enum.at(div(length(l), 2)) end
s = median.(results.system)
c = median.(results.corral)

IO.puts("stream of #{bytes} bytes, #{runs} runs each, median MB/s")
IO.puts("  System.cmd  #{round(s)} MB/s")
IO.puts("  Corral.cmd  #{round(c)} MB/s")
IO.puts("  ratio       #{Float.round(c / s, 2)}x")

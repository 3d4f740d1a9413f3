# Bench.Count: a collectable that only counts the bytes it is given, and
# the `[runs] [bytes]` arguments of the 1 GB stream benchmarks that use it
# (bench/throughput.exs, bench/producer.exs).
#
# `mix run` loads consolidated protocols, which know no implementation
# defined in a script: go back to Elixir's own Collectable, which
# dispatches to any.
Code.delete_path(Mix.Project.consolidation_path())
:code.purge(Collectable)
:code.delete(Collectable)

defmodule Bench.Count do
  defstruct n: 0

  @doc "`{runs, bytes}` from the script's arguments; 10^9 bytes by default."
  def runs_and_bytes(default_runs) do
    case System.argv() do
      [r, b] -> {String.to_integer(r), String.to_integer(b)}
      [r] -> {String.to_integer(r), 1_000_000_000}
      [] -> {default_runs, 1_000_000_000}
    end
  end

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

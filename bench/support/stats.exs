# Bench.Stats: the order statistics the bench scripts report, in one place.
#
# Loaded with Code.require_file("support/stats.exs", __DIR__).

defmodule Bench.Stats do
  @doc """
  The middle value of `values`; for an even count, the mean of the two
  middle ones (so two samples give their mean, not the larger).
  """
  def median(values) do
    sorted = Enum.sort(values)
    n = length(sorted)

    if rem(n, 2) == 1,
      do: Enum.at(sorted, div(n, 2)),
      else: (Enum.at(sorted, div(n, 2) - 1) + Enum.at(sorted, div(n, 2))) / 2
  end

  @doc """
  The `p`th percentile of `values` by nearest rank: the smallest value with
  at least `p`% of them at or below it.
  """
  def percentile(values, p) do
    sorted = Enum.sort(values)
    Enum.at(sorted, max(ceil(length(sorted) * p / 100) - 1, 0))
  end
end

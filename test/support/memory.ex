defmodule Corral.Test.Memory do
  @moduledoc false
  # The peak of a memory measure while a function runs, sampled by a
  # linked process every few milliseconds (the tests that bound how much
  # a run may hold: the window, stream!, distribution).

  @doc """
  Runs `fun` while sampling `measure` (by default this VM's
  `:erlang.memory(:total)`) every `every_ms`; returns `{fun's result,
  the largest sample}`, at least the value before `fun` started.
  """
  @spec peak_while((() -> term()), pos_integer(), (() -> non_neg_integer())) ::
          {term(), non_neg_integer()}
  def peak_while(fun, every_ms, measure \\ fn -> :erlang.memory(:total) end) do
    parent = self()
    first = measure.()
    sampler = spawn_link(fn -> sample(measure, every_ms, first) end)
    result = fun.()
    send(sampler, {:stop, parent})

    receive do
      {:peak, ^sampler, peak} -> {result, peak}
    after
      5000 -> raise "the memory sampler did not answer"
    end
  end

  defp sample(measure, every_ms, peak) do
    receive do
      {:stop, to} -> send(to, {:peak, self(), max(peak, measure.())})
    after
      every_ms -> sample(measure, every_ms, max(peak, measure.()))
    end
  end
end

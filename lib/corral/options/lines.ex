defmodule Corral.Options.Lines do
  @moduledoc false
  # The `:lines` option of System.cmd/3 (Elixir 1.15): wraps the `:into`
  # collectable so that it gets each line of output, without its "\n",
  # and the unfinished last line at the end. Its result is the wrapped
  # collectable's, so `Corral.cmd/3` returns what System.cmd/3 would.

  @enforce_keys [:into]
  defstruct [:into]

  @type t :: %__MODULE__{into: Collectable.t()}

  defimpl Collectable do
    def into(%Corral.Options.Lines{into: into}) do
      {acc, fun} = Collectable.into(into)

      collector = fn
        {acc, partial}, {:cont, data} -> split(acc, partial <> data, fun)
        {acc, ""}, :done -> fun.(acc, :done)
        {acc, partial}, :done -> fun.(fun.(acc, {:cont, partial}), :done)
        {acc, _partial}, :halt -> fun.(acc, :halt)
      end

      {{acc, ""}, collector}
    end

    # Each complete line goes out; the rest waits, as a copy so that it does
    # not keep the whole chunk alive.
    defp split(acc, data, fun) do
      case :binary.split(data, "\n") do
        [rest] -> {acc, :binary.copy(rest)}
        [line, rest] -> split(fun.(acc, {:cont, line}), rest, fun)
      end
    end
  end
end

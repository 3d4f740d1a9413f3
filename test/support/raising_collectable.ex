defmodule Corral.Test.RaisingCollectable do
  @moduledoc false
  # A Collectable that raises on the first data it gets; records :halt.

  defstruct []

  defimpl Collectable do
    def into(_) do
      {nil,
       fn
         _, {:cont, _} -> raise "collector failed"
         _, :done -> nil
         _, :halt -> :ok
       end}
    end
  end
end

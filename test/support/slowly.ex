defmodule Corral.Test.Slowly do
  @moduledoc false
  # A consumer slower than a fast child at first (5 ms for each of the
  # first 20 chunks), so the child's pipe fills past a frame and the helper
  # leaves its output in a data pipe (docs/protocol.md, "Direct output").

  @doc "`chunks` as they are, the first 20 each after a 5 ms pause."
  def slowly(chunks) do
    Stream.transform(chunks, 0, fn chunk, n ->
      if n < 20, do: Process.sleep(5)
      {[chunk], n + 1}
    end)
  end
end

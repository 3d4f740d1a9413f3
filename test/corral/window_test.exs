defmodule Corral.WindowTest do
  # Measures the whole VM's memory, so it runs alone: not async.
  use ExUnit.Case, async: false

  alias Corral.Test.Counter
  alias Corral.Test.Memory

  @moduletag :slow

  @tag timeout: 120_000
  test "2 GB to a slow consumer grows VM memory by no more than a few MB" do
    bytes = 2_000_000_000
    :erlang.garbage_collect()
    before = :erlang.memory(:total)

    # Sleeps 2 ms after every 4 MB: slower than the child, so the window
    # fills and the child blocks, and the sleeps add about a second.
    into = %Counter{pause_every: 4_000_000, pause_ms: 2}

    {result, peak} =
      Memory.peak_while(
        fn -> Corral.cmd("head", ["-c", Integer.to_string(bytes), "/dev/zero"], into: into) end,
        2
      )

    assert result == {bytes, 0}
    growth = peak - before
    assert growth < 20_000_000, "VM memory grew by #{growth} bytes"
  end
end

defmodule Corral.WindowTest do
  # Measures the whole VM's memory, so it runs alone: not async.
  use ExUnit.Case, async: false

  alias Corral.Test.Counter

  @moduletag :slow

  # Samples :erlang.memory(:total) every few milliseconds until told to stop,
  # then replies with the largest value seen.
  defp start_sampler do
    parent = self()

    spawn_link(fn ->
      send(parent, {:sampler, self(), :ready})
      sample(:erlang.memory(:total))
    end)
    |> tap(fn pid -> assert_receive {:sampler, ^pid, :ready} end)
  end

  defp sample(max) do
    receive do
      {:stop, from} -> send(from, {:max_memory, max})
    after
      2 -> sample(max(max, :erlang.memory(:total)))
    end
  end

  defp stop_sampler(pid) do
    send(pid, {:stop, self()})
    assert_receive {:max_memory, max}, 5000
    max
  end

  @tag timeout: 120_000
  test "2 GB to a slow consumer grows VM memory by no more than a few MB" do
    bytes = 2_000_000_000
    :erlang.garbage_collect()
    before = :erlang.memory(:total)
    sampler = start_sampler()

    # Sleeps 2 ms after every 4 MB: slower than the child, so the window
    # fills and the child blocks, and the sleeps add about a second.
    into = %Counter{pause_every: 4_000_000, pause_ms: 2}

    assert Corral.cmd("head", ["-c", Integer.to_string(bytes), "/dev/zero"], into: into) ==
             {bytes, 0}

    growth = stop_sampler(sampler) - before
    assert growth < 20_000_000, "VM memory grew by #{growth} bytes"
  end
end

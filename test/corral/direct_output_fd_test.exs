defmodule Corral.DirectOutputFdTest do
  # The VM's descriptors of helpers' data pipes (docs/protocol.md, "Direct
  # output") are closed with their runs. Not async: it looks at every pipe
  # the VM holds.
  use ExUnit.Case, async: false

  import Corral.Test.Slowly

  # Pipes the VM holds one end of and no other process holds at all: what
  # a data pipe the VM forgot to close becomes once its helper dropped it.
  # A port's pipe is shared with its helper, the VM's own pipes hold both
  # ends here.
  defp lonely_pipes do
    vm = pipes(:os.getpid() |> List.to_string())

    others =
      for dir <- File.ls!("/proc"),
          dir =~ ~r/\A\d+\z/,
          dir != List.to_string(:os.getpid()),
          ino <- pipes(dir),
          into: MapSet.new(),
          do: ino

    vm
    |> Enum.frequencies()
    |> Enum.filter(fn {ino, n} -> n == 1 and ino not in others end)
    |> Enum.map(&elem(&1, 0))
    |> MapSet.new()
  end

  defp pipes(pid) do
    case File.ls("/proc/#{pid}/fd") do
      {:ok, fds} ->
        for fd <- fds,
            {:ok, link} <- [File.read_link("/proc/#{pid}/fd/#{fd}")],
            [_, ino] <- [Regex.run(~r/\Apipe:\[(\d+)\]\z/, link)],
            do: ino

      {:error, _} ->
        []
    end
  end

  defp head(bytes), do: Corral.stream!("head", ["-c", Integer.to_string(bytes), "/dev/zero"])

  test "no data pipe stays open in the VM after runs, ended or halted" do
    before = lonely_pipes()

    for _ <- 1..5 do
      assert head(20_000_000) |> slowly() |> Enum.reduce(0, &(byte_size(&1) + &2)) ==
               20_000_000
    end

    # Halted early: the run is stopped, and its pipe closed with it.
    assert [_] = head(20_000_000) |> slowly() |> Enum.take(1)

    assert MapSet.difference(lonely_pipes(), before) == MapSet.new()
  end
end

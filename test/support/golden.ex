defmodule Corral.Test.Golden do
  @moduledoc false
  # Reads the protocol's golden vectors, test/fixtures/proto/*.hex: hex
  # digits, whitespace ignored, `#` starts a comment to the end of the line.

  @dir Path.expand("../fixtures/proto", __DIR__)

  def dir, do: @dir

  def names do
    @dir |> File.ls!() |> Enum.filter(&String.ends_with?(&1, ".hex")) |> Enum.sort()
  end

  def read!(name) do
    @dir
    |> Path.join(name)
    |> File.read!()
    |> String.split("\n")
    |> Enum.map_join(fn line -> line |> String.split("#", parts: 2) |> hd() end)
    |> String.replace(~r/\s+/, "")
    |> Base.decode16!(case: :mixed)
  end
end

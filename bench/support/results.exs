# One owner for what the bench scripts print and keep: a markdown table on
# stdout, the same table in bench/results/<name>.md, and its numbers in
# bench/results/<name>.csv (for bench/plot.exs). Every CSV row ends with the
# run's date, machine and 1-minute load average at the start of the run.
#
# Loaded by the scripts with Code.require_file("support/results.exs", __DIR__).
# BENCH_RESULTS sets another directory (bench/results by default).

defmodule Bench.Results do
  @default_dir Path.expand("../results", __DIR__)

  def dir, do: System.get_env("BENCH_RESULTS") || @default_dir

  @doc "The machine, as the plots' titles name it: CPU model, CPU count, kernel."
  def machine do
    model =
      case File.read("/proc/cpuinfo") do
        {:ok, text} ->
          case Regex.run(~r/^model name\s*:\s*(.+)$/m, text) do
            [_, m] -> String.trim(m)
            _ -> "unknown CPU"
          end

        _ ->
          "unknown CPU"
      end

    "#{model}, #{:erlang.system_info(:logical_processors)} CPUs, Linux #{kernel_release()}"
  end

  defp kernel_release do
    case File.read("/proc/sys/kernel/osrelease") do
      {:ok, r} -> String.trim(r)
      _ -> "?"
    end
  end

  def load1 do
    case File.read("/proc/loadavg") do
      {:ok, text} -> text |> String.split() |> hd()
      _ -> ""
    end
  end

  @doc """
  A run's context, taken once at its start: %{date, machine, load1}.
  """
  def context do
    %{date: Date.utc_today() |> Date.to_iso8601(), machine: machine(), load1: load1()}
  end

  @doc """
  Prints `title` and the markdown table (`header`, `rows` of cells already
  formatted) and writes bench/results/<name>.md with the same text.
  """
  def table(name, title, header, rows) do
    text =
      Enum.join(
        [
          title,
          "",
          row(header),
          row(Enum.map(header, fn _ -> "---" end))
          | Enum.map(rows, &row/1)
        ],
        "\n"
      ) <> "\n"

    IO.write(text)
    write(name <> ".md", text)
  end

  defp row(cells), do: "| " <> Enum.join(cells, " | ") <> " |"

  @doc """
  Writes bench/results/<name>.csv: `columns` (strings) and `rows` (lists of
  numbers, strings or nil for "not measured"), each row followed by the
  context's date, machine and load1.
  """
  def csv(name, context, columns, rows) do
    lines =
      [columns ++ ["date", "machine", "load1"]] ++
        Enum.map(rows, fn r -> r ++ [context.date, context.machine, context.load1] end)

    write(
      name <> ".csv",
      Enum.map_join(lines, "", &(Enum.map_join(&1, ",", fn c -> cell(c) end) <> "\n"))
    )
  end

  defp cell(nil), do: ""
  defp cell(f) when is_float(f), do: :erlang.float_to_binary(f, decimals: 3)
  defp cell(i) when is_integer(i), do: Integer.to_string(i)

  defp cell(s) when is_binary(s) do
    if String.contains?(s, [",", "\"", "\n"]),
      do: "\"" <> String.replace(s, "\"", "\"\"") <> "\"",
      else: s
  end

  defp write(file, text) do
    File.mkdir_p!(dir())
    File.write!(Path.join(dir(), file), text)
  end

  @doc "Parses a CSV written by csv/4 into a list of maps (column => string)."
  def read_csv(path) do
    [header | rows] =
      path |> File.read!() |> String.split("\n", trim: true) |> Enum.map(&parse_line/1)

    Enum.map(rows, fn r -> Map.new(Enum.zip(header, r)) end)
  end

  defp parse_line(line), do: parse_line(line, "", [])

  defp parse_line("", cur, acc), do: Enum.reverse([cur | acc])
  defp parse_line("," <> rest, cur, acc), do: parse_line(rest, "", [cur | acc])
  defp parse_line("\"" <> rest, "", acc), do: quoted(rest, "", acc)

  defp parse_line(<<c::utf8, rest::binary>>, cur, acc),
    do: parse_line(rest, cur <> <<c::utf8>>, acc)

  defp quoted("\"\"" <> rest, cur, acc), do: quoted(rest, cur <> "\"", acc)
  defp quoted("\"" <> rest, cur, acc), do: parse_line(rest, cur, acc)
  defp quoted(<<c::utf8, rest::binary>>, cur, acc), do: quoted(rest, cur <> <<c::utf8>>, acc)
end

defmodule Bench.Results.Readme do
  @moduledoc false
  # The README's measurement tables are the bench scripts' own: between
  # `<!-- bench/results/NAME.md -->` and `<!-- end bench/results/NAME.md -->`
  # the README holds a copy of that file, refreshed by bench/plot.exs.

  def splice(readme, results_dir) do
    text = File.read!(readme)

    new =
      Regex.replace(
        ~r/(<!-- bench\/results\/(\w+)\.md -->\n)(.*?)(<!-- end bench\/results\/\2\.md -->)/s,
        text,
        fn whole, open, name, _old, close ->
          case File.read(Path.join(results_dir, name <> ".md")) do
            {:ok, table} -> open <> "\n" <> table <> "\n" <> close
            _ -> whole
          end
        end
      )

    if new != text, do: File.write!(readme, new)
    new != text
  end
end

# Grouped bar charts as hand-written SVG (no dependencies), for bench/plot.exs:
# the CSVs of throughput.exs, spawn.exs and teardown.exs (written by
# bench/support/results.exs) become bench/results/{throughput,spawn,teardown}.svg.

Code.require_file("results.exs", __DIR__)

defmodule Bench.Plot do
  @width 900
  @height 500
  @left 80
  @right 200
  @top 78
  @bottom 110
  @colors ["#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#edc948"]

  @doc "Writes every SVG whose CSV is in `dir`; returns the files written."
  def main(dir) do
    for {name, chart} <- [throughput: &throughput/1, spawn: &spawn_chart/1, teardown: &teardown/1],
        csv = Path.join(dir, "#{name}.csv"),
        File.exists?(csv) do
      svg = Path.join(dir, "#{name}.svg")
      File.write!(svg, csv |> Bench.Results.read_csv() |> chart.() |> bar_chart())
      svg
    end
  end

  defp num(""), do: nil
  defp num(nil), do: nil

  defp num(s) do
    case Float.parse(s) do
      {f, _} -> f
      :error -> nil
    end
  end

  defp subtitle([row | _]),
    do: "#{row["date"]} · #{row["machine"]} · load average #{row["load1"]}"

  # Series whose every value is missing (MuonTrap skipped) are left out.
  defp present(series, rows) do
    Enum.filter(series, fn {_, col} -> Enum.any?(rows, &num(&1[col])) end)
  end

  def throughput(rows) do
    series =
      present(
        [
          {"System.cmd", "system_cmd_mbs"},
          {"Corral", "corral_mbs"},
          {"MuonTrap", "muontrap_mbs"}
        ],
        rows
      )

    raw = num(hd(rows)["raw_pipe_mbs"])

    %{
      title:
        "Throughput of #{bytes(hd(rows)["bytes"])} per consumer, median of #{hd(rows)["runs"]} runs (higher is better)",
      subtitle: subtitle(rows),
      y_label: "MB/s",
      groups: Enum.map(rows, & &1["consumer"]),
      series: Enum.map(series, &elem(&1, 0)),
      values:
        for(r <- rows, {s, col} <- series, into: %{}, do: {{r["consumer"], s}, num(r[col])}),
      ref_line: raw && {raw, "raw pipe `head | cat > /dev/null`: #{round(raw)} MB/s"},
      notes: []
    }
  end

  defp bytes(s) do
    case Integer.parse(s || "") do
      {n, _} when n >= 1_000_000_000 -> "#{n / 1_000_000_000} GB" |> String.replace(".0 ", " ")
      {n, _} when n >= 1_000_000 -> "#{div(n, 1_000_000)} MB"
      {n, _} -> "#{n} bytes"
      :error -> "a stream"
    end
  end

  def spawn_chart(rows) do
    rows = Enum.reject(rows, &(&1["callers"] == "0"))

    series =
      present(
        [
          {"System.cmd", "system_cmd_us_per_call"},
          {"Corral.cmd", "corral_us_per_call"},
          {"MuonTrap", "muontrap_us_per_call"}
        ],
        rows
      )

    group = fn r -> if r["callers"] == "1", do: "1 caller", else: "#{r["callers"]} callers" end

    %{
      title:
        "Spawning `true`: µs per call, #{hd(rows)["runs"]} calls at each concurrency (lower is better)",
      subtitle: subtitle(rows),
      y_label: "µs per call (wall time / calls)",
      groups: Enum.map(rows, group),
      series: Enum.map(series, &elem(&1, 0)),
      values: for(r <- rows, {s, col} <- series, into: %{}, do: {{group.(r), s}, num(r[col])}),
      ref_line: nil,
      notes: []
    }
  end

  def teardown(rows) do
    label = fn r -> "#{r["tool"]} (#{r["containment"]})" end
    series = rows |> Enum.map(label) |> Enum.uniq()
    groups = rows |> Enum.map(& &1["case"]) |> Enum.uniq()

    notes =
      for r <- rows, r["survivors"] not in [nil, "", "0"] do
        {{r["case"], label.(r)},
         "#{label.(r)}, #{r["case"]}: measured until the direct child is dead; " <>
           "#{r["survivors"]} of #{r["processes"]} processes were left running"}
      end

    %{
      title: "Teardown: owner killed until the program is dead (lower is better)",
      subtitle: subtitle(rows),
      y_label: "ms (bar: median, whisker: p99)",
      groups: groups,
      series: series,
      values: for(r <- rows, into: %{}, do: {{r["case"], label.(r)}, num(r["median_ms"])}),
      whiskers: for(r <- rows, into: %{}, do: {{r["case"], label.(r)}, num(r["p99_ms"])}),
      ref_line: nil,
      notes: notes
    }
  end

  @doc "A grouped bar chart: one bar per {group, series} value that is not nil."
  def bar_chart(c) do
    whiskers = Map.get(c, :whiskers, %{})
    notes = c.notes

    note_mark =
      notes |> Enum.with_index(1) |> Map.new(fn {{k, _}, i} -> {k, String.duplicate("*", i)} end)

    top_value =
      [c.values, whiskers]
      |> Enum.flat_map(&Map.values/1)
      |> Enum.concat(if c.ref_line, do: [elem(c.ref_line, 0)], else: [])
      |> Enum.reject(&is_nil/1)
      |> Enum.max(fn -> 1.0 end)

    {step, y_max} = axis(top_value)
    pw = @width - @left - @right
    ph = @height - @top - @bottom
    y = fn v -> @top + ph - v / y_max * ph end
    ng = max(length(c.groups), 1)
    ns = max(length(c.series), 1)
    gw = pw / ng
    bw = gw * 0.8 / ns

    ticks =
      for i <- 0..round(y_max / step) do
        v = i * step
        yy = f(y.(v))

        [
          ~s(<line x1="#{@left}" y1="#{yy}" x2="#{@left + pw}" y2="#{yy}" stroke="#ddd"/>\n),
          ~s(<text x="#{@left - 6}" y="#{yy}" text-anchor="end" dominant-baseline="middle">#{fmt(v)}</text>\n)
        ]
      end

    bars =
      for {g, gi} <- Enum.with_index(c.groups),
          {s, si} <- Enum.with_index(c.series),
          v = c.values[{g, s}],
          v != nil do
        x = @left + gi * gw + gw * 0.1 + si * bw
        color = Enum.at(@colors, rem(si, length(@colors)))
        w = whiskers[{g, s}]
        label_y = min(y.(v), if(w, do: y.(w), else: y.(v))) - 4

        [
          ~s(<rect class="bar" x="#{f(x)}" y="#{f(y.(v))}" width="#{f(bw * 0.92)}" height="#{f(y.(0) - y.(v))}" fill="#{color}"><title>#{esc("#{g} · #{s}: #{fmt(v)}")}</title></rect>\n),
          if(w,
            do: [
              ~s(<line x1="#{f(x + bw * 0.46)}" y1="#{f(y.(v))}" x2="#{f(x + bw * 0.46)}" y2="#{f(y.(w))}" stroke="#333"/>\n),
              ~s(<line x1="#{f(x + bw * 0.3)}" y1="#{f(y.(w))}" x2="#{f(x + bw * 0.62)}" y2="#{f(y.(w))}" stroke="#333"/>\n)
            ],
            else: []
          ),
          ~s(<text x="#{f(x + bw * 0.46)}" y="#{f(label_y)}" text-anchor="middle" font-size="10">#{esc(fmt(v) <> Map.get(note_mark, {g, s}, ""))}</text>\n)
        ]
      end

    group_labels =
      for {g, gi} <- Enum.with_index(c.groups) do
        cx = f(@left + gi * gw + gw / 2)

        lines =
          for {line, li} <- Enum.with_index(wrap(g, max(8, trunc(gw / 7)))) do
            ~s(<tspan x="#{cx}" dy="#{if li == 0, do: 0, else: 14}">#{esc(line)}</tspan>)
          end

        ~s(<text x="#{cx}" y="#{@top + ph + 18}" text-anchor="middle">#{lines}</text>\n)
      end

    legend =
      for {s, si} <- Enum.with_index(c.series) do
        ly = @top + 10 + si * 20
        color = Enum.at(@colors, rem(si, length(@colors)))

        [
          ~s(<rect x="#{@left + pw + 20}" y="#{ly}" width="12" height="12" fill="#{color}"/>\n),
          ~s(<text x="#{@left + pw + 38}" y="#{ly + 10}">#{esc(s)}</text>\n)
        ]
      end

    ref =
      case c.ref_line do
        {v, text} ->
          yy = f(y.(v))

          [
            ~s(<line x1="#{@left}" y1="#{yy}" x2="#{@left + pw}" y2="#{yy}" stroke="#c00" stroke-dasharray="6 4"/>\n),
            ~s(<text x="#{@left + pw - 4}" y="#{f(y.(v) - 5)}" text-anchor="end" fill="#c00" font-size="11">#{esc(text)}</text>\n)
          ]

        nil ->
          []
      end

    footnotes =
      for {{_, text}, i} <- Enum.with_index(notes, 1) do
        ~s(<text x="#{@left}" y="#{@height - 30 + (i - 1) * 14}" font-size="11">#{esc(String.duplicate("*", i) <> " " <> text)}</text>\n)
      end

    IO.iodata_to_binary([
      ~s(<?xml version="1.0" encoding="UTF-8"?>\n),
      ~s(<svg xmlns="http://www.w3.org/2000/svg" width="#{@width}" height="#{@height}" viewBox="0 0 #{@width} #{@height}" font-family="sans-serif" font-size="12">\n),
      ~s(<rect width="#{@width}" height="#{@height}" fill="white"/>\n),
      ~s(<text x="#{div(@width, 2)}" y="24" text-anchor="middle" font-size="15" font-weight="bold">#{esc(c.title)}</text>\n),
      ~s(<text x="#{div(@width, 2)}" y="44" text-anchor="middle" font-size="12" fill="#555">#{esc(c.subtitle)}</text>\n),
      ticks,
      ~s|<text transform="translate(18 #{f(@top + ph / 2)}) rotate(-90)" text-anchor="middle">#{esc(c.y_label)}</text>\n|,
      bars,
      ref,
      ~s(<line x1="#{@left}" y1="#{f(y.(0))}" x2="#{@left + pw}" y2="#{f(y.(0))}" stroke="#333"/>\n),
      ~s(<line x1="#{@left}" y1="#{@top}" x2="#{@left}" y2="#{f(y.(0))}" stroke="#333"/>\n),
      group_labels,
      legend,
      footnotes,
      "</svg>\n"
    ])
  end

  # A tick step of 1, 2 or 5 times a power of ten giving at most 8 ticks,
  # and the axis top: the first tick at or above the highest value.
  defp axis(top) do
    top = if top <= 0, do: 1.0, else: top * 1.0
    mag = :math.pow(10, :math.floor(:math.log10(top / 8)))
    step = Enum.find([1, 2, 5, 10], &(top / (&1 * mag) <= 8)) * mag
    {step, Float.ceil(top / step) * step}
  end

  defp wrap(text, width) do
    text
    |> String.split(" ")
    |> Enum.reduce([], fn
      word, [] ->
        [word]

      word, [line | rest] ->
        if String.length(line) + 1 + String.length(word) <= width,
          do: [line <> " " <> word | rest],
          else: [word, line | rest]
    end)
    |> Enum.reverse()
  end

  defp f(x), do: :erlang.float_to_binary(x * 1.0, decimals: 1)

  defp fmt(v) when v >= 100, do: Integer.to_string(round(v))
  defp fmt(v) when v == trunc(v), do: Integer.to_string(trunc(v))
  defp fmt(v), do: :erlang.float_to_binary(v * 1.0, decimals: 2)

  defp esc(s) do
    s
    |> String.replace("&", "&amp;")
    |> String.replace("<", "&lt;")
    |> String.replace(">", "&gt;")
    |> String.replace("\"", "&quot;")
  end
end

defmodule Bench.PlotTest do
  # bench/plot.exs: the CSVs the bench scripts write become well-formed SVG
  # bar charts, one bar per measured value, a missing tool left out.
  use ExUnit.Case, async: false

  Code.require_file("../../bench/support/plot.exs", __DIR__)

  @context %{date: "2026-12-03", machine: "Test CPU, 2 CPUs, Linux 6.1", load1: "0.10"}

  setup do
    dir = Path.join(System.tmp_dir!(), "corral-plot-test-#{System.unique_integer([:positive])}")
    System.put_env("BENCH_RESULTS", dir)

    on_exit(fn ->
      System.delete_env("BENCH_RESULTS")
      File.rm_rf!(dir)
    end)

    %{dir: dir}
  end

  # A well-formedness check of what bar_chart/1 writes (xmerl is not in
  # every Erlang install): one prolog, one <svg> root, tags that nest and
  # close, attributes quoted, `&` and `<` escaped in text and attributes.
  # Returns the file's text and the texts between tags, unescaped.
  defp svg!(path) do
    text = File.read!(path)
    assert ~s(<?xml version="1.0" encoding="UTF-8"?>\n) <> body = text
    tokens = Regex.scan(~r/<[^>]*>|[^<]+/, body) |> Enum.map(&hd/1)
    assert Enum.join(tokens) == body

    {stack, texts, roots} =
      Enum.reduce(tokens, {[], [], 0}, fn tok, {stack, texts, roots} ->
        cond do
          String.starts_with?(tok, "</") ->
            [name | rest] = stack
            assert tok == "</#{name}>"
            {rest, texts, roots}

          String.starts_with?(tok, "<") ->
            assert tok =~ ~r/^<[a-zA-Z][\w:-]*(\s+[\w:-]+="[^"<]*")*\s*\/?>$/
            assert_escaped(tok)
            [_, name] = Regex.run(~r/^<([\w:-]+)/, tok)
            roots = if stack == [], do: roots + 1, else: roots

            if String.ends_with?(tok, "/>"),
              do: {stack, texts, roots},
              else: {[name | stack], texts, roots}

          String.trim(tok) == "" ->
            {stack, texts, roots}

          true ->
            assert stack != [], "text outside the root: #{inspect(tok)}"
            assert_escaped(tok)
            {stack, [unescape(tok) | texts], roots}
        end
      end)

    assert stack == []
    assert roots == 1
    assert body =~ ~r/^<svg /
    {text, Enum.reverse(texts)}
  end

  defp assert_escaped(s), do: refute(s =~ ~r/&(?!(amp|lt|gt|quot|apos);)/)

  defp unescape(s) do
    s
    |> String.replace("&lt;", "<")
    |> String.replace("&gt;", ">")
    |> String.replace("&quot;", "\"")
    |> String.replace("&amp;", "&")
  end

  defp bars(text), do: Regex.scan(~r/<rect class="bar"/, text)

  test "throughput and spawn without MuonTrap: two series, one bar per row and series", %{
    dir: dir
  } do
    Bench.Results.csv(
      "throughput",
      @context,
      ~w(consumer bytes runs raw_pipe_mbs system_cmd_mbs corral_mbs muontrap_mbs),
      [
        [~s(into: ""), 1_000_000_000, 3, 4000.0, 450.5, 495.25, nil],
        ["counting collectable, & <friends>", 1_000_000_000, 3, 4000.0, 1941.0, 1137.0, nil],
        [~s{File.stream!("/dev/null")}, 1_000_000_000, 3, 4000.0, 1218.0, 1124.0, nil]
      ]
    )

    Bench.Results.csv(
      "spawn",
      @context,
      ~w(callers runs system_cmd_us_per_call corral_us_per_call muontrap_us_per_call),
      [[0, 500, 1100, 1390, nil], [1, 500, 1054.0, 1518.0, nil], [16, 500, 730.0, 984.0, nil]]
    )

    files = Bench.Plot.main(dir)

    assert Enum.sort(files) ==
             Enum.sort([Path.join(dir, "throughput.svg"), Path.join(dir, "spawn.svg")])

    {text, t} = svg!(Path.join(dir, "throughput.svg"))
    assert length(bars(text)) == 3 * 2
    refute text =~ "MuonTrap"
    # Group labels are wrapped into lines; the CSV's quoting came through.
    assert Enum.any?(t, &String.contains?(&1, "<friends>"))
    assert Enum.any?(t, &String.contains?(&1, ~s{File.stream!("/dev/null")}))
    assert Enum.any?(t, &String.contains?(&1, "2026-12-03 · Test CPU, 2 CPUs, Linux 6.1"))
    assert Enum.any?(t, &String.contains?(&1, "1 GB"))

    {text, t} = svg!(Path.join(dir, "spawn.svg"))
    # The callers-0 row (one alternating call) is not a concurrency level.
    assert length(bars(text)) == 2 * 2
    assert "1 caller" in t and "16 callers" in t
  end

  test "teardown with MuonTrap: three series, p99 whiskers, survivors in a footnote", %{dir: dir} do
    Bench.Results.csv(
      "teardown",
      @context,
      ~w(case tool containment runs dead median_ms p99_ms max_ms survivors processes),
      [
        ["direct child", "Corral", "cgroup", 200, "direct child", 3.4, 8.0, 15.0, 0, 200],
        ["direct child", "Corral", "no cgroup", 200, "direct child", 3.0, 7.0, 9.0, 0, 200],
        ["direct child", "MuonTrap", "no cgroup", 200, "direct child", 0.56, 1.2, 3.0, 0, 200],
        [
          "3-process tree, setsid grandchild",
          "Corral",
          "cgroup",
          200,
          "whole tree",
          3.2,
          9.0,
          14.0,
          0,
          600
        ],
        [
          "3-process tree, setsid grandchild",
          "Corral",
          "no cgroup",
          200,
          "whole tree",
          3.1,
          9.5,
          12.0,
          0,
          600
        ],
        [
          "3-process tree, setsid grandchild",
          "MuonTrap",
          "no cgroup",
          20,
          "direct child only",
          0.6,
          1.0,
          2.0,
          40,
          60
        ]
      ]
    )

    assert Bench.Plot.main(dir) == [Path.join(dir, "teardown.svg")]
    {text, t} = svg!(Path.join(dir, "teardown.svg"))
    assert length(bars(text)) == 6
    assert "MuonTrap (no cgroup)" in t
    assert Enum.any?(t, &String.contains?(&1, "40 of 60 processes were left running"))
  end

  test "the README's copy of a results table is replaced between its markers", %{dir: dir} do
    File.mkdir_p!(dir)
    File.write!(Path.join(dir, "spawn.md"), "new title\n\n| a |\n| --- |\n| 1 |\n")
    readme = Path.join(dir, "README.md")

    before =
      "# x\n<!-- bench/results/spawn.md -->\nold\n<!-- end bench/results/spawn.md -->\n" <>
        "<!-- bench/results/teardown.md -->\nkept\n<!-- end bench/results/teardown.md -->\n"

    File.write!(readme, before)
    assert Bench.Results.Readme.splice(readme, dir)

    assert File.read!(readme) ==
             "# x\n<!-- bench/results/spawn.md -->\n\nnew title\n\n| a |\n| --- |\n| 1 |\n\n" <>
               "<!-- end bench/results/spawn.md -->\n" <>
               "<!-- bench/results/teardown.md -->\nkept\n<!-- end bench/results/teardown.md -->\n"

    refute Bench.Results.Readme.splice(readme, dir)
  end
end

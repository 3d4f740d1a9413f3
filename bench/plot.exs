# Turns bench/results/{throughput,spawn,teardown}.csv into grouped bar charts,
# bench/results/<name>.svg, written by hand (bench/support/plot.exs, no
# dependencies); the title names each run's date, machine and load.
#
# With the default directory it also refreshes the README's copies of
# bench/results/{throughput,spawn,teardown}.md (between their
# `<!-- bench/results/NAME.md -->` markers in "Measurements").
#
# Usage: mix run bench/plot.exs [results_dir]   (default bench/results)

Code.require_file("support/plot.exs", __DIR__)

dir =
  case System.argv() do
    [d] -> d
    [] -> Bench.Results.dir()
  end

case Bench.Plot.main(dir) do
  [] -> raise "no throughput.csv, spawn.csv or teardown.csv in #{dir}"
  files -> Enum.each(files, &IO.puts("wrote #{&1}"))
end

readme = Path.expand("../README.md", __DIR__)

if System.argv() == [] and Bench.Results.Readme.splice(readme, dir),
  do: IO.puts("refreshed the tables in #{readme}")

# Fuzzing for `make stress`: the helper's protocol, Corral.cmd/3's options
# and the `corral` command line, each with a fixed seed (CORRAL_FUZZ_SEED)
# so a failure can be replayed.
#
#   mix run bench/stress/fuzz.exs
#
# Rows of the shared stress table; the header unless CORRAL_STRESS_NO_HEADER
# is set (when another script printed it). Exits non-zero on any crash,
# panic, hang, survivor or leftover cgroup.
#
# - protocol: native/corral/tests/fuzz.rs with CORRAL_FUZZ_CASES helpers fed
#   random and mutated frame streams (fresh and pooled), and 200 times as
#   many byte strings into corral_proto's decoders.
# - cmd/3 options: random keyword lists (wrong types, huge and negative
#   numbers, values that begin with "-", empty strings, NUL bytes, unknown
#   keys). Each must raise ArgumentError or run and return; a helper exit
#   (125 usage, 101 panic), any other exception or a hang is a crash.
# - corral CLI: random flags and values before `-- true`; exit 101 or a
#   panic message is a crash, and so is a hang.

seed = String.to_integer(System.get_env("CORRAL_FUZZ_SEED", "1592639711"))
proto_cases = String.to_integer(System.get_env("CORRAL_FUZZ_CASES", "400"))
option_cases = String.to_integer(System.get_env("CORRAL_FUZZ_OPTION_CASES", "1500"))
cli_cases = String.to_integer(System.get_env("CORRAL_FUZZ_CLI_CASES", "600"))
:rand.seed(:exsss, {seed, seed, seed})

defmodule Fuzz do
  @deadline 30_000

  def row(name, runs, survivors, cgroups, lost, crashes) do
    IO.puts("| #{name} | #{runs} | #{survivors} | #{cgroups} | #{lost} | #{crashes} |")
    survivors + cgroups + crashes == 0
  end

  def pick(list), do: Enum.random(list)

  # Values of every shape an option might be given.
  def value do
    pick([
      fn -> pick([0, 1, -1, 2, 100, 4096, 65_536, 1_000_000]) end,
      fn -> pick([10 ** 22, 10 ** 30, 2 ** 64, 2 ** 64 - 1, 2 ** 63, 2 ** 32, 2 ** 31 - 1]) end,
      fn -> pick([-(2 ** 70), :rand.uniform(1_000_000_000), -:rand.uniform(1000)]) end,
      fn -> pick(["", "-x", "-sh", "--help", "-", "--", "=", "a=b", "-1", "max", "0-1"]) end,
      fn -> pick(["a\0b", "/tmp", "..", "/", "nobody", "-nobody", "root", "0", "65534"]) end,
      fn -> pick([nil, true, false, :infinity, :max, :yes]) end,
      fn -> pick([[], [1], ["-x"], [{"-x", "1"}], %{}, {1, 2}, {:max, 1000}, 1.5]) end,
      fn -> pick([[{"A", nil}], [{"", "x"}], [{"K", "v\0"}], %{"-k" => "-v"}]) end
    ]).()
  end

  @keys [
    :cd,
    :env,
    :arg0,
    :stderr_to_stdout,
    :parallelism,
    :timeout,
    :cpu_time,
    :memory,
    :max_processes,
    :idle_timeout,
    :uid,
    :gid,
    :groups,
    :delay_to_sigkill,
    :stdio_window,
    :capture_stderr_only,
    :input,
    :no_cgroup,
    :cgroup,
    :cgroup_path,
    :cgroup_base,
    :no_such_option
  ]

  @cgroup_keys [:memory_max, :memory_high, :memory_swap_max, :pids_max, :cpu_max, :cpu_weight]

  # cgroup paths are one name of this run under the VM's own cgroup (so
  # leftovers can be found by name and nothing else is touched); raw writes
  # are not fuzzed: they may move processes (issue 11, item 3).
  def option(tag) do
    case pick(@keys) do
      :cgroup -> {:cgroup, Map.new(1..2, fn _ -> {pick(@cgroup_keys), value()} end)}
      key when key in [:cgroup_path, :cgroup_base] -> {key, pick([tag, "", "..", "a/../b", 7])}
      key -> {key, value()}
    end
  end

  def options(tag), do: Enum.map(1..:rand.uniform(4), fn _ -> option(tag) end)

  # One cmd/3 run in a process of its own: :ok, or what went wrong.
  def run_cmd(opts) do
    task =
      Task.async(fn ->
        try do
          Corral.cmd("sh", ["-c", "echo ok"], opts)
          :ok
        rescue
          ArgumentError -> :ok
          e in Corral.Error -> classify(e.reason)
          e -> {:crash, e}
        catch
          kind, reason -> {:crash, {kind, reason}}
        end
      end)

    case Task.yield(task, @deadline) || Task.shutdown(task, :brutal_kill) do
      {:ok, result} -> result
      _ -> {:crash, :hang}
    end
  end

  # A helper that exits without a report (usage error, panic) is a crash;
  # the child failing to start (a uid that does not exist, a cgroup the
  # layout cannot make) is an answer.
  def classify({:helper_exit, _} = reason), do: {:crash, reason}
  def classify({:helper_closed, _} = reason), do: {:crash, reason}
  def classify({:protocol, _} = reason), do: {:crash, reason}
  def classify(_reason), do: :ok

  @flags ~w(--cd --env --unset --arg0 --uid --gid --group --stdin --stdout --stderr
            --stdio-window --grace --timeout -t --cpu-time --memory-limit -m --cpu-limit -c
            --max-processes --idle-timeout --capture-env --capture-path --cgroup-path
            --cgroup-base --cgroup-set --cgroup-controller -q --json --no-cgroup --bogus)

  def cli_value do
    case value() do
      v when is_binary(v) -> String.replace(v, "\0", "")
      v when is_integer(v) -> Integer.to_string(v)
      v -> pick(["#{inspect(v)}", "50%", "1.5G", "10ms", "1e9", "pids_max=0", "memory_max=-1"])
    end
  end

  def cli_args(tag) do
    Enum.flat_map(1..:rand.uniform(4), fn _ ->
      flag = pick(@flags)

      value = if flag in ["--cgroup-path", "--cgroup-base"], do: tag, else: cli_value()

      if :rand.uniform(3) == 1, do: ["#{flag}=#{value}"], else: [flag, value]
    end)
  end

  def run_cli(helper, args) do
    task =
      Task.async(fn -> System.cmd(helper, args ++ ["--", "true"], stderr_to_stdout: true) end)

    case Task.yield(task, @deadline) || Task.shutdown(task, :brutal_kill) do
      {:ok, {out, status}} ->
        if status == 101 or out =~ "panicked", do: {:crash, {status, out}}, else: :ok

      _ ->
        {:crash, :hang}
    end
  end

  # The directory `tag` (and what a :cgroup_base made in it) left in any
  # hierarchy.
  def leftovers(tag) do
    for h <- File.ls!("/sys/fs/cgroup"),
        dir = Path.join(["/sys/fs/cgroup", h, tag]),
        File.dir?(dir),
        do: dir
  end
end

unless System.get_env("CORRAL_STRESS_NO_HEADER") do
  IO.puts("| case | runs | survivors | leftover cgroups | lost bytes | crashes |")
  IO.puts("|---|---|---|---|---|---|")
end

# The protocol fuzzer is the Rust harness, built by `make build`'s cargo.
{out, status} =
  System.cmd(
    "cargo",
    ~w(test --release -p corral --test fuzz -- --nocapture --test-threads 2),
    env: [{"CORRAL_FUZZ_CASES", Integer.to_string(proto_cases)}, {"CORRAL_FUZZ_SEED", "#{seed}"}],
    stderr_to_stdout: true
  )

field = fn line, name ->
  case Regex.run(~r/\b#{name}=(\d+)/, line || "") do
    [_, n] -> String.to_integer(n)
    _ -> 1
  end
end

proto = Enum.find(String.split(out, "\n"), &String.starts_with?(&1, "fuzz: protocol"))
decode = Enum.find(String.split(out, "\n"), &String.starts_with?(&1, "fuzz: decode"))
if status != 0, do: IO.puts(:stderr, out)

ok_proto =
  Fuzz.row(
    "protocol fuzz: random frame streams into helpers (fresh, pooled; peak RSS #{field.(proto, "helper_peak_rss_kib")} KiB)",
    field.(proto, "cases"),
    field.(proto, "survivors"),
    field.(proto, "leftover_cgroups"),
    0,
    field.(proto, "panics") + field.(proto, "hangs") + if(status == 0, do: 0, else: 1)
  )

ok_decode =
  Fuzz.row(
    "protocol fuzz: corral_proto decoders",
    field.(decode, "cases"),
    0,
    0,
    0,
    field.(decode, "crashes")
  )

# Under the VM's own cgroup in every hierarchy: its deepest own path (the
# others are "/" or above it here), as the cgroup tests do.
own =
  File.read!("/proc/self/cgroup")
  |> String.split("\n", trim: true)
  |> Enum.map(&(&1 |> String.split(":", parts: 3) |> List.last()))
  |> Enum.max_by(&byte_size/1)

tag =
  Path.join(own, "corral-fuzz-#{System.unique_integer([:positive])}") |> String.trim_leading("/")

option_crashes =
  for _ <- 1..option_cases,
      opts = Fuzz.options(tag),
      result = Fuzz.run_cmd(opts),
      result != :ok do
    IO.puts(:stderr, "cmd/3 with #{inspect(opts, limit: 20)}: #{inspect(result, limit: 20)}")
  end

ok_options =
  Fuzz.row(
    "option fuzz: Corral.cmd/3",
    option_cases,
    0,
    length(Fuzz.leftovers(tag)),
    0,
    length(option_crashes)
  )

helper = Path.expand("target/release/corral")

cli_crashes =
  for _ <- 1..cli_cases,
      args = Fuzz.cli_args(tag),
      result = Fuzz.run_cli(helper, args),
      result != :ok do
    IO.puts(:stderr, "corral #{Enum.join(args, " ")}: #{inspect(result, limit: 20)}")
  end

left = Fuzz.leftovers(tag)
ok_cli = Fuzz.row("option fuzz: corral CLI", cli_cases, 0, length(left), 0, length(cli_crashes))
Enum.each(left, &File.rmdir/1)

unless ok_proto and ok_decode and ok_options and ok_cli, do: System.halt(1)

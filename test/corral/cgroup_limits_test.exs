defmodule Corral.Cgroup.LimitsTest do
  # One owner of the cgroup limit keys: the :cgroup option and
  # Corral.Cgroup accept and refuse exactly the same values, each in its
  # API's shape, and the helper gets them in one text form.
  use ExUnit.Case, async: true

  alias Corral.Cgroup
  alias Corral.Cgroup.Limits
  alias Corral.Helper
  alias Corral.Options

  @values [
    memory_max: 0,
    memory_max: :max,
    memory_max: -1,
    memory_max: "64M",
    memory_oom_group: true,
    memory_oom_group: 1,
    cpu_weight: 1,
    cpu_weight: 10_000,
    cpu_weight: 0,
    cpu_weight: 10_001,
    cpu_max: :max,
    cpu_max: {:max, 1000},
    cpu_max: {1000, 1_000_000},
    cpu_max: {999, 100_000},
    cpu_max: {50_000, 1_000_001},
    cpu_max: 50_000,
    cpuset_cpus: "0-1,3",
    cpuset_cpus: "0-",
    cpuset_cpus: "",
    pids_max: 20,
    pids_max: :infinity,
    io_weight: :max
  ]

  test "the :cgroup option and Corral.Cgroup share one policy" do
    for {key, value} <- @values do
      option =
        try do
          Options.new!(cgroup: [{key, value}])
          :ok
        rescue
          e in ArgumentError -> {:raised, e.message}
        end

      case Cgroup.limit_pairs([{key, value}]) do
        # A run's own rule on top: its tree needs a first process and the
        # memory to load it (Corral.Cgroup may set 0 on a cgroup that exists).
        {:ok, [{_name, _text}]} when {key, value} in [memory_max: 0, pids_max: 0] ->
          assert {:raised, message} = option, "#{key}: #{inspect(value)}"
          assert message =~ "could not start"

        {:ok, [{name, text}]} ->
          assert option == :ok, "#{key}: #{inspect(value)}"
          assert name == Atom.to_string(key)
          # The same text reaches the helper through the argv.
          assert "--cgroup-set=#{name}=#{text}" in Helper.argv(
                   "/bin/true",
                   [],
                   Options.new!(cgroup: [{key, value}])
                 )

        {:error, {:invalid, message}} ->
          assert {:raised, _} = option, "#{key}: #{inspect(value)}"
          assert message =~ inspect(key)
          assert message =~ Limits.expected(key)
      end
    end
  end

  test "every key has a kind, and the keys are the documented thirteen" do
    assert length(Limits.keys()) == 13

    assert Enum.all?(
             Limits.keys(),
             &(Limits.kind(&1) in [:size, :tasks, :flag, :weight, :list, :cpu_max])
           )

    assert Options.cgroup_keys() == Limits.keys()
  end
end

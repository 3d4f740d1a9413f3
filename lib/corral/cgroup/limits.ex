defmodule Corral.Cgroup.Limits do
  @moduledoc false
  # The cgroup limit keys (MuonTrap 2's: the kernel's v2 file names with
  # `_`), the one owner of their order, kinds, validation and text form for
  # Corral.Options (the :cgroup option), Corral.Cgroup (create/2, set/2,
  # get/2) and Corral.Helper (--cgroup-set). One validation policy: a value
  # passes only if it is of its key's kind and in the kernel's range; each
  # caller reports a failure in its API's shape (ArgumentError for option
  # lists, {:error, {:invalid, message}} for Corral.Cgroup).

  # {key, kind}, in the order the helper applies them (corral_cgroup's
  # Limits, which the helper reads from --cgroup-set).
  @kinds [
    cpuset_cpus: :list,
    cpuset_mems: :list,
    memory_max: :size,
    memory_high: :size,
    memory_swap_max: :size,
    memory_oom_group: :flag,
    memory_min: :size,
    memory_low: :size,
    cpu_max: :cpu_max,
    cpu_weight: :weight,
    cpu_idle: :flag,
    pids_max: :tasks,
    io_weight: :weight
  ]

  @keys Keyword.keys(@kinds)

  @max_u64 0xFFFF_FFFF_FFFF_FFFF
  @pid_max_limit 4_194_304
  @max_cpu_quota 17_592_186_044_415

  @type key :: atom()

  @typedoc "Why a limit list was refused; see check/1."
  @type problem ::
          {:unknown_key, atom(), term()}
          | {:bad_value, key(), term()}
          | {:bad_entry, term()}
          | {:not_limits, term()}

  @doc "The keys, in the helper's order."
  @spec keys() :: [key()]
  def keys, do: @keys

  @doc "The kind of `key`'s value: `:size`, `:tasks`, `:flag`, `:weight`, `:list` or `:cpu_max`."
  @spec kind(key()) :: :size | :tasks | :flag | :weight | :list | :cpu_max
  def kind(key), do: Keyword.fetch!(@kinds, key)

  @doc """
  Checks a map or keyword list of limits: `{:ok, pairs}` in the order
  given, or the first problem.
  """
  @spec check(term()) :: {:ok, [{key(), term()}]} | {:error, problem()}
  def check(limits) when is_map(limits), do: check(Map.to_list(limits))

  def check(limits) when is_list(limits) do
    Enum.reduce_while(limits, {:ok, []}, fn
      {key, value}, {:ok, acc} when key in @keys ->
        if valid?(kind(key), value),
          do: {:cont, {:ok, [{key, value} | acc]}},
          else: {:halt, {:error, {:bad_value, key, value}}}

      {key, value}, _acc when is_atom(key) ->
        {:halt, {:error, {:unknown_key, key, value}}}

      other, _acc ->
        {:halt, {:error, {:bad_entry, other}}}
    end)
    |> case do
      {:ok, pairs} -> {:ok, Enum.reverse(pairs)}
      error -> error
    end
  end

  def check(other), do: {:error, {:not_limits, other}}

  # The kernel's bounds (cgroup-v2.rst): weights 1 to 10000; cpu.max quota
  # at least 1 ms, period from 1 ms to 1 s; cpuset lists of numbers and
  # ranges.
  # Sizes are u64 in the kernel files; pids.max takes at most PID_MAX_LIMIT
  # (kernel/cgroup/pids.c), corral_cgroup::PIDS_MAX_LIMIT.
  defp valid?(kind, :max) when kind in [:size, :tasks], do: true
  defp valid?(:size, n), do: n in 0..@max_u64
  defp valid?(:tasks, n), do: n in 0..@pid_max_limit
  defp valid?(:flag, bool), do: is_boolean(bool)
  defp valid?(:weight, w), do: w in 1..10_000
  defp valid?(:cpu_max, :max), do: true
  defp valid?(:cpu_max, {:max, period}), do: period in 1000..1_000_000

  # max_cfs_runtime (kernel/sched/core.c): corral_cgroup::CpuMax::MAX_QUOTA_US.
  defp valid?(:cpu_max, {quota, period}),
    do: quota in 1000..@max_cpu_quota and period in 1000..1_000_000

  defp valid?(:cpu_max, _), do: false

  defp valid?(:list, list),
    do: is_binary(list) and list =~ ~r/\A\d+(-\d+)?(,\d+(-\d+)?)*\z/

  @doc "What `key` takes, for error messages."
  @spec expected(key()) :: String.t()
  def expected(key) do
    case kind(key) do
      :size ->
        "an integer from 0 to #{@max_u64} or :max"

      :tasks ->
        "an integer from 0 to #{@pid_max_limit} (PID_MAX_LIMIT) or :max"

      :flag ->
        "a boolean"

      :weight ->
        "an integer from 1 to 10000"

      :list ->
        "a list like \"0-3,6\""

      :cpu_max ->
        "{quota_us | :max, period_us} (quota 1000 to #{@max_cpu_quota}, " <>
          "period 1000 to 1_000_000) or :max"
    end
  end

  @doc """
  A checked value in the v2 file syntax that corral_cgroup's
  `Limits::set_str` (the helper's `--cgroup-set`) reads.
  """
  @spec text(term()) :: String.t()
  def text(:max), do: "max"
  def text(true), do: "1"
  def text(false), do: "0"
  def text({quota, period}), do: "#{text(quota)} #{period}"
  def text(n) when is_integer(n), do: Integer.to_string(n)
  def text(list) when is_binary(list), do: list
end

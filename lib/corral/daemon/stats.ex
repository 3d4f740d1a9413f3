defmodule Corral.Daemon.Stats do
  @moduledoc false
  # MuonTrap 2's shapes of Corral.Daemon.statistics/1's :cgroup map and of
  # cgroup_config/1, read from a daemon's group through Corral.Cgroup.

  alias Corral.Cgroup
  alias Corral.Cgroup.Limits

  # {file, how to parse it}: MuonTrap 2's statistics files (cgroup v2 names).
  @files [
    {"memory.current", :integer},
    {"memory.peak", :integer},
    {"memory.events", :flat},
    {"memory.swap.current", :integer},
    {"memory.pressure", :pressure},
    {"cpu.stat", :flat},
    {"cpu.pressure", :pressure},
    {"pids.current", :integer},
    {"pids.peak", :integer},
    {"pids.events", :flat},
    {"io.pressure", :pressure},
    {"cgroup.stat", :flat}
  ]

  # The same figures as Corral.Cgroup.stats/1 reads them on any layout,
  # under the v2 file and field they come from: {file, field or nil, key}.
  @figures [
    {"memory.current", nil, :memory_current},
    {"memory.peak", nil, :memory_peak},
    {"memory.events", "oom_kill", :oom_kills},
    {"cpu.stat", "usage_usec", :cpu_usage_usec},
    {"cpu.stat", "user_usec", :user_usec},
    {"cpu.stat", "system_usec", :system_usec},
    {"pids.current", nil, :pids_current},
    {"pids.peak", nil, :pids_peak},
    {"pids.events", "max", :pids_limit_hits}
  ]

  @doc """
  The :cgroup map of statistics/1: each v2 file the group has, parsed;
  then what `figures` (Corral.Cgroup.stats/1) found that the files did not
  give, which on v1 is all of it, under the v2 names. A v1 file that
  shares a v2 name (v1's cpu.stat) is read, but only fields of the v2
  file count.
  """
  @spec files(Cgroup.t(), map()) :: %{optional(String.t()) => term()}
  def files(group, figures) do
    read =
      for {file, parser} <- @files,
          {:ok, text} <- [Cgroup.read(group, file)],
          {:ok, value} <- [parse(parser, text)],
          into: %{},
          do: {file, value}

    Enum.reduce(@figures, read, fn {file, field, key}, acc ->
      case Map.fetch!(figures, key) do
        nil -> acc
        n when field == nil -> Map.put_new(acc, file, n)
        n -> Map.update(acc, file, %{field => n}, &put_field(&1, field, n))
      end
    end)
  end

  defp put_field(map, field, n) when is_map(map), do: Map.put_new(map, field, n)
  defp put_field(other, _field, _n), do: other

  @doc """
  cgroup_config/1: the :cgroup option's keys, read back with
  Corral.Cgroup.get/2, each one the group has and that the :cgroup option
  takes back as it is.
  """
  @spec config(Cgroup.t()) :: map()
  def config(group) do
    for key <- Limits.keys(),
        {:ok, value} <- [Cgroup.get(group, key)],
        settable?(key, value),
        into: %{},
        do: {key, value}
  end

  # An empty cpuset ("" until something is written, and then inherited
  # from the parent) is no setting to pass back.
  defp settable?(key, value) do
    match?({:ok, _}, Limits.check([{key, value}])) and value != ""
  end

  defp parse(:integer, text) do
    case Integer.parse(String.trim(text)) do
      {n, ""} -> {:ok, n}
      _ -> :error
    end
  end

  defp parse(:flat, text) do
    map =
      for line <- String.split(text, "\n", trim: true),
          [key, value] <- [String.split(line, " ", parts: 2)],
          {n, ""} <- [Integer.parse(String.trim(value))],
          into: %{},
          do: {key, n}

    if map == %{}, do: :error, else: {:ok, map}
  end

  # "some avg10=0.00 avg60=0.00 avg300=0.00 total=0"
  defp parse(:pressure, text) do
    map =
      for line <- String.split(text, "\n", trim: true),
          [kind | fields] = String.split(line, " ", trim: true),
          into: %{},
          do: {kind, Map.new(fields, &pressure_field/1)}

    if map == %{}, do: :error, else: {:ok, map}
  end

  defp pressure_field(field) do
    [key, value] = String.split(field, "=", parts: 2)

    case Integer.parse(value) do
      {n, ""} -> {key, n}
      _ -> {key, String.to_float(value)}
    end
  end
end

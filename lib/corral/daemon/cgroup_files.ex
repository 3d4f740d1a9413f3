defmodule Corral.Daemon.CgroupFiles do
  @moduledoc false
  # The files of a daemon's cgroup directories (the S frame's paths, one per
  # hierarchy): statistics, cgget/cgset, and the cleanup for a helper that
  # died without ending its tree. Runs in the caller, so the daemon never
  # waits on sysfs.

  # A file in the group's own directory: "memory.max", "cgroup.procs".
  @file_name ~r/\A[A-Za-z0-9_]+(\.[A-Za-z0-9_]+)+\z/

  # cpuacct.stat counts in USER_HZ, which is 100 on every Linux ABI.
  @usec_per_tick 10_000

  @stat_keys [
    :cpu_usage_usec,
    :user_usec,
    :system_usec,
    :memory_current,
    :memory_peak,
    :oom_kills,
    :pids_current,
    :pids_peak,
    :pids_limit_hits
  ]

  @type stats :: %{atom() => non_neg_integer() | nil}

  @doc "Whether `name` can only name a file in a group's own directory."
  @spec valid_file?(term()) :: boolean()
  def valid_file?(name), do: is_binary(name) and name =~ @file_name

  @doc """
  Reads `file` from the first of `dirs` that has it, trailing whitespace
  trimmed. `{:error, :enoent}` when none has it (or there is no cgroup).
  """
  @spec read([String.t()], String.t()) :: {:ok, String.t()} | {:error, File.posix()}
  def read(dirs, file) do
    Enum.reduce_while(dirs, {:error, :enoent}, fn dir, acc ->
      case File.read(Path.join(dir, file)) do
        {:ok, text} -> {:halt, {:ok, String.trim_trailing(text)}}
        {:error, :enoent} -> {:cont, acc}
        {:error, _} = error -> {:halt, error}
      end
    end)
  end

  @doc "Writes `value` to `file` in the first of `dirs` that has it."
  @spec write([String.t()], String.t(), String.t()) :: :ok | {:error, File.posix()}
  def write(dirs, file, value) do
    case Enum.find(dirs, &File.exists?(Path.join(&1, file))) do
      nil -> {:error, :enoent}
      dir -> File.write(Path.join(dir, file), value)
    end
  end

  @doc """
  The group's usage so far, with MuonTrap 2's keys: the v2 files where
  they exist (`cpu.stat`, `memory.current`, `memory.peak`,
  `memory.events`, `pids.*`), else the v1 ones (`cpuacct.*`,
  `memory.usage_in_bytes`, ...). `nil` for what no directory has.
  """
  @spec stats([String.t()]) :: stats()
  def stats(dirs) do
    empty = Map.new(@stat_keys, &{&1, nil})

    Enum.reduce(dirs, empty, fn dir, acc ->
      Map.merge(acc, dir_stats(dir), fn _key, old, new -> old || new end)
    end)
  end

  defp dir_stats(dir) do
    cpu = keyed(dir, "cpu.stat")
    acct = keyed(dir, "cpuacct.stat")

    %{
      cpu_usage_usec: cpu["usage_usec"] || div_or_nil(int(dir, "cpuacct.usage"), 1000),
      user_usec: cpu["user_usec"] || mul_or_nil(acct["user"], @usec_per_tick),
      system_usec: cpu["system_usec"] || mul_or_nil(acct["system"], @usec_per_tick),
      memory_current: int(dir, "memory.current") || int(dir, "memory.usage_in_bytes"),
      memory_peak: int(dir, "memory.peak") || int(dir, "memory.max_usage_in_bytes"),
      oom_kills:
        keyed(dir, "memory.events")["oom_kill"] || keyed(dir, "memory.oom_control")["oom_kill"],
      pids_current: int(dir, "pids.current"),
      pids_peak: int(dir, "pids.peak"),
      pids_limit_hits: keyed(dir, "pids.events")["max"]
    }
  end

  defp int(dir, file) do
    with {:ok, text} <- File.read(Path.join(dir, file)),
         {n, _} <- Integer.parse(String.trim(text)) do
      n
    else
      _ -> nil
    end
  end

  # "key value" lines, as in cpu.stat and memory.events.
  defp keyed(dir, file) do
    case File.read(Path.join(dir, file)) do
      {:ok, text} ->
        for line <- String.split(text, "\n", trim: true),
            [key, value] <- [String.split(line, " ", parts: 2)],
            {n, _} <- [Integer.parse(value)],
            into: %{},
            do: {key, n}

      {:error, _} ->
        %{}
    end
  end

  defp div_or_nil(nil, _), do: nil
  defp div_or_nil(n, d), do: div(n, d)
  defp mul_or_nil(nil, _), do: nil
  defp mul_or_nil(n, m), do: n * m

  @doc """
  Kills what is left in `dirs` and removes them, for a helper that died
  without doing it: `Corral.Cgroup.cleanup/1` (the NIF), or, when the NIF
  is not loaded, `cgroup.kill` (else a SIGKILL to each pid in
  `cgroup.procs`) and `rmdir` from here.
  """
  @spec cleanup([String.t()]) :: :ok | {:error, term()}
  def cleanup([]), do: :ok

  def cleanup(dirs) do
    case Corral.Cgroup.cleanup(dirs) do
      {:error, :unavailable} -> kill_and_remove(dirs)
      other -> other
    end
  end

  @doc "cleanup/1 without the NIF: kills what is in `dirs`, then removes them."
  @spec kill_and_remove([String.t()]) :: :ok | {:error, File.posix()}
  def kill_and_remove(dirs) do
    deadline = System.monotonic_time(:millisecond) + 2000
    Enum.each(dirs, &kill_all(&1, deadline))

    dirs
    |> Enum.map(&File.rmdir/1)
    |> Enum.find(:ok, &(&1 not in [:ok, {:error, :enoent}]))
  end

  defp kill_all(dir, deadline) do
    case procs(dir) do
      [] ->
        :ok

      pids ->
        if File.write(Path.join(dir, "cgroup.kill"), "1") != :ok do
          System.cmd("kill", ["-KILL" | Enum.map(pids, &Integer.to_string/1)],
            stderr_to_stdout: true
          )
        end

        if System.monotonic_time(:millisecond) < deadline do
          Process.sleep(10)
          kill_all(dir, deadline)
        end
    end
  end

  defp procs(dir) do
    case File.read(Path.join(dir, "cgroup.procs")) do
      {:ok, text} -> text |> String.split("\n", trim: true) |> Enum.map(&String.to_integer/1)
      {:error, _} -> []
    end
  end
end

defmodule Corral.Test.Cgroups do
  @moduledoc false
  # The VM's own cgroups, read from /proc/self/mountinfo and /proc/self/cgroup,
  # and the corral-* directories under them, for tests that assert nothing
  # is left behind.

  @doc """
  Every mounted hierarchy with the VM's own cgroup in it:
  `%{mount: "/sys/fs/cgroup/pids", controllers: ["pids"], own: "/", dir: ...}`.
  v2 has `controllers: :unified`.
  """
  def hierarchies do
    own = own_paths()

    for line <- File.read!("/proc/self/mountinfo") |> String.split("\n", trim: true),
        [pre, post] = String.split(line, " - ", parts: 2),
        [fstype, _source, super_opts] = String.split(post, " "),
        fstype in ["cgroup", "cgroup2"],
        mount = pre |> String.split(" ") |> Enum.at(4),
        key = hierarchy_key(fstype, super_opts),
        path = Map.get(own, key),
        path != nil do
      %{
        mount: mount,
        controllers: if(key == :unified, do: :unified, else: key),
        own: path,
        dir: Path.join(mount, path)
      }
    end
  end

  # /proc/self/cgroup: "4:memory:/path", "0::/path". v1 lines are keyed by
  # their sorted controller list, as mountinfo's super options give them.
  defp own_paths do
    for line <- File.read!("/proc/self/cgroup") |> String.split("\n", trim: true), into: %{} do
      [_id, controllers, path] = String.split(line, ":", parts: 3)

      key =
        if controllers == "", do: :unified, else: controllers |> String.split(",") |> Enum.sort()

      {key, path}
    end
  end

  defp hierarchy_key("cgroup2", _), do: :unified

  defp hierarchy_key("cgroup", super_opts) do
    super_opts
    |> String.split(",")
    |> Enum.filter(&(&1 in v1_controllers() or String.starts_with?(&1, "name=")))
    |> Enum.sort()
  end

  defp v1_controllers do
    for line <- File.read!("/proc/cgroups") |> String.split("\n", trim: true),
        not String.starts_with?(line, "#"),
        do: line |> String.split() |> hd()
  end

  @doc """
  The host's layout as the helper names it: `:cgroup_v2` (only the unified
  tree), `:cgroup_v1` (only v1 controllers), `:hybrid` (v1 controllers and a
  v2 tree without them), or `:none`. Independent of what one run used: the
  helper reports the hierarchies it joined, which without limits may be the
  v2 tree alone.
  """
  def layout do
    {unified, legacy} = Enum.split_with(hierarchies(), &(&1.controllers == :unified))

    legacy =
      Enum.reject(legacy, fn h -> Enum.all?(h.controllers, &String.starts_with?(&1, "name=")) end)

    case {unified, legacy} do
      {[_ | _], [_ | _]} -> :hybrid
      {[_ | _], []} -> :cgroup_v2
      {[], [_ | _]} -> :cgroup_v1
      {[], []} -> :none
    end
  end

  @doc "The hierarchy holding `controller` (\"pids\"), or the v2 one for `:unified`."
  def hierarchy(controller) do
    Enum.find(hierarchies(), fn
      %{controllers: :unified} -> controller == :unified
      %{controllers: list} -> controller in list
    end)
  end

  @doc "The corral-* directories directly under the VM's own cgroups."
  def corral_dirs do
    for %{dir: dir} <- hierarchies(),
        {:ok, names} = File.ls(dir),
        name <- names,
        String.starts_with?(name, "corral-"),
        path = Path.join(dir, name),
        File.dir?(path),
        do: path
  end

  @doc """
  Waits up to `timeout_ms` for every corral-* directory not in `before` to
  go, and returns those still there. Other programs on the machine (the
  helper's own cargo tests, other VMs) run helpers under the same root
  cgroup: a directory named for a helper that is alive and not a
  descendant of this VM is theirs and does not count.
  """
  def wait_no_new_dirs(before, timeout_ms \\ 2000) do
    new = fn -> Enum.reject(corral_dirs() -- before, &others?/1) end
    Corral.Test.OSProc.wait_until(fn -> new.() == [] end, timeout_ms)
    new.()
  end

  # corral-<helper pid>-<n>
  defp others?(dir) do
    case Regex.run(~r/^corral-(\d+)-\d+$/, Path.basename(dir)) do
      [_, pid] ->
        pid = String.to_integer(pid)
        Corral.Test.OSProc.alive?(pid) and not descendant?(pid, String.to_integer(System.pid()))

      nil ->
        false
    end
  end

  defp descendant?(pid, ancestor) when pid == ancestor, do: true
  defp descendant?(pid, _ancestor) when pid <= 1, do: false

  defp descendant?(pid, ancestor) do
    case File.read("/proc/#{pid}/stat") do
      {:ok, stat} ->
        [_, rest] = String.split(stat, ") ", parts: 2)
        ppid = rest |> String.split(" ") |> Enum.at(1) |> String.to_integer()
        descendant?(ppid, ancestor)

      {:error, _} ->
        false
    end
  end

  @doc "The pids in `dir`'s cgroup.procs; [] once the directory is gone."
  def procs(dir) do
    case File.read(Path.join(dir, "cgroup.procs")) do
      {:ok, text} -> text |> String.split("\n", trim: true) |> Enum.map(&String.to_integer/1)
      {:error, _} -> []
    end
  end

  @doc "The directory among `dirs` (an S frame's paths) under `controller`'s hierarchy."
  def dir_for(dirs, controller) do
    %{mount: mount} = hierarchy(controller) || raise "no #{inspect(controller)} hierarchy"
    Enum.find(dirs, &String.starts_with?(&1, mount <> "/"))
  end

  @doc """
  The cgroup directories of a running process, read from
  /proc/<pid>/cgroup (or from `text` in that format).
  """
  def dirs_of_text(text) do
    own = Map.new(hierarchies(), &{&1.controllers, &1.mount})

    for line <- String.split(text, "\n", trim: true),
        [_id, controllers, path] = String.split(line, ":", parts: 3),
        key =
          if(controllers == "",
            do: :unified,
            else: controllers |> String.split(",") |> Enum.sort()
          ),
        mount = Map.get(own, key),
        mount != nil,
        do: Path.join(mount, path)
  end
end

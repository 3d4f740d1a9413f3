defmodule Corral.Cgroup do
  @moduledoc """
  Cgroups from Elixir: create or open a named group, add and remove
  processes, set and read limits, read statistics, freeze, kill, delete.

  It runs over the same Rust library as the `corral` helper
  (`native/corral_cgroup`, through the `corral_nif` NIF), so both agree on
  paths, limit keys and file formats, on cgroup v2, v1 and the hybrid of
  both.

  ## Setup

  The NIF is built with the helper: Corral's Mix compiler runs `cargo build
  --release -p corral -p corral_nif` and copies `libcorral_nif.so` to
  `priv/`. If it cannot be loaded, a warning is logged, `available?/0` is
  `false` and every other function returns `{:error, :unavailable}`.

  Making groups needs write access to a cgroup hierarchy: root, or a
  subtree delegated to the VM's user (on systemd, `Delegate=yes`). See
  `layout/0` for what this system has.

  ## Names and layouts

  A group is named by a path relative to each hierarchy's root, like
  `Corral.cmd/3`'s `:cgroup_path`: `"myapp/worker-1"` is
  `/sys/fs/cgroup/myapp/worker-1` on cgroup v2, and
  `/sys/fs/cgroup/<controller>/myapp/worker-1` on v1. Names must not hold
  `.` or `..` components, empty components, newlines or NUL. Missing parent
  directories are created, and removed again by `delete/2` if nothing else
  uses them.

  Which hierarchies a group joins:

    * **v2** (unified): the v2 tree; the controllers that limits or
      `:controllers` need are enabled in the ancestors' `cgroup.subtree_control`.
    * **hybrid** (v1 controllers plus a v2 tree without them): the v2 tree,
      for membership, freezing, killing and CPU accounting, plus the v1
      hierarchy of each controller that the limits or `:controllers` name.
      Memory statistics, for instance, need `controllers: ["memory"]`.
    * **v1** (legacy): the v1 hierarchies the limits and `:controllers`
      need, plus `freezer`, `memory`, `pids` and `cpuacct` where writable.

  ## Handles

  `create/2` and `open/1` return a `%Corral.Cgroup{}` holding a NIF
  resource. The group outlives its handle: when the handle is garbage
  collected the directories stay, as in MuonTrap, until `delete/2` removes
  them (or `open/1` and then `delete/2`, from anywhere). Calls on one handle
  are serialised; after `delete/2` they return `{:error, :enoent}`. All of
  them run on dirty IO schedulers.

  ## Errors

  Every function returns `{:ok, value}` (queries) or `:ok` (actions), or
  `{:error, reason}` with one of:

    * a `t:File.posix/0` atom from the failed system call: `:enoent` (no
      such group or file), `:eacces` and `:eperm` (permission, or a file
      that cannot be written), `:ebusy` (the group still has child groups),
      `:esrch` (no such process), `:einval` (the kernel refused a value);
    * `:unavailable` - no cgroup can be made here (no cgroupfs, no
      delegation, a read-only hierarchy, or not Linux: macOS and FreeBSD
      have no cgroups), or the NIF is not loaded;
    * `{:missing_controller, name}` - a needed controller (`"memory"`) is
      not mounted, not delegated, or not joined by this group;
    * `{:unsupported, key}` - a limit key (`"memory_min"`) has no
      equivalent on this layout (v1 has no `memory_min`, `memory_low`,
      `memory_oom_group` or `io_weight`);
    * `{:invalid, message}` - a bad name, file name, pid, limit key or
      value; `message` names the argument, the value and why;
    * `:populated` - `delete/2` without `kill: true` on a group with
      processes in it;
    * `{:timeout, pids}` - freezing or killing did not finish in time
      (processes stuck in the kernel); `pids` are those left;
    * `{:parse, path}` - a cgroup file held something unexpected;
    * `:eio` or `{:errno, n}` - an I/O failure with no errno, or an errno
      with no name.

  ## Examples

      iex> {:ok, group} = Corral.Cgroup.create("myapp/job-1",
      ...>   limits: %{memory_max: 64 * 1024 * 1024, pids_max: 20})
      iex> port = Port.open({:spawn_executable, "/bin/sleep"}, args: ["60"])
      iex> {:os_pid, pid} = Port.info(port, :os_pid)
      iex> Corral.Cgroup.add(group, pid)
      :ok
      iex> Corral.Cgroup.get(group, :memory_max)
      {:ok, 67108864}
      iex> {:ok, %{memory_current: bytes}} = Corral.Cgroup.stats(group)
      iex> Corral.Cgroup.delete(group)
      {:error, :populated}
      iex> Corral.Cgroup.delete(group, kill: true)
      :ok
  """

  alias Corral.Cgroup.Limits
  alias Corral.Native

  @enforce_keys [:name, :dirs, :ref]
  defstruct [:name, :dirs, :ref]

  @typedoc """
  A group handle. `name` is the path it was created or opened with (`nil`
  for `cleanup/1`); `dirs` are its absolute directories, one per hierarchy,
  the v2 one first.
  """
  @type t :: %__MODULE__{name: String.t() | nil, dirs: [String.t()], ref: reference()}

  @typedoc "Why a call failed; see the module doc."
  @type reason ::
          File.posix()
          | :unavailable
          | :populated
          | :eio
          | {:missing_controller, String.t()}
          | {:unsupported, String.t()}
          | {:invalid, String.t()}
          | {:timeout, [pos_integer()]}
          | {:parse, String.t()}
          | {:errno, integer()}

  @typedoc "A limit key: MuonTrap 2's, the same as `Corral.cmd/3`'s `:cgroup` option."
  @type limit_key ::
          :memory_max
          | :memory_high
          | :memory_swap_max
          | :memory_oom_group
          | :memory_min
          | :memory_low
          | :cpu_max
          | :cpu_weight
          | :cpu_idle
          | :pids_max
          | :io_weight
          | :cpuset_cpus
          | :cpuset_mems

  @typedoc """
  A limit value: bytes or a count (`non_neg_integer() | :max`) for the
  `memory_*` sizes and `pids_max`; a boolean for `memory_oom_group` and
  `cpu_idle`; `{quota_us | :max, period_us} | :max` for `cpu_max`; 1..10000
  for the weights; a list like `"0-3,6"` for the cpusets.
  """
  @type limit_value ::
          non_neg_integer()
          | :max
          | boolean()
          | {pos_integer() | :max, pos_integer()}
          | String.t()

  @type limits :: %{optional(limit_key()) => limit_value()} | [{limit_key(), limit_value()}]

  @typedoc "Statistics, keyed as MuonTrap 2 names them; `nil` where the kernel has no value."
  @type stats :: %{
          memory_peak: non_neg_integer() | nil,
          memory_current: non_neg_integer() | nil,
          oom_kills: non_neg_integer() | nil,
          cpu_usage_usec: non_neg_integer() | nil,
          user_usec: non_neg_integer() | nil,
          system_usec: non_neg_integer() | nil,
          pids_current: non_neg_integer() | nil,
          pids_peak: non_neg_integer() | nil,
          pids_limit_hits: non_neg_integer() | nil
        }

  @typedoc "What `layout/0` returns."
  @type layout :: %{
          layout: :v1 | :v2 | :hybrid,
          mounts: %{v2: String.t() | nil, v1: %{String.t() => String.t()}},
          own: %{v2: String.t() | nil, v1: %{String.t() => String.t()}}
        }

  @limit_keys Limits.keys()
  @max_pid 0x7FFF_FFFF

  @doc """
  Whether a group can be created here: a cgroup filesystem is mounted, the
  VM's own cgroup is writable in the hierarchy every group needs (the v2
  tree, or on v1 any hierarchy), and the NIF is loaded.

  ## Examples

      iex> Corral.Cgroup.available?()
      true
  """
  @spec available?() :: boolean()
  def available? do
    native(fn -> Native.cgroup_available() end) == true
  end

  @doc """
  How cgroups are mounted here, and the VM's own cgroup in each hierarchy
  (relative to its root, as in `/proc/self/cgroup`).

  v1 maps are keyed by controller; co-mounted controllers (`cpu,cpuacct`)
  each get an entry, and a named hierarchy appears as `"name=systemd"`.

  ## Examples

      iex> Corral.Cgroup.layout()
      {:ok,
       %{
         layout: :hybrid,
         mounts: %{v2: "/sys/fs/cgroup/unified", v1: %{"memory" => "/sys/fs/cgroup/memory", ...}},
         own: %{v2: "/", v1: %{"memory" => "/process_api/1f3c", ...}}
       }}

  ## Error reasons

    * `:unavailable` - no cgroup filesystem is mounted, or not Linux;
    * a `t:File.posix/0` atom if `/proc/self/mountinfo` cannot be read.
  """
  @spec layout() :: {:ok, layout()} | {:error, reason()}
  def layout, do: native(fn -> Native.cgroup_layout() end)

  @doc """
  Creates the group `name` (see "Names and layouts"), joins the
  hierarchies it needs and applies `:limits`. If the directories exist
  already they are taken over, and the limits applied to them.

  On error nothing is left behind. The group is not removed when the handle
  is garbage collected: call `delete/2`.

  ## Options

    * `:limits` - a map or keyword list of limits (see `set/2`).
    * `:controllers` - v1 controller names (`["memory", "pids"]`) to join
      on v1 and hybrid even without limits for them, for `stats/1`, a later
      `set/2` or raw `read/2`s; on v2, controllers to enable for the group.

  ## Examples

      iex> Corral.Cgroup.create("myapp/job-1", limits: %{cpu_max: {50_000, 100_000}})
      {:ok, %Corral.Cgroup{name: "myapp/job-1", dirs: ["/sys/fs/cgroup/unified/myapp/job-1", ...], ...}}

      iex> Corral.Cgroup.create("../etc")
      {:error, {:invalid, "invalid cgroup path \\"../etc\\": must not contain `.` or `..` components"}}

  ## Error reasons

    * `:unavailable` - no hierarchy is writable here;
    * `{:invalid, message}` - a bad name, or a bad limit key or value
      (checked as `Corral.cmd/3` checks its `:cgroup` option);
    * `{:unsupported, key}` - a limit this layout cannot set;
    * `{:missing_controller, name}` - a controller is not mounted or cannot
      be enabled;
    * a `t:File.posix/0` atom when the kernel refuses a directory or a value.

  As every option list in Corral, `opts` itself is checked by raising:
  an unknown option, or `:controllers` that is not a list of strings,
  raises `ArgumentError`. Values inside it (`:limits`) and the name are
  data, and return `{:error, {:invalid, message}}`.
  """
  @spec create(String.t(), keyword()) :: {:ok, t()} | {:error, reason()}
  def create(name, opts \\ []) when is_binary(name) and is_list(opts) do
    opts = Keyword.validate!(opts, limits: %{}, controllers: [])
    controllers = controllers!(opts[:controllers])

    with :ok <- text(name, "cgroup name"),
         {:ok, pairs} <- limit_pairs(opts[:limits]) do
      native(fn -> Native.cgroup_create(name, pairs, controllers) end)
      |> handle(name)
    end
  end

  @doc """
  Opens the existing group `name` in every hierarchy where its directory
  exists. Nothing is created.

  ## Examples

      iex> Corral.Cgroup.open("myapp/job-1")
      {:ok, %Corral.Cgroup{name: "myapp/job-1", ...}}

      iex> Corral.Cgroup.open("no/such/group")
      {:error, :enoent}

  ## Error reasons

    * `:enoent` - the directory exists in no hierarchy;
    * `{:invalid, message}` - a bad name.
  """
  @spec open(String.t()) :: {:ok, t()} | {:error, reason()}
  def open(name) when is_binary(name) do
    with :ok <- text(name, "cgroup name") do
      native(fn -> Native.cgroup_open(name) end) |> handle(name)
    end
  end

  @doc """
  Moves the OS process `pid` (all its threads) into the group, in every
  hierarchy the group is in. `Port.info(port, :os_pid)` gives a port's.

  ## Examples

      iex> Corral.Cgroup.add(group, 4242)
      :ok

  ## Error reasons

    * `:esrch` - no such process;
    * `{:invalid, message}` - not a pid;
    * `:enoent` - the group was deleted.
  """
  @spec add(t(), pos_integer()) :: :ok | {:error, reason()}
  def add(%__MODULE__{ref: ref}, pid) do
    with :ok <- os_pid(pid), do: native(fn -> Native.cgroup_add(ref, pid) end)
  end

  @doc """
  Moves the OS process `pid` out of the group, back to the group's parent
  in every hierarchy.

  ## Examples

      iex> Corral.Cgroup.remove(group, 4242)
      :ok

  ## Error reasons

  As for `add/2`.
  """
  @spec remove(t(), pos_integer()) :: :ok | {:error, reason()}
  def remove(%__MODULE__{ref: ref}, pid) do
    with :ok <- os_pid(pid), do: native(fn -> Native.cgroup_remove_pid(ref, pid) end)
  end

  @doc """
  The OS pids in the group, sorted: the union over its hierarchies.

  ## Examples

      iex> Corral.Cgroup.pids(group)
      {:ok, [4242, 4243]}

  ## Error reasons

    * `:enoent` - the group was deleted or removed by someone else;
    * `{:parse, path}` - `cgroup.procs` held something other than pids.
  """
  @spec pids(t()) :: {:ok, [pos_integer()]} | {:error, reason()}
  def pids(%__MODULE__{ref: ref}), do: native(fn -> Native.cgroup_pids(ref) end)

  @doc """
  Sets limits: a map or keyword list with the keys of `Corral.cmd/3`'s
  `:cgroup` option (MuonTrap 2's). Keys left out are not touched.

  On v1 and hybrid the limits are written to the v1 files
  (`memory.limit_in_bytes` and `memory.memsw.limit_in_bytes`,
  `cpu.cfs_quota_us`, `cpu.shares`, ...), so the group must be in the v1
  hierarchy of each controller: name it in `create/2`'s `:limits` or
  `:controllers`.

  ## Options

  The limits, with their values:

    * `:memory_max`, `:memory_high`, `:memory_swap_max`, `:memory_min`,
      `:memory_low` - bytes, or `:max`.
    * `:memory_oom_group` - `true` kills the whole group on OOM.
    * `:cpu_max` - `{quota_us, period_us}` (quota at least 1000, period
      1000 to 1_000_000; quota may be `:max`), or `:max`.
    * `:cpu_weight`, `:io_weight` - 1 to 10000 (default 100).
    * `:cpu_idle` - `true` schedules the group as SCHED_IDLE.
    * `:pids_max` - a number of tasks, or `:max`.
    * `:cpuset_cpus`, `:cpuset_mems` - lists like `"0-3,6"`.

  ## Examples

      iex> Corral.Cgroup.set(group, %{memory_max: 64 * 1024 * 1024, cpu_max: {50_000, 100_000}})
      :ok

      iex> Corral.Cgroup.set(group, memory_min: 4096)
      {:error, {:unsupported, "memory_min"}}

  ## Error reasons

    * `{:invalid, message}` - an unknown key, or a value of the wrong type
      or out of range;
    * `{:unsupported, key}` - no equivalent on this layout;
    * `{:missing_controller, name}` - the group is not in that controller's
      hierarchy;
    * a `t:File.posix/0` atom if the kernel refuses a value (`:einval`).
  """
  @spec set(t(), limits()) :: :ok | {:error, reason()}
  def set(%__MODULE__{ref: ref}, limits) do
    with {:ok, pairs} <- limit_pairs(limits) do
      native(fn -> Native.cgroup_set(ref, pairs) end)
    end
  end

  @doc """
  Reads limit `key` back, as the value `set/2` takes, whatever the layout
  (v1 `cpu.shares` comes back as a weight, v1's "no limit" as `:max`).

  ## Examples

      iex> Corral.Cgroup.get(group, :memory_max)
      {:ok, 67108864}

      iex> Corral.Cgroup.get(group, :cpu_max)
      {:ok, {50000, 100000}}

      iex> Corral.Cgroup.get(group, :pids_max)
      {:ok, :max}

  ## Error reasons

  As for `set/2`, and `:enoent` for a file this kernel does not have.
  """
  @spec get(t(), limit_key()) :: {:ok, limit_value()} | {:error, reason()}
  def get(%__MODULE__{ref: ref}, key) when key in @limit_keys,
    do: native(fn -> Native.cgroup_get(ref, Atom.to_string(key)) end)

  def get(%__MODULE__{}, key), do: {:error, {:invalid, unknown_key(key)}}

  @doc """
  Reads the raw file `file` of the group, such as `"memory.stat"` or
  `"cgroup.events"`: `<controller>.<name>`, with no `/` and no `..`. It is
  read from that controller's v1 directory if the group has one, else
  from its v2 directory.

  ## Examples

      iex> Corral.Cgroup.read(group, "pids.current")
      {:ok, "2\\n"}

  ## Error reasons

    * `{:invalid, message}` - not a `<controller>.<name>` file name;
    * `:enoent` - no such file for this group;
    * `{:missing_controller, name}` - the group is in no hierarchy with
      that controller.
  """
  @spec read(t(), String.t()) :: {:ok, String.t()} | {:error, reason()}
  def read(%__MODULE__{ref: ref}, file) when is_binary(file) do
    with :ok <- text(file, "cgroup file name"),
         do: native(fn -> Native.cgroup_read(ref, file) end)
  end

  @doc """
  Writes `value` to the raw file `file` of the group, as one `write(2)`.
  File names as for `read/2`. Files are never created.

  ## Examples

      iex> Corral.Cgroup.write(group, "memory.swappiness", "0")
      :ok

  ## Error reasons

  As for `read/2`, plus `:eacces` for a read-only file and `:einval` for a
  value the kernel refuses.
  """
  @spec write(t(), String.t(), String.t() | integer()) :: :ok | {:error, reason()}
  def write(group, file, value) when is_integer(value),
    do: write(group, file, Integer.to_string(value))

  def write(%__MODULE__{ref: ref}, file, value) when is_binary(file) and is_binary(value) do
    with :ok <- text(file, "cgroup file name"),
         :ok <- text(value, "value"),
         do: native(fn -> Native.cgroup_write(ref, file, value) end)
  end

  @doc """
  The group's statistics, from whichever of its hierarchies have them: the
  v2 files first (`memory.peak`, `memory.events`, `cpu.stat`,
  `pids.events`, `pids.peak`), then the v1 ones
  (`memory.max_usage_in_bytes`, `memory.oom_control`, `cpuacct.usage`,
  `cpuacct.stat`). Keys the kernel does not report for this group are
  `nil`.

  ## Examples

      iex> Corral.Cgroup.stats(group)
      {:ok,
       %{
         memory_peak: 2_142_208,
         memory_current: 1_064_960,
         oom_kills: 0,
         cpu_usage_usec: 1520,
         user_usec: 1000,
         system_usec: 520,
         pids_current: 1,
         pids_peak: nil,
         pids_limit_hits: 0
       }}

  ## Error reasons

    * `:enoent` - the group was deleted.
  """
  @spec stats(t()) :: {:ok, stats()} | {:error, reason()}
  def stats(%__MODULE__{ref: ref}), do: native(fn -> Native.cgroup_stats(ref) end)

  @doc """
  Freezes every process in the group (v2 `cgroup.freeze`, else the v1
  freezer) and waits up to a second until all are stopped.

  ## Examples

      iex> Corral.Cgroup.freeze(group)
      :ok

  ## Error reasons

    * `{:missing_controller, "freezer"}` - the group has no freezer;
    * `{:timeout, pids}` - not all stopped within a second; the freeze
      stays requested.
  """
  @spec freeze(t()) :: :ok | {:error, reason()}
  def freeze(%__MODULE__{ref: ref}), do: native(fn -> Native.cgroup_freeze(ref) end)

  @doc """
  Thaws a frozen group.

  ## Examples

      iex> Corral.Cgroup.thaw(group)
      :ok

  ## Error reasons

    * `{:missing_controller, "freezer"}` - the group has no freezer.
  """
  @spec thaw(t()) :: :ok | {:error, reason()}
  def thaw(%__MODULE__{ref: ref}), do: native(fn -> Native.cgroup_thaw(ref) end)

  @doc """
  SIGKILLs every process in the group and waits until it is empty: v2
  `cgroup.kill` where the kernel has it, else freeze, kill every pid, thaw,
  until `cgroup.procs` is empty.

  ## Examples

      iex> Corral.Cgroup.kill(group)
      :ok

  ## Error reasons

    * `{:invalid, message}` - the VM itself is in the group (it is never
      killed);
    * `{:timeout, pids}` - processes were left after two seconds.
  """
  @spec kill(t()) :: :ok | {:error, reason()}
  def kill(%__MODULE__{ref: ref}), do: native(fn -> Native.cgroup_kill(ref) end)

  @doc """
  Removes the group's directories in every hierarchy, and the parent
  directories `create/2` made for it if nothing else uses them. Refuses
  while processes are in the group, unless told to kill them first. The
  handle answers `{:error, :enoent}` afterwards.

  ## Options

    * `:kill` - `true` kills every process in the group first (as
      `kill/1`). Defaults to `false`.

  ## Examples

      iex> Corral.Cgroup.delete(group)
      {:error, :populated}

      iex> Corral.Cgroup.delete(group, kill: true)
      :ok

  ## Error reasons

    * `:populated` - processes are in the group and `:kill` was not given;
    * `:ebusy` - the group has child groups, or a process joined meanwhile;
    * `{:timeout, pids}` - with `kill: true`, processes were left;
    * `:enoent` - already deleted.
  """
  @spec delete(t(), keyword()) :: :ok | {:error, reason()}
  def delete(%__MODULE__{ref: ref}, opts \\ []) when is_list(opts) do
    opts = Keyword.validate!(opts, kill: false)

    case opts[:kill] do
      kill when is_boolean(kill) -> native(fn -> Native.cgroup_delete(ref, kill) end)
      other -> raise ArgumentError, "invalid option :kill with value #{inspect(other)}"
    end
  end

  @doc """
  Kills every process in, and removes, the cgroup directories `dirs` a
  `corral` helper reported in its `S` frame (absolute paths, one per
  hierarchy). For the process that owns a helper which died abnormally
  (SIGKILL, the OOM killer): the helper can no longer end the tree or remove
  its cgroup, so its owner does. Directories already gone are fine.

  ## Examples

      iex> Corral.Cgroup.cleanup(["/sys/fs/cgroup/unified/corral-4242-0"])
      :ok

  ## Error reasons

    * `{:invalid, message}` - a path that is not a cgroup directory below a
      hierarchy's mount point;
    * `{:timeout, pids}`, `:ebusy` - as for `delete/2` with `kill: true`.
  """
  @spec cleanup([String.t()]) :: :ok | {:error, reason()}
  def cleanup([]), do: :ok

  def cleanup(dirs) when is_list(dirs) do
    case open_dirs(dirs) do
      {:ok, %__MODULE__{ref: ref}} -> native(fn -> Native.cgroup_delete(ref, true) end)
      {:error, :enoent} -> :ok
      {:error, _} = error -> error
    end
  end

  @doc """
  Opens the group made of these absolute directories, one per hierarchy,
  as a helper's `S` frame lists them (`Corral.Daemon` uses it for
  `statistics/1`, `cgget/2` and `cgset/3`). Nothing is removed when the
  handle is dropped.

  ## Error reasons

    * `:enoent` - none of the directories exists;
    * `{:invalid, message}` - a path that is not a cgroup directory below a
      hierarchy's mount point.
  """
  @spec open_dirs([String.t()]) :: {:ok, t()} | {:error, reason()}
  def open_dirs([]), do: {:error, :enoent}

  def open_dirs(dirs) when is_list(dirs) do
    with :ok <- all_text(dirs, "cgroup directory") do
      native(fn -> Native.cgroup_open_dirs(dirs) end) |> handle(nil)
    end
  end

  # -- Pure helpers -------------------------------------------------------

  @doc false
  # The limits as [{key, text}] in the syntax of corral_cgroup's
  # Limits::set_str (the helper's --cgroup-set), checked by
  # Corral.Cgroup.Limits as the :cgroup option is.
  @spec limit_pairs(limits()) :: {:ok, [{String.t(), String.t()}]} | {:error, reason()}
  def limit_pairs(limits) do
    case Limits.check(limits) do
      {:ok, pairs} ->
        {:ok, for({key, value} <- pairs, do: {Atom.to_string(key), Limits.text(value)})}

      {:error, {:bad_value, key, value}} ->
        {:error,
         {:invalid,
          "invalid limit #{inspect(key)} with value #{inspect(value)}, " <>
            "expected #{Limits.expected(key)}"}}

      {:error, {:unknown_key, key, _value}} ->
        {:error, {:invalid, unknown_key(key)}}

      {:error, {:bad_entry, {key, _value}}} ->
        {:error, {:invalid, unknown_key(key)}}

      {:error, {:bad_entry, other}} ->
        {:error, {:invalid, "expected {key, value} limit pairs, got: #{inspect(other)}"}}

      {:error, {:not_limits, other}} ->
        {:error, {:invalid, "expected limits as a map or keyword list, got: #{inspect(other)}"}}
    end
  end

  defp unknown_key(key) do
    "unknown limit key #{inspect(key)}, expected one of: " <>
      Enum.map_join(@limit_keys, ", ", &inspect/1)
  end

  defp controllers!(list) when is_list(list) do
    if Enum.all?(list, &is_binary/1),
      do: list,
      else: raise(ArgumentError, "invalid option :controllers with value #{inspect(list)}")
  end

  defp controllers!(other),
    do: raise(ArgumentError, "invalid option :controllers with value #{inspect(other)}")

  # Names, files and values cross into Rust as UTF-8 strings.
  defp text(string, what) do
    if String.valid?(string),
      do: :ok,
      else: {:error, {:invalid, "#{what} #{inspect(string)} is not UTF-8"}}
  end

  defp all_text(list, what) do
    Enum.find_value(list, :ok, fn
      s when is_binary(s) ->
        case text(s, what) do
          :ok -> nil
          error -> error
        end

      other ->
        {:error, {:invalid, "#{what} #{inspect(other)} is not a string"}}
    end)
  end

  defp os_pid(pid) when is_integer(pid) and pid > 0 and pid <= @max_pid, do: :ok
  defp os_pid(pid), do: {:error, {:invalid, "expected an OS pid, got: #{inspect(pid)}"}}

  defp handle({:ok, {ref, dirs}}, name), do: {:ok, %__MODULE__{name: name, dirs: dirs, ref: ref}}
  defp handle({:error, _} = error, _name), do: error

  # Every NIF call goes through here: a NIF that is not loaded answers
  # {:error, :unavailable} (load_nif logged why); anything else raised is a
  # bug and propagates.
  defp native(call) do
    call.()
  rescue
    e in ErlangError ->
      case e do
        %ErlangError{original: :nif_not_loaded} -> {:error, :unavailable}
        _ -> reraise e, __STACKTRACE__
      end
  end
end

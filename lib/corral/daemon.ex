defmodule Corral.Daemon do
  @moduledoc """
  Runs one long-lived OS program under a supervisor, contained as
  `Corral.cmd/3` contains its children. A drop-in for `MuonTrap.Daemon`:
  the same child spec, options and functions, so switching is a rename.

  ## Setup

  Nothing beyond `Corral`'s own setup (the `corral` helper in `priv/`). Add
  the daemon to a supervision tree:

      children = [
        {Corral.Daemon, ["my_server", ["--port", "4000"], [cd: "/srv", log_output: :info]]}
      ]

      Supervisor.start_link(children, strategy: :one_for_one)

  The second element of the tuple is `[command, args]` or
  `[command, args, options]`, as for `Corral.cmd/3`. Each daemon needs a
  unique child id under one supervisor: pass `:id`, or use
  `Supervisor.child_spec/2`.

  ## Restarts

  The daemon stops when its program does: with `:normal` on exit status 0,
  otherwise with `exit_status_to_reason.(status)` (default
  `:error_exit_status`). So the supervisor's restart kinds work as they do
  with MuonTrap:

    * `:permanent` (the default) - always restarted.
    * `:transient` - restarted unless the program exited with status 0 (or
      a status your `:exit_status_to_reason` maps to `:normal`).
    * `:temporary` - never restarted.

  ## A program that exits at once

  `start_link/3` returns once the program runs, so a program that exits at
  once may already have exited when the caller gets the daemon's pid. The
  daemon does not stop the moment its program exits: it waits until its
  helper has removed the tree's cgroups and exited, and until 100 ms after
  the program started. So the process that started it can still monitor it
  (the `:DOWN` carries the real stop reason, not `:noproc`) and call it, as
  with MuonTrap, whose daemon lives until its helper reports the exit.
  Until it stops, calls are answered:

    * `os_pid/1` - the pid the program had;
    * `statistics/1` - the final byte counts; `:cgroup` is `%{}` and the
      cgroup figures `nil` once the helper has removed the cgroup;
    * `cgroup_config/1` - `%{}` once the cgroup is gone; `cgroup_path/1`
      and `containment/1` - as while it ran;
    * `cgget/2`, `cgset/3` - `{:error, :enoent}` once the cgroup is gone;
    * `signal/2` - `{:error, :not_running}`; `send_input/2` and
      `close_input/1` - `{:error, :closed}`.

  Calls already waiting when it stops are answered before it stops. A call
  that reaches the daemon after it stopped exits the caller, as a call to
  any stopped `GenServer` does (`:noproc`, or the stop reason for a call
  sent in the instant it stops). A supervisor sees the stop 100 ms after
  the start at the earliest, so a program that keeps exiting at once
  restarts at most ten times a second.

  ## The tree dies with the daemon

  The daemon is linked to its `corral` helper's port and traps exits. When
  it stops for any reason (the program ended, `Supervisor.terminate_child/2`,
  `GenServer.stop/1`, a crash), `terminate/2` asks the helper to end the
  whole tree (SIGTERM, then SIGKILL after `:delay_to_sigkill`) and waits
  for that, so a restarted daemon never overlaps its predecessor. When the
  daemon is killed outright (`Process.exit(pid, :kill)`), the link closes
  the port and the helper ends the tree on its own; when the VM dies, the
  helper sees its control pipe close and does the same. Double-forked and
  `setsid` grandchildren go too: they stay in the helper's cgroup and under
  its subreaper.

  If the helper itself is killed (SIGKILL, the OOM killer), the daemon
  kills what is left in the helper's cgroup and removes it, then stops
  with `{:helper_exit, status}`.

  ## Output and flow control

  stdout is read line by line (split on `"\\n"`). An unfinished line waits
  for the rest of it, in a buffer of at most 64 KiB (65_536 bytes) per
  stream; a longer line is handed to the logger in pieces of 64 KiB, never
  cut short (MuonTrap keeps only the first 256 bytes).

  Output that does not end with a newline, such as a prompt (`"name? "`),
  is handed to the logger as it is once its stream has been quiet for
  200 ms, or as soon as 64 KiB of it gather; what follows it, up to the
  next newline, is then a line of its own. A line written in pieces more
  than 200 ms apart is thus logged in those pieces. The daemon
  acknowledges output to the helper only after it has handed the lines to
  the logger, so a slow logger slows the program down (it blocks writing
  to its pipe) instead of filling the daemon's mailbox: at most
  `:stdio_window` bytes (default 1 MiB) are in flight per daemon.

  ## On another node

  With `node: n` the program runs on node `n` (with `node: :any`, on the
  least loaded node running `:corral`, among `:nodes` if given; see
  `Corral.Cluster`), while the daemon stays here: its lines are logged (or
  passed to `:logger_fun`) here, under the same window, so a slow logger
  slows the program there. The program runs there under a
  `Corral.Process` owned for the daemon: when the daemon dies (even by
  `Process.exit(pid, :kill)`) or its connection to `n` is lost, the tree
  there is ended at once, as on one node; when the daemon stops, it ends
  the tree there and waits for that; when the program exits, the daemon
  stops once the helper there has exited (see "A program that exits at
  once").

  When `n` goes away (its VM stops, or the connection is lost), the daemon
  stops with `{:nodedown, n}`, so its supervisor restarts it: with `node:
  :any`, on a node that is still there; with a fixed node, a restart
  fails with `{:nodedown, n}` until that node is back.

  Every function works on such a daemon: `os_pid/1` is the program's pid
  on `n`; `signal/2`, `send_input/2` and `close_input/1` act there;
  `statistics/1`, `cgroup_config/1`, `cgget/2` and `cgset/3` read and
  write the cgroup files on `n` (through `:erpc`), and answer as for a
  cgroup that is gone once `n` is; `cgroup_path/1` and `containment/1`
  name directories on `n`, and `containment/1`'s `:node` says which node
  that is. Without `stdin: true` the program's stdin there is a pipe
  closed at once rather than `/dev/null`: either way it reads end of
  file. See the README, "Other nodes", for versions and security.

  ## Examples

      iex> {:ok, pid} = Corral.Daemon.start_link("sleep", ["1000"])
      iex> is_integer(Corral.Daemon.os_pid(pid))
      true
      iex> %{output_byte_count: 0} = Corral.Daemon.statistics(pid)
      iex> GenServer.stop(pid)
      :ok

  Logging each line through a function of your own, and feeding stdin:

      {:ok, pid} =
        Corral.Daemon.start_link("cat", [],
          stdin: true,
          logger_fun: fn line -> IO.puts("cat said: " <> line) end
        )

      :ok = Corral.Daemon.send_input(pid, "hello\\n")
      :ok = Corral.Daemon.close_input(pid)
  """

  use GenServer

  alias Corral.Cgroup
  alias Corral.Client
  alias Corral.Daemon.Lines
  alias Corral.Daemon.Options, as: DaemonOptions
  alias Corral.Daemon.Remote
  alias Corral.Helper

  # What terminate/2 waits, beyond :delay_to_sigkill, for the tree to end.
  @stop_margin 1000

  # How long the helper may take to send its first frame.
  @start_timeout 15_000

  # After the program's exit, the daemon checks whether its helper has
  # exited after 1 ms, then twice as long each time up to @helper_poll_ms,
  # for at most :delay_to_sigkill + @stop_margin (the helper may still be
  # ending what the program left); and it lives at least @min_uptime_ms
  # after its program started, so that the process that started it can
  # monitor it and call it even when the program exits at once (see "A
  # program that exits at once").
  @helper_poll_ms 50
  @min_uptime_ms 100

  # How long an unfinished line waits for more output before it is logged.
  @quiet_ms 200

  defstruct [
    :command,
    :args,
    :options,
    :port,
    :os_pid,
    :containment,
    :wait_task,
    :started_at,
    # The protocol client: acks, stdin credit and the writes waiting for it.
    :client,
    # After the program's exit: {reason, helper_os_pid, deadline, poll_ms}
    # while the helper removes the tree's cgroups and exits (see "A program
    # that exits at once").
    :stopping,
    dirs: [],
    partial: %{stdout: "", stderr: ""},
    # Per stream: the timer that hands an unfinished line out, and its token.
    quiet: %{stdout: {nil, nil}, stderr: {nil, nil}},
    bytes: %{stdout: 0, stderr: 0},
    sinks: %{stdout: nil, stderr: nil},
    # With :node, the program's Corral.Process there (Corral.Daemon.Remote).
    remote: nil
  ]

  @typedoc "Statistics; see `statistics/1`."
  @type statistics :: %{
          output_byte_count: non_neg_integer(),
          cgroup: %{optional(String.t()) => term()},
          stdout_byte_count: non_neg_integer(),
          stderr_byte_count: non_neg_integer(),
          uptime_ms: non_neg_integer(),
          cpu_usage_usec: non_neg_integer() | nil,
          user_usec: non_neg_integer() | nil,
          system_usec: non_neg_integer() | nil,
          memory_current: non_neg_integer() | nil,
          memory_peak: non_neg_integer() | nil,
          oom_kills: non_neg_integer() | nil,
          pids_current: non_neg_integer() | nil,
          pids_peak: non_neg_integer() | nil,
          pids_limit_hits: non_neg_integer() | nil
        }

  @typedoc "A signal: `:sighup`, `:hup`, `\"SIGHUP\"` or `\"HUP\"` (any case)."
  @type signal :: atom() | String.t()

  @doc """
  A child spec for `[command, args]` or `[command, args, options]`.

  The id is `options[:id]`, or `Corral.Daemon`; the restart kind is
  `:permanent` (override with `Supervisor.child_spec/2`); the shutdown
  time leaves `terminate/2` room to end the tree: `:delay_to_sigkill` plus
  a second.
  """
  @spec child_spec([String.t() | [String.t()] | keyword()]) :: Supervisor.child_spec()
  def child_spec([command, args]), do: child_spec([command, args, []])

  def child_spec([command, args, opts]) do
    %{
      id: Keyword.get(opts, :id, __MODULE__),
      start: {__MODULE__, :start_link, [command, args, opts]},
      type: :worker,
      restart: :permanent,
      shutdown: shutdown(opts)
    }
  end

  defp shutdown(opts) do
    case Keyword.get(opts, :delay_to_sigkill, 500) do
      ms when is_integer(ms) and ms >= 0 -> ms + @stop_margin
      _ -> 500 + @stop_margin
    end
  end

  @doc """
  Starts a daemon running `command` with `args`, linked to the caller.

  Returns once the program runs (or once `:wait_for` has been started);
  `{:error, reason}` when it could not start (see *Error reasons*). Bad
  options raise `ArgumentError` in the caller, naming the option.

  ## Options

  Every option of `Corral.cmd/3` except `:into` and `:input`: `:cd`,
  `:env`, `:arg0`, `:stderr_to_stdout`, `:capture_stderr_only`,
  `:parallelism`, `:uid`, `:gid`, `:groups`, `:delay_to_sigkill`,
  `:stdio_window`, `:timeout` (a wall-time limit for the daemon's program),
  the cgroup options `:cgroup_path`, `:cgroup_base`, `:cgroup`,
  `:cgroup_controllers`, `:cgroup_sets`, the limit options as
  `Corral.cmd/3` documents them, and `:node` and `:nodes` (see "On
  another node" above). Plus, as in MuonTrap:

    * `:name` - register the daemon under this name.
    * `:id` - the child id in `child_spec/1`.
    * `:log_output` - a Logger level (`:info`, ...): log each line of the
      program's output at that level. `nil` (the default) logs nothing.
    * `:log_prefix` - prepended to each logged line. Defaults to
      `"<command>: "`.
    * `:log_transform` - a function from line to string, applied before
      logging. The default replaces each byte of invalid UTF-8 with
      U+FFFD, so Logger never crashes on binary output.
    * `:logger_metadata` - a keyword list merged into the daemon's Logger
      metadata; `:corral_cmd` and `:corral_args` are always set.
    * `:logger_fun` - replaces Logger: called with each line (a binary,
      without the newline, untransformed). A 1-arity function, `{m, f}`
      (called as `m.f(line)`) or `{m, f, a}` (called as
      `apply(m, f, [line | a])`). With it, `:log_output`, `:log_prefix`
      and `:log_transform` are ignored.
    * `:stderr_to_stdout` - `true` merges stderr into stdout, so it is
      logged with it.
    * `:capture_stderr_only` - log stderr instead of stdout, which is
      discarded. Wins over `:stderr_to_stdout`, as in MuonTrap.
    * `:exit_status_to_reason` - a function from the exit status (a
      non-zero integer) to the daemon's stop reason. Defaults to
      `fn _ -> :error_exit_status end`.
    * `:wait_for` - a 0-arity function run in a linked `Task` before the
      program starts; the program starts when it returns. If it raises or
      exits, the daemon stops with that reason. Until then `os_pid/1`
      returns `:error`.

  Corral's own:

    * `:log_stderr_level` - capture stderr separately from stdout and log
      its lines at this level (with `:logger_fun`, pass them to it). Without
      it stderr goes to the VM's stderr, as in MuonTrap. Excludes
      `:stderr_to_stdout`; with `:capture_stderr_only` it sets the level of
      the stderr lines, which otherwise use `:log_output`'s.
    * `:stdin` - `true` gives the program a stdin pipe fed by
      `send_input/2` and closed by `close_input/1`. Defaults to `false`:
      stdin is `/dev/null`, so a program that reads it sees end of file
      rather than blocking forever.

  ## Examples

      iex> {:ok, pid} = Corral.Daemon.start_link("sleep", ["1000"], name: :my_sleep)
      iex> Process.whereis(:my_sleep) == pid
      true
      iex> GenServer.stop(pid)
      :ok

  ## Error reasons

    * `:enoent` - `command` was not found.
    * `{:spawn_failed, errno, stage}`, `{:cgroup, errno, message}`,
      `{:helper_unavailable, posix, path}`, `{:helper_exit, status}`,
      `{:helper_closed, reason}`, `{:protocol, detail}` - as the
      `:reason` of `Corral.Error`.
    * `:start_timeout` - the helper sent nothing for 15 s.
    * With `:node`: `{:nodedown, node}`, `{:version_mismatch, node, ours,
      theirs}`, `{:corral_unavailable, node}`, `{:no_node, nodes}` - as
      `Corral.Error` describes them.
  """
  @spec start_link(String.t(), [String.t()], keyword()) :: GenServer.on_start()
  def start_link(command, args, opts \\ []) when is_binary(command) and is_list(args) do
    Corral.Options.check_command!(command, args, "start Corral.Daemon", "Corral.Daemon")
    options = DaemonOptions.new!(command, opts)

    server_opts =
      case Keyword.fetch(opts, :name) do
        {:ok, name} -> [name: name]
        :error -> []
      end

    GenServer.start_link(
      __MODULE__,
      {command, args, options, Remote.new(opts, options)},
      server_opts
    )
  end

  @doc """
  The OS pid of the daemon's program (not of the helper), or `:error`
  while `:wait_for` runs.

  ## Examples

      iex> {:ok, pid} = Corral.Daemon.start_link("sleep", ["1000"])
      iex> Corral.Daemon.os_pid(pid) > 0
      true
      iex> GenServer.stop(pid)
      :ok
  """
  @spec os_pid(GenServer.server()) :: pos_integer() | :error
  def os_pid(server), do: GenServer.call(server, :os_pid)

  @doc """
  Output counts and resource usage so far, in MuonTrap 2's shape plus
  Corral's own figures.

  MuonTrap 2's keys:

    * `:output_byte_count` - bytes of output received, the sum of
      `:stdout_byte_count` and `:stderr_byte_count`; a stream that is not
      captured counts 0.
    * `:cgroup` - the daemon's cgroup statistics keyed by the cgroup v2
      file name, `%{}` without a cgroup: `"memory.current"`,
      `"memory.peak"`, `"memory.swap.current"`, `"pids.current"`,
      `"pids.peak"` (integers); `"memory.events"`, `"cpu.stat"`,
      `"pids.events"`, `"cgroup.stat"` (maps of the file's fields, such as
      `"oom_kill"` or `"usage_usec"`); `"memory.pressure"`,
      `"cpu.pressure"`, `"io.pressure"` (`%{"some" => %{"avg10" => 0.0,
      ..., "total" => 0}, "full" => ...}`). A file the group does not
      have is left out. On cgroup v1 and hybrid hosts, where the kernel
      names these figures differently, the same keys are filled from the
      v1 files: `"memory.current"` from `memory.usage_in_bytes`,
      `"memory.events"` `"oom_kill"` from `memory.oom_control`,
      `"cpu.stat"` `"usage_usec"`, `"user_usec"` and `"system_usec"` from
      `cpuacct`, `"pids.events"` `"max"` from `pids.events`.

  Corral's own, under keys MuonTrap does not use:

    * `:stdout_byte_count`, `:stderr_byte_count` - per stream.
    * `:uptime_ms` - since the program started (0 before).
    * `:cpu_usage_usec`, `:user_usec`, `:system_usec`, `:memory_current`,
      `:memory_peak`, `:oom_kills`, `:pids_current`, `:pids_peak`,
      `:pids_limit_hits` - the same figures as `Corral.Cgroup.stats/1`
      gives them, whatever the layout; each is `nil` when the cgroup has
      no such file (no cgroup at all, or the controller is not enabled for
      it: on a hybrid host memory figures need a memory limit, which puts
      the daemon in the v1 memory hierarchy).

  The cgroup files are read in the caller, not in the daemon. Once the
  program has exited its cgroup is removed, so `:cgroup` is `%{}` and the
  cgroup figures `nil`; the byte counts stay.

  ## Examples

      iex> {:ok, pid} = Corral.Daemon.start_link("sleep", ["1000"])
      iex> %{output_byte_count: 0, cgroup: %{}, cpu_usage_usec: _} = Corral.Daemon.statistics(pid)
      iex> GenServer.stop(pid)
      :ok
  """
  @spec statistics(GenServer.server()) :: statistics()
  def statistics(server) do
    info = GenServer.call(server, :info)
    {cgroup, figures} = on_node(info, :cgroup_stats, [info.dirs], no_cgroup_stats())

    Map.merge(
      %{
        output_byte_count: info.bytes.stdout + info.bytes.stderr,
        cgroup: cgroup,
        stdout_byte_count: info.bytes.stdout,
        stderr_byte_count: info.bytes.stderr,
        uptime_ms: info.uptime_ms
      },
      figures
    )
  end

  @cgroup_stat_keys [
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

  # With :node the cgroup is on the node that runs the program: its files
  # are read and written there, by the same functions, through :erpc. A
  # node that is gone has no cgroup left, as after the program's exit:
  # `gone` is what the function says then.
  defp on_node(%{node: nil}, fun, args, _gone), do: apply(__MODULE__, fun, args)

  defp on_node(%{node: node}, fun, args, gone) do
    :erpc.call(node, __MODULE__, fun, args)
  catch
    :error, {:erpc, :noconnection} -> gone
  end

  @doc false
  # Read through Corral.Cgroup, the same Rust code the helper uses, in the
  # caller so the daemon never waits on sysfs: MuonTrap 2's map of files,
  # and Corral's figures (nil for what the group does not report, or all
  # of them without a cgroup).
  def cgroup_stats(dirs) do
    {_, none} = no_cgroup_stats()

    case Cgroup.open_dirs(dirs) do
      {:ok, group} ->
        figures =
          case Cgroup.stats(group) do
            {:ok, stats} -> Map.merge(none, stats)
            {:error, _} -> none
          end

        {Corral.Daemon.Stats.files(group, figures), figures}

      {:error, _} ->
        no_cgroup_stats()
    end
  end

  defp no_cgroup_stats, do: {%{}, Map.new(@cgroup_stat_keys, &{&1, nil})}

  @doc """
  The daemon's cgroup directory (absolute; the v2 one on hosts that have
  it), or `nil` when it runs without a cgroup or has not started.

  MuonTrap returns a path relative to `/sys/fs/cgroup`; Corral's is
  absolute because a hybrid host has one directory per hierarchy (all of
  them are in `containment/1`'s `:dirs`).
  """
  @spec cgroup_path(GenServer.server()) :: String.t() | nil
  def cgroup_path(server) do
    case GenServer.call(server, :info).dirs do
      [dir | _] -> dir
      [] -> nil
    end
  end

  @doc """
  The daemon's cgroup settings, read back from its cgroup files, as
  MuonTrap 2 returns them: a map with the `:cgroup` option's keys
  (`:memory_max`, `:cpu_weight`, `:cpu_max`, `:pids_max`, ...; see
  `Corral.cmd/3`), each present when the group has that file. `%{}` when
  the daemon has no cgroup (or its program has exited and the cgroup is
  gone).

  The map can be passed straight back as the `:cgroup` option, to start
  another daemon with the same settings. Read through
  `Corral.Cgroup.get/2`, so on cgroup v1 the v1 files are translated
  (`memory.limit_in_bytes` is `:memory_max`, and so on).

  Corral's own description of the containment (levels, directories,
  options) is `containment/1`.

  ## Examples

      iex> {:ok, pid} = Corral.Daemon.start_link("sleep", ["1000"], no_cgroup: true)
      iex> Corral.Daemon.cgroup_config(pid)
      %{}
      iex> GenServer.stop(pid)
      :ok
  """
  @spec cgroup_config(GenServer.server()) :: Corral.Options.cgroup_limits()
  def cgroup_config(server) do
    info = GenServer.call(server, :info)
    on_node(info, :cgroup_config_of, [info.dirs], %{})
  end

  @doc false
  def cgroup_config_of(dirs) do
    case Cgroup.open_dirs(dirs) do
      {:ok, group} -> Corral.Daemon.Stats.config(group)
      {:error, _} -> %{}
    end
  end

  @doc """
  How the daemon is contained: `:containment` (`:none`, `:cgroup_v2`,
  `:cgroup_v1`, `:hybrid`, or a level without the subreaper as
  `Corral.Result` lists them, as the helper reported it), `:dirs` (every
  cgroup directory, one per hierarchy), and the cgroup options it was
  started with (`:cgroup_path`, `:cgroup_base`, `:cgroup`,
  `:cgroup_controllers`, `:cgroup_sets`), and `:node`, the node that runs
  the program (and has the directories).
  """
  @spec containment(GenServer.server()) :: map()
  def containment(server) do
    info = GenServer.call(server, :info)
    common = info.options.common

    %{
      containment: info.containment,
      dirs: info.dirs,
      cgroup_path: common.cgroup_path,
      cgroup_base: common.cgroup_base,
      cgroup: common.cgroup,
      cgroup_controllers: common.cgroup_controllers,
      cgroup_sets: common.cgroup_sets,
      node: info.node || node()
    }
  end

  @doc """
  Reads a file of the daemon's cgroup, such as `"memory.max"` or
  `"cpu.stat"`, from the directory of the hierarchy that has that
  controller (through `Corral.Cgroup.read/2`), trailing whitespace trimmed.

  `file` must name a file in the group's own directory (`name.name`,
  letters, digits and `_`); anything else raises `ArgumentError`.

  ## Error reasons

    * `:no_cgroup` - the daemon runs without a cgroup (as MuonTrap 2
      says);
    * `:enoent` - no directory of the daemon has that file, or its cgroup
      is gone (the program has exited);
    * another `t:File.posix/0` from reading it.
  """
  @spec cgget(GenServer.server(), String.t()) ::
          {:ok, String.t()} | {:error, File.posix() | :no_cgroup}
  def cgget(server, file) do
    check_file!(file)
    in_group(server, :cgroup_read, [file])
  end

  # The function `fun` of the daemon's cgroup dirs and `args`, on the node
  # that has them.
  defp in_group(server, fun, args) do
    case GenServer.call(server, :info) do
      %{dirs: []} -> {:error, :no_cgroup}
      info -> on_node(info, fun, [info.dirs | args], {:error, :enoent})
    end
  end

  @doc false
  def cgroup_read(dirs, file) do
    with {:ok, group} <- Cgroup.open_dirs(dirs),
         {:ok, text} <- Cgroup.read(group, file),
         do: {:ok, String.trim_trailing(text)}
  end

  @doc false
  def cgroup_write(dirs, file, value) do
    with {:ok, group} <- Cgroup.open_dirs(dirs), do: Cgroup.write(group, file, value)
  end

  @doc """
  MuonTrap 1's form: `controller` is accepted for compatibility and
  checked, the file is found as in `cgget/2`.
  """
  @spec cgget(GenServer.server(), String.t(), String.t()) ::
          {:ok, String.t()} | {:error, File.posix() | :no_cgroup}
  def cgget(server, controller, file) do
    check_controller!(controller)
    cgget(server, file)
  end

  @doc """
  Writes `value` to a file of the daemon's cgroup, in the directory of the
  hierarchy that has that controller: for example `cgset(pid, "memory.max",
  "268435456")` (v2) or `cgset(pid, "memory.limit_in_bytes", ...)` (v1).
  File names are checked as in `cgget/2`.

  ## Error reasons

    * `:no_cgroup` - the daemon runs without a cgroup;
    * `:enoent` - no directory of the daemon has that file;
    * `:einval`, `:eacces`, ... - the kernel refused the write.
  """
  @spec cgset(GenServer.server(), String.t(), String.t() | integer()) ::
          :ok | {:error, File.posix() | :no_cgroup}
  def cgset(server, file, value) do
    check_file!(file)
    value = value!(value)
    in_group(server, :cgroup_write, [file, value])
  end

  @doc "MuonTrap 1's form of `cgset/3`; `controller` is checked."
  @spec cgset(GenServer.server(), String.t(), String.t(), String.t() | integer()) ::
          :ok | {:error, File.posix() | :no_cgroup}
  def cgset(server, controller, file, value) do
    check_controller!(controller)
    cgset(server, file, value)
  end

  defp check_file!(file) do
    unless is_binary(file) and file =~ ~r/\A[A-Za-z0-9_]+(\.[A-Za-z0-9_]+)+\z/ do
      raise ArgumentError, "invalid cgroup file name #{inspect(file)}"
    end
  end

  defp check_controller!(controller) do
    unless is_binary(controller) and controller =~ ~r/\A[A-Za-z0-9_=]+\z/ do
      raise ArgumentError, "invalid cgroup controller #{inspect(controller)}"
    end
  end

  defp value!(value) when is_integer(value), do: Integer.to_string(value)

  defp value!(value) when is_binary(value) do
    if String.contains?(value, <<0>>),
      do: raise(ArgumentError, "invalid cgroup value #{inspect(value)}"),
      else: value
  end

  defp value!(value), do: raise(ArgumentError, "invalid cgroup value #{inspect(value)}")

  @doc """
  Sends a signal to the daemon's program (not to the rest of its tree),
  for example `:sighup` to make it reload.

  ## Examples

      Corral.Daemon.signal(pid, :sighup)
      #=> :ok

  ## Error reasons

    * `:not_running` - the program has not started yet (`:wait_for`).

  An unknown signal name raises `ArgumentError`.
  """
  @spec signal(GenServer.server(), signal()) :: :ok | {:error, :not_running}
  def signal(server, signal), do: GenServer.call(server, {:signal, Helper.signal_name!(signal)})

  @doc """
  Writes `data` (iodata) to the program's stdin. Needs `stdin: true`.

  Returns once `data` is on its way. As a write to a pipe does, it waits
  while the program lags too far behind: at most `:stdio_window` bytes
  (1 MiB by default) that the program has not taken wait in the helper.

  ## Error reasons

    * `:closed` - the daemon has no stdin pipe (`stdin: false`), it was
      closed with `close_input/1`, or the program has not started.
  """
  @spec send_input(GenServer.server(), iodata()) :: :ok | {:error, :closed}
  def send_input(server, data),
    do: GenServer.call(server, {:send_input, iodata!(data)}, :infinity)

  defp iodata!(data) do
    IO.iodata_to_binary(data)
  rescue
    ArgumentError ->
      reraise ArgumentError, "expected iodata, got: #{inspect(data)}", __STACKTRACE__
  end

  @doc """
  Closes the program's stdin once what was sent is written, so it sees end
  of file. Error reasons as for `send_input/2`.
  """
  @spec close_input(GenServer.server()) :: :ok | {:error, :closed}
  def close_input(server), do: GenServer.call(server, :close_input, :infinity)

  ## GenServer

  @impl true
  def init({command, args, %DaemonOptions{} = options, remote}) do
    Process.flag(:trap_exit, true)

    # Erlang's :logger, which Elixir's Logger runs on, so that Corral needs
    # no :logger application of its own.
    :logger.update_process_metadata(
      Map.merge(Map.new(options.logger_metadata), %{
        corral_cmd: command,
        corral_args: Enum.join(args, " ")
      })
    )

    state = %__MODULE__{
      command: command,
      args: args,
      options: options,
      sinks: %{stdout: sink(options, :stdout), stderr: sink(options, :stderr)},
      remote: remote
    }

    case options.wait_for do
      nil ->
        case launch(state) do
          {:ok, state} -> {:ok, state}
          {:error, reason} -> {:stop, reason}
        end

      fun ->
        {:ok, %{state | wait_task: Task.async(fun)}}
    end
  end

  # Where each stream's lines go: nothing when the stream is not captured
  # or not logged, else the logger_fun or Logger.
  defp sink(options, stream) do
    captured? =
      case stream do
        :stdout -> DaemonOptions.stdout_captured?(options)
        :stderr -> DaemonOptions.stderr_captured?(options)
      end

    level = DaemonOptions.level(options, stream)

    cond do
      not captured? -> nil
      options.logger_fun != nil -> logger_fun(options.logger_fun)
      level == nil -> nil
      true -> log_line(level, options.log_prefix, options.log_transform)
    end
  end

  defp logger_fun(fun) when is_function(fun, 1), do: fun
  defp logger_fun({m, f}), do: fn line -> apply(m, f, [line]) end
  defp logger_fun({m, f, a}), do: fn line -> apply(m, f, [line | a]) end

  defp log_line(level, prefix, transform) do
    level = if level == :warn, do: :warning, else: level
    fn line -> :logger.log(level, [prefix, transform.(line)]) end
  end

  # With :node: the program starts there (see "On another node").
  defp launch(%__MODULE__{remote: %Remote{} = remote} = s) do
    with {:ok, remote, started} <- Remote.start(remote, s.command, s.args, s.options) do
      {:ok, running(%{s | remote: remote}, started)}
    end
  end

  # Opens the helper's port (linked: see "The tree dies with the daemon")
  # and waits for its first frame.
  defp launch(%__MODULE__{options: options} = s) do
    common = options.common
    client = Client.new(common.stdio_window, options.stdin)

    with {:ok, program} <- Helper.find_program(s.command),
         argv = Helper.argv(program, s.args, common, DaemonOptions.stdio(options)),
         {:ok, port, started, client} <-
           Helper.start(argv, common.parallelism, client, @start_timeout) do
      {:ok, running(%{s | port: port, client: client}, started)}
    end
  end

  # What the S frame (here or on the other node) says of the program.
  defp running(s, started) do
    %{
      s
      | os_pid: started.os_pid,
        containment: started.containment,
        dirs: started.paths,
        started_at: System.monotonic_time(:millisecond)
    }
  end

  @impl true
  def handle_call(:os_pid, _from, s), do: {:reply, s.os_pid || :error, s}

  def handle_call(:info, _from, s) do
    uptime = if s.started_at, do: System.monotonic_time(:millisecond) - s.started_at, else: 0

    info = %{
      bytes: s.bytes,
      dirs: s.dirs,
      containment: s.containment,
      options: s.options,
      uptime_ms: uptime,
      node: if(s.remote, do: s.remote.node)
    }

    {:reply, info, s}
  end

  def handle_call({:signal, name}, _from, %{remote: %Remote{process: p} = r} = s) when p != nil,
    do: {:reply, Remote.signal(r, name), s}

  def handle_call({:signal, name}, _from, s), do: {:reply, Helper.signal(s.port, name), s}

  # The program has exited: no stdin to write.
  def handle_call({:send_input, _data}, _from, %{stopping: {_, _, _, _}} = s),
    do: {:reply, {:error, :closed}, s}

  def handle_call(:close_input, _from, %{stopping: {_, _, _, _}} = s),
    do: {:reply, {:error, :closed}, s}

  # With :node, the program's Corral.Process there takes it (and says
  # :closed without stdin: true).
  def handle_call({:send_input, data}, from, %{remote: %Remote{process: p} = r} = s)
      when p != nil,
      do: {:noreply, %{s | remote: Remote.write(r, from, data)}}

  def handle_call(:close_input, from, %{remote: %Remote{process: p} = r} = s) when p != nil,
    do: {:noreply, %{s | remote: Remote.close_input(r, from)}}

  # Before the program starts (:wait_for) there is no stdin to write.
  def handle_call({:send_input, _data}, _from, %{client: nil} = s),
    do: {:reply, {:error, :closed}, s}

  def handle_call({:send_input, data}, from, s),
    do: s.client |> Client.write(from, data) |> events(s)

  def handle_call(:close_input, _from, %{client: nil} = s),
    do: {:reply, {:error, :closed}, s}

  # After whatever send_input calls wait, in order; later ones are refused.
  def handle_call(:close_input, from, s),
    do: s.client |> Client.close_input(from) |> events(s)

  @impl true
  # Every frame from the helper after S: output, then one X.
  def handle_info({port, {:data, body}}, %{port: port} = s),
    do: s.client |> Client.handle(body) |> events(s)

  # The helper exited without an X frame, which it sends before it exits on
  # its own: it was killed (SIGKILL, the OOM killer). Its tree may live on
  # in its cgroup, which the client's :cleanup event has cleaned up.
  def handle_info({port, {:exit_status, status}}, %{port: port} = s),
    do: s.client |> Client.gone({:helper_exit, status}) |> events(s)

  # The linked port failed (EPIPE writing to a helper that died): trapped,
  # so it reaches us as a message rather than killing the daemon.
  def handle_info({:EXIT, port, reason}, %{port: port} = s),
    do: s.client |> Client.gone({:helper_closed, reason}) |> events(s)

  # :wait_for returned: start the program now.
  def handle_info({ref, _result}, %{wait_task: %Task{ref: ref}} = s) do
    Process.demonitor(ref, [:flush])

    case launch(%{s | wait_task: nil}) do
      {:ok, s} -> {:noreply, s}
      {:error, reason} -> {:stop, reason, %{s | wait_task: nil}}
    end
  end

  # :wait_for raised or exited: the daemon fails as a failed start would.
  def handle_info({:DOWN, ref, :process, _, reason}, %{wait_task: %Task{ref: ref}} = s) do
    {:stop, reason, %{s | wait_task: nil}}
  end

  # The :wait_for Task's exit signal (it is linked, and exits are trapped).
  # Its result or :DOWN above says how it went; a crash stops the daemon
  # with the Task's reason, as the link would without trapping.
  def handle_info({:EXIT, pid, reason}, %{wait_task: %Task{pid: pid}} = s) do
    {:stop, reason, %{s | wait_task: nil}}
  end

  # Exit signals of other linked processes (the finished :wait_for Task, or
  # one the user linked): ignored when normal; any other reason stops the
  # daemon, as it would a process that does not trap exits.
  def handle_info({:EXIT, _pid, :normal}, s), do: {:noreply, s}
  def handle_info({:EXIT, _pid, reason}, s), do: {:stop, reason, s}

  # The program has exited: may the daemon stop now?
  def handle_info(:stop_when_ready, %{stopping: {_, _, _, _}} = s), do: await_helper(s)

  # A stream was quiet for @quiet_ms with an unfinished line: it goes out.
  def handle_info({:quiet, stream, token}, s) when stream in [:stdout, :stderr] do
    case Map.fetch!(s.quiet, stream) do
      {_timer, ^token} ->
        s.partial |> Map.fetch!(stream) |> Lines.flush(Map.fetch!(s.sinks, stream))

        {:noreply,
         %{
           s
           | partial: Map.put(s.partial, stream, ""),
             quiet: Map.put(s.quiet, stream, {nil, nil})
         }}

      _ ->
        {:noreply, s}
    end
  end

  # With :node: an answer of the program's Corral.Process there (output,
  # the end, a lost node, a reply to send_input/close_input).
  def handle_info(message, %{remote: %Remote{process: p} = r} = s) when p != nil do
    case Remote.handle(r, message) do
      {events, r} -> events(events, %{s | remote: r})
      :unknown -> {:noreply, s}
    end
  end

  # Anything else (a message a user sent) is not ours to act on.
  def handle_info(_message, s), do: {:noreply, s}

  # Performs the client's events in order; the last one of a run (X, or a
  # failure) stops the daemon.
  defp events({events, client}, s), do: events(events, %{s | client: client})

  defp events([], s), do: {:noreply, s}

  # Output: each line goes to its sink, then the bytes are consumed, so the
  # helper sends more only as fast as the logger takes it.
  # With :node, the next read goes to the other node instead: that acks
  # the chunk to its helper.
  defp events([{:output, stream, data} | rest], %{remote: %Remote{} = r} = s) do
    s = output(s, stream, data)
    events(rest, %{s | remote: Remote.consumed(r)})
  end

  defp events([{:output, stream, data} | rest], s) do
    s = output(s, stream, data)
    {acks, client} = Client.consumed(s.client, byte_size(data))
    events(acks ++ rest, %{s | client: client})
  end

  defp events([{:send, frame} | rest], s) do
    Helper.send_frame(s.port, frame)
    events(rest, s)
  end

  defp events([{:reply, from, reply} | rest], s) do
    GenServer.reply(from, reply)
    events(rest, s)
  end

  defp events([{:cleanup, started} | rest], s) do
    Helper.cleanup_after_death(started)
    events(rest, %{s | port: nil})
  end

  # X: the program ended and all its output is in. After X the helper waits
  # for the port to close (docs/protocol.md, "Ending the tree"), then
  # removes the tree's cgroups and exits; the daemon stops once it has (see
  # "A program that exits at once").
  defp events([{:exit, report} | _], s) do
    s = flush_partials(s)
    # With :node the process there has closed its port already; its
    # helper is waited for there.
    helper = if s.port, do: helper_os_pid(s.port), else: s.remote && s.remote.helper
    if s.port, do: Helper.close(s.port)
    s = %{s | port: nil, remote: s.remote && %{s.remote | process: nil}}

    reason =
      case {report.reason, report.exit_status} do
        {:exit, 0} ->
          :logger.info("#{s.command}: Process exited successfully")
          :normal

        {_, status} ->
          :logger.error("#{s.command}: Process exited with status #{status}#{why(report)}")
          s.options.exit_status_to_reason.(status)
      end

    deadline =
      System.monotonic_time(:millisecond) + s.options.common.delay_to_sigkill + @stop_margin

    await_helper(%{s | stopping: {reason, helper, deadline, 1}})
  end

  defp events([{:error, reason, _details} | _], s), do: {:stop, reason, s}

  defp helper_os_pid(port) do
    case Port.info(port, :os_pid) do
      {:os_pid, pid} -> pid
      nil -> nil
    end
  end

  # The daemon stops once its helper has exited (or its deadline passed)
  # and @min_uptime_ms after its program started; until then it answers
  # calls as before. Calls already waiting when it stops are answered
  # first, so none of them exits its caller with the stop reason.
  defp await_helper(%{stopping: {reason, helper, deadline, poll}} = s) do
    now = System.monotonic_time(:millisecond)
    helper_gone? = helper == nil or now >= deadline or not running?(helper)
    uptime_left = (s.started_at || now) + @min_uptime_ms - now

    cond do
      not helper_gone? ->
        Process.send_after(self(), :stop_when_ready, poll)
        {:noreply, %{s | stopping: {reason, helper, deadline, min(poll * 2, @helper_poll_ms)}}}

      uptime_left > 0 ->
        Process.send_after(self(), :stop_when_ready, uptime_left)
        {:noreply, s}

      true ->
        answer_waiting_calls(s)
        {:stop, reason, s}
    end
  end

  @doc false
  # Whether `pid` is a process that has not exited (a zombie has). A
  # helper on another node (:node), `{node, pid}`, is looked at there; a
  # node that is gone has no helper left.
  def running?({node, pid}) do
    :erpc.call(node, __MODULE__, :running?, [pid])
  catch
    :error, {:erpc, _} -> false
  end

  def running?(pid) do
    case File.read("/proc/#{pid}/stat") do
      # The state follows the command name, which may itself hold ") ".
      {:ok, stat} -> stat |> String.split(") ") |> List.last() |> String.first() != "Z"
      {:error, _} -> false
    end
  end

  defp answer_waiting_calls(s) do
    receive do
      {:"$gen_call", from, request} ->
        case handle_call(request, from, s) do
          {:reply, reply, _s} -> GenServer.reply(from, reply)
          {:noreply, _s} -> :ok
        end

        answer_waiting_calls(s)
    after
      0 -> :ok
    end
  end

  defp why(%{reason: reason}) when reason in [:exit, :signal], do: ""
  defp why(%{reason: reason}), do: " (ended by Corral: #{reason})"

  defp output(s, stream, data) do
    s = %{s | bytes: Map.update!(s.bytes, stream, &(&1 + byte_size(data)))}

    case Map.fetch!(s.sinks, stream) do
      nil ->
        s

      sink ->
        partial = Lines.each(Map.fetch!(s.partial, stream), data, sink)
        quiet_timer(%{s | partial: Map.put(s.partial, stream, partial)}, stream)
    end
  end

  # An unfinished line waits @quiet_ms for more output on its stream, then
  # goes to the sink as it is: a prompt such as "name? " has no newline to
  # wait for. Each chunk starts the wait again; a stale timer's token no
  # longer matches.
  defp quiet_timer(s, stream) do
    {timer, _token} = Map.fetch!(s.quiet, stream)
    if timer, do: Process.cancel_timer(timer)

    entry =
      if Map.fetch!(s.partial, stream) == "" do
        {nil, nil}
      else
        token = make_ref()
        {Process.send_after(self(), {:quiet, stream, token}, @quiet_ms), token}
      end

    %{s | quiet: Map.put(s.quiet, stream, entry)}
  end

  defp flush_partials(s) do
    for stream <- [:stdout, :stderr], sink = Map.fetch!(s.sinks, stream), sink != nil do
      s.partial |> Map.fetch!(stream) |> Lines.flush(sink)
    end

    %{s | partial: %{stdout: "", stderr: ""}}
  end

  @impl true
  def terminate(_reason, s) do
    if s.wait_task, do: Task.shutdown(s.wait_task, :brutal_kill)
    if s.port, do: stop_tree(s)

    if s.remote && s.remote.process,
      do: Remote.stop(s.remote, s.options.common.delay_to_sigkill + @stop_margin)

    if s.client, do: s.client |> Client.gone(:stopped) |> replies()
    :ok
  end

  # Q asks the helper to end the tree; it still delivers output (under the
  # window, so it is acked) and then X. Waiting for X means the tree is gone
  # when the daemon is, and a restart never overlaps it. The port is closed
  # in any case, which ends the tree too.
  defp stop_tree(s) do
    Helper.send_frame(s.port, :stop)

    deadline =
      System.monotonic_time(:millisecond) + s.options.common.delay_to_sigkill + @stop_margin

    s = drain(s, deadline)
    if s.client, do: Client.close_pipes(s.client)
    if s.port, do: Helper.close(s.port)
  end

  defp drain(%{port: port} = s, deadline) do
    left = max(deadline - System.monotonic_time(:millisecond), 0)

    receive do
      {^port, {:data, body}} ->
        s.client |> Client.handle(body) |> drained(s, deadline)

      {^port, {:exit_status, status}} ->
        s.client |> Client.gone({:helper_exit, status}) |> drained(s, deadline)

      {:EXIT, ^port, reason} ->
        s.client |> Client.gone({:helper_closed, reason}) |> drained(s, deadline)
    after
      left -> s
    end
  end

  # The client's events while the tree ends: output is logged quietly and
  # acked, replies go out, and X or a failure ends the wait.
  defp drained({events, client}, s, deadline),
    do: drained(events, %{s | client: client}, deadline)

  defp drained([], s, deadline), do: drain(s, deadline)

  defp drained([{:output, stream, data} | rest], s, deadline) do
    s = output_quietly(s, stream, data)
    {acks, client} = Client.consumed(s.client, byte_size(data))
    drained(acks ++ rest, %{s | client: client}, deadline)
  end

  defp drained([{:send, frame} | rest], s, deadline) do
    Helper.send_frame(s.port, frame)
    drained(rest, s, deadline)
  end

  defp drained([{:reply, from, reply} | rest], s, deadline) do
    GenServer.reply(from, reply)
    drained(rest, s, deadline)
  end

  defp drained([{:cleanup, started} | rest], s, deadline) do
    Helper.cleanup_after_death(started)
    drained(rest, %{s | port: nil}, deadline)
  end

  defp drained([{:exit, _report} | _], s, _deadline) do
    output_quietly_flush(s)
    Helper.close(s.port)
    %{s | port: nil}
  end

  defp drained([{:error, _reason, _details} | _], s, _deadline), do: s

  defp replies({events, _client}) do
    for {:reply, from, reply} <- events, do: GenServer.reply(from, reply)
    :ok
  end

  # Output while the tree ends is still logged, unless logging is what
  # failed: then it is dropped, and the tree still ends.
  defp output_quietly(s, stream, data) do
    output(s, stream, data)
  catch
    _, _ -> %{s | sinks: %{stdout: nil, stderr: nil}}
  end

  defp output_quietly_flush(s) do
    flush_partials(s)
  catch
    _, _ -> :ok
  end
end

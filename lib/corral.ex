defmodule Corral do
  @moduledoc """
  Runs OS programs from the BEAM without leaking them.

  Every program runs under its own `corral` helper, a small Rust binary
  between the VM and the child. The helper puts the child in its own process
  group and, whenever the system lets it, in a fresh cgroup under the VM's
  own (cgroup v2, v1 or the hybrid of both); it adopts orphaned
  grandchildren as a child subreaper, and ends the whole tree (freeze or
  stop, SIGTERM, SIGKILL) as soon as its port closes: when the calling
  process dies, when the VM dies, or when a limit runs out. The
  child's output reaches the caller through a flow-controlled window, so a
  fast child cannot fill the VM's memory and no output is lost at exit.

  Containment needs no setup: where no cgroup can be created (no
  delegation, a read-only hierarchy) the helper falls back to process group
  and subreaper alone. The limits of the whole tree (`:timeout`,
  `:cpu_time`, `:memory`, `:max_processes`, `:idle_timeout`) work either
  way: the helper uses the cgroup's own limits where it can and polls
  `/proc` where it cannot. Raw cgroup limits (`:cgroup`) do need a cgroup,
  and fail with a `Corral.Error` when there is none.

  ## Setup

  Corral has no Hex dependencies. Its Mix compiler builds the helper and
  the cgroup NIF with cargo (Rust 1.91 or newer) into the application's
  build directory (`_build/<env>/lib/corral/priv`, never the source tree),
  and says so in one message, with what to install, when cargo is missing
  or too old. It builds for the target Nerves sets up (`MIX_TARGET` with
  `TARGET_ARCH`, `TARGET_OS` and `TARGET_ABI`, linked with `CC`), or for
  the Rust target in `CORRAL_TARGET`, and refuses binaries of the wrong
  architecture. `CARGO` and `CARGO_TARGET_DIR` are honoured. Set
  `CORRAL_SKIP_CARGO=1` to skip cargo (artifacts already in the target
  directory are still copied), and `CORRAL_HELPER=/path/to/corral` to use a
  helper from elsewhere at run time.

  ## Examples

  `cmd/3` takes the arguments of `System.cmd/3` and returns the same shape:

      iex> Corral.cmd("echo", ["hello"])
      {"hello\\n", 0}

      iex> Corral.cmd("sh", ["-c", "exit 3"])
      {"", 3}

      iex> Corral.cmd("cat", [], input: "from stdin")
      {"from stdin", 0}

      iex> Corral.cmd("sh", ["-c", "echo partial; sleep 10"], timeout: 100)
      {"partial\\n", :timeout}

  `run/3` takes the same options and says why the run ended and what the
  whole tree used, in a `Corral.Result`:

      iex> {:ok, result} = Corral.run("sh", ["-c", "echo hi"])
      iex> {result.output, result.exit_status, result.reason}
      {"hi\\n", 0, :exit}

      iex> {:ok, result} = Corral.run("sleep", ["10"], timeout: 100)
      iex> {result.reason, result.usage.wall_time < 10_000_000}
      {:timeout, true}
  """

  alias Corral.Error
  alias Corral.Options
  alias Corral.Helper
  alias Corral.Result
  alias Corral.Runner

  @typedoc "The limit that ended a `cmd/3` run, returned in place of the exit status."
  @type limit_reason :: :timeout | :cpu_time | :memory | :max_processes | :idle

  @typedoc "Why `run/3` could not run the child; see `run/3`."
  @type error_reason :: :enoent | Error.reason()

  @doc """
  Runs `command` with `args` and collects its output, like `System.cmd/3`.

  `command` is looked up with `:os.find_executable/1` unless it is an
  absolute path, and executed directly, never through a shell. Returns
  `{collectable_result, exit_status}`, where `exit_status` is the exit code,
  or 128 + the signal number when a signal killed the child. When one of the
  limit options below ended the run, it is the limit's name instead, with
  the output collected until then: `:timeout`, `:cpu_time`, `:memory`,
  `:max_processes`, or `:idle` for `:idle_timeout`. `run/3` returns both
  the status and the reason, with what the tree used.

  The calling process owns the helper: if it dies, the whole child tree is
  ended within `:delay_to_sigkill` of its death.

  ## Options

  Shared with `System.cmd/3` (and `MuonTrap.cmd/3`):

    * `:into` - a `Collectable` for the output. Defaults to `""`.
    * `:cd` - the child's working directory.
    * `:env` - `{key, value}` pairs to set; a `nil` value unsets `key`.
    * `:arg0` - the child's `argv[0]`.
    * `:stderr_to_stdout` - `true` merges stderr into the output, like
      `2>&1`. By default the child's stderr goes to the VM's stderr.
      No effect with `:capture_stderr_only`, as in MuonTrap.
    * `:parallelism` - passed to `Port.open/2`.
    * `:lines` - a positive integer: `:into` gets each line of output
      without its `"\n"` (and the unfinished last line at the end), as
      with `System.cmd/3`'s `:lines` of Elixir 1.15, on every Elixir
      version. Lines are never cut: the number is only checked.
    * `:use_stdio` - `true`, the default. `false`, which gives the program
      the VM's terminal, raises `ArgumentError`: Corral always reads the
      program's output through its helper.

  Also shared with MuonTrap:

    * `:delay_to_sigkill` - milliseconds between SIGTERM and SIGKILL when
      the tree is ended, at most 2^31 - 1. Defaults to 500.
    * `:stdio_window` - the most output bytes in flight between the helper
      and the caller, and the most `:input` bytes sent ahead of what the
      child took. Defaults to 1 MiB (1_048_576): big enough to stream at
      pipe speed, small enough to bound the VM's and the helper's memory.
    * `:capture_stderr_only` - collect stderr into `:into` and discard
      stdout. Wins over `:stderr_to_stdout`, as in MuonTrap.
    * `:uid`, `:gid` - user and group (number or name) to run the child as.
      Without `:gid` the child takes the user's primary group from its
      passwd entry, for a number as for a name; a numeric `:uid` with no
      passwd entry needs `:gid` (`ArgumentError` without it), so that the
      child never keeps root's group.
    * `:groups` - supplementary groups (numbers or names). With `:uid` and
      no `:groups`, the supplementary list is cleared. As MuonTrap checks
      them: a number is from 1 to 4_294_967_294 and a name is not empty,
      not `"0"` and has no comma (root's group 0 is never a supplementary
      group here).

  Limits of the whole tree: the child and every descendant, including
  double-forked ones and those already reaped. Each is a positive integer
  (at most 2^64 - 1 milliseconds or bytes, 4_194_304 processes, the
  kernel's `PID_MAX_LIMIT`) or `:infinity`, the default (no limit and no
  polling). When one is hit
  the tree is ended (SIGTERM, then SIGKILL after `:delay_to_sigkill`):

    * `:timeout` - wall time in milliseconds; `{partial_output, :timeout}`.
    * `:cpu_time` - user + system CPU milliseconds of the whole tree:
      `{partial_output, :cpu_time}`. Exact with or without a cgroup: the
      helper adds the CPU of the live processes (from `/proc`) to that of
      the reaped ones, checking again as the budget runs out.
    * `:memory` - bytes: the cgroup's memory limit when the system can set
      one (the kernel's OOM killer then ends the child), else the helper
      polls the sum of the tree's resident memory. `{partial_output,
      :memory}`.
    * `:max_processes` - processes alive at once: the cgroup's `pids.max`
      when possible (forks beyond it fail), else the tree's forks as the
      kernel reports them (process events connector, which needs root or
      `CAP_NET_ADMIN`), else a polled count.
      `{partial_output, :max_processes}`.
    * `:idle_timeout` - milliseconds with neither CPU progress nor output
      in the whole tree, i.e. a hung child: `{partial_output, :idle}`. A
      busy child is never idle.

  Corral's own:

    * `:clear_env` - `true` starts the child with an empty environment, to
      which `:env` adds: `env` then prints only what `:env` set. A boolean
      next to `:env` rather than an `env: :clear`, so that `:env` keeps
      `System.cmd/3`'s shape and clearing and setting compose.
    * `:pty` - `true` or `{cols, rows}` (each 1 to 65535; `true` is
      `{80, 24}`): the child runs on a pseudo-terminal of its own, its
      controlling terminal, which is its stdin, stdout and stderr. The
      output is what the terminal produced (`"\r\n"` line ends, echoed
      input), under the same `:stdio_window`; `:input` is typed into the
      terminal and its end is the terminal's end-of-file character
      (Ctrl-D); without `:input` the terminal is at end of file from the
      start. `Corral.Process.resize/3` changes the size. Excludes
      `:separate_stderr` and `:capture_stderr_only`.
    * `:nice` - the child's nice value, -20 (highest priority) to 19.
      Lower than the VM's needs privilege (`CAP_SYS_NICE`); a refusal is
      `{:error, {:spawn_failed, :eacces, "nice"}}`, and nothing runs.
    * `:kill_signal` - the first signal sent when the tree is ended
      (`:sigint`, `:sigquit`, `:sighup`, `:sigusr1`...; any signal whose
      default action ends a process), instead of SIGTERM; SIGKILL still
      follows after `:delay_to_sigkill`. A child that exits on it is never
      sent SIGKILL.
    * `:no_cgroup` - `true` keeps the child out of cgroups: process group
      and subreaper containment only, and polled limits. Excludes every
      cgroup option below. Defaults to `false`.
    * `:input` - a binary, iodata, or an enumerable of iodata written to the
      child's stdin, which is then closed. An enumerable is pulled as the
      child reads, at most `:stdio_window` ahead, so it may be endless.
      Without it the child's stdin is `/dev/null`.
    * `:node` - the node that runs the program (its helper and tree), or
      `:any` for the least loaded node running `:corral` (see
      `Corral.Cluster`). Output comes back under the same window, `:into`
      collects here, and the tree ends when the caller dies or its
      connection to that node is lost. A node that goes away during the
      run gives `{:error, {:nodedown, node}}` (`Corral.Error` from
      `cmd/3`). stderr, kept apart with `run/3`'s `:separate_stderr`,
      shares stdout's window. See the README, "Other nodes", for
      placement, versions and security.
    * `:nodes` - the nodes `node: :any` picks from. Defaults to all.

  Cgroups, with MuonTrap's names. Paths are relative to each hierarchy's
  root (a leading `/` means the same), with no `.`, `..` or empty
  components. Without any of these the child still gets a fresh cgroup
  under the VM's own when one can be made, and it is removed at exit.

    * `:cgroup_path` - run in exactly this cgroup. It is created if missing
      (and then removed at exit), and used as it is if it exists and is
      empty; one run at a time (`{:cgroup, :ebusy, message}` otherwise).
    * `:cgroup_base` - run in a fresh, uniquely named child of this cgroup,
      removed at exit. Excludes `:cgroup_path`.
    * `:cgroup` - limits, a map or keyword list with MuonTrap 2's keys
      (the kernel's cgroup v2 file names with `_`):
      * `:memory_max`, `:memory_high`, `:memory_swap_max`, `:memory_min`,
        `:memory_low` - bytes (up to 2^64 - 1), or `:max`. `:memory_max`
        is at least 1, and the helper refuses one below a page
        (`{:cgroup, :einval, message}`): the program could not even load;
      * `:memory_oom_group`, `:cpu_idle` - booleans;
      * `:cpu_max` - `{quota_us, period_us}`, `:max` or `{:max, period_us}`
        (quota 1000 to 17_592_186_044_415, the kernel's largest, period
        1000 to 1_000_000);
      * `:cpu_weight`, `:io_weight` - 1 to 10_000;
      * `:pids_max` - a number of tasks from 1 (the program itself) to
        4_194_304, or `:max`;
      * `:cpuset_cpus`, `:cpuset_mems` - lists such as `"0-1,3"`.

      On cgroup v1 they are translated to the v1 files
      (`memory.limit_in_bytes`, `cpu.cfs_quota_us`, `cpu.shares`, ...); a
      key with no v1 equivalent (`:memory_min`, `:memory_low`,
      `:memory_oom_group`, `:io_weight`) fails with `Corral.Error`.
    * `:cgroup_controllers` - v1 controllers to join (MuonTrap 1), such as
      `["memory"]`.
    * `:cgroup_sets` - raw writes `{controller, file, value}` made before
      the child starts (MuonTrap 1), such as
      `{"memory", "memory.limit_in_bytes", "268435456"}`. `value` is a
      binary or an integer.

  An unknown option or a value of the wrong type raises `ArgumentError`
  naming both and saying what was expected (an unknown option within two
  edits of a known one says which: "did you mean :timeout?"); so does an
  unknown `:cgroup` key, and so does `:separate_stderr`, which only
  `run/3` has. `Corral.Options.validate/4` checks options without running
  anything.

  ## Examples

      iex> {chunks, 0} = Corral.cmd("printf", ["a\\nb\\n"], into: [])
      iex> IO.iodata_to_binary(chunks)
      "a\\nb\\n"

      iex> Corral.cmd("sh", ["-c", "echo out; echo err >&2"], stderr_to_stdout: true)
      {"out\\nerr\\n", 0}

      iex> Corral.cmd("sh", ["-c", "echo $GREETING"], env: [{"GREETING", "hi"}])
      {"hi\\n", 0}

      iex> Corral.cmd("wc", ["-c"], input: Stream.map(1..3, fn _ -> "abc" end))
      {"9\\n", 0}

  ## Error reasons

  The same as `System.cmd/3` where they overlap:

    * `FunctionClauseError` when `command` is not a binary or `args` not a
      list.
    * `ArgumentError` when `command` or an argument contains a null byte,
      when an argument is not a binary, or for a bad option.
    * `ErlangError` with `:enoent` when the program is not found.

  Failures of the helper or of starting the child raise `Corral.Error` with
  a matchable `:reason`, for example `{:spawn_failed, :eacces, "exec"}` or
  `{:helper_exit, 65}`; see `Corral.Error`. `cmd/3` never exits its caller
  because the helper failed.

  A cgroup that was asked for (`:cgroup_path`, `:cgroup_base`, `:cgroup`,
  `:cgroup_controllers`, `:cgroup_sets`) but cannot be set up raises
  `Corral.Error` with `{:cgroup, errno, message}` before the child runs:
  `errno` is a `t:File.posix/0` atom (`:eacces` for a hierarchy we may not
  write, `:einval` for a limit the kernel or the layout rejects) and
  `message` says what failed and how to fix it, for example
  `"memory_min has no equivalent on the hybrid layout"`.

  Memory limits follow systemd's `OOMPolicy=stop`: when the kernel's OOM
  killer kills *any* process of the tree under its cgroup memory limit
  (`:memory`, `:cgroup` `:memory_max`, or a raw `:cgroup_sets` memory
  limit), the whole tree ends (SIGTERM, then SIGKILL after
  `:delay_to_sigkill`) and `run/3` reports `reason: :memory`, even when the
  main child exits 0 afterwards. On cgroup v2 the group also gets
  `memory.oom.group = 1` unless `:memory_oom_group` says otherwise. With the
  `:memory` option `cmd/3` returns `:memory`; with a `:cgroup` or raw limit
  it returns the main child's own status, as a shell would report it (137
  when it was the one killed, 143 when it was ended for another's kill).

  `:cgroup_path` names a cgroup for one run at a time: a path that another
  live run holds, or that has processes in it already, raises
  `Corral.Error` with `{:cgroup, :ebusy, message}` naming the path, and the
  other run goes on untouched. `:cgroup_sets` never writes `cgroup.procs`,
  `cgroup.threads`, `cgroup.kill`, `cgroup.freeze`,
  `cgroup.subtree_control` or `tasks` (`ArgumentError`): ending a run
  kills everything in its cgroup, so nothing else may be moved into it.
  Teardown never signals PID 1, the VM or the VM's ancestors.

  When the helper itself dies without an exit report (SIGKILL, the OOM
  killer), `cmd/3` ends what it can reach: the child (which the kernel also
  kills when its helper dies, `PR_SET_PDEATHSIG`), every process in the
  child's process group, and everything in the cgroups the helper made,
  which it then removes; then it raises `Corral.Error` with
  `{:helper_exit, status}`. Without a cgroup, a descendant that left the
  process group (`setsid`, a double-forked daemon) cannot be found and
  survives; see the README, "What can escape".
  """
  @spec cmd(binary(), [binary()], keyword()) ::
          {Collectable.t(), non_neg_integer() | limit_reason()}
  def cmd(command, args, opts \\ []) when is_binary(command) and is_list(args) do
    Options.check_command!(command, args, "execute Corral.cmd/3", "Corral.cmd/3")

    if Corral.Remote.remote?(opts),
      do: remote_cmd(command, args, opts),
      else: local_cmd(command, args, opts)
  end

  defp local_cmd(command, args, opts) do
    program =
      case Helper.program(command) do
        {:ok, program} -> program
        {:error, :enoent} -> :erlang.error(:enoent, [command, args, opts])
      end

    options =
      try do
        Options.new!(opts)
      rescue
        # As System.cmd/3 does: a missing program fails before the options
        # are read. Helper.program/1 may have left the lookup to the helper.
        e in ArgumentError ->
          if Helper.find_program(command) == {:error, :enoent},
            do: :erlang.error(:enoent, [command, args, opts]),
            else: reraise(e, __STACKTRACE__)
      end

    if options.separate_stderr do
      raise ArgumentError,
            "invalid option :separate_stderr with value true: Corral.cmd/3 has one output, " <>
              "use Corral.run/3"
    end

    case Runner.run(program, args, options, command) do
      {:ok, _started, report, %{output: output}} -> {output, cmd_status(report, options)}
      {:error, :enoent} -> :erlang.error(:enoent, [command, args, opts])
      {:error, %Error{} = error} -> raise error
    end
  end

  @doc """
  Runs `command` with `args` under the limits in `opts`, and reports how it
  ended and what its whole tree used.

  Takes the same options as `cmd/3` (see there for the limits) plus:

    * `:separate_stderr` - `true` collects stdout and stderr apart, into
      the result's `:stdout` and `:stderr` fields, each into its own
      `Collectable.into(opts[:into])` (so `:into` should be a value, such
      as `""` or `[]`, not one file for both). Excludes `:stderr_to_stdout`
      and `:capture_stderr_only`. Defaults to `false`.

  Returns `{:ok, %Corral.Result{}}` whenever the child ran, whatever ended
  it: a limit is not an error but a `:reason` (see `Corral.Result`).

  ## Examples

      iex> {:ok, result} = Corral.run("sh", ["-c", "echo out; echo err >&2; exit 2"],
      ...>   separate_stderr: true)
      iex> {result.stdout, result.stderr, result.exit_status, result.reason}
      {"out\\n", "err\\n", 2, :exit}

      iex> {:ok, result} = Corral.run("sh", ["-c", "while :; do :; done"], cpu_time: 200)
      iex> result.reason
      :cpu_time
      iex> result.usage.user_time + result.usage.system_time >= 200_000
      true

      iex> Corral.run("corral-no-such-program", [])
      {:error, :enoent}

  ## Error reasons

  Bad arguments and options raise `ArgumentError`, as for `cmd/3`. When the
  child could not be run, or the helper failed, `run/3` returns
  `{:error, reason}` instead of raising:

    * `:enoent` - the program was not found.
    * `{:spawn_failed, errno, stage}` - the child could not be started:
      `errno` is a `t:File.posix/0` atom (a string for an errno the VM has
      no name for), `stage` the step that failed: `"exec"`, `"chdir"`,
      `"setgroups"`, `"setgid"`, `"setuid"`, `"user"`, `"nice"`, `"pty"`
      or `"spawn"`. For
      example `{:spawn_failed, :eacces, "exec"}` for a file that is not
      executable, and `{:spawn_failed, :e2big, "exec"}` for arguments and
      environment execve(2) would refuse (checked before any helper
      starts, against the stack rlimit's share and 128 KiB a string).
    * `{:cgroup, errno, message}` - a cgroup was asked for and cannot be
      set up (see `cmd/3`); the child never ran.
    * `{:helper_unavailable, posix, path}` - the helper binary could not
      be started.
    * `{:helper_exit, status}` - the helper exited without an exit report
      (137 when something SIGKILLed it). The cgroups it had made are
      removed, with every process still in them.
    * `{:helper_closed, reason}` - the port to the helper closed without an
      exit report; cleaned up as above.
    * `{:protocol, detail}` - the helper broke the protocol.

  These are `Corral.Error`'s reasons, which `cmd/3` raises.
  """
  @spec run(binary(), [binary()], keyword()) :: {:ok, Result.t()} | {:error, error_reason()}
  def run(command, args, opts \\ []) when is_binary(command) and is_list(args) do
    Options.check_command!(command, args, "execute Corral.run/3", "Corral.run/3")
    options = Options.new!(opts)

    if Corral.Remote.remote?(opts) do
      Corral.Remote.run(command, args, options, opts)
    else
      local_run(command, args, options)
    end
  end

  defp local_run(command, args, options) do
    with {:ok, program} <- Helper.program(command),
         {:ok, started, report, outputs} <- Runner.run(program, args, options, command) do
      {:ok, Result.new(started, report, outputs)}
    else
      {:error, :enoent} -> {:error, :enoent}
      {:error, %Error{reason: reason}} -> {:error, reason}
    end
  end

  @doc """
  The absolute path of the `corral` helper binary (`CORRAL_HELPER` when
  set), for running it directly from tests and scripts, as
  `MuonTrap.muontrap_path/0` is used. `corral --help` lists its options;
  `docs/helper.md` describes them.

  ## Examples

      iex> File.exists?(Corral.helper_path())
      true
  """
  @spec helper_path() :: String.t()
  defdelegate helper_path, to: Helper

  @doc """
  Runs `command` with `args` as a lazy stream of its output chunks
  (binaries, as they arrive: no line splitting).

  Nothing runs until the stream is enumerated; each enumeration runs the
  program again. The enumerating process owns it: the helper sends at most
  `:stdio_window` bytes ahead of what the consumer took, so a program that
  writes faster than its consumer reads waits, and the VM's memory stays
  bounded whatever it prints. When the consumer stops early (`Enum.take/2`,
  `Stream.take_while/2`, an exception) the whole tree is ended before the
  enumeration returns; when the consumer dies, it is ended as for `cmd/3`.

  At the end, a run that did not exit with status 0 (a non-zero status, a
  signal, a limit such as `:timeout`) raises `Corral.Error` with reason
  `{:exit, status, reason}`, after every chunk was emitted.

  ## Options

  Those of `cmd/3` but `:into` (and `run/3`'s `:separate_stderr`: use
  `Corral.Process` to read two streams apart), plus:

    * `:input` - as for `cmd/3`: a binary or an enumerable of iodata,
      written to the program's stdin under the window, then closed.
      Without it stdin is closed at once.
    * `:on_exit` - what the end of a run that did not exit with status 0
      does: `:raise` (the default), `:ignore`, or `:emit`, which always
      ends the stream with one more element, `{:exit, %Corral.Result{}}`.

  Next to `Exile.stream!/2`: `:input` takes the same binaries and
  enumerables (not Exile's function of a sink); Exile's
  `stderr: :redirect_to_stdout` is `stderr_to_stdout: true` and its
  default of passing stderr through to the console is Corral's default
  too; `:max_chunk_size` has no equivalent (a chunk is what one read from
  the child's pipe gave, bounded by the window); `:exit_timeout` is the
  `:timeout` limit, over the whole run; `:ignore_epipe` is not needed,
  since input the program no longer reads is dropped by the helper, never
  an error in the consumer. Exile raises `Exile.Stream.AbnormalExit` on a
  non-zero exit where Corral raises `Corral.Error`, and `on_exit: :emit`
  plays the part of Exile's non-raising stream.

  Bad options raise `ArgumentError` when the stream is made; a program
  that is not found raises `ErlangError` with `:enoent`, and a failure to
  start it raises `Corral.Error`, when it is enumerated.

  ## Examples

      iex> Corral.stream!("printf", ["a\\nb\\n"]) |> Enum.join()
      "a\\nb\\n"

      iex> Corral.stream!("yes", []) |> Stream.flat_map(&String.split(&1, "\\n", trim: true)) |> Enum.take(2)
      ["y", "y"]

      iex> Corral.stream!("wc", ["-c"], input: Stream.map(1..3, fn _ -> "abc" end)) |> Enum.join()
      "9\\n"

      iex> Corral.stream!("sh", ["-c", "echo hi; exit 3"], on_exit: :emit)
      ...> |> Enum.map(fn {:exit, result} -> result.exit_status; chunk -> chunk end)
      ["hi\\n", 3]
  """
  @spec stream!(binary(), [binary()], keyword()) :: Enumerable.t()
  def stream!(command, args, opts \\ []) when is_binary(command) and is_list(args),
    do: Corral.ChunkStream.new(command, args, opts)

  defp remote_cmd(command, args, opts) do
    options = Options.new!(opts)

    case Corral.Remote.run(command, args, options, opts) do
      {:ok, result} -> {result.output, cmd_status(result, options)}
      {:error, :enoent} -> :erlang.error(:enoent, [command, args, opts])
      {:error, reason} -> raise Error, reason: reason, command: command
    end
  end

  # A limit given as an option returns its name in place of the status, as
  # :timeout always has. A limit set through :cgroup keeps the status a
  # shell would see (137 after the OOM killer), as it did before the limit
  # options existed.
  @limit_options %{
    timeout: :timeout,
    cpu_time: :cpu_time,
    memory: :memory,
    max_processes: :max_processes,
    idle: :idle_timeout
  }

  defp cmd_status(%{reason: reason, exit_status: status}, options) do
    case Map.fetch(@limit_options, reason) do
      {:ok, option} -> if Map.fetch!(options, option) == :infinity, do: status, else: reason
      :error -> status
    end
  end
end

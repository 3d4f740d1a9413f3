defmodule Corral.Helper do
  @moduledoc false
  # The corral helper as a port: its path, its argv (docs/helper.md) from the
  # options and an explicit {stdin, stdout, stderr} choice, opening, sending
  # frames, closing, and the cleanup after a helper that died. What the
  # frames mean is Corral.Client's.

  alias Corral.Cgroup.Limits
  alias Corral.Client
  alias Corral.Options
  alias Corral.Protocol

  @typedoc "Where the child's stdin comes from and its stdout and stderr go."
  @type stdio :: {:null | :pipe, :null | :pipe, :inherit | :pipe | :stdout}

  @doc "The helper binary: $CORRAL_HELPER, or priv/corral of the :corral app."
  @spec helper_path() :: String.t()
  def helper_path do
    case System.get_env("CORRAL_HELPER") do
      nil -> Application.app_dir(:corral, "priv/corral")
      "" -> Application.app_dir(:corral, "priv/corral")
      path -> path
    end
  end

  @doc """
  Opens `helper` with `argv` as a port that speaks this protocol (`{:packet,
  4}`, binaries, the exit status). `parallelism` is the port option, or nil
  for the VM's default. A helper that cannot be started (missing, not
  executable) is `{:error, {:helper_unavailable, posix, helper}}`.
  """
  @spec open(Path.t(), [String.t()], boolean() | nil) ::
          {:ok, port()}
          | {:error,
             {:helper_unavailable, atom(), Path.t()} | {:spawn_failed, :e2big, String.t()}}
  def open(helper, argv, parallelism \\ nil) do
    if exec_fits?(helper, argv) do
      opts = [:binary, {:packet, 4}, :exit_status, :use_stdio, :hide, args: argv]
      opts = if parallelism == nil, do: opts, else: [{:parallelism, parallelism} | opts]
      {:ok, Port.open({:spawn_executable, helper}, opts)}
    else
      {:error, {:spawn_failed, :e2big, "exec"}}
    end
  catch
    :error, posix when is_atom(posix) and posix != :badarg ->
      {:error, {:helper_unavailable, posix, helper}}
  end

  # execve(2)'s limits (fs/exec.c): each string at most MAX_ARG_STRLEN (32
  # pages, NUL included); all strings, the file name and a pointer each for
  # argv and envp within a quarter of the stack rlimit, capped at 3/4 of
  # _STK_LIM (8 MiB) and at least ARG_MAX (32 pages).
  @max_arg_strlen 32 * 4096
  @min_arg_space 32 * 4096
  @max_arg_space div(8 * 1_048_576, 4) * 3

  @doc """
  Whether execve(2) takes `helper` with `argv` and the VM's environment
  (`env`, from `environment/0`): the command line of a fresh helper. It
  holds the child's program, arguments and `:env`, so a child it fits fits
  too, whether a fresh helper or a pooled one runs it; one that does not
  fit is `{:spawn_failed, :e2big, "exec"}` on either path, before any
  helper starts (a fresh helper's own exec would fail with E2BIG first).
  """
  @spec exec_fits?(Path.t(), [String.t()], environment()) :: boolean()
  def exec_fits?(helper, argv, {_hash, {count, bytes, longest}} \\ environment()) do
    # argv[0] is the helper's path, as the file name is; each string has
    # its NUL, and each of argv and envp a pointer.
    strings = Enum.map([helper, helper | argv], &byte_size/1)
    pointers = 8 * (length(argv) + 1 + count)
    total = Enum.reduce(strings, pointers + bytes + count, &(&1 + 1 + &2))

    total <= arg_space() and longest < @max_arg_strlen and
      Enum.all?(strings, &(&1 < @max_arg_strlen))
  end

  @typedoc """
  The VM's environment: a hash, by which `Corral.Pool` tells helpers
  started under another environment, and the count, total bytes and
  longest of its `KEY=VALUE` strings, which execve(2) counts.
  """
  @type environment ::
          {hash :: non_neg_integer(),
           {count :: non_neg_integer(), bytes :: non_neg_integer(), longest :: non_neg_integer()}}

  @doc """
  The VM's environment now (`environment()`), read with one `:os.env/0`.
  The sizes of the last environment seen are kept (a persistent term,
  replaced when the environment changed), so a spawn pays for the read
  and its hash only.
  """
  @spec environment() :: environment()
  def environment do
    env = :os.env()
    hash = :erlang.phash2(env)

    case :persistent_term.get({__MODULE__, :env_sizes}, nil) do
      {^hash, sizes} ->
        {hash, sizes}

      _ ->
        sizes =
          Enum.reduce(env, {0, 0, 0}, fn {key, value}, {count, bytes, longest} ->
            size = utf8_size(key) + utf8_size(value) + 1
            {count + 1, bytes + size, max(longest, size)}
          end)

        :persistent_term.put({__MODULE__, :env_sizes}, {hash, sizes})
        {hash, sizes}
    end
  end

  defp utf8_size(chars), do: byte_size(:unicode.characters_to_binary(chars))

  @doc """
  The `:cd` to give a helper that started before this run (a pooled one):
  the `:cd` of `options` when absolute, else that `:cd` (or, when nil,
  nothing more) in the VM's working directory of now, as a helper started
  now would inherit it.

  On Linux that directory is named `/proc/<VM pid>/cwd`, which the child's
  chdir(2) follows to wherever the VM is when the run starts, deleted or
  renamed included. Asking the VM (`File.cwd!/0`) is a dirty I/O call
  whose scheduler then spins on a core for a while: on 2 cores it cost a
  quarter of the CPU time of `Corral.cmd("true", [])`. The VM is still
  asked elsewhere, and for a run under another `:uid`, `:gid` or
  `:groups`: the child changes its credentials before chdir(2), and the
  link is the VM's user's alone.
  """
  @spec working_dir(Options.t()) :: Path.t()
  def working_dir(%Options{cd: cd} = options) do
    if cd != nil and Path.type(cd) == :absolute do
      cd
    else
      base = if own_credentials?(options), do: vm_cwd(), else: File.cwd!()
      if cd == nil, do: base, else: Path.join(base, cd)
    end
  end

  defp own_credentials?(%Options{uid: nil, gid: nil, groups: []}), do: true
  defp own_credentials?(%Options{}), do: false

  defp vm_cwd do
    found =
      once(:vm_cwd, fn ->
        link = "/proc/#{System.pid()}/cwd"
        if :os.type() == {:unix, :linux} and File.dir?(link), do: link, else: :ask
      end)

    if found == :ask, do: File.cwd!(), else: found
  end

  # Read once: the stack rlimit is the VM's, inherited by every helper.
  defp arg_space do
    once(:arg_space, fn ->
      stack_limit() |> div(4) |> min(@max_arg_space) |> max(@min_arg_space)
    end)
  end

  @doc """
  Whether this VM reads output from a helper's data pipe itself, so
  helpers may leave it there (`--direct-output`, docs/protocol.md "Direct
  output"): Linux, with the NIF loaded. Asked once per VM.
  """
  @spec direct_output?() :: boolean()
  def direct_output? do
    once(:direct_output, fn ->
      try do
        Corral.Native.pipe_available() == true
      rescue
        ErlangError -> false
      end
    end)
  end

  # `compute`'s value, computed at the first call in this VM and kept in
  # :persistent_term for the later ones (it never changes while the VM runs).
  defp once(name, compute) do
    key = {__MODULE__, name}

    case :persistent_term.get(key, nil) do
      nil ->
        value = compute.()
        :persistent_term.put(key, value)
        value

      value ->
        value
    end
  end

  # The soft "Max stack size" of /proc/self/limits, in bytes.
  defp stack_limit do
    with {:ok, text} <- File.read("/proc/self/limits"),
         [_, soft] <- Regex.run(~r/^Max stack size\s+(\S+)/m, text) do
      case Integer.parse(soft) do
        {bytes, ""} -> bytes
        _unlimited -> @max_arg_space * 4
      end
    else
      _ -> @max_arg_space * 4
    end
  end

  @doc """
  The program to give a helper on this node for `command`: a bare name
  (no `/`) as it is when the helper can look it up exactly as
  `:os.find_executable/1` would, that is when the VM's `PATH` is set and
  made of absolute directories (every helper has the VM's environment:
  `Corral.Pool` matches them by it); anything else through
  `find_program/1`. `path` is the VM's `PATH`. The helper then names the
  program by the path it
  found, as `System.cmd/3` does, and a name it cannot find fails as
  `:enoent` (stage `exec`). Looking up in the VM costs a file-information
  call per `PATH` entry, on a dirty I/O scheduler: about 260 µs of a
  260-µs-longer spawn of `true` here.
  """
  @spec program(String.t(), String.t() | nil) :: {:ok, String.t()} | {:error, :enoent}
  def program(command, path \\ System.get_env("PATH")) do
    if helper_finds?(command, path), do: {:ok, command}, else: find_program(command)
  end

  defp helper_finds?(_command, nil), do: false

  defp helper_finds?(command, path) do
    command != "" and not String.contains?(command, "/") and
      path |> String.split(":") |> Enum.all?(&String.starts_with?(&1, "/"))
  end

  @doc """
  Resolves `command` exactly as `System.cmd/3` does (an absolute path as
  it is, anything else through `PATH`), so the same commands fail the
  same way before any helper starts.
  """
  @spec find_program(String.t()) :: {:ok, String.t()} | {:error, :enoent}
  def find_program(command) do
    charlist = String.to_charlist(command)

    cond do
      Path.type(charlist) == :absolute -> {:ok, command}
      path = :os.find_executable(charlist) -> {:ok, List.to_string(path)}
      true -> {:error, :enoent}
    end
  end

  @doc """
  The helper's argv in port mode, as in docs/helper.md, with the streams
  `stdio/1` chooses for `opts` unless `stdio` says otherwise.
  """
  @spec argv(String.t(), [String.t()], Options.t(), stdio()) :: [String.t()]
  def argv(program, args, %Options{} = opts, stdio \\ nil) do
    pool_argv() ++ run_args(program, args, opts, stdio)
  end

  @doc "The argv of a pre-started helper, which waits for an `R` frame."
  @spec pool_argv() :: [String.t()]
  def pool_argv, do: ["--port", "--protocol", Integer.to_string(Protocol.version())]

  @doc """
  The rest of the command line after `pool_argv/0`: what an `R` frame
  carries to a pre-started helper (started with `--pooled`).
  """
  @spec run_args(String.t(), [String.t()], Options.t(), stdio() | nil) :: [String.t()]
  def run_args(program, args, %Options{} = opts, stdio \\ nil) do
    option_argv(opts, stdio || stdio(opts)) ++ ["--", program | args]
  end

  @doc """
  The streams `Corral.cmd/3` and `Corral.run/3` ask for: stdin a pipe only
  with `:input`; stdout piped unless `:capture_stderr_only`; stderr merged,
  piped on its own, or inherited from the VM.
  """
  @spec stdio(Options.t()) :: stdio()
  def stdio(%Options{} = o) do
    stdin = if o.input == nil, do: :null, else: :pipe
    stdout = if o.capture_stderr_only, do: :null, else: :pipe

    stderr =
      cond do
        o.stderr_to_stdout -> :stdout
        o.capture_stderr_only or o.separate_stderr -> :pipe
        true -> :inherit
      end

    {stdin, stdout, stderr}
  end

  # Every value goes in the --option=value form, so that no value (an
  # :arg0 of "-sh", a :cd of "-dir", an :env key "-x") can be read as an
  # option of its own.
  defp option_argv(%Options{} = o, {stdin, stdout, stderr}) do
    List.flatten([
      if(o.cd, do: opt("cd", o.cd), else: []),
      Enum.map(o.env, fn
        {key, nil} -> opt("unset", key)
        {key, value} -> opt("env", key <> "=" <> value)
      end),
      if(o.clear_env, do: ["--clear-env"], else: []),
      if(o.arg0, do: opt("arg0", o.arg0), else: []),
      if(o.uid, do: opt("uid", id_arg(o.uid)), else: []),
      if(o.gid, do: opt("gid", id_arg(o.gid)), else: []),
      Enum.map(o.groups, &opt("group", id_arg(&1))),
      opt("stdin", Atom.to_string(stdin)),
      opt("stdout", Atom.to_string(stdout)),
      opt("stderr", Atom.to_string(stderr)),
      opt("stdio-window", Integer.to_string(o.stdio_window)),
      if(direct_output?(), do: ["--direct-output"], else: []),
      opt("grace", ms(o.delay_to_sigkill)),
      if(o.kill_signal, do: opt("kill-signal", o.kill_signal), else: []),
      if(o.nice, do: opt("nice", Integer.to_string(o.nice)), else: []),
      pty_argv(o.pty),
      limit_argv("timeout", o.timeout, &ms/1),
      limit_argv("cpu-time", o.cpu_time, &ms/1),
      limit_argv("memory-limit", o.memory, &Integer.to_string/1),
      limit_argv("max-processes", o.max_processes, &Integer.to_string/1),
      limit_argv("idle-timeout", o.idle_timeout, &ms/1),
      if(o.no_cgroup, do: ["--no-cgroup"], else: []),
      cgroup_argv(o)
    ])
  end

  defp opt(name, value), do: "--" <> name <> "=" <> value

  defp pty_argv(nil), do: []
  defp pty_argv({cols, rows}), do: opt("pty", "#{cols}x#{rows}")

  # No flag at all is no limit: the helper then does not poll.
  defp limit_argv(_name, :infinity, _format), do: []
  defp limit_argv(name, value, format), do: opt(name, format.(value))

  # No cgroup option at all leaves the helper's default: a fresh cgroup
  # under the VM's own where one can be made, subreaper containment if not.
  defp cgroup_argv(%Options{} = o) do
    [
      if(o.cgroup_path, do: opt("cgroup-path", o.cgroup_path), else: []),
      if(o.cgroup_base, do: opt("cgroup-base", o.cgroup_base), else: []),
      for key <- Limits.keys(), Map.has_key?(o.cgroup, key) do
        opt("cgroup-set", "#{key}=#{Limits.text(Map.fetch!(o.cgroup, key))}")
      end,
      Enum.map(o.cgroup_controllers, &opt("cgroup-controller", &1)),
      Enum.map(o.cgroup_sets, fn {controller, file, value} ->
        opt("cgroup-raw", "#{controller}:#{file}=#{value}")
      end)
    ]
  end

  defp id_arg(id) when is_integer(id), do: Integer.to_string(id)
  defp id_arg(name) when is_binary(name), do: name

  # The helper's durations take units; a bare number would be seconds.
  defp ms(n) when is_integer(n), do: Integer.to_string(n) <> "ms"

  @doc """
  Closes the port, which ends the tree if it still runs, and drops what the
  port sent meanwhile: Port.close/1 is synchronous, but an exit status or
  the port's exit signal may already be waiting.
  """
  @spec close(port()) :: :ok
  def close(port) do
    Port.close(port)
  rescue
    ArgumentError -> :ok
  after
    flush(port)
  end

  @doc """
  Drops the messages `port` left in this process's mailbox: its data and
  exit status, and an `{:EXIT, port, _}` for a process that traps exits.
  """
  @spec flush(port()) :: :ok
  def flush(port) do
    receive do
      {^port, _} -> flush(port)
      {:EXIT, ^port, _} -> flush(port)
    after
      0 -> :ok
    end
  end

  @doc """
  Opens a helper with `argv` as a port linked to the caller, which should
  trap exits, and waits up to `timeout` for the client to see the child
  start: `{:ok, port, started, client}`, or `{:error, reason}` with the
  port closed and Corral.Error's reason (`:start_timeout` after `timeout`).
  """
  @spec start([String.t()], boolean() | nil, Client.t(), timeout()) ::
          {:ok, port(), Protocol.started(), Client.t()} | {:error, term()}
  def start(argv, parallelism, %Client{} = client, timeout) do
    with {:ok, port} <- open(helper_path(), argv, parallelism) do
      await_start(port, client, timeout)
    end
  end

  defp await_start(port, client, timeout) do
    receive do
      {^port, {:data, body}} ->
        started(port, Client.handle(client, body))

      {^port, {:exit_status, status}} ->
        started(port, Client.gone(client, {:helper_exit, status}))

      {:EXIT, ^port, reason} ->
        started(port, Client.gone(client, {:helper_closed, reason}))
    after
      timeout ->
        close(port)
        {:error, :start_timeout}
    end
  end

  # Before S there is nothing to clean up and no write queued, so the
  # first frame yields exactly one event.
  defp started(port, {[{:started, started}], client}), do: {:ok, port, started, client}

  defp started(port, {[{:error, reason, _details}], _client}) do
    close(port)
    {:error, reason}
  end

  @signals ~w(HUP INT QUIT ILL TRAP ABRT BUS FPE KILL USR1 SEGV USR2 PIPE ALRM TERM
              STKFLT CHLD CONT STOP TSTP TTIN TTOU URG XCPU XFSZ VTALRM PROF WINCH IO
              PWR SYS)

  @doc """
  The name a `K` frame carries for `signal`: `:sighup`, `:hup`, `"SIGHUP"`
  or `"HUP"` (any case) all give `"SIGHUP"`. Anything else raises
  `ArgumentError`.
  """
  @spec signal_name!(atom() | String.t()) :: String.t()
  def signal_name!(signal) do
    signal_name(signal) || raise(ArgumentError, "unknown signal #{inspect(signal)}")
  end

  @doc "As `signal_name!/1`, with nil for a name that is no signal."
  @spec signal_name(term()) :: String.t() | nil
  def signal_name(signal) when is_atom(signal) or is_binary(signal) do
    name = signal |> to_string() |> String.upcase() |> String.replace_prefix("SIG", "")
    if name in @signals, do: "SIG" <> name
  end

  def signal_name(_signal), do: nil

  @doc """
  Asks the helper to send signal `name` (as `signal_name!/1` gives it) to
  the child: `:ok`, or `{:error, :not_running}` when there is no port (the
  program has not started or has ended).
  """
  @spec signal(port() | nil, String.t()) :: :ok | {:error, :not_running}
  def signal(nil, _name), do: {:error, :not_running}
  def signal(port, name), do: send_frame(port, {:signal, name})

  @doc """
  Sends one frame. A port that already closed raises; its exit status or
  exit signal is on the way, and the driver acts on that.
  """
  @spec send_frame(port(), Protocol.frame()) :: :ok
  def send_frame(port, frame) do
    Port.command(port, Protocol.encode(frame))
    :ok
  rescue
    ArgumentError -> :ok
  end

  @doc """
  Cleans up after a helper that is gone without an exit report (SIGKILL,
  the OOM killer): nobody else will end the tree or remove the cgroups it
  made. `started` is its S frame, which named them; what is left in them is
  killed and they are removed.
  """
  @spec cleanup_after_death(Protocol.started() | nil) :: :ok
  def cleanup_after_death(nil), do: :ok

  def cleanup_after_death(%{paths: paths} = started) do
    case Corral.Orphans.cleanup(started) do
      :ok ->
        :ok

      {:error, error} ->
        :logger.warning(
          "Corral: could not remove the cgroups #{inspect(paths)} " <>
            "of a helper that died: #{inspect(error)}"
        )
    end

    :ok
  end
end

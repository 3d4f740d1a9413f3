defmodule Corral do
  @moduledoc """
  Runs OS programs from the BEAM without leaking them.

  Every program runs under its own `corral` helper, a small Rust binary
  between the VM and the child. The helper puts the child in its own process
  group and, whenever the system lets it, in a fresh cgroup under the VM's
  own (cgroup v2, v1 or the hybrid of both); it adopts orphaned
  grandchildren as a child subreaper, and ends the whole tree (freeze or
  stop, SIGTERM, SIGKILL) as soon as its port closes: when the calling
  process dies, when the VM dies, or when a `:timeout` runs out. The
  child's output reaches the caller through a flow-controlled window, so a
  fast child cannot fill the VM's memory and no output is lost at exit.

  Containment needs no setup: where no cgroup can be created (no
  delegation, a read-only hierarchy) the helper falls back to process group
  and subreaper alone. Limits (`:cgroup`) do need a cgroup, and fail with a
  `Corral.Error` when there is none.

  ## Setup

  Corral has no Hex dependencies. Its Mix compiler runs
  `cargo build --release -p corral` and copies the helper to `priv/corral`,
  so a Rust toolchain is needed at build time. Set `CORRAL_SKIP_CARGO=1` to
  skip cargo (artifacts already in `target/release` are still copied), and
  `CORRAL_HELPER=/path/to/corral` to use a helper from elsewhere at run time.

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
  """

  alias Corral.Error
  alias Corral.Options
  alias Corral.Port, as: Proto

  @doc """
  Runs `command` with `args` and collects its output, like `System.cmd/3`.

  `command` is looked up with `:os.find_executable/1` unless it is an
  absolute path, and executed directly, never through a shell. Returns
  `{collectable_result, exit_status}`, where `exit_status` is the exit code,
  128 + the signal number when a signal killed the child, or `:timeout` when
  the `:timeout` option ended it.

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
    * `:parallelism` - passed to `Port.open/2`.

  Also shared with MuonTrap:

    * `:delay_to_sigkill` - milliseconds between SIGTERM and SIGKILL when
      the tree is ended. Defaults to 500.
    * `:stdio_window` - the most output bytes in flight between the helper
      and the caller. Defaults to 1 MiB (1_048_576): big enough to stream at
      pipe speed, small enough to bound the VM's memory.
    * `:capture_stderr_only` - collect stderr into `:into` and discard
      stdout.
    * `:uid`, `:gid` - user and group (number or name) to run the child as.
    * `:groups` - supplementary groups (numbers or names). With `:uid` and
      no `:groups`, the supplementary list is cleared.

  Corral's own:

    * `:timeout` - milliseconds (or `:infinity`, the default) before the
      tree is ended and `{partial_output, :timeout}` returned.
    * `:input` - a binary, iodata, or an enumerable of iodata written to the
      child's stdin, which is then closed. Without it the child's stdin is
      `/dev/null`.

  Cgroups, with MuonTrap's names. Paths are relative to each hierarchy's
  root (a leading `/` means the same), with no `.`, `..` or empty
  components. Without any of these the child still gets a fresh cgroup
  under the VM's own when one can be made, and it is removed at exit.

    * `:cgroup_path` - run in exactly this cgroup. It is created if missing
      (and then removed at exit), and used as it is if it exists.
    * `:cgroup_base` - run in a fresh, uniquely named child of this cgroup,
      removed at exit. Excludes `:cgroup_path`.
    * `:cgroup` - limits, a map or keyword list with MuonTrap 2's keys
      (the kernel's cgroup v2 file names with `_`):
      * `:memory_max`, `:memory_high`, `:memory_swap_max`, `:memory_min`,
        `:memory_low` - bytes, or `:max`;
      * `:memory_oom_group`, `:cpu_idle` - booleans;
      * `:cpu_max` - `{quota_us, period_us}`, `:max` or `{:max, period_us}`
        (quota at least 1000, period 1000 to 1_000_000);
      * `:cpu_weight`, `:io_weight` - 1 to 10_000;
      * `:pids_max` - a number of tasks, or `:max`;
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
  naming both; so does an unknown `:cgroup` key.

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

  A child killed by the cgroup's memory limit returns 137 (128 + SIGKILL),
  as a shell would report it.
  """
  @spec cmd(binary(), [binary()], keyword()) ::
          {Collectable.t(), non_neg_integer() | :timeout}
  def cmd(command, args, opts \\ []) when is_binary(command) and is_list(args) do
    assert_no_null_byte!(command)

    unless Enum.all?(args, &is_binary/1) do
      raise ArgumentError, "all arguments for Corral.cmd/3 must be binaries"
    end

    if arg = Enum.find(args, &String.contains?(&1, <<0>>)) do
      raise ArgumentError,
            "cannot execute Corral.cmd/3 with null byte in argument, got: #{inspect(arg)}"
    end

    program = find_program!(command, args, opts)
    options = Options.new!(opts)
    {initial, fun} = Collectable.into(options.into)
    ctx = %{command: command, args: args, opts: opts}

    try do
      session = open!(program, args, options)

      try do
        start(session, options, fun, initial, ctx)
      after
        close(session)
      end
    catch
      kind, reason ->
        fun.(initial, :halt)
        :erlang.raise(kind, reason, __STACKTRACE__)
    else
      {acc, status} -> {fun.(acc, :done), status}
    end
  end

  defp assert_no_null_byte!(command) do
    if String.contains?(command, <<0>>) do
      raise ArgumentError,
            "cannot execute Corral.cmd/3 for program with null byte, got: #{inspect(command)}"
    end
  end

  # Resolved exactly as System.cmd/3 does, so the same commands fail the
  # same way before any helper starts.
  defp find_program!(command, args, opts) do
    charlist = String.to_charlist(command)

    if Path.type(charlist) == :absolute do
      command
    else
      case :os.find_executable(charlist) do
        false -> :erlang.error(:enoent, [command, args, opts])
        path -> List.to_string(path)
      end
    end
  end

  # The caller owns the port but is not linked to it: a port that fails (EPIPE
  # when the helper died) would otherwise send the caller an exit signal. A
  # watcher process closes the port if the caller dies, which is what the link
  # would have done.
  defp open!(program, args, %Options{} = options) do
    helper = Proto.helper_path()
    caller = self()
    watcher = spawn(fn -> watch(caller) end)

    port_opts =
      [:binary, {:packet, 4}, :exit_status, :use_stdio, :hide] ++
        [args: Proto.argv(program, args, options)] ++ parallelism(options)

    port =
      try do
        Port.open({:spawn_executable, helper}, port_opts)
      catch
        kind, reason ->
          send(watcher, :done)

          case {kind, reason} do
            {:error, posix} when is_atom(posix) and posix != :badarg ->
              raise Error, reason: {:helper_unavailable, posix, helper}

            _ ->
              :erlang.raise(kind, reason, __STACKTRACE__)
          end
      end

    send(watcher, {:watch, port})
    Process.unlink(port)
    {port, Port.monitor(port), watcher}
  end

  defp parallelism(%Options{parallelism: nil}), do: []
  defp parallelism(%Options{parallelism: bool}), do: [parallelism: bool]

  defp watch(caller) do
    ref = Process.monitor(caller)

    receive do
      {:watch, port} ->
        receive do
          {:DOWN, ^ref, :process, _, _} -> close_port(port)
          :done -> :ok
        end

      # Until {:watch, port} arrives the port is still linked to the caller.
      {:DOWN, ^ref, :process, _, _} ->
        :ok

      :done ->
        :ok
    end
  end

  defp close({port, ref, watcher}) do
    close_port(port)
    send(watcher, :done)
    Port.demonitor(ref, [:flush])
    flush(port)
  end

  defp close_port(port) do
    Port.close(port)
  rescue
    ArgumentError -> :ok
  end

  # Port.close/1 is synchronous: nothing from the port arrives after it, but
  # an exit status may already be waiting, and so may an {:EXIT, port, _}
  # for a caller that traps exits, if the port closed before the unlink.
  defp flush(port) do
    receive do
      {^port, _} -> flush(port)
      {:EXIT, ^port, _} -> flush(port)
    after
      0 -> :ok
    end
  end

  # The first frame is S or F, and says which protocol version the helper
  # speaks.
  defp start({port, ref, _}, options, fun, acc, ctx) do
    version = Proto.version()

    receive do
      {^port, {:data, body}} ->
        case Proto.decode(body) do
          {:ok, {:started, %{version: ^version}}} ->
            state = %{
              port: port,
              ref: ref,
              fun: fun,
              threshold: Proto.ack_threshold(options.stdio_window),
              ctx: ctx
            }

            loop(state, acc, 0, input_source(options.input))

          {:ok, {:started, %{version: other}}} ->
            fail!(ctx, {:protocol, {:version, other}})

          {:ok, {:failed, failed}} ->
            spawn_failed!(failed, ctx)

          {:ok, frame} ->
            fail!(ctx, {:protocol, {:unexpected_frame, frame}})

          {:error, error} ->
            fail!(ctx, {:protocol, error})
        end

      {^port, {:exit_status, status}} ->
        fail!(ctx, {:helper_exit, status})

      {:DOWN, ^ref, :port, ^port, reason} ->
        fail!(ctx, {:helper_closed, reason})
    end
  end

  # Collects O and E frames into the collectable and acks in batches of
  # `threshold` bytes (docs/protocol.md, "Flow control"). While input is
  # left, each turn without a waiting message writes one I frame.
  defp loop(%{port: port, ref: ref} = s, acc, pending, input) do
    receive do
      {^port, {:data, body}} ->
        case Proto.decode(body) do
          {:ok, {tag, data}} when tag in [:stdout, :stderr] ->
            acc = collect(s.fun, acc, data, input)
            loop(s, acc, ack(port, pending + byte_size(data), s.threshold), input)

          {:ok, {:exit, report}} ->
            halt_input(input)
            {acc, exit_status!(report, s.ctx)}

          {:ok, frame} ->
            fail!(s.ctx, {:protocol, {:unexpected_frame, frame}}, input)

          {:error, error} ->
            fail!(s.ctx, {:protocol, error}, input)
        end

      {^port, {:exit_status, status}} ->
        fail!(s.ctx, {:helper_exit, status}, input)

      {:DOWN, ^ref, :port, ^port, reason} ->
        fail!(s.ctx, {:helper_closed, reason}, input)
    after
      input_timeout(input) ->
        case pull(input) do
          {:chunk, chunk, input} ->
            send_frame(port, Proto.encode({:stdin, chunk}))
            loop(s, acc, pending, input)

          :eof ->
            send_frame(port, Proto.encode(:close_stdin))
            loop(s, acc, pending, nil)
        end
    end
  end

  defp collect(fun, acc, data, nil), do: fun.(acc, {:cont, data})

  defp collect(fun, acc, data, input) do
    fun.(acc, {:cont, data})
  catch
    kind, reason ->
      halt_input(input)
      :erlang.raise(kind, reason, __STACKTRACE__)
  end

  defp ack(port, pending, threshold) when pending >= threshold do
    send_frame(port, Proto.encode({:ack, pending}))
    0
  end

  defp ack(_port, pending, _threshold), do: pending

  # A port that already closed raises; its exit status or :DOWN message is
  # on the way and the loop reports it.
  defp send_frame(port, body) do
    Port.command(port, body)
  rescue
    ArgumentError -> :ok
  end

  defp exit_status!(%{reason: :timeout}, _ctx), do: :timeout
  defp exit_status!(%{exit_status: status}, _ctx) when is_integer(status), do: status
  defp exit_status!(report, ctx), do: fail!(ctx, {:protocol, {:no_exit_status, report}})

  defp spawn_failed!(%{stage: "exec", errno_name: "enoent"}, ctx) do
    :erlang.error(:enoent, [ctx.command, ctx.args, ctx.opts])
  end

  defp spawn_failed!(%{stage: "cgroup"} = failed, ctx) do
    raise Error,
      reason: {:cgroup, posix(failed.errno_name), failed.message},
      command: ctx.command
  end

  defp spawn_failed!(failed, ctx) do
    raise Error,
      reason: {:spawn_failed, posix(failed.errno_name), failed.stage},
      command: ctx.command,
      details: failed.message
  end

  # errno names come from the helper; only names the VM already knows
  # become atoms.
  defp posix(nil), do: nil

  defp posix(name) do
    String.to_existing_atom(name)
  rescue
    ArgumentError -> name
  end

  defp fail!(ctx, reason, input \\ nil) do
    halt_input(input)
    raise Error, reason: reason, command: ctx.command
  end

  ## Input: {buffered binary, suspended enumerable or nil}, or nil when done.

  defp input_source(nil), do: nil
  defp input_source(data) when is_binary(data), do: {data, nil}

  defp input_source(enum) do
    {<<>>, &Enumerable.reduce(enum, &1, fn element, _ -> {:suspend, element} end)}
  end

  defp input_timeout(nil), do: :infinity
  defp input_timeout(_input), do: 0

  defp pull({<<>>, nil}), do: :eof

  defp pull({<<>>, cont}) do
    case cont.({:cont, nil}) do
      {:suspended, element, cont} -> pull({iodata!(element, cont), cont})
      {:done, _} -> :eof
      {:halted, _} -> :eof
    end
  end

  defp pull({data, cont}) do
    {chunk, rest} = Proto.split_stdin(data)
    {:chunk, chunk, {rest, cont}}
  end

  defp iodata!(element, cont) do
    IO.iodata_to_binary(element)
  rescue
    ArgumentError ->
      halt_input({<<>>, cont})

      reraise ArgumentError,
              [message: "expected :input to yield iodata, got: #{inspect(element)}"],
              __STACKTRACE__
  end

  defp halt_input({_, cont}) when is_function(cont, 1), do: cont.({:halt, nil})
  defp halt_input(_input), do: :ok
end

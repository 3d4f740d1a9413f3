defmodule Corral.Runner do
  @moduledoc false
  # The driver of Corral.cmd/3, Corral.run/3 and Corral.stream!/3, in the
  # caller's own process: starts a helper (a pooled one when it can), hands
  # each frame to Corral.Client, gives out the output it yields one chunk at
  # a time (next/1), feeds `:input` under the client's credit, and closes
  # the port (or hands it back to the pool) at the end. run/4 collects the
  # chunks into the `:into` collectables; stream!/3 emits them.

  alias Corral.Client
  alias Corral.Error
  alias Corral.Helper
  alias Corral.Input
  alias Corral.Options

  defstruct [
    :session,
    :program,
    :args,
    :options,
    :command,
    :client,
    :input,
    :started,
    pending: []
  ]

  @typedoc """
  A run in progress, driven by the process that opened it: `next/1` hands
  out its output, `stop/1` or `close/1` end it.
  """
  @opaque t :: %__MODULE__{}

  @doc """
  The one path of cmd/3 and run/3: start the helper, collect output until
  the X frame, close the port. Returns `{:ok, started, report, outputs}` or
  `{:error, :enoent | %Corral.Error{}}`; raises only what the caller's
  collectable or input raises, after halting both.
  """
  @spec run(String.t(), [String.t()], Options.t(), String.t()) ::
          {:ok, map(), map(), map()} | {:error, :enoent | Error.t()}
  def run(program, args, %Options{} = options, command) do
    sinks = sinks(options)

    try do
      with {:ok, run} <- open(program, args, options, command) do
        accs = Map.new(sinks, fn {name, initial, _} -> {name, initial} end)
        collectors = Map.new(sinks, fn {name, _, fun} -> {name, fun} end)
        collect_all(run, accs, collectors)
      end
    catch
      kind, reason ->
        halt_sinks(sinks)
        :erlang.raise(kind, reason, __STACKTRACE__)
    else
      {:ok, started, report, accs} ->
        {:ok, started, report,
         Map.new(sinks, fn {name, _, fun} -> {name, fun.(accs[name], :done)} end)}

      {:error, _} = error ->
        halt_sinks(sinks)
        error
    end
  end

  defp collect_all(run, accs, collectors) do
    case next(run) do
      {:output, stream, data, run} ->
        name = sink_name(run.options.separate_stderr, stream)
        acc = collect(run, Map.fetch!(collectors, name), Map.fetch!(accs, name), data)
        collect_all(run, Map.put(accs, name, acc), collectors)

      {:exit, report, run} ->
        {:ok, run.started, report, accs}

      {:error, _} = error ->
        error
    end
  end

  # A collectable that raises ends the run first.
  defp collect(run, fun, acc, data) do
    fun.(acc, {:cont, data})
  catch
    kind, reason ->
      close(run)
      :erlang.raise(kind, reason, __STACKTRACE__)
  end

  @doc """
  Starts `program` for the calling process, which then drives the run with
  `next/1` and owns its port: if it dies, a watcher closes the port and the
  helper ends the tree. Returns `{:error, %Corral.Error{}}` when no helper
  could be started.
  """
  @spec open(String.t(), [String.t()], Options.t(), String.t()) ::
          {:ok, t()} | {:error, Error.t()}
  def open(program, args, %Options{} = options, command) do
    with {:ok, session} <- open_session(program, args, options, command) do
      {:ok,
       %__MODULE__{
         session: session,
         program: program,
         args: args,
         options: options,
         command: command,
         client: Client.new(options.stdio_window, options.input != nil),
         input: Input.new(options.input)
       }}
    end
  end

  @doc """
  Waits for the run's next output, feeding `:input` meanwhile: `{:output,
  :stdout | :stderr, data, run}` (acked at once: the helper is at most a
  window ahead of what the caller took), `{:exit, report, run}` once the
  run ended (its helper is released), or `{:error, :enoent | %Error{}}`
  (its helper is closed). A raise in `:input`'s enumerable closes the run.
  """
  @spec next(t()) ::
          {:output, :stdout | :stderr, binary(), t()}
          | {:exit, map(), t()}
          | {:error, :enoent | Error.t()}
  def next(%__MODULE__{pending: [_ | _] = events} = run), do: events(events, %{run | pending: []})

  def next(%__MODULE__{session: {port, ref, _, _}, client: client, input: input} = run) do
    receive do
      {^port, {:data, body}} ->
        {events, client} = Client.handle(client, body)
        events(events, %{run | client: client})

      {^port, {:exit_status, status}} ->
        {events, client} = Client.gone(client, {:helper_exit, status})
        events(events, %{run | client: client})

      {:DOWN, ^ref, :port, ^port, reason} ->
        {events, client} = Client.gone(client, {:helper_closed, reason})
        events(events, %{run | client: client})
    after
      input_timeout(input, client) ->
        pull_input(run)
    end
  end

  # While input is left and the client may write, each turn without a
  # waiting message writes one I frame.
  defp pull_input(run) do
    case pull(run) do
      {:chunk, chunk, input} ->
        {events, client} = Client.write(run.client, nil, chunk)
        events(events, %{run | client: client, input: input})

      :eof ->
        {events, client} = Client.close_input(run.client, nil)
        events(events, %{run | client: client, input: nil})
    end
  end

  # Outside pull_input/1's recursion, so the try adds no stack frame per chunk.
  defp pull(run) do
    Input.pull(run.input)
  catch
    # The enumerable that raised has halted itself (Input.pull/1).
    kind, reason ->
      Client.close_pipes(run.client)
      close_session(run.session)
      :erlang.raise(kind, reason, __STACKTRACE__)
  end

  @doc "What the run's `S` frame said (nil before it came)."
  @spec started(t()) :: map() | nil
  def started(%__MODULE__{started: started}), do: started

  @doc """
  Ends a run the caller no longer reads: asks the helper to stop the tree
  (TERM, then KILL after `:delay_to_sigkill`) and waits for its report,
  dropping output, for at most `:delay_to_sigkill` plus a second; then the
  helper is released or closed, which ends whatever is left.
  """
  @spec stop(t()) :: :ok
  def stop(%__MODULE__{options: options} = run) do
    Input.halt(run.input)
    pending = run.pending
    run = %{run | input: nil, pending: []}
    deadline = System.monotonic_time(:millisecond) + options.delay_to_sigkill + 1000

    # What is pending may hold the end already; else the helper is asked.
    drain_events(pending, run, deadline, fn run ->
      Helper.send_frame(port(run), :stop)
      drain(run, deadline)
    end)
  end

  defp drain(%{session: {port, ref, _, _}, client: client} = run, deadline) do
    wait = max(deadline - System.monotonic_time(:millisecond), 0)
    again = &drain(&1, deadline)

    receive do
      {^port, {:data, body}} ->
        client |> Client.handle(body) |> drain_events(run, deadline, again)

      {^port, {:exit_status, status}} ->
        client |> Client.gone({:helper_exit, status}) |> drain_events(run, deadline, again)

      {:DOWN, ^ref, :port, ^port, reason} ->
        client |> Client.gone({:helper_closed, reason}) |> drain_events(run, deadline, again)
    after
      wait -> close(run)
    end
  end

  # The client's events while stopping: output is dropped (and acked, so
  # the helper goes on to its report), the end releases the helper.
  defp drain_events({events, client}, run, deadline, more),
    do: drain_events(events, %{run | client: client}, deadline, more)

  defp drain_events([], run, _deadline, more), do: more.(run)

  defp drain_events([event | rest], run, deadline, more) do
    case event do
      {:output, _stream, data} ->
        {acks, client} = Client.consumed(run.client, byte_size(data))
        send_all(acks, run)
        drain_events(rest, %{run | client: client}, deadline, more)

      {:send, frame} ->
        Helper.send_frame(port(run), frame)
        drain_events(rest, run, deadline, more)

      {:started, started} ->
        drain_events(rest, %{run | started: started}, deadline, more)

      {:cleanup, started} ->
        Helper.cleanup_after_death(started)
        drain_events(rest, run, deadline, more)

      {:exit, _report} ->
        release(run.session, :exit)
        :ok

      {:error, _reason, _details} ->
        close(run)
    end
  end

  @doc "Closes the run's helper at once, which ends the tree."
  @spec close(t()) :: :ok
  def close(%__MODULE__{session: session, input: input, client: client}) do
    Input.halt(input)
    Client.close_pipes(client)
    close_session(session)
    :ok
  end

  @doc false
  # {name, initial accumulator, collector} for each output kept: :output,
  # or :stdout and :stderr apart. Corral.Remote collects into them too.
  @spec sinks(Options.t()) :: [{atom(), term(), function()}]
  def sinks(%Options{separate_stderr: true, into: into}) do
    for name <- [:stdout, :stderr] do
      {initial, fun} = Collectable.into(into)
      {name, initial, fun}
    end
  end

  def sinks(%Options{into: into}) do
    {initial, fun} = Collectable.into(into)
    [{:output, initial, fun}]
  end

  @doc false
  def halt_sinks(sinks), do: Enum.each(sinks, fn {_, initial, fun} -> fun.(initial, :halt) end)

  @doc false
  # The sink a chunk of `stream` goes to: stderr joins the output unless it
  # is kept apart (`separate`); with capture_stderr_only it is the only
  # stream that arrives.
  @spec sink_name(boolean(), :stdout | :stderr) :: :output | :stdout | :stderr
  def sink_name(true, stream), do: stream
  def sink_name(false, _stream), do: :output

  # The caller owns the port but is not linked to it: a port that fails (EPIPE
  # when the helper died) would otherwise send the caller an exit signal. A
  # watcher process closes the port if the caller dies, which is what the link
  # would have done.
  defp open_session(program, args, %Options{} = options, command) do
    caller = self()
    watcher = spawn(fn -> watch(caller) end)

    case pooled(program, args, options) do
      {:ok, port, env} ->
        send(watcher, {:watch, port})
        Process.unlink(port)
        {:ok, {port, Port.monitor(port), watcher, {:pooled, env}}}

      :none ->
        open_fresh(program, args, options, command, watcher)
    end
  end

  # A helper the pool started ahead, given its command line in an R frame.
  # It was started in the VM's working directory of that moment, so the
  # current one is passed along, as a fresh helper would inherit it
  # (Helper.working_dir/1).
  #
  # A command line too long for execve(2) goes the fresh way, which refuses
  # it before any helper starts, so both ways fail alike.
  defp pooled(program, args, %Options{parallelism: nil} = options) do
    helper = Helper.helper_path()
    options = %{options | cd: Helper.working_dir(options)}

    run_args = Helper.run_args(program, args, options)
    {hash, _} = environment = Helper.environment()

    with true <- Helper.exec_fits?(helper, Helper.pool_argv() ++ run_args, environment) || :none,
         {:ok, port, env} <- Corral.Pool.checkout(self(), helper, hash) do
      # Port.connect/2 linked the port to the caller. A helper that died
      # while it waited fails the R frame's write with EPIPE, and the port
      # would send its exit signal to the caller: unlink first. (The port
      # still closes if the caller dies: the caller owns it.)
      Process.unlink(port)

      try do
        Port.command(
          port,
          Corral.Protocol.encode({:run, run_args})
        )

        {:ok, port, env}
      rescue
        ArgumentError ->
          Helper.close(port)
          :none
      end
    end
  end

  defp pooled(_program, _args, _options), do: :none

  defp open_fresh(program, args, options, command) do
    caller = self()
    open_fresh(program, args, options, command, spawn(fn -> watch(caller) end))
  end

  defp open_fresh(program, args, options, command, watcher) do
    argv = Helper.argv(program, args, options)

    try do
      Helper.open(Helper.helper_path(), argv, options.parallelism)
    catch
      kind, reason ->
        send(watcher, :done)
        :erlang.raise(kind, reason, __STACKTRACE__)
    else
      {:ok, port} ->
        send(watcher, {:watch, port})
        Process.unlink(port)
        {:ok, {port, Port.monitor(port), watcher, :fresh}}

      {:error, reason} ->
        send(watcher, :done)
        error(command, reason, nil)
    end
  end

  defp watch(caller) do
    ref = Process.monitor(caller)

    receive do
      {:watch, port} ->
        receive do
          {:DOWN, ^ref, :process, _, _} -> Helper.close(port)
          :done -> :ok
        end

      # Until {:watch, port} arrives the port is still linked to the caller.
      {:DOWN, ^ref, :process, _, _} ->
        :ok

      :done ->
        :ok
    end
  end

  # Helper.close/1 also drops an exit status already waiting, and an
  # {:EXIT, port, _} for a caller that traps exits, if the port closed
  # before the unlink.
  defp close_session({port, ref, watcher, _origin}) do
    Helper.close(port)
    send(watcher, :done)
    Port.demonitor(ref, [:flush])
  end

  # A pooled helper whose run ended with X waits for its next R: it goes
  # back to the pool. Anything else is closed.
  defp release({port, ref, watcher, {:pooled, env}}, :exit) do
    send(watcher, :done)
    Port.demonitor(ref, [:flush])
    Corral.Pool.checkin(port, env)
  end

  defp release(session, _result), do: close_session(session)

  # Performs the client's events in order, up to the first output, which
  # is handed out with the rest kept for the next call.
  defp events([], run), do: next(run)

  defp events([{:output, stream, data} | rest], run) do
    {acks, client} = Client.consumed(run.client, byte_size(data))
    send_all(acks, run)
    {:output, stream, data, %{run | client: client, pending: rest}}
  end

  defp events([{:send, frame} | rest], run) do
    Helper.send_frame(port(run), frame)
    events(rest, run)
  end

  defp events([{:started, started} | rest], run), do: events(rest, %{run | started: started})

  defp events([{:exit, report} | _], run) do
    Input.halt(run.input)
    release(run.session, :exit)
    {:exit, report, %{run | input: nil}}
  end

  defp events([{:cleanup, started} | rest], run) do
    Helper.cleanup_after_death(started)
    events(rest, run)
  end

  # A pooled helper that went away before S: it had died while it waited,
  # before the pool noticed (the R frame's write fails with EPIPE, or the
  # port is gone before it is monitored, :noproc, or its exit status comes
  # first). Nothing of the run happened: the child writes S itself just
  # before execve, and holds the port's pipe open until then, so a port
  # that closed without S never ran the program (docs/protocol.md,
  # "Start"). A fresh helper runs it, once.
  defp events(
         [{:error, {gone, _}, _} | _],
         %{session: {_, _, _, {:pooled, _}}, started: nil} = run
       )
       when gone in [:helper_closed, :helper_exit] do
    close_session(run.session)

    with {:ok, session} <- open_fresh(run.program, run.args, run.options, run.command) do
      client = Client.new(run.options.stdio_window, run.options.input != nil)
      next(%{run | session: session, client: client})
    end
  end

  defp events([{:error, :enoent, _} | _], run) do
    close(run)
    {:error, :enoent}
  end

  defp events([{:error, reason, details} | _], run) do
    close(run)
    no_primary_group!(reason, run.options)
    error(run.command, reason, details)
  end

  defp send_all(frames, run),
    do: Enum.each(frames, fn {:send, f} -> Helper.send_frame(port(run), f) end)

  defp port(%{session: {port, _, _, _}}), do: port

  # The helper refuses a numeric :uid that has no passwd entry when no :gid
  # says which group to take instead of root's (docs/helper.md, --uid). With
  # only numbers given, that refusal is the one "user" failure there can
  # be, and it is a bad option.
  defp no_primary_group!(
         {:spawn_failed, :einval, "user"},
         %Options{uid: uid, gid: nil, groups: groups}
       )
       when is_integer(uid) do
    if Enum.all?(groups, &is_integer/1) do
      raise ArgumentError,
            "invalid option :uid with value #{uid}: no passwd entry gives it a primary " <>
              "group, so :gid is required"
    end
  end

  defp no_primary_group!(_reason, _options), do: :ok

  defp input_timeout(nil, _client), do: :infinity

  defp input_timeout(_input, client) do
    if Client.writable?(client), do: 0, else: :infinity
  end

  defp error(command, reason, details),
    do: {:error, %Error{reason: reason, command: command, details: details}}
end

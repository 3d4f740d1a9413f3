defmodule Corral.Runner do
  @moduledoc false
  # The driver of Corral.cmd/3 and Corral.run/3: starts a helper (a pooled
  # one when it can), runs a receive loop that hands each frame to
  # Corral.Client, collects the output it yields into the `:into`
  # collectables, feeds `:input` under the client's credit, and closes the
  # port (or hands it back to the pool) at the end.

  alias Corral.Client
  alias Corral.Error
  alias Corral.Helper
  alias Corral.Input
  alias Corral.Options

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
      with {:ok, session} <- open(program, args, options, command) do
        case attempt(session, options, sinks, command) do
          # A pooled helper that died while it waited: a fresh one runs
          # the command instead.
          :dead_pooled_helper ->
            with {:ok, s} <- open_fresh(program, args, options, command),
                 do: attempt(s, options, sinks, command)

          result ->
            result
        end
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

  defp attempt(session, options, sinks, command) do
    start(session, options, sinks, command)
  catch
    kind, reason ->
      close(session)
      :erlang.raise(kind, reason, __STACKTRACE__)
  else
    :dead_pooled_helper ->
      close(session)
      :dead_pooled_helper

    result ->
      release(session, result)
      result
  end

  # {name, initial accumulator, collector} for each output kept: :output,
  # or :stdout and :stderr apart.
  defp sinks(%Options{separate_stderr: true, into: into}) do
    for name <- [:stdout, :stderr] do
      {initial, fun} = Collectable.into(into)
      {name, initial, fun}
    end
  end

  defp sinks(%Options{into: into}) do
    {initial, fun} = Collectable.into(into)
    [{:output, initial, fun}]
  end

  defp halt_sinks(sinks), do: Enum.each(sinks, fn {_, initial, fun} -> fun.(initial, :halt) end)

  # The caller owns the port but is not linked to it: a port that fails (EPIPE
  # when the helper died) would otherwise send the caller an exit signal. A
  # watcher process closes the port if the caller dies, which is what the link
  # would have done.
  defp open(program, args, %Options{} = options, command) do
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
  # current one is passed along, as a fresh helper would inherit it.
  #
  # A command line too long for execve(2) goes the fresh way, which refuses
  # it before any helper starts, so both ways fail alike.
  defp pooled(program, args, %Options{parallelism: nil} = options) do
    helper = Helper.helper_path()
    options = %{options | cd: options.cd || File.cwd!()}

    with true <-
           Helper.exec_fits?(
             helper,
             Helper.pool_argv() ++ Helper.run_args(program, args, options)
           ) ||
             :none,
         {:ok, port, env} <- Corral.Pool.checkout(self(), helper) do
      # Port.connect/2 linked the port to the caller. A helper that died
      # while it waited fails the R frame's write with EPIPE, and the port
      # would send its exit signal to the caller: unlink first. (The port
      # still closes if the caller dies: the caller owns it.)
      Process.unlink(port)

      try do
        Port.command(
          port,
          Corral.Protocol.encode({:run, Helper.run_args(program, args, options)})
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
  defp close({port, ref, watcher, _origin}) do
    Helper.close(port)
    send(watcher, :done)
    Port.demonitor(ref, [:flush])
  end

  # A pooled helper whose run ended with X waits for its next R: it goes
  # back to the pool. Anything else is closed.
  defp release({port, ref, watcher, {:pooled, env}}, {:ok, _started, _report, _accs}) do
    send(watcher, :done)
    Port.demonitor(ref, [:flush])
    Corral.Pool.checkin(port, env)
  end

  defp release(session, _result), do: close(session)

  defp start({port, ref, _watcher, origin}, options, sinks, command) do
    s = %{
      origin: origin,
      port: port,
      ref: ref,
      command: command,
      collectors: Map.new(sinks, fn {name, _, fun} -> {name, fun} end),
      separate: options.separate_stderr,
      options: options
    }

    client = Client.new(options.stdio_window, options.input != nil)
    accs = Map.new(sinks, fn {name, initial, _} -> {name, initial} end)
    loop(s, client, accs, Input.new(options.input))
  end

  # Hands each frame to the client and performs its events. While input is
  # left and the client may write, each turn without a waiting message
  # writes one I frame.
  defp loop(%{port: port, ref: ref} = s, client, accs, input) do
    receive do
      {^port, {:data, body}} ->
        {events, client} = Client.handle(client, body)
        events(events, s, client, accs, input)

      {^port, {:exit_status, status}} ->
        {events, client} = Client.gone(client, {:helper_exit, status})
        events(events, s, client, accs, input)

      {:DOWN, ^ref, :port, ^port, reason} ->
        {events, client} = Client.gone(client, {:helper_closed, reason})
        events(events, s, client, accs, input)
    after
      input_timeout(input, client) ->
        case Input.pull(input) do
          {:chunk, chunk, input} ->
            {events, client} = Client.write(client, nil, chunk)
            events(events, s, client, accs, input)

          :eof ->
            {events, client} = Client.close_input(client, nil)
            events(events, s, client, accs, nil)
        end
    end
  end

  defp events([], s, client, accs, input), do: loop(s, client, accs, input)

  defp events([{:output, stream, data} | rest], s, client, accs, input) do
    accs = collect(s, accs, stream, data, input)
    {acks, client} = Client.consumed(client, byte_size(data))
    events(acks ++ rest, s, client, accs, input)
  end

  defp events([{:send, frame} | rest], s, client, accs, input) do
    Helper.send_frame(s.port, frame)
    events(rest, s, client, accs, input)
  end

  defp events([{:started, started} | rest], s, client, accs, input),
    do: events(rest, Map.put(s, :started, started), client, accs, input)

  defp events([{:exit, report} | _], s, _client, accs, input) do
    Input.halt(input)
    {:ok, s.started, report, accs}
  end

  defp events([{:cleanup, started} | rest], s, client, accs, input) do
    Helper.cleanup_after_death(started)
    events(rest, s, client, accs, input)
  end

  # The R frame's write failed (EPIPE): the pooled helper had died while it
  # waited, before the pool noticed, so it never read R and nothing of the
  # run happened; a fresh helper runs it. A helper that dies after the write
  # went through may have started the child already (it sends S just after
  # the spawn), so that run is never tried again: it fails as any other.
  defp events(
         [{:error, {:helper_closed, :epipe}, _} | _],
         %{origin: {:pooled, _}} = s,
         _client,
         _accs,
         _input
       )
       when not is_map_key(s, :started),
       do: :dead_pooled_helper

  defp events([{:error, :enoent, _} | _], _s, _client, _accs, input) do
    Input.halt(input)
    {:error, :enoent}
  end

  defp events([{:error, reason, details} | _], s, _client, _accs, input) do
    Input.halt(input)
    no_primary_group!(reason, s.options)
    error(s.command, reason, details)
  end

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

  # stderr joins the output unless it is kept apart; with
  # capture_stderr_only it is the only stream that arrives.
  defp collect(%{separate: separate} = s, accs, tag, data, input) do
    name = if separate, do: tag, else: :output
    Map.put(accs, name, Map.fetch!(s.collectors, name).(Map.fetch!(accs, name), {:cont, data}))
  catch
    kind, reason ->
      Input.halt(input)
      :erlang.raise(kind, reason, __STACKTRACE__)
  end

  defp input_timeout(nil, _client), do: :infinity

  defp input_timeout(_input, client) do
    if Client.writable?(client), do: 0, else: :infinity
  end

  defp error(command, reason, details),
    do: {:error, %Error{reason: reason, command: command, details: details}}
end

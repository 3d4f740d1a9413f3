defmodule Corral.Daemon.Remote do
  @moduledoc false
  # Corral.Daemon's driver for a program on another node (`:node`): the
  # program runs there under a Corral.Process owned for the daemon
  # (Corral.Remote), and this turns what that process answers into the
  # events the daemon already performs for its own helper: `{:output,
  # stream, data}`, `{:reply, from, reply}`, `{:exit, report}` and `{:error,
  # reason, nil}`.
  #
  # Every call to the process is asynchronous, so the daemon never blocks
  # on the other node: one read is on its way at a time, and the next one
  # goes out once the daemon has handed the chunk to its logger
  # (consumed/1), which acks it to the helper there. So the helper's window
  # bounds both VMs, and a slow logger slows the program, as on one node.
  # The read on its way also watches the process: when its node goes away,
  # the read answers `{:nodedown, node}`.

  alias Corral.Daemon.Options, as: DaemonOptions
  alias Corral.Process, as: Proc

  defstruct [:node, :proxy, :process, :opts, :read, :helper, calls: %{}]

  @type t :: %__MODULE__{
          node: node() | nil,
          proxy: pid() | nil,
          process: pid() | nil,
          opts: keyword(),
          read: term(),
          helper: {node(), pos_integer()} | nil,
          calls: %{term() => GenServer.from()}
        }

  @doc """
  nil when the daemon's `opts` run it on this node, else what start/3
  needs: the options of its Corral.Process there.
  """
  @spec new(keyword(), DaemonOptions.t()) :: t() | nil
  def new(opts, %DaemonOptions{} = options) do
    if Corral.Remote.remote?(opts) do
      common = Keyword.take(opts, Corral.Options.known())
      %__MODULE__{opts: process_opts(common, options)}
    end
  end

  # stdin: a pipe fed by send_input/2 (no :input), or closed at once (as
  # /dev/null would give end of file). stderr logged on its own: kept apart.
  defp process_opts(common, options) do
    input = if options.stdin, do: [input: nil], else: [input: ""]

    stderr =
      if options.log_stderr_level != nil and not options.common.capture_stderr_only,
        do: [separate_stderr: true],
        else: []

    common ++ input ++ stderr
  end

  @doc """
  Starts the program on its node: `{:ok, remote, started}` with the S
  frame's `started` (read from there), or `{:error, reason}`.
  """
  @spec start(t(), String.t(), [String.t()], DaemonOptions.t()) ::
          {:ok, t(), map()} | {:error, term()}
  def start(%__MODULE__{} = r, command, args, %DaemonOptions{common: common}) do
    with {:ok, node, proxy, p} <- Corral.Remote.start_owned(command, args, common, r.opts) do
      case Proc.started(p) do
        %{} = started ->
          # A lost connection ends the run there (the proxy watches the
          # daemon). The read on its way tells of it, unless the daemon
          # sent its next read after the loss: that read connects again,
          # and finds the process gone (`:noproc`) on a node that is up.
          Node.monitor(node, true)
          helper = started.helper_os_pid && {node, started.helper_os_pid}
          r = %{r | node: node, proxy: proxy, process: p, helper: helper}
          {:ok, read(r), started}

        {:error, reason} ->
          Process.exit(proxy, :kill)
          {:error, reason}
      end
    end
  end

  defp read(r), do: %{r | read: Proc.read_request(r.process)}

  @doc "The daemon has handed the last chunk on: the next read goes out."
  @spec consumed(t()) :: t()
  def consumed(%__MODULE__{read: nil} = r), do: read(r)

  @doc """
  The events for `message` when it is an answer of the process, with the
  remote updated, or `:unknown`.
  """
  @spec handle(t(), term()) :: {list(), t()} | :unknown
  def handle(%__MODULE__{node: node} = r, {:nodedown, node}),
    do: {[{:error, {:nodedown, node}, nil}], %{r | process: nil}}

  def handle(%__MODULE__{read: read} = r, message) when read != nil do
    case Proc.check_read_reply(message, read) do
      :no_reply -> call_reply(r, message)
      reply -> read_reply(%{r | read: nil}, reply)
    end
  end

  def handle(r, message), do: call_reply(r, message)

  defp read_reply(r, {:ok, stream, data}), do: {[{:output, stream, data}], r}

  # All output is in: the process has the exit report.
  defp read_reply(r, :eof) do
    case Proc.await_exit(r.process) do
      {:ok, result} -> {[{:exit, report(result)}], r}
      {:error, reason} -> {[{:error, failure(r, reason), nil}], r}
    end
  end

  defp read_reply(r, {:error, reason}) do
    case failure(r, reason) do
      # Nothing is left there to stop, and a call would try to reconnect.
      {:nodedown, _} = reason -> {[{:error, reason, nil}], %{r | process: nil}}
      reason -> {[{:error, reason, nil}], r}
    end
  end

  defp failure(r, :not_running), do: Corral.Remote.not_running(r.node)
  defp failure(_r, reason), do: reason

  # What the daemon reads of an X frame, from the Corral.Result.
  defp report(%Corral.Result{reason: {:signal, _}} = result),
    do: %{reason: :signal, exit_status: result.exit_status}

  defp report(%Corral.Result{} = result),
    do: %{reason: result.reason, exit_status: result.exit_status}

  defp call_reply(r, message) do
    Enum.find_value(r.calls, :unknown, fn {request, from} ->
      case :gen_server.check_response(message, request) do
        :no_reply ->
          nil

        response ->
          reply =
            case response do
              {:reply, reply} -> reply
              {:error, _} -> {:error, :closed}
            end

          {[{:reply, from, reply}], %{r | calls: Map.delete(r.calls, request)}}
      end
    end)
  end

  @doc "send_input/2: written there, answered to `from` once it is on its way."
  @spec write(t(), GenServer.from(), binary()) :: t()
  def write(r, from, data), do: call(r, from, {:write, data})

  @doc "close_input/1: closed there once what was written is, answered to `from`."
  @spec close_input(t(), GenServer.from()) :: t()
  def close_input(r, from), do: call(r, from, :close_input)

  defp call(r, from, request) do
    %{r | calls: Map.put(r.calls, :gen_server.send_request(r.process, request), from)}
  end

  @doc "signal/2 on the program there."
  @spec signal(t(), String.t()) :: :ok | {:error, term()}
  def signal(r, name), do: Proc.signal(r.process, name)

  @doc """
  Ends the tree there and waits up to `timeout` for that (Corral.Process.stop/2);
  calls still waiting are answered `{:error, :closed}`.
  """
  @spec stop(t(), timeout()) :: :ok
  def stop(r, timeout) do
    Proc.stop(r.process, timeout)
    for {_request, from} <- r.calls, do: GenServer.reply(from, {:error, :closed})
    :ok
  end
end

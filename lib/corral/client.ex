defmodule Corral.Client do
  @moduledoc false
  # The one client of the helper's protocol (docs/protocol.md), a pure
  # struct: every frame a helper sends goes through handle/2, which decodes
  # it and returns the events it means, in order, plus what to send back.
  # It owns the start handshake (S or F first, the version), the output acks
  # (consumed/2: when and how much), stdin credit and the queue of writes
  # waiting for it (write/3, close_input/2), the exit report, and what a
  # dead helper leaves to clean up (gone/2).
  #
  # It also reads the output a helper leaves in a pipe for the VM (P
  # frames, docs/protocol.md "Direct output"): the one I/O it does,
  # through the pipe_* NIFs, in the driver's process. Otherwise it does no
  # I/O: each driver (Corral.Runner for cmd/run, Corral.Process,
  # Corral.Daemon) performs the events it returns:
  #
  #   {:send, frame}          - Corral.Helper.send_frame(port, frame)
  #   {:cleanup, started}     - Corral.Helper.cleanup_after_death(started)
  #   {:reply, from, reply}   - answer a write/close_input caller (from != nil)
  #   {:started, started}     - the child runs
  #   {:output, stream, data} - output to hand on; call consumed/2 once it is
  #   {:exit, report}         - the last event of a run that ended; the
  #                             report's :exit_status is always an integer
  #   {:error, reason, details} - the last event of a run that failed, with
  #                             Corral.Error's reason and details

  alias Corral.Native
  alias Corral.Protocol

  defstruct window: 1_048_576,
            threshold: 262_144,
            phase: :starting,
            started: nil,
            unacked: 0,
            credit: 1_048_576,
            stdin: :closed,
            queue: {[], []},
            pipes: %{}

  @type from :: term()

  @type event ::
          {:send, Protocol.frame()}
          | {:cleanup, Protocol.started()}
          | {:reply, from(), :ok | {:error, :closed}}
          | {:started, Protocol.started()}
          | {:output, :stdout | :stderr, binary()}
          | {:exit, Protocol.exit_report()}
          | {:error, term(), String.t() | nil}

  @type t :: %__MODULE__{
          window: pos_integer(),
          threshold: pos_integer(),
          phase: :starting | :running | :done,
          started: Protocol.started() | nil,
          unacked: non_neg_integer(),
          credit: integer(),
          stdin: :open | :closed,
          queue: :queue.queue({from(), binary() | :close}),
          pipes: %{optional(:stdout | :stderr) => reference() | :refused}
        }

  @doc """
  A client for a helper started with `--stdio-window window`; `stdin`
  says whether the child's stdin is a pipe (`--stdin pipe`).
  """
  @spec new(pos_integer(), boolean()) :: t()
  def new(window, stdin) when is_integer(window) and window > 0 and is_boolean(stdin) do
    %__MODULE__{
      window: window,
      threshold: ack_threshold(window),
      credit: window,
      stdin: if(stdin, do: :open, else: :closed),
      queue: :queue.new()
    }
  end

  @doc """
  How many consumed bytes to gather before sending one ack: a quarter of the
  window, so one `A` covers many data frames and the helper never stalls.
  """
  @spec ack_threshold(pos_integer()) :: pos_integer()
  def ack_threshold(window), do: max(div(window, 4), 1)

  @doc "Whether the run is over: an exit report or an error was the last event."
  @spec done?(t()) :: boolean()
  def done?(%__MODULE__{phase: phase}), do: phase == :done

  @doc "Turns one frame body from the helper into events."
  @spec handle(t(), binary()) :: {[event()], t()}
  def handle(%__MODULE__{phase: :done} = c, _body), do: {[], c}

  def handle(%__MODULE__{} = c, body) do
    case Protocol.decode(body) do
      {:ok, frame} -> frame(c, frame)
      {:error, error} -> fail(c, {:protocol, error})
    end
  end

  # The first frame is S or F, and says which protocol version the helper
  # speaks (docs/protocol.md, "Versioning").
  defp frame(%{phase: :starting} = c, {:started, started}) do
    version = Protocol.version()

    case started do
      %{version: ^version} ->
        {events, c} = feed(%{c | phase: :running, started: started})
        {[{:started, started} | events], c}

      %{version: other} ->
        fail(c, {:protocol, {:version, other}})
    end
  end

  # F also follows S when exec itself fails: the child sends S just before
  # exec (docs/protocol.md, "Start"), and nothing of the program ran.
  defp frame(%{phase: phase} = c, {:failed, failed}) when phase in [:starting, :running] do
    {reason, details} =
      case failure_reason(failed) do
        {:spawn_failed, _, _} = reason -> {reason, failed.message}
        reason -> {reason, nil}
      end

    fail(c, reason, details)
  end

  defp frame(%{phase: :running} = c, {stream, data}) when stream in [:stdout, :stderr],
    do: {[{:output, stream, data}], c}

  # The next `bytes` of `stream` wait in the helper's data pipe: read them
  # from there in one binary, or say they cannot be and the helper relays
  # them. Either way the helper waits for the answer.
  defp frame(%{phase: :running} = c, {:pipe, stream, pid, fd, bytes}) do
    case pipe(c, stream, pid, fd) do
      {:ok, pipe, c} ->
        case Native.pipe_read(pipe, bytes) do
          {:ok, data} when byte_size(data) == bytes ->
            {[{:output, stream, data}, {:send, {:pipe_done, stream, :read}}], c}

          # The P frame's promise broken: fewer bytes there, or none to read.
          {:ok, data} ->
            fail(c, {:protocol, {:pipe, stream, {:short, byte_size(data), bytes}}})

          {:error, reason} ->
            fail(c, {:protocol, {:pipe, stream, reason}})
        end

      {:refused, c} ->
        {[{:send, {:pipe_done, stream, :refused}}], c}
    end
  end

  defp frame(%{phase: :running} = c, {:stdin_written, bytes}),
    do: feed(%{c | credit: c.credit + bytes})

  defp frame(%{phase: :running} = c, {:exit, report}) do
    case exit_status(report) do
      nil ->
        fail(c, {:protocol, {:no_exit_status, report}})

      status ->
        {replies, c} = drop_queue(c)
        {replies ++ [{:exit, %{report | exit_status: status}}], %{c | phase: :done}}
    end
  end

  defp frame(c, frame), do: fail(c, {:protocol, {:unexpected_frame, frame}})

  # The stream's pipe, opened at its first P frame and kept for the run.
  defp pipe(%{pipes: pipes} = c, stream, pid, fd) do
    case Map.get(pipes, stream) do
      nil ->
        pipe = open_pipe(pid, fd)
        c = %{c | pipes: Map.put(pipes, stream, pipe)}
        if pipe == :refused, do: {:refused, c}, else: {:ok, pipe, c}

      :refused ->
        {:refused, c}

      pipe ->
        {:ok, pipe, c}
    end
  end

  defp open_pipe(pid, fd) do
    case Native.pipe_open(pid, fd) do
      {:ok, pipe} -> pipe
      {:error, _} -> :refused
    end
  rescue
    # The NIF is not loaded: a helper offers pipes only to a VM that says
    # it can read them (Corral.Helper.direct_output?/0), so this is a VM
    # that lost it.
    ErlangError -> :refused
  end

  @doc """
  Closes the pipes opened for P frames: at the end of a run, or for a
  driver that gives up on one (its helper closed at once).
  """
  @spec close_pipes(t()) :: t()
  def close_pipes(%__MODULE__{pipes: pipes} = c) when map_size(pipes) == 0, do: c

  def close_pipes(%__MODULE__{} = c) do
    for {_, pipe} <- c.pipes, pipe != :refused, do: Native.pipe_close(pipe)
    %{c | pipes: %{}}
  end

  defp exit_status(%{exit_status: status}) when is_integer(status), do: status
  defp exit_status(%{signal: signal}) when is_integer(signal), do: 128 + signal
  defp exit_status(_report), do: nil

  @doc """
  The helper is gone without an exit report: its port sent an exit status
  (`{:helper_exit, status}`) or closed (`{:helper_closed, reason}`). After a
  start, nobody else will end the tree, so a `:cleanup` event comes first.
  """
  @spec gone(t(), term()) :: {[event()], t()}
  def gone(%__MODULE__{phase: :done} = c, _reason), do: {[], c}

  def gone(%__MODULE__{started: nil} = c, reason), do: fail(c, reason)

  def gone(%__MODULE__{started: started} = c, reason) do
    {events, c} = fail(c, reason)
    {[{:cleanup, started} | events], c}
  end

  @doc """
  Says that `bytes` of output were consumed: an ack once a quarter window
  has gathered (docs/protocol.md, "Flow control").
  """
  @spec consumed(t(), non_neg_integer()) :: {[event()], t()}
  def consumed(%__MODULE__{phase: :done} = c, _bytes), do: {[], c}

  def consumed(%__MODULE__{} = c, bytes) do
    unacked = c.unacked + bytes

    if unacked >= c.threshold,
      do: {[{:send, {:ack, unacked}}], %{c | unacked: 0}},
      else: {[], %{c | unacked: unacked}}
  end

  @doc """
  Queues `data` for the child's stdin, sent as `I` frames while the helper
  has confirmed all but a window of what went before; `{:reply, from, :ok}`
  once it is sent, `{:error, :closed}` when stdin is not open (closed, never
  a pipe, or the run is over).
  """
  @spec write(t(), from(), binary()) :: {[event()], t()}
  def write(%__MODULE__{stdin: :open, phase: phase} = c, from, data)
      when is_binary(data) and phase != :done,
      do: feed(%{c | queue: :queue.in({from, data}, c.queue)})

  def write(%__MODULE__{} = c, from, data) when is_binary(data), do: {reply(from, :closed), c}

  @doc "Closes the child's stdin after what is queued; later writes are refused."
  @spec close_input(t(), from()) :: {[event()], t()}
  def close_input(%__MODULE__{stdin: :open, phase: phase} = c, from) when phase != :done,
    do: feed(%{c | stdin: :closed, queue: :queue.in({from, :close}, c.queue)})

  def close_input(%__MODULE__{} = c, from), do: {reply(from, :closed), c}

  @doc """
  Whether a write now would be sent at once: stdin open, nothing queued,
  and credit left. A driver pulling input from an enumerable pulls only
  then, so it never reads ahead of the child by more than a window.
  """
  @spec writable?(t()) :: boolean()
  def writable?(%__MODULE__{} = c),
    do: c.phase == :running and c.stdin == :open and c.credit > 0 and :queue.is_empty(c.queue)

  # Sends what is queued while the helper has room for it, replying to each
  # write as its data goes; a close goes after the data before it.
  defp feed(%{phase: :running} = c), do: feed(c, [])
  defp feed(c), do: {[], c}

  defp feed(c, acc) do
    case :queue.out(c.queue) do
      {{:value, {from, :close}}, rest} ->
        events = [{:send, :close_stdin} | reply_ok(from)]
        {Enum.reverse(acc, events), %{c | queue: rest}}

      {{:value, {from, data}}, rest} when c.credit > 0 ->
        frames = for chunk <- chunks(data), do: {:send, {:stdin, chunk}}
        acc = Enum.reverse(reply_ok(from), Enum.reverse(frames, acc))
        feed(%{c | queue: rest, credit: c.credit - byte_size(data)}, acc)

      _ ->
        {Enum.reverse(acc), c}
    end
  end

  defp chunks(<<>>), do: []

  defp chunks(data) do
    {chunk, rest} = Protocol.split_stdin(data)
    [chunk | chunks(rest)]
  end

  defp reply_ok(nil), do: []
  defp reply_ok(from), do: [{:reply, from, :ok}]

  defp reply(nil, _), do: []
  defp reply(from, :closed), do: [{:reply, from, {:error, :closed}}]

  defp fail(c, reason, details \\ nil) do
    {replies, c} = drop_queue(c)
    {replies ++ [{:error, reason, details}], %{c | phase: :done}}
  end

  # The run is over: writes still waiting will never be sent, and pipes
  # still open will not be read.
  defp drop_queue(c) do
    c = close_pipes(c)

    replies =
      for {from, _} <- :queue.to_list(c.queue), from != nil, do: {:reply, from, {:error, :closed}}

    {replies, %{c | queue: :queue.new(), stdin: :closed}}
  end

  @doc """
  The reason for an `F` frame, as `Corral.Error` and `{:error, _}` carry
  it: plain `:enoent` for a program that does not exist (as for one
  `:os.find_executable/1` did not find), `{:cgroup, posix, message}`, or
  `{:spawn_failed, posix, stage}`.
  """
  @spec failure_reason(map()) :: term()
  def failure_reason(%{stage: "exec", errno_name: "enoent"}), do: :enoent
  def failure_reason(%{stage: "cgroup"} = f), do: {:cgroup, posix(f.errno_name), f.message}
  def failure_reason(f), do: {:spawn_failed, posix(f.errno_name), f.stage}

  # errno names come from the helper; only names the VM already knows
  # become atoms. These are what the spawn stages (execve, chdir, the
  # credentials, a cgroup write) can give, so they are always atoms.
  @spawn_errnos ~w(e2big eacces eagain ebusy efault einval eio eisdir elibbad eloop
                   emfile enametoolong enfile enoent enoexec enomem enospc enotdir
                   eopnotsupp eperm erofs esrch etxtbsy)a

  defp posix(nil), do: nil

  defp posix(name) do
    Enum.find(@spawn_errnos, &(Atom.to_string(&1) == name)) || String.to_existing_atom(name)
  rescue
    ArgumentError -> name
  end
end

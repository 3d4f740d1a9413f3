defmodule Corral.Process do
  @moduledoc """
  A running program that one owner drives: write to its stdin, read its
  output as it comes, await its exit. Contained as `Corral.cmd/3` contains
  its children, with the same options.

  `start/3` runs the program under a `corral` helper held by a small server
  process, and makes the caller its owner: when the owner dies, the whole
  tree is ended (as when the server itself dies). `start_link/3` also links
  the caller to the server.

  Output is pulled: the helper sends at most `:stdio_window` bytes (1 MiB by
  default) ahead of what the owner has read with `read/2`, so a program
  that prints faster than its owner reads blocks in `write(2)` instead of
  filling the VM's memory. Reading is the owner's job: a program whose
  output nobody reads stops once the window is full.

  ## Examples

      iex> {:ok, p} = Corral.Process.start("cat", [])
      iex> :ok = Corral.Process.write(p, "hello\\n")
      iex> Corral.Process.read(p)
      {:ok, "hello\\n"}
      iex> :ok = Corral.Process.close_input(p)
      iex> Corral.Process.read(p)
      :eof
      iex> {:ok, %Corral.Result{exit_status: 0}} = Corral.Process.await_exit(p)

  ## Options

  Those of `Corral.run/3` (and so of `Corral.cmd/3`) but `:into`, which
  has no meaning here: `read/2` hands out the output. The program's stdin
  is a pipe: fed with `write/2` and closed with `close_input/1`, or fed
  from `:input` (a binary or an enumerable, as for `Corral.cmd/3`) and
  closed when it ends; with `:input` `write/2` returns `{:error, :closed}`.
  Output is stdout, or stdout and stderr merged with `:stderr_to_stdout`,
  or each apart with `:separate_stderr` (read them with `from: :stdout`
  and `from: :stderr`), or stderr alone with `:capture_stderr_only`.
  Without one of these stderr goes to the VM's stderr.

  With `:node` the process runs on that node, and every function here works
  on it from the caller; a lost connection ends its tree and gives
  `{:error, {:nodedown, node}}` (README, "Other nodes").

  Bad options raise `ArgumentError` in the caller.

  ## Error reasons

  `start/3` returns `{:error, reason}` with `Corral.run/3`'s reasons
  (`:enoent`, `{:spawn_failed, errno, stage}`, `{:cgroup, errno,
  message}`, ...), or `:start_timeout` when the helper sent nothing for
  15 s. Each function called on a process that is no longer there (after
  `await_exit/2` or `stop/2` returned, or after its owner died) returns
  `{:error, :not_running}`.
  """

  use GenServer

  alias Corral.Client
  alias Corral.Helper
  alias Corral.Input
  alias Corral.Options
  alias Corral.Result

  @start_timeout 15_000
  # What stop/2 waits, beyond :delay_to_sigkill, for the tree to end.
  @stop_margin 1000

  @typedoc "A running program, as `start/3` returns it."
  @type t :: pid()

  @doc """
  Starts `command` with `args`; the caller becomes the owner. Returns once
  the program runs.
  """
  @spec start(String.t(), [String.t()], keyword()) :: {:ok, t()} | {:error, term()}
  def start(command, args, opts \\ []) when is_binary(command) and is_list(args) do
    Options.check_command!(command, args, "start Corral.Process", "Corral.Process")
    options = Options.new!(opts)

    if Keyword.has_key?(opts, :into) do
      raise ArgumentError,
            "invalid option :into with value #{inspect(options.into)}: " <>
              "Corral.Process hands out its output with read/2"
    end

    # `:node`: the process runs there, owned for the caller (Corral.Remote).
    if Corral.Remote.remote?(opts) do
      Corral.Remote.start_process(command, args, options, opts)
    else
      with {:ok, program} <- Helper.find_program(command) do
        GenServer.start(__MODULE__, {self(), program, args, options})
      end
    end
  end

  @doc "As `start/3`, and links the caller to the process."
  @spec start_link(String.t(), [String.t()], keyword()) :: {:ok, t()} | {:error, term()}
  def start_link(command, args, opts \\ []) do
    with {:ok, pid} <- start(command, args, opts) do
      Process.link(pid)
      {:ok, pid}
    end
  end

  @doc """
  Writes `data` (iodata) to the program's stdin. Returns once it is on its
  way; as a write to a pipe does, it waits while the program is a window
  (`:stdio_window`) behind.

  `{:error, :closed}` after `close_input/1`, with `:input`, or once the
  program has exited.
  """
  @spec write(t(), iodata()) :: :ok | {:error, :closed | :not_running}
  def write(process, data), do: call(process, {:write, iodata!(data)})

  @doc "Closes the program's stdin once what was written is, so it sees end of file."
  @spec close_input(t()) :: :ok | {:error, :closed | :not_running}
  def close_input(process), do: call(process, :close_input)

  @doc """
  The next chunk of output, as it arrived (no line buffering): `{:ok,
  data}`, `:eof` once the program has exited and everything is read, or
  `{:error, :timeout}`.

  Options:

    * `:from` - `:stdout` or `:stderr` for one stream only (with
      `:separate_stderr`); defaults to `:any`, the next chunk of either.
    * `:timeout` - milliseconds to wait for a chunk, or `:infinity` (the
      default).

  When the helper failed instead, `{:error, reason}` with a reason of
  `Corral.Error`.
  """
  @spec read(t(), keyword()) :: {:ok, binary()} | :eof | {:error, term()}
  def read(process, opts \\ []) do
    {from, timeout} = read_opts!(opts)
    call(process, {:read, from, timeout})
  end

  @doc false
  # read/2 of the next chunk from any stream, without waiting, and naming
  # its stream: Corral.Remote keeps one read on its way while it collects a
  # chunk. Returns a request for read_reply/1, whose reply is `{:ok,
  # stream, data}` where read/2's is `{:ok, data}`.
  def read_request(process), do: :gen_server.send_request(process, {:read, :tagged, :infinity})

  @doc false
  # What read_request/1's read returned, as call/2 would return it.
  def read_reply(request), do: request |> :gen_server.receive_response(:infinity) |> reply()

  @doc false
  # The reply to a read_request/1 that `message` carries, or :no_reply when
  # it carries none: for a driver that receives in handle_info/2.
  def check_read_reply(message, request) do
    case :gen_server.check_response(message, request) do
      :no_reply -> :no_reply
      response -> reply(response)
    end
  end

  @doc false
  # What the helper's S frame said (the pid, the containment and the cgroup
  # directories), and the helper's own pid (nil once it is closed): the
  # Daemon with :node reports them from its node.
  def started(process), do: call(process, :started)

  defp reply({:reply, reply}), do: reply
  defp reply({:error, {:noconnection, process}}), do: {:error, {:nodedown, node(process)}}

  defp reply({:error, {reason, _}}) when reason in [:noproc, :normal, :shutdown],
    do: {:error, :not_running}

  defp reply({:error, {reason, _}}), do: exit(reason)

  @doc """
  Waits up to `timeout` for the program to exit, and returns how it ended
  and what its tree used: `{:ok, %Corral.Result{}}` (`:output` is nil).
  Output not read by then is read and dropped, so the program never waits
  on its owner. The process is gone afterwards.

  `{:error, :timeout}` if it still runs (it is left running), `{:error,
  reason}` with a reason of `Corral.Error` if the helper failed.
  """
  @spec await_exit(t(), timeout()) :: {:ok, Result.t()} | {:error, term()}
  def await_exit(process, timeout \\ :infinity) do
    check_timeout!(timeout)
    call(process, {:await_exit, timeout})
  end

  @doc """
  Sends a signal to the program (not to the rest of its tree): `:sighup`,
  `:hup`, `"SIGHUP"` or `"HUP"`. An unknown name raises `ArgumentError`.
  """
  @spec signal(t(), atom() | String.t()) :: :ok | {:error, :not_running}
  def signal(process, signal), do: call(process, {:signal, Helper.signal_name!(signal)})

  @doc """
  Sets the window size of the program's terminal, for a process started
  with `:pty`: `cols` columns by `rows` rows, each from 1 to 65535. The
  kernel then sends `SIGWINCH` to the terminal's foreground process group,
  as a terminal emulator's window does when a person resizes it.

  `{:error, :no_pty}` for a process started without `:pty`. Sizes out of
  range raise `ArgumentError`.
  """
  @spec resize(t(), 1..65_535, 1..65_535) :: :ok | {:error, :no_pty | :not_running}
  def resize(process, cols, rows)
      when is_integer(cols) and cols in 1..65_535 and is_integer(rows) and rows in 1..65_535,
      do: call(process, {:resize, cols, rows})

  def resize(_process, cols, rows) do
    raise ArgumentError,
          "expected a terminal size of 1 to 65535 columns and rows, got: #{inspect({cols, rows})}"
  end

  @doc "The program's OS pid."
  @spec os_pid(t()) :: pos_integer() | {:error, :not_running}
  def os_pid(process), do: call(process, :os_pid)

  @doc """
  Ends the program's whole tree (SIGTERM, then SIGKILL after
  `:delay_to_sigkill`) and waits up to `timeout` for that; unread output is
  dropped. After `timeout` (by default `:delay_to_sigkill` plus a second)
  the helper's port is closed, which ends the tree without waiting. The
  process is gone afterwards.
  """
  @spec stop(t(), timeout() | nil) :: :ok | {:error, :not_running}
  def stop(process, timeout \\ nil) do
    if timeout != nil, do: check_timeout!(timeout)
    call(process, {:stop, timeout})
  end

  defp call(process, request) do
    GenServer.call(process, request, :infinity)
  catch
    :exit, {reason, _} when reason in [:noproc, :normal, :shutdown] -> {:error, :not_running}
    # A process on another node (`:node`) whose connection was lost.
    :exit, {{:nodedown, node}, _} -> {:error, {:nodedown, node}}
  end

  defp iodata!(data) do
    IO.iodata_to_binary(data)
  rescue
    ArgumentError ->
      reraise ArgumentError, "expected iodata, got: #{inspect(data)}", __STACKTRACE__
  end

  defp read_opts!(opts) do
    unless is_list(opts) and Keyword.keyword?(opts) do
      raise ArgumentError, "expected a keyword list of options, got: #{inspect(opts)}"
    end

    Enum.reduce(opts, {:any, :infinity}, fn
      {:from, from}, {_, timeout} when from in [:any, :stdout, :stderr] ->
        {from, timeout}

      {:timeout, timeout}, {from, _} ->
        check_timeout!(timeout)
        {from, timeout}

      {key, value}, _ ->
        raise ArgumentError, "invalid option #{inspect(key)} with value #{inspect(value)}"
    end)
  end

  defp check_timeout!(:infinity), do: :ok
  defp check_timeout!(ms) when is_integer(ms) and ms >= 0, do: :ok

  defp check_timeout!(other),
    do: raise(ArgumentError, "expected a timeout in milliseconds, got: #{inspect(other)}")

  ## Server

  defstruct [
    :owner,
    :port,
    :client,
    :started,
    :options,
    :input,
    # {:ok, result} or {:error, reason} once the run is over.
    :outcome,
    # Output not read yet: {seq, stream, data}, oldest first.
    buffer: :queue.new(),
    seq: 0,
    # read calls waiting for output: {from, which, timer}.
    readers: [],
    # await_exit and stop calls waiting for the end: {from, kind, timer}.
    waiters: []
  ]

  @impl true
  def init({owner, program, args, %Options{} = options}) do
    Process.flag(:trap_exit, true)
    Process.monitor(owner)
    {_stdin, stdout, stderr} = Helper.stdio(options)
    argv = Helper.argv(program, args, options, {:pipe, stdout, stderr})
    client = Client.new(options.stdio_window, true)

    case Helper.start(argv, options.parallelism, client, @start_timeout) do
      {:ok, port, started, client} ->
        s = %__MODULE__{
          owner: owner,
          port: port,
          client: client,
          started: started,
          options: options,
          input: Input.new(options.input)
        }

        {:ok, feed_input(s)}

      {:error, reason} ->
        {:stop, reason}
    end
  end

  @impl true
  def handle_call(:os_pid, _from, s), do: {:reply, s.started.os_pid, s}

  def handle_call(:started, _from, s) do
    helper =
      case s.port && Port.info(s.port, :os_pid) do
        {:os_pid, pid} -> pid
        _ -> nil
      end

    {:reply, Map.put(s.started, :helper_os_pid, helper), s}
  end

  def handle_call({:write, _data}, _from, %{input: input} = s) when input != nil,
    do: {:reply, {:error, :closed}, s}

  def handle_call({:write, data}, from, s),
    do: s.client |> Client.write(from, data) |> events(s) |> noreply()

  def handle_call(:close_input, _from, %{input: input} = s) when input != nil,
    do: {:reply, {:error, :closed}, s}

  def handle_call(:close_input, from, s),
    do: s.client |> Client.close_input(from) |> events(s) |> noreply()

  def handle_call({:signal, name}, _from, s), do: {:reply, Helper.signal(s.port, name), s}

  def handle_call({:resize, _cols, _rows}, _from, %{options: %{pty: nil}} = s),
    do: {:reply, {:error, :no_pty}, s}

  def handle_call({:resize, _cols, _rows}, _from, %{port: nil} = s),
    do: {:reply, {:error, :not_running}, s}

  def handle_call({:resize, cols, rows}, _from, s),
    do: {:reply, Helper.send_frame(s.port, {:resize, cols, rows}), s}

  def handle_call({:read, which, timeout}, from, s) do
    timer =
      if timeout == :infinity,
        do: nil,
        else: Process.send_after(self(), {:timeout, from}, timeout)

    %{s | readers: s.readers ++ [{from, which, timer}]} |> serve() |> noreply()
  end

  def handle_call({:await_exit, timeout}, from, s), do: wait(s, from, :await, timeout)

  def handle_call({:stop, timeout}, from, s) do
    if s.port != nil and s.outcome == nil, do: Helper.send_frame(s.port, :stop)
    wait(s, from, :stop, timeout || s.options.delay_to_sigkill + @stop_margin)
  end

  defp wait(s, from, kind, timeout) do
    timer =
      if timeout == :infinity,
        do: nil,
        else: Process.send_after(self(), {:timeout, from}, timeout)

    %{s | waiters: [{from, kind, timer} | s.waiters]} |> finish()
  end

  @impl true
  def handle_info({port, {:data, body}}, %{port: port} = s),
    do: s.client |> Client.handle(body) |> events(s) |> finish()

  def handle_info({port, {:exit_status, status}}, %{port: port} = s),
    do: s.client |> Client.gone({:helper_exit, status}) |> events(s) |> finish()

  def handle_info({:EXIT, port, reason}, %{port: port} = s),
    do: s.client |> Client.gone({:helper_closed, reason}) |> events(s) |> finish()

  # The owner died: the tree goes with it.
  def handle_info({:DOWN, _ref, :process, owner, _reason}, %{owner: owner} = s),
    do: {:stop, :normal, s}

  # A read or a wait ran out of time.
  def handle_info({:timeout, from}, s) do
    case List.keytake(s.readers, from, 0) do
      {_, readers} ->
        GenServer.reply(from, {:error, :timeout})
        {:noreply, %{s | readers: readers}}

      nil ->
        case List.keytake(s.waiters, from, 0) do
          {{_, :stop, _}, waiters} ->
            # The tree did not end in time: closing the port ends it.
            close_port(s)
            GenServer.reply(from, :ok)
            {:stop, :normal, %{s | waiters: waiters, port: nil}}

          {_, waiters} ->
            GenServer.reply(from, {:error, :timeout})
            {:noreply, %{s | waiters: waiters}}

          nil ->
            {:noreply, s}
        end
    end
  end

  def handle_info({:EXIT, _pid, :normal}, s), do: {:noreply, s}
  def handle_info({:EXIT, _pid, reason}, s), do: {:stop, reason, s}
  def handle_info(_message, s), do: {:noreply, s}

  @impl true
  def terminate(_reason, s) do
    close_port(s)
    Input.halt(s.input)
    :ok
  end

  defp close_port(%{port: nil}), do: :ok
  defp close_port(%{port: port}), do: Helper.close(port)

  defp noreply(s), do: {:noreply, s}

  # Performs the client's events in order.
  defp events({events, client}, s), do: s |> Map.put(:client, client) |> event(events)

  defp event(s, []), do: feed_input(s)

  defp event(s, [{:output, stream, data} | rest]) do
    if s.waiters != [] do
      s |> consumed(byte_size(data)) |> event(rest)
    else
      seq = s.seq + 1
      event(%{s | buffer: :queue.in({seq, stream, data}, s.buffer), seq: seq}, rest)
    end
  end

  defp event(s, [{:send, frame} | rest]) do
    Helper.send_frame(s.port, frame)
    event(s, rest)
  end

  defp event(s, [{:reply, from, reply} | rest]) do
    GenServer.reply(from, reply)
    event(s, rest)
  end

  defp event(s, [{:cleanup, started} | rest]) do
    Helper.cleanup_after_death(started)
    event(%{s | port: nil}, rest)
  end

  defp event(s, [{:exit, report} | _]) do
    close_port(s)
    Input.halt(s.input)
    %{s | port: nil, input: nil, outcome: {:ok, Result.new(s.started, report, %{})}}
  end

  defp event(s, [{:error, reason, _details} | _]) do
    close_port(s)
    Input.halt(s.input)
    %{s | port: nil, input: nil, outcome: {:error, reason}}
  end

  defp consumed(s, bytes) do
    {acks, client} = Client.consumed(s.client, bytes)
    for {:send, frame} <- acks, do: Helper.send_frame(s.port, frame)
    %{s | client: client}
  end

  # Writes :input while the client may: one chunk at a time, at most a
  # window ahead of what the program took.
  defp feed_input(%{input: nil} = s), do: s

  defp feed_input(s) do
    if Client.writable?(s.client) do
      case Input.pull(s.input) do
        {:chunk, chunk, input} ->
          s.client |> Client.write(nil, chunk) |> events(%{s | input: input})

        :eof ->
          s.client |> Client.close_input(nil) |> events(%{s | input: nil})
      end
    else
      s
    end
  end

  # Hands buffered chunks to waiting readers, in order, acking each as it
  # goes; at the end, readers with nothing left get :eof or the error.
  defp serve(%{readers: []} = s), do: s

  defp serve(%{readers: [{from, which, timer} | readers]} = s) do
    case take(s.buffer, which) do
      {{_seq, stream, data}, buffer} ->
        cancel(timer)
        GenServer.reply(from, if(which == :tagged, do: {:ok, stream, data}, else: {:ok, data}))
        %{s | readers: readers, buffer: buffer} |> consumed(byte_size(data)) |> serve()

      nil when s.outcome != nil ->
        cancel(timer)
        GenServer.reply(from, end_of_output(s.outcome))
        serve(%{s | readers: readers})

      nil ->
        # The first reader waits; later ones wait behind it.
        s
    end
  end

  defp end_of_output({:ok, _result}), do: :eof
  defp end_of_output({:error, _} = error), do: error

  defp take(buffer, which) when which in [:any, :tagged] do
    case :queue.out(buffer) do
      {{:value, chunk}, rest} -> {chunk, rest}
      {:empty, _} -> nil
    end
  end

  defp take(buffer, which) do
    case Enum.find(:queue.to_list(buffer), fn {_, stream, _} -> stream == which end) do
      nil -> nil
      chunk -> {chunk, :queue.delete(chunk, buffer)}
    end
  end

  # While await_exit or stop waits, what is buffered and what comes is read
  # and dropped.
  defp drain(s) do
    bytes =
      s.buffer
      |> :queue.to_list()
      |> Enum.map(fn {_, _, data} -> byte_size(data) end)
      |> Enum.sum()

    for {from, _, timer} <- s.readers do
      cancel(timer)
      GenServer.reply(from, :eof)
    end

    %{s | buffer: :queue.new(), readers: []} |> consumed(bytes)
  end

  # After each turn: serve readers; once the run is over, answer the
  # waiters, and stop when one was answered (the owner is done with it).
  defp finish(s) do
    s = if s.waiters != [], do: drain(s), else: serve(s)

    case {s.outcome, s.waiters} do
      {nil, _} ->
        {:noreply, s}

      {_, []} ->
        {:noreply, s}

      {outcome, waiters} ->
        for {from, kind, timer} <- waiters do
          cancel(timer)
          GenServer.reply(from, if(kind == :stop, do: :ok, else: outcome))
        end

        {:stop, :normal, %{s | waiters: []}}
    end
  end

  defp cancel(nil), do: :ok
  defp cancel(timer), do: Process.cancel_timer(timer)
end

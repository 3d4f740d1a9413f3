defmodule Corral.Remote do
  @moduledoc false
  # Runs programs on other BEAM nodes, for the `:node` option of
  # Corral.cmd/3, Corral.run/3, Corral.stream!/3, Corral.Process and
  # Corral.Daemon (whose driver is Corral.Daemon.Remote).
  #
  # The other node runs the program under a Corral.Process, as a local
  # caller would: the helper's window bounds the output buffered there. Its
  # owner is a small proxy on that node which monitors the caller; when the
  # caller dies or its node is disconnected (`:noconnection`), the proxy
  # exits, and the Corral.Process ends the tree as it does when its owner
  # dies. The caller pulls each chunk with Corral.Process.read/2, a
  # GenServer call across distribution: at most one chunk is on its way, so
  # neither VM holds more than a window of output, and a slow caller slows
  # the program. `:into` collectables run in the caller.
  #
  # Nothing here listens or opens a port: it is :erpc and GenServer calls
  # over the distribution that already connects the nodes.

  alias Corral.Options
  alias Corral.Process, as: Proc
  alias Corral.Result
  alias Corral.Runner

  # The version of this node-to-node protocol: the messages and calls
  # below. Bump it whenever they change. 2: reads name their stream.
  @version 2
  @start_timeout 30_000

  @typedoc "What each side checks: this module's version and the helper protocol's."
  @type version :: {pos_integer(), pos_integer()}

  @doc "The versions this node speaks."
  @spec version() :: version()
  def version, do: {@version, Corral.Protocol.version()}

  @doc """
  `:ok` when a node speaking `theirs` may run programs for this one (or
  this one for it), else `{:error, {:version_mismatch, node, ours, theirs}}`.
  """
  @spec check_version(node(), term()) :: :ok | {:error, term()}
  def check_version(node, theirs) do
    if theirs == version(), do: :ok, else: {:error, {:version_mismatch, node, version(), theirs}}
  end

  ## The caller's side

  @doc """
  Runs `command` on `options.node` (or the node `node: :any` picks) and
  collects its output into `options.into` here. `{:ok, %Corral.Result{}}`
  or `{:error, reason}`; raises what the collectable raises, after ending
  the remote tree.
  """
  @spec run(String.t(), [String.t()], Options.t(), keyword()) ::
          {:ok, Result.t()} | {:error, term()}
  def run(command, args, %Options{} = options, opts) do
    with {:ok, node, proxy, p} <- place(command, args, options, opts) do
      sinks = Runner.sinks(options)
      collectors = Map.new(sinks, fn {name, _, fun} -> {name, fun} end)
      accs = Map.new(sinks, fn {name, initial, _} -> {name, initial} end)

      try do
        collect(node, p, {options.separate_stderr, collectors}, accs)
      catch
        kind, reason ->
          Runner.halt_sinks(sinks)
          Process.exit(proxy, :kill)
          :erlang.raise(kind, reason, __STACKTRACE__)
      else
        {:ok, result, accs} ->
          outputs = Map.new(collectors, fn {name, fun} -> {name, fun.(accs[name], :done)} end)
          {:ok, struct(result, outputs)}

        {:error, _} = error ->
          Runner.halt_sinks(sinks)
          Process.exit(proxy, :kill)
          error
      end
    end
  end

  # Starts the run on its node. For `node: :any`, a node that went away
  # before Corral.Cluster saw it leave is skipped, and the next one tried.
  defp place(command, args, %Options{node: :any, nodes: nodes} = options, opts) do
    case Corral.Cluster.pick(nodes) do
      nil ->
        {:error, {:no_node, nodes || :all}}

      node ->
        started =
          try do
            start(node, command, args, opts)
          after
            Corral.Cluster.placed(node)
          end

        case started do
          {:error, {gone, ^node}} when gone in [:nodedown, :corral_unavailable] ->
            others = List.delete(nodes || Enum.map(Corral.Cluster.nodes(), & &1.node), node)
            place(command, args, %{options | nodes: others}, opts)

          {:ok, proxy, p} ->
            {:ok, node, proxy, p}

          error ->
            error
        end
    end
  end

  defp place(command, args, %Options{node: node}, opts) do
    with {:ok, proxy, p} <- start(node, command, args, opts), do: {:ok, node, proxy, p}
  end

  @doc "True when `opts` names another node (or `:any`) with `:node`."
  @spec remote?(term()) :: boolean()
  def remote?(opts),
    do: is_list(opts) and Keyword.keyword?(opts) and Keyword.get(opts, :node) not in [nil, node()]

  @doc """
  Corral.Process.start/3 with `:node`: the process runs on that node (or
  the one `node: :any` picks), owned there for the caller; each function
  of Corral.Process works on it from here.
  """
  @spec start_process(String.t(), [String.t()], Options.t(), keyword()) ::
          {:ok, pid()} | {:error, term()}
  def start_process(command, args, %Options{} = options, opts) do
    # Corral.Process keeps stdin open for write/2 when there is no :input.
    opts = Keyword.put_new(opts, :input, nil)

    with {:ok, _node, _proxy, p} <- place(command, args, options, opts), do: {:ok, p}
  end

  @doc """
  Starts `command` on `options.node` (or the node `node: :any` picks) as a
  Corral.Process owned there for the caller, with Corral.Process.start/3's
  `opts`: `{:ok, node, proxy, process}` or `{:error, reason}`. For drivers
  that read it themselves (the Daemon with `:node`).
  """
  @spec start_owned(String.t(), [String.t()], Options.t(), keyword()) ::
          {:ok, node(), pid(), pid()} | {:error, term()}
  def start_owned(command, args, %Options{} = options, opts),
    do: place(command, args, options, opts)

  # Each read is a call to the Corral.Process on `node`, which acks the
  # chunk to its helper as it replies: stdout and stderr chunks alike, so
  # both travel under the one window. The next read goes out before a
  # chunk is collected, so the other node never waits a round trip for it:
  # beyond the window, at most two chunks are on their way.
  defp collect(node, p, sinks, accs),
    do: collect(node, p, Proc.read_request(p), sinks, accs)

  defp collect(node, p, request, {separate, collectors} = sinks, accs) do
    case Proc.read_reply(request) do
      {:ok, stream, data} ->
        next = Proc.read_request(p)
        name = Runner.sink_name(separate, stream)
        accs = Map.put(accs, name, Map.fetch!(collectors, name).(accs[name], {:cont, data}))
        collect(node, p, next, sinks, accs)

      :eof ->
        case Proc.await_exit(p) do
          {:ok, result} -> {:ok, result, accs}
          {:error, _} = error -> error
        end

      {:error, :not_running} ->
        {:error, not_running(node)}

      {:error, _} = error ->
        error
    end
  end

  @doc """
  Why a process on `node` is not there: it went away without a word when
  its node did, before the call (`{:nodedown, node}`), or it ended.
  """
  @spec not_running(node()) :: :not_running | {:nodedown, node()}
  def not_running(node), do: if(node in Node.list(), do: :not_running, else: {:nodedown, node})

  @doc """
  Starts `command` on `node` as a Corral.Process owned by a proxy there
  that watches the caller. `{:ok, proxy, process}` or `{:error, reason}`.
  """
  @spec start(node(), String.t(), [String.t()], keyword()) ::
          {:ok, pid(), pid()} | {:error, term()}
  def start(node, command, args, opts) do
    # Without :input the program's stdin is closed at once, as its
    # /dev/null would be locally.
    opts = opts |> Keyword.drop([:node, :nodes, :into]) |> Keyword.put_new(:input, "")
    # Corral.Process.start/3 with `:node` and no `:input`: stdin stays open.
    opts = if opts[:input] == nil, do: Keyword.delete(opts, :input), else: opts

    reply =
      try do
        :erpc.call(
          node,
          __MODULE__,
          :serve,
          [self(), version(), command, args, opts],
          @start_timeout
        )
      catch
        :error, {:erpc, :noconnection} -> {:error, {:nodedown, node}}
        :error, {:erpc, :timeout} -> {:error, :start_timeout}
        :error, {:exception, :undef, _} -> {:error, {:corral_unavailable, node}}
      end

    case reply do
      {:ok, proxy, p, theirs} ->
        with {:error, _} = error <- check_version(node, theirs) do
          Process.exit(proxy, :kill)
          error
        else
          :ok -> {:ok, proxy, p}
        end

      {:error, _} = error ->
        error

      other ->
        {:error, {:version_mismatch, node, version(), other}}
    end
  end

  ## The other node's side

  @doc false
  # Called through :erpc by start/4, on the node that runs the program.
  def serve(owner, theirs, command, args, opts) do
    # Refused as the caller will describe it: this node and its version
    # against the caller's.
    if theirs != version() do
      {:error, {:version_mismatch, node(), theirs, version()}}
    else
      parent = self()
      tag = make_ref()
      {proxy, ref} = spawn_monitor(fn -> proxy(owner, parent, tag, command, args, opts) end)

      receive do
        {^tag, {:ok, p}} ->
          Process.demonitor(ref, [:flush])
          {:ok, proxy, p, version()}

        {^tag, {:error, _} = error} ->
          Process.demonitor(ref, [:flush])
          error

        {:DOWN, ^ref, :process, ^proxy, reason} ->
          {:error, {:remote_start, reason}}
      end
    end
  end

  # Owns the program's Corral.Process for the caller: when the caller dies
  # or its node is cut off, this ends, and the process ends the tree.
  defp proxy(owner, parent, tag, command, args, opts) do
    owner_ref = Process.monitor(owner)
    Corral.Cluster.running()

    case Proc.start(command, args, opts) do
      {:ok, p} ->
        p_ref = Process.monitor(p)
        send(parent, {tag, {:ok, p}})

        receive do
          {:DOWN, ^owner_ref, :process, _, _} -> :ok
          {:DOWN, ^p_ref, :process, _, _} -> :ok
        end

      {:error, _} = error ->
        send(parent, {tag, error})
    end
  end
end

defmodule Corral.Pool do
  @moduledoc false
  # Helpers started ahead of need. Each runs `corral --port --protocol 1
  # --pooled`, which waits, asleep, for an R frame with the rest of its
  # command line. A spawn that takes one skips the helper's own execve, the
  # largest part of what Corral adds to a spawn (about 1.5 ms on a small
  # virtual machine), and the pool starts a replacement after it replies.
  # Every child still gets its own helper and its own port.
  #
  # The pool owns the waiting ports and is linked to them, so they close
  # (and their helpers exit) with it. checkout/2 moves a port to its new
  # owner with Port.connect/2, which links it to the owner, and unlinks the
  # pool: from then on the port is the caller's, exactly as if the caller
  # had opened it.
  use GenServer

  alias Corral.Port, as: Proto

  @default_size 2

  @doc "Starts the pool; `:size` (default #{@default_size}) helpers wait at once."
  def start_link(opts \\ []), do: GenServer.start_link(__MODULE__, opts, name: __MODULE__)

  @doc """
  A waiting helper's port, now owned by and linked to `owner`, or
  `:none` when the pool is not running, has none ready, or runs another
  helper than `helper` (`CORRAL_HELPER` changed since it started).
  """
  @spec checkout(pid(), Path.t()) :: {:ok, port()} | :none
  def checkout(owner, helper) do
    if Process.whereis(__MODULE__) do
      GenServer.call(__MODULE__, {:checkout, owner, helper})
    else
      :none
    end
  catch
    :exit, _ -> :none
  end

  @impl true
  def init(opts) do
    Process.flag(:trap_exit, true)
    size = Keyword.get(opts, :size, Application.get_env(:corral, :pool_size, @default_size))
    # The helper's path is fixed when the pool starts; a caller that wants
    # another one opens its own.
    {:ok, %{size: size, ports: [], helper: Proto.helper_path()}, {:continue, :fill}}
  end

  @impl true
  def handle_continue(:fill, %{size: size, ports: ports} = s) when length(ports) >= size,
    do: {:noreply, s}

  def handle_continue(:fill, s) do
    case open(s.helper) do
      {:ok, port} -> {:noreply, %{s | ports: s.ports ++ [port]}, {:continue, :fill}}
      :error -> {:noreply, s}
    end
  end

  @impl true
  def handle_call({:checkout, owner, helper}, _from, %{ports: [port | rest], helper: helper} = s) do
    Port.connect(port, owner)
    Process.unlink(port)
    {:reply, {:ok, port}, %{s | ports: rest}, {:continue, :fill}}
  catch
    # The helper died while it waited: drop it and let the caller open one.
    :error, _ -> {:reply, :none, %{s | ports: tl(s.ports)}, {:continue, :fill}}
  end

  def handle_call({:checkout, _owner, _helper}, _from, s),
    do: {:reply, :none, s, {:continue, :fill}}

  # A waiting helper exited (killed from outside): forget it. The next
  # checkout starts a replacement; starting one here could spin if helpers
  # died as they started.
  @impl true
  def handle_info({port, {:exit_status, _}}, s) when is_port(port), do: forget(port, s)
  def handle_info({:EXIT, port, _}, s) when is_port(port), do: forget(port, s)
  # A waiting helper sends nothing before R; anything else is dropped.
  def handle_info(_other, s), do: {:noreply, s}

  defp forget(port, s), do: {:noreply, %{s | ports: List.delete(s.ports, port)}}

  defp open(helper) do
    opts = [:binary, {:packet, 4}, :exit_status, :use_stdio, :hide]

    {:ok,
     Port.open({:spawn_executable, helper}, opts ++ [args: Proto.pool_argv() ++ ["--pooled"]])}
  catch
    :error, _ -> :error
  end
end

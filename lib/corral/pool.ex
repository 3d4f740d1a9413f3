defmodule Corral.Pool do
  @moduledoc false
  # Helpers started ahead of need. Each runs `corral --port --protocol 1
  # --pooled`, which waits, asleep, for an R frame with the rest of its
  # command line. A spawn that takes one skips the helper's own execve, the
  # largest part of what Corral adds to a spawn (about 1.5 ms on a small
  # virtual machine), and the pool starts a replacement after it is taken.
  # Every child still gets its own helper and its own port.
  #
  # The waiting ports sit in a public ETS table, and checkout/2 takes one
  # in the caller's own process: asking the pool would make every spawn wait
  # for whatever the pool is doing, and what it does is Port.open/2 for the
  # replacement, which blocks it for about half a millisecond. The caller
  # makes itself the owner with Port.connect/2 (any process may) and tells
  # the pool, which unlinks the port and opens the next one.
  #
  # Until then the pool owns the waiting ports and is linked to them, so
  # they close (and their helpers exit) with it.
  use GenServer

  alias Corral.Port, as: Proto

  @default_size 2

  @doc "Starts the pool; `:size` (default #{@default_size}) helpers wait at once."
  def start_link(opts \\ []), do: GenServer.start_link(__MODULE__, opts, name: __MODULE__)

  @doc """
  A waiting helper's port, now owned by and linked to `owner`, or `:none`
  when the pool is not running, has none ready, or runs another helper
  than `helper` (`CORRAL_HELPER` changed since it started).
  """
  @spec checkout(pid(), Path.t()) :: {:ok, port()} | :none
  def checkout(owner, helper) do
    case :ets.whereis(__MODULE__) do
      :undefined -> :none
      table -> checkout(table, owner, helper)
    end
  end

  @doc "How many helpers wait in `pool` (a pid or name)."
  @spec waiting(GenServer.server()) :: non_neg_integer()
  def waiting(pool \\ __MODULE__), do: GenServer.call(pool, :waiting)

  # Rows: {:helper, path, pool} once, and {n, port} for each waiting
  # helper. Integers sort before atoms, so :ets.first/1 is a port's row
  # while there is one, and :helper when there is none.
  defp checkout(table, owner, helper) do
    case :ets.lookup(table, :helper) do
      [{:helper, ^helper, pool}] -> take(table, owner, pool)
      _ -> :none
    end
  catch
    # The pool and its table went away between the two calls.
    :error, :badarg -> :none
  end

  defp take(table, owner, pool) do
    with key when is_integer(key) <- :ets.first(table),
         [{^key, port}] <- :ets.take(table, key) do
      try do
        Port.connect(port, owner)
      catch
        # The helper died while it waited: try the next one.
        :error, _ ->
          send(pool, {:taken, port})
          take(table, owner, pool)
      else
        true ->
          send(pool, {:taken, port})
          {:ok, port}
      end
    else
      # Another caller took that one first.
      [] ->
        take(table, owner, pool)

      # None waits; ask for more, in case helpers died while they waited.
      :helper ->
        send(pool, :fill)
        :none
    end
  end

  @impl true
  def init(opts) do
    Process.flag(:trap_exit, true)
    size = Keyword.get(opts, :size, Application.get_env(:corral, :pool_size, @default_size))
    # Only the registered pool's table is named, so that checkout/2 finds
    # it; a second pool (in tests) keeps its own.
    table_opts = [:ordered_set, :public, read_concurrency: true, write_concurrency: true]

    table =
      case Process.info(self(), :registered_name) do
        {:registered_name, __MODULE__} -> :ets.new(__MODULE__, [:named_table | table_opts])
        _ -> :ets.new(__MODULE__, table_opts)
      end

    # The helper's path is fixed when the pool starts; a caller that wants
    # another one opens its own.
    :ets.insert(table, {:helper, Proto.helper_path(), self()})
    {:ok, %{size: size, table: table, next: 0}, {:continue, :fill}}
  end

  @impl true
  def handle_continue(:fill, s) do
    if count(s) >= s.size do
      {:noreply, s}
    else
      [{:helper, helper, _}] = :ets.lookup(s.table, :helper)

      case open(helper) do
        {:ok, port} ->
          :ets.insert(s.table, {s.next, port})
          {:noreply, %{s | next: s.next + 1}, {:continue, :fill}}

        :error ->
          {:noreply, s}
      end
    end
  end

  @impl true
  def handle_call(:waiting, _from, s), do: {:reply, count(s), s}

  # A caller took `port`: it is the caller's now, and a replacement starts.
  @impl true
  def handle_info({:taken, port}, s) do
    Process.unlink(port)
    {:noreply, s, {:continue, :fill}}
  end

  def handle_info(:fill, s), do: {:noreply, s, {:continue, :fill}}

  # A waiting helper exited (killed from outside): forget it. A checkout
  # that finds none asks for a replacement; starting one here could spin
  # if helpers died as they started.
  def handle_info({port, {:exit_status, _}}, s) when is_port(port), do: forget(port, s)
  def handle_info({:EXIT, port, _}, s) when is_port(port), do: forget(port, s)
  # A waiting helper sends nothing before R; anything else is dropped.
  def handle_info(_other, s), do: {:noreply, s}

  defp forget(port, s) do
    :ets.match_delete(s.table, {:_, port})
    {:noreply, s}
  end

  defp count(s), do: :ets.info(s.table, :size) - 1

  defp open(helper) do
    opts = [:binary, {:packet, 4}, :exit_status, :use_stdio, :hide]

    {:ok,
     Port.open({:spawn_executable, helper}, opts ++ [args: Proto.pool_argv() ++ ["--pooled"]])}
  catch
    :error, _ -> :error
  end
end

defmodule Corral.Pool do
  @moduledoc false
  # Helpers kept between runs. Each runs `corral --port --protocol 1
  # --pooled`, which waits, asleep, for an R frame with the rest of its
  # command line, serves that run, and after its X frame waits for the next
  # R. A spawn that takes one pays for neither the helper's own execve nor
  # its setup (about 1.5 ms and 0.3 ms on a small virtual machine), and a
  # caller whose run ended cleanly puts the helper back. Each child still
  # has a helper of its own while it runs.
  #
  # The waiting ports sit in a public ETS table, and checkout/2 takes one
  # in the caller's own process, which makes itself the owner with
  # Port.connect/2 (any process may); checkin/2 hands it back the same way,
  # making the pool the owner and putting the port in the table itself.
  # Neither waits for the pool: each leaves it a note (for its links and
  # its count, see :taken and :checked_in) that it reads when it can. A
  # pool that had to read each checkin before the port was in the table
  # fell behind at 16 callers on 2 cores (its scheduler preempted, or it
  # sat in Port.open/2), and callers found none waiting.
  #
  # The pool monitors each helper it opens for the helper's whole life.
  # When one closes while out (its caller died, or gave up on the run) it
  # is replaced, once that helper has had time to end its run's tree. How
  # many wait is sized to demand unless
  # `config :corral, pool_size: n` fixes it:
  #
  #   * it starts at 2 (`:pool_min`);
  #   * each caller that finds none waiting (and so pays for a helper of its
  #     own) raises the target by one, up to `:pool_max` (default 32), and
  #     the pool opens helpers up to it; helpers that come back are kept
  #     while no more than the target wait;
  #   * after `:pool_idle_ms` (default 10 s) without such a miss, the target
  #     falls back to the minimum and the extra helpers are closed.
  #
  # A timer runs only while the target is above the minimum, so an idle
  # pool at its minimum gets no wake-ups, and neither do its helpers (each
  # sleeps in epoll_wait). A waiting helper costs about 260 KiB of private
  # memory (bench/footprint.exs). A helper inherits the VM's environment
  # when it starts, so each remembers a hash of it: after System.put_env/2
  # the old ones are closed instead of used, as a fresh helper would see
  # the new variable.
  #
  # While they wait the pool owns the ports and is linked to them, so they
  # close (and their helpers exit) with it; it unlinks those in use when it
  # reads the caller's note (see :taken).
  use GenServer

  alias Corral.Helper

  @default_min 2
  @default_max 32
  @default_idle_ms 10_000
  # How long the replacement for a helper that closed waits (see :DOWN).
  @refill_after_ms 20

  @doc """
  Starts the pool. `:size` (or `config :corral, pool_size: n`) fixes how
  many helpers wait; without it the number follows demand between `:min`
  (`:pool_min`, default #{@default_min}) and `:max` (`:pool_max`, default
  #{@default_max}), falling back to `:min` after `:idle_ms` (`:pool_idle_ms`,
  default #{@default_idle_ms}) without a caller that found none waiting.
  """
  def start_link(opts \\ []), do: GenServer.start_link(__MODULE__, opts, name: __MODULE__)

  @doc """
  A waiting helper's port, now owned by and linked to `owner`, and what
  checkin/2 wants with it; or `:none` when the pool is not running, has
  none ready, or runs another helper than `helper` (`CORRAL_HELPER`
  changed since it started). Only a helper started under the environment
  whose hash is `env` (`Corral.Helper.environment/0`) is taken.
  """
  @spec checkout(pid(), Path.t(), non_neg_integer()) :: {:ok, port(), env :: term()} | :none
  def checkout(owner, helper, env \\ env_hash()) do
    case :ets.whereis(__MODULE__) do
      :undefined -> :none
      table -> checkout(table, owner, helper, env)
    end
  end

  @doc """
  Hands back a port from checkout/2 whose run ended with an X frame, from
  its owner's process, with the `env` checkout/2 gave. Messages the port
  sent the owner are dropped. Returns false (and closes the port) when
  there is no pool to take it. A pool that has as many as it aims for
  waiting closes the port when it reads the note (see :checked_in).
  """
  @spec checkin(port(), term()) :: boolean()
  def checkin(port, env) do
    with table when table != :undefined <- :ets.whereis(__MODULE__),
         [{:helper, _, pool}] <- :ets.lookup(table, :helper) do
      Port.connect(port, pool)
      Process.unlink(port)
      :ets.insert(table, {key(), port, env})
      send(pool, {:checked_in, port})
      true
    else
      _ ->
        Helper.close(port)
        false
    end
  rescue
    # The helper died after its X frame, or the pool just did.
    ArgumentError ->
      Helper.close(port)
      false
  after
    Helper.flush(port)
  end

  @doc """
  The number of helpers `pool` aims to keep waiting, and whether its idle
  timer runs (only while that number is above the minimum).
  """
  @spec target(GenServer.server()) :: {non_neg_integer(), boolean()}
  def target(pool \\ __MODULE__), do: GenServer.call(pool, :target)

  @doc """
  Drops `pool` back to its minimum now, as idle time would, and opens the
  replacements still owed for helpers that closed at once.
  """
  @spec shrink(GenServer.server()) :: :ok
  def shrink(pool \\ __MODULE__), do: GenServer.call(pool, :shrink)

  @doc "How many helpers wait in `pool` (a pid or name)."
  @spec waiting(GenServer.server()) :: non_neg_integer()
  def waiting(pool \\ __MODULE__), do: GenServer.call(pool, :waiting)

  # Rows: {:helper, path, pool} once, and {n, port, env} for each waiting
  # helper, `env` the hash of the environment it started
  # with and `n` a unique integer. Integers sort before atoms, so
  # :ets.first/1 is a port's row while there is one, and :helper when
  # there is none.
  defp checkout(table, owner, helper, env) do
    case :ets.lookup(table, :helper) do
      [{:helper, ^helper, pool}] -> take(table, owner, pool, env)
      _ -> :none
    end
  catch
    # The pool and its table went away between the two calls.
    :error, :badarg -> :none
  end

  defp take(table, owner, pool, env) do
    with key when is_integer(key) <- :ets.first(table),
         [{^key, port, ^env}] <- :ets.take(table, key) do
      try do
        Port.connect(port, owner)
      catch
        # The helper died while it waited: try the next one.
        :error, _ -> take(table, owner, pool, env)
      else
        true ->
          send(pool, {:taken, port})
          {:ok, port, env}
      end
    else
      # Another caller took that one first.
      [] ->
        take(table, owner, pool, env)

      # Started before the environment changed.
      [{_key, port, _other}] ->
        send(pool, {:stale, port})
        take(table, owner, pool, env)

      # None waits; ask for more.
      :helper ->
        send(pool, :fill)
        :none
    end
  end

  defp env_hash, do: elem(Helper.environment(), 0)

  defp key, do: :erlang.unique_integer([:monotonic, :positive])

  @impl true
  def init(opts) do
    Process.flag(:trap_exit, true)

    env = fn key, default ->
      Keyword.get(opts, key, Application.get_env(:corral, :"pool_#{key}", default))
    end

    {min, max} =
      case env.(:size, nil) do
        nil -> {env.(:min, @default_min), env.(:max, @default_max)}
        fixed -> {fixed, fixed}
      end

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
    :ets.insert(table, {:helper, Helper.helper_path(), self()})

    s = %{
      size: min,
      min: min,
      max: max(min, max),
      idle_ms: env.(:idle_ms, @default_idle_ms),
      missed_at: nil,
      timer: nil,
      table: table,
      opening: nil,
      refill: nil,
      monitors: %{}
    }

    {:ok, s, {:continue, :fill}}
  end

  @impl true
  def handle_continue(:fill, s), do: {:noreply, fill(s)}

  # Opens helpers while fewer than the target wait, one at a time, each in
  # a short-lived process of its own that hands the port over. Port.open/2
  # blocks its caller for half a millisecond or more, far more on a loaded
  # machine (erl_child_setup forks for everyone in turn), and a pool blocked
  # in it left the helpers coming back unread in its mailbox: callers found
  # none waiting, opened helpers of their own and asked for yet more (16
  # callers on 2 cores: 263 of 500 calls, with 884 messages queued).
  defp fill(%{opening: nil} = s) do
    if count(s) < s.size do
      [{:helper, helper, _}] = :ets.lookup(s.table, :helper)
      pool = self()
      %{s | opening: spawn_link(fn -> send(pool, open_for(helper, pool)) end)}
    else
      s
    end
  end

  defp fill(s), do: s

  # {:opened, {:ok, port} | :error, env}, `env` the hash of the
  # environment the helper was started with.
  defp open_for(helper, pool) do
    env = env_hash()

    with {:ok, port} <- open(helper) do
      Port.connect(port, pool)
      Process.unlink(port)
      {:opened, {:ok, port}, env}
    else
      :error -> {:opened, :error, env}
    end
  rescue
    # The helper died at once (connect), or the pool did.
    ArgumentError -> {:opened, :error, nil}
  end

  @impl true
  def handle_call(:waiting, _from, s), do: {:reply, count(s), s}
  def handle_call(:target, _from, s), do: {:reply, {s.size, s.timer != nil}, s}

  # Replacements owed are opened now rather than after their delay.
  def handle_call(:shrink, _from, s) do
    with {_ref, timer} <- s.timer, do: Process.cancel_timer(timer)
    if s.refill, do: Process.cancel_timer(s.refill)
    {:reply, :ok, %{s | timer: nil, refill: nil} |> drop_extra() |> fill()}
  end

  # The pool is linked to the helpers that wait, so they close with it
  # (a port closes when its owner exits only through their link), and not
  # to those in use, which should not. Port.connect/2 links the new owner:
  # checkout/3 links the caller and checkin/2 the pool, and each tells the
  # pool, which may read the two notes of one port in either order, or
  # after the port moved on again: each note sets the link as the table
  # says now.
  @impl true
  def handle_info({:taken, port}, s) do
    unless waits?(s, port), do: Process.unlink(port)
    {:noreply, s}
  end

  # One more than the target waits: the one just back is closed.
  def handle_info({:checked_in, port}, s) do
    cond do
      not waits?(s, port) -> {:noreply, s}
      count(s) > s.size -> {:noreply, retire_waiting(s, port)}
      true -> {:noreply, link(s, port)}
    end
  end

  def handle_info({:stale, port}, s), do: {:noreply, s |> retire(port) |> fill()}

  # A caller found none waiting: demand is above the target.
  def handle_info(:fill, s), do: {:noreply, s |> grow() |> fill()}

  # No miss for idle_ms: back to the minimum.
  def handle_info({:idle, ref}, %{timer: {ref, _}} = s) do
    since = System.monotonic_time(:millisecond) - s.missed_at

    if since >= s.idle_ms do
      {:noreply, drop_extra(%{s | timer: nil})}
    else
      {:noreply, arm(%{s | timer: nil}, s.idle_ms - since)}
    end
  end

  def handle_info({:idle, _stale}, s), do: {:noreply, s}

  # A helper closed. One that waited (killed from outside) is forgotten: a
  # checkout that finds none asks for a replacement, and starting one here
  # could spin if helpers died as they started. One that was out closed
  # instead of coming back: its caller died or gave up on the run, and the
  # helper is ending the run's tree now. Its replacement waits
  # @refill_after_ms: a helper's start (the VM's fork, the helper's execve
  # and setup) takes about 1.5 ms of CPU, and on a machine of 1 or 2 cores
  # it would take that from the teardown, the dying processes and whoever
  # waits on their death. One timer covers every helper that closed
  # meanwhile: fill/1 opens up to the target.
  # (The pool's own closes, retire/2, come with no :DOWN.)
  def handle_info({:DOWN, _ref, :port, port, _reason}, s) do
    s = %{s | monitors: Map.delete(s.monitors, port)}

    if unlist(s, port) do
      {:noreply, s}
    else
      refill = s.refill || Process.send_after(self(), :refill, @refill_after_ms)
      {:noreply, %{s | refill: refill}}
    end
  end

  def handle_info(:refill, s), do: {:noreply, fill(%{s | refill: nil})}

  # A helper fill/1 opened, now owned by the pool and watched for life;
  # kept while fewer than the target wait (the target may have dropped
  # meanwhile), and only if the environment is still the one it started
  # with (System.put_env/2 may have come while it started).
  def handle_info({:opened, {:ok, port}, env}, s) do
    s = %{s | opening: nil}

    cond do
      env != env_hash() ->
        Helper.close(port)
        {:noreply, fill(s)}

      count(s) < s.size ->
        s = %{s | monitors: Map.put(s.monitors, port, Port.monitor(port))}
        {:noreply, fill(put(s, port, env))}

      true ->
        Helper.close(port)
        {:noreply, s}
    end
  end

  # No helper could be opened: the next miss or replacement tries again.
  def handle_info({:opened, :error, _env}, s), do: {:noreply, %{s | opening: nil}}

  def handle_info({:EXIT, pid, reason}, %{opening: pid} = s) when reason != :normal,
    do: {:noreply, %{s | opening: nil}}

  # A waiting helper sends nothing before R; anything else (the exit
  # status of one that died, which its :DOWN follows) is dropped.
  def handle_info(_other, s), do: {:noreply, s}

  defp grow(s) do
    s = %{s | size: min(s.size + 1, s.max), missed_at: System.monotonic_time(:millisecond)}
    if s.size > s.min and s.timer == nil, do: arm(s, s.idle_ms), else: s
  end

  defp arm(s, ms) do
    ref = make_ref()
    %{s | timer: {ref, Process.send_after(self(), {:idle, ref}, ms)}}
  end

  # Closes the waiting helpers beyond the minimum, newest first.
  defp drop_extra(s) do
    extra = count(s) - s.min

    s =
      if extra > 0 do
        for {n, port, _env} <- :ets.tab2list(s.table), is_integer(n) do
          {n, port}
        end
        |> Enum.sort(:desc)
        |> Enum.take(extra)
        |> Enum.reduce(s, fn {_n, port}, s -> retire_waiting(s, port) end)
      else
        s
      end

    %{s | size: s.min}
  end

  # Takes a waiting helper out of the table and closes it, unless a caller
  # took it first (the table's delete decides).
  defp retire_waiting(s, port) do
    if unlist(s, port), do: retire(s, port), else: s
  end

  # Closes a helper of the pool's that nobody else holds, unwatched first,
  # so its close is not taken for one that needs replacing.
  defp retire(s, port) do
    {ref, monitors} = Map.pop(s.monitors, port)
    if ref, do: Port.demonitor(ref, [:flush])
    Helper.close(port)
    %{s | monitors: monitors}
  end

  defp put(s, port, env) do
    :ets.insert(s.table, {key(), port, env})
    s
  end

  # The table's rows but :helper.
  defp count(s), do: :ets.info(s.table, :size) - 1

  # Whether `port` has a row: it waits.
  defp waits?(s, port), do: :ets.select_count(s.table, row(port)) > 0

  # Deletes `port`'s row; whether there was one, which only one process
  # can find (a caller's :ets.take/2 or this).
  defp unlist(s, port), do: :ets.select_delete(s.table, row(port)) > 0

  defp row(port), do: [{{:_, port, :_}, [], [true]}]

  defp link(s, port) do
    Process.link(port)
    s
  rescue
    # Closed meanwhile: its :DOWN tells.
    ArgumentError -> s
  end

  defp open(helper) do
    case Helper.open(helper, Helper.pool_argv() ++ ["--pooled"]) do
      {:ok, port} -> {:ok, port}
      {:error, _} -> :error
    end
  end
end

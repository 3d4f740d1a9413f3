defmodule Corral.Cluster do
  @moduledoc """
  The nodes that can run programs for `node: :any`, and their load.

  Every node that runs the `:corral` application joins the `:pg` scope
  `:corral` (started in Corral's supervision tree), with its number of
  online schedulers; each program started there for another node (or for
  `node: :any`) joins it too while it runs. `node: :any` takes the node
  with the fewest such programs per scheduler, among the `:nodes` given
  (all of them by default); a node that left the cluster is no longer a
  member, so it is skipped.

  Joining needs nothing beyond Erlang distribution: nodes that are
  connected and run `:corral` see each other.

  ## Examples

      iex> [%{node: node, schedulers: s, programs: _, load: _}] =
      ...>   Enum.filter(Corral.Cluster.nodes(), &(&1.node == node()))
      iex> {node, s} == {node(), System.schedulers_online()}
      true
  """

  use GenServer

  @scope :corral

  @typedoc "A node's load, as `nodes/0` reports it."
  @type load :: %{
          node: node(),
          schedulers: pos_integer(),
          programs: non_neg_integer(),
          load: float()
        }

  @doc false
  # The :pg scope, then this server, for Corral.Application.
  def children do
    [%{id: :pg, start: {:pg, :start_link, [@scope]}}, __MODULE__]
  end

  @doc false
  def start_link(_), do: GenServer.start_link(__MODULE__, [], name: __MODULE__)

  @doc """
  Each node running `:corral` that this node sees (itself included), with
  its schedulers, the programs running there for `:node` callers, and
  `load`, programs per scheduler.
  """
  @spec nodes() :: [load()]
  def nodes do
    programs =
      @scope
      |> :pg.get_members(:programs)
      |> Enum.frequencies_by(&node/1)

    for {:node, schedulers} <- :pg.which_groups(@scope),
        pid <- :pg.get_members(@scope, {:node, schedulers}) do
      n = node(pid)
      count = Map.get(programs, n, 0)
      %{node: n, schedulers: schedulers, programs: count, load: count / schedulers}
    end
    |> Enum.sort_by(& &1.node)
  end

  @doc false
  # The node for the next `node: :any` run among `only` (nil: all), or
  # nil. Runs placed but not started yet count on their node, so that
  # runs placed at once spread; placed/1 says the start is over.
  @spec pick([node()] | nil) :: node() | nil
  def pick(only), do: GenServer.call(__MODULE__, {:pick, only}, :infinity)

  @doc false
  def placed(node), do: GenServer.cast(__MODULE__, {:placed, node})

  @doc false
  # Counts the calling process as a running program on this node, until it ends.
  def running, do: :pg.join(@scope, :programs, self())

  @impl true
  def init([]) do
    :ok = :pg.join(@scope, {:node, System.schedulers_online()}, self())
    {:ok, %{}}
  end

  @impl true
  def handle_call({:pick, only}, _from, pending) do
    choice =
      nodes()
      |> Enum.filter(&(only == nil or &1.node in only))
      |> Enum.min_by(
        fn n -> {(n.programs + Map.get(pending, n.node, 0)) / n.schedulers, n.node} end,
        &<=/2,
        fn -> nil end
      )

    case choice do
      nil -> {:reply, nil, pending}
      %{node: node} -> {:reply, node, Map.update(pending, node, 1, &(&1 + 1))}
    end
  end

  @impl true
  def handle_cast({:placed, node}, pending) do
    case Map.fetch(pending, node) do
      {:ok, 1} -> {:noreply, Map.delete(pending, node)}
      {:ok, n} -> {:noreply, Map.put(pending, node, n - 1)}
      :error -> {:noreply, pending}
    end
  end
end

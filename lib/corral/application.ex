defmodule Corral.Application do
  @moduledoc false
  # Starts Corral.Pool, the helpers kept ready for the next spawn (set
  # `config :corral, pool_size: 0` to start none), and Corral.Cluster's
  # :pg scope, where nodes running :corral find each other.
  use Application

  @impl true
  def start(_type, _args) do
    Supervisor.start_link([Corral.Pool | Corral.Cluster.children()],
      strategy: :one_for_one,
      name: Corral.Supervisor
    )
  end
end

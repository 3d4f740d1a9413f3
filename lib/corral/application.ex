defmodule Corral.Application do
  @moduledoc false
  # Starts Corral.Pool, the helpers kept ready for the next spawn. Set
  # `config :corral, pool_size: 0` to start none.
  use Application

  @impl true
  def start(_type, _args) do
    Supervisor.start_link([Corral.Pool], strategy: :one_for_one, name: Corral.Supervisor)
  end
end

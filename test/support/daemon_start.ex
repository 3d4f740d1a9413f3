defmodule Corral.Test.DaemonStart do
  @moduledoc false
  # Starting Corral.Daemon in tests: under the test supervisor, not
  # restarted, and, for a program that may exit at once, held back by a
  # :wait_for gate until the test's monitor is in place.

  import ExUnit.Assertions

  alias Corral.Daemon

  @doc """
  A daemon under the test supervisor, not restarted, so a test can watch
  it stop (and kill it) without being linked to it.
  """
  def start!(command, args, opts \\ []) do
    ExUnit.Callbacks.start_supervised!(
      Supervisor.child_spec({Daemon, [command, args, opts]},
        id: make_ref(),
        restart: :temporary
      )
    )
  end

  @doc """
  `start!/3` and a monitor, `{pid, ref}`. A program that exits at once
  could take its daemon down before the monitor is set, losing the stop
  reason: a :wait_for gate holds the program back until the monitor is in
  place (after any :wait_for of `opts`).
  """
  def start_and_monitor!(command, args, opts) do
    me = self()
    gate = fn -> send(me, {:gate, self()}) && receive(do: (:go -> :ok)) end
    wait_for = Keyword.get(opts, :wait_for, fn -> :ok end)
    pid = start!(command, args, Keyword.put(opts, :wait_for, fn -> gate.() && wait_for.() end))
    ref = Process.monitor(pid)
    assert_receive {:gate, task}, 5000
    send(task, :go)
    {pid, ref}
  end
end

defmodule Corral.Orphans do
  @moduledoc false
  # The one cleanup after a helper that died without an X frame (SIGKILL,
  # the OOM killer): nobody else will end its tree. The S frame told us
  # the child's pid, which is also its process group, and the cgroup
  # directories. Every driver (cmd/3 and run/3, the Daemon) calls cleanup/1.
  #
  # What this reaches: the child itself (it also has PR_SET_PDEATHSIG =
  # SIGKILL from the helper), every process still in its process group,
  # and with a cgroup everything in it. What it cannot reach without a
  # cgroup: a descendant that left the process group (setsid, setpgid) and
  # is no longer the child's (the helper was their subreaper; they now
  # belong to init). See README, "What can escape".

  alias Corral.{Cgroup, Native}

  @typedoc "What the S frame said: the child's pid (its process group) and cgroup dirs."
  @type started :: %{os_pid: non_neg_integer() | nil, paths: [String.t()]}

  @doc """
  SIGKILLs the child's process group, then kills and removes the cgroups.
  Returns what removing the cgroups gave (`Corral.Cgroup.cleanup/1`).
  """
  @spec cleanup(started()) :: :ok | {:error, term()}
  def cleanup(%{os_pid: pgid, paths: paths}) do
    kill_group(pgid)
    Cgroup.cleanup(paths)
  end

  # The NIF refuses 0, 1 and the VM's own pid and group; :esrch means the
  # group is empty already.
  defp kill_group(pgid) when is_integer(pgid) and pgid > 1 do
    Native.process_group_kill(pgid)
  rescue
    # The NIF did not load (it logged why once); the cgroup cleanup that
    # follows fails the same way and is reported by the caller.
    _ in [ErlangError, UndefinedFunctionError] -> :ok
  end

  defp kill_group(_pgid), do: :ok
end

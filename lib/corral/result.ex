defmodule Corral.Result do
  @moduledoc """
  What `Corral.run/3` returns: the output, how the child ended and why, and
  what its whole tree used.

  ## Fields

    * `:output` - the collected stdout (and stderr with
      `stderr_to_stdout: true`, or stderr alone with
      `capture_stderr_only: true`): a binary, or whatever `:into` collected.
      `nil` with `separate_stderr: true`.
    * `:stdout`, `:stderr` - with `separate_stderr: true`, each stream
      collected on its own; `nil` otherwise.
    * `:exit_status` - the exit code, or 128 + the signal number when a
      signal ended the child, as `System.cmd/3` reports it. When a limit
      ended the run, this is the status the child died with (143 after
      SIGTERM, 137 after SIGKILL).
    * `:reason` - why the run ended:
      * `:exit` - the child exited by itself;
      * `{:signal, name}` - a signal nobody in Corral sent killed the
        child, such as `{:signal, :sigsegv}` (`name` stays a string for a
        signal without a standard name);
      * `:timeout`, `:cpu_time`, `:memory`, `:max_processes`, `:idle` - the
        limit of that name (`:idle` for `:idle_timeout`) ended the tree.
        `:memory` is also the reason when the `:cgroup` option's
        `:memory_max` killed the child, and `:max_processes` when
        `:pids_max` stopped it forking.
    * `:usage` - what the whole tree used, descendants already reaped
      included; a figure the system could not measure is `nil`:
      * `:wall_time` - microseconds from spawn to the child's exit;
      * `:user_time`, `:system_time` - CPU microseconds;
      * `:peak_memory` - bytes (the cgroup's peak, or the largest resident
        set seen);
      * `:peak_processes` - most processes alive at once.
    * `:os_pid` - the child's OS pid (gone by the time the result exists).
    * `:containment` - what held the tree: `:none` (process group and
      subreaper only), `:cgroup_v2`, `:cgroup_v1` or `:hybrid` (with the
      subreaper too). Where the helper cannot become a child subreaper (an
      emulator such as qemu-user, a restricted kernel) it still runs the
      child, with less: `:process_group` (the process group alone: a
      descendant that calls `setsid` escapes it), or
      `:cgroup_v2_no_subreaper`, `:cgroup_v1_no_subreaper`,
      `:hybrid_no_subreaper` (the cgroup still holds every descendant).
    * `:oom_kills` - processes the cgroup's OOM killer ended, or `nil`
      without a memory cgroup.
    * `:pids_limit_hits` - forks refused by the cgroup's `pids.max`, or
      `nil` without a pids cgroup.
  """

  alias Corral.Protocol, as: Proto

  @typedoc "Why the run ended."
  @type reason ::
          :exit
          | {:signal, atom() | String.t() | non_neg_integer()}
          | :timeout
          | :cpu_time
          | :memory
          | :max_processes
          | :idle

  @type usage :: %{
          wall_time: non_neg_integer() | nil,
          user_time: non_neg_integer() | nil,
          system_time: non_neg_integer() | nil,
          peak_memory: non_neg_integer() | nil,
          peak_processes: non_neg_integer() | nil
        }

  @type t :: %__MODULE__{
          output: Collectable.t() | nil,
          stdout: Collectable.t() | nil,
          stderr: Collectable.t() | nil,
          exit_status: non_neg_integer(),
          reason: reason(),
          usage: usage(),
          os_pid: non_neg_integer(),
          containment: Proto.containment(),
          oom_kills: non_neg_integer() | nil,
          pids_limit_hits: non_neg_integer() | nil
        }

  defstruct output: nil,
            stdout: nil,
            stderr: nil,
            exit_status: nil,
            reason: nil,
            usage: %{},
            os_pid: nil,
            containment: nil,
            oom_kills: nil,
            pids_limit_hits: nil

  # The Linux signals with a standard name; others keep the helper's text.
  @signals ~w(sighup sigint sigquit sigill sigtrap sigabrt sigbus sigfpe sigkill
              sigusr1 sigsegv sigusr2 sigpipe sigalrm sigterm sigstkflt sigchld
              sigcont sigstop sigtstp sigttin sigttou sigurg sigxcpu sigxfsz
              sigvtalrm sigprof sigwinch sigio sigpwr sigsys)a

  @doc false
  # Builds the result from the S frame, the X frame and the collected
  # outputs (%{output: _} or %{stdout: _, stderr: _}).
  @spec new(Proto.started(), Proto.exit_report(), map()) :: t()
  def new(started, %{usage: usage} = report, outputs) do
    %__MODULE__{
      output: Map.get(outputs, :output),
      stdout: Map.get(outputs, :stdout),
      stderr: Map.get(outputs, :stderr),
      exit_status: report.exit_status,
      reason: reason(report),
      usage: %{
        wall_time: usage.wall_time_us,
        user_time: usage.user_time_us,
        system_time: usage.system_time_us,
        peak_memory: usage.peak_memory,
        peak_processes: usage.peak_processes
      },
      os_pid: started.os_pid,
      containment: usage.containment || started.containment,
      oom_kills: usage.oom_kills,
      pids_limit_hits: usage.pids_limit_hits
    }
  end

  defp reason(%{reason: :signal, signal_name: name}) when is_binary(name),
    do: {:signal, signal(name)}

  defp reason(%{reason: :signal, signal: number}), do: {:signal, number}
  defp reason(%{reason: reason}), do: reason

  for atom <- @signals do
    defp signal(unquote(atom |> Atom.to_string() |> String.upcase())), do: unquote(atom)
  end

  defp signal(name), do: name
end

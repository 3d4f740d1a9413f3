defmodule Corral.Error do
  @moduledoc """
  Raised by `Corral.cmd/3` when the child could not be run or the `corral`
  helper failed, so that the caller never gets an exit signal from a helper.
  `Corral.run/3` returns the same reasons as `{:error, reason}` instead.

  Match on `:reason`:

    * `{:spawn_failed, errno, stage}` - the helper could not start the
      child. `errno` is a `t:File.posix/0` atom (or the helper's name for it
      as a string when the VM knows no such atom); `stage` says which step
      failed: `"exec"`, `"chdir"`, `"setgroups"`, `"setgid"`, `"setuid"`,
      `"user"`, `"nice"` (`:nice` refused), `"pty"` (`:pty`) or `"spawn"`. A program that is not found at the `"exec"`
      stage raises `ErlangError` with `:enoent` instead, as `System.cmd/3`
      does; the `"cgroup"` stage raises `{:cgroup, errno, message}`.
    * `{:cgroup, errno, message}` - a cgroup was asked for (a path, a base,
      limits or raw writes) and could not be set up, so the child was never
      started. `errno` is a `t:File.posix/0` atom (or a string, as above),
      for example `:eacces` when the hierarchy is not writable or `:einval`
      for a limit this layout cannot express; `message` names the option or
      file and says how to fix it.
    * `{:helper_unavailable, posix, path}` - the helper binary at `path`
      could not be started (not built, not executable). Build it with
      `mix compile` or point `CORRAL_HELPER` at it.
    * `{:helper_exit, status}` - the helper exited with `status` without an
      exit report: 64 wrong usage or protocol version, 65 protocol error,
      70 internal error, 137 killed by SIGKILL. Any cgroups the helper had
      made, and the processes in them, are gone by then.
    * `{:helper_closed, reason}` - the port to the helper closed without an
      exit status or report (for example `:epipe` when the helper died);
      cleaned up as above.
    * `{:protocol, detail}` - the helper sent something protocol version 1
      does not allow: `{:version, v}`, `{:unexpected_frame, frame}`,
      `{:pipe, stream, why}` (the output a `P` frame named could not be
      read) or a decoding error.
    * `{:exit, status, reason}` - raised by `Corral.stream!/3` at the end
      of a run that did not exit with status 0 (unless its `:on_exit` says
      otherwise): `status` is the exit status, `reason` the
      `t:Corral.Result.reason/0` (`:exit`, `{:signal, name}`, `:timeout`,
      ...).

  With `:node` (README, "Other nodes"):

    * `{:nodedown, node}` - the connection to `node` was lost during the
      run, or the node is not running; the tree there is ended.
    * `{:version_mismatch, node, ours, theirs}` - `node` speaks another
      version of Corral's node protocol or helper protocol (`ours` and
      `theirs` are `{node_protocol, helper_protocol}`).
    * `{:corral_unavailable, node}` - `node` does not have Corral loaded.
    * `{:no_node, nodes}` - `node: :any` found no node running the
      `:corral` application among `nodes` (`:all` without `:nodes`).
    * `{:remote_start, reason}` - the process that starts the program on
      the other node failed with `reason`.

  `:command` is the program as given to `Corral.cmd/3`, and `:details` the
  helper's own message, when it sent one.
  """

  @type reason ::
          {:spawn_failed, File.posix() | String.t() | nil, String.t() | nil}
          | {:cgroup, File.posix() | String.t() | nil, String.t() | nil}
          | {:helper_unavailable, File.posix(), Path.t()}
          | {:helper_exit, non_neg_integer()}
          | {:helper_closed, term()}
          | {:protocol, term()}
          | {:exit, non_neg_integer(), term()}
          | {:nodedown, node()}
          | {:version_mismatch, node(), term(), term()}
          | {:corral_unavailable, node()}
          | {:no_node, [node()] | :all}
          | {:remote_start, term()}

  @type t :: %__MODULE__{reason: reason(), command: String.t() | nil, details: String.t() | nil}

  defexception [:reason, :command, :details]

  @impl true
  # The "user" stage is a lookup in the user database, not a system call:
  # the helper's message ("no such user \"x\"") says all there is.
  def message(%__MODULE__{reason: {:spawn_failed, _, "user"}, command: command, details: details})
      when is_binary(details) do
    text = "could not start the program: #{details}"
    if command, do: "#{inspect(command)}: #{text}", else: text
  end

  def message(%__MODULE__{reason: reason, command: command, details: details}) do
    text = describe(reason)
    text = if command, do: "#{inspect(command)}: #{text}", else: text
    if details, do: "#{text} (#{details})", else: text
  end

  defp describe({:spawn_failed, errno, stage}),
    do: "could not start the program: #{stage} failed with #{posix(errno)}"

  defp describe({:cgroup, errno, message}),
    do: "could not set up the cgroup (#{posix(errno)}): #{message}"

  defp describe({:helper_unavailable, posix, path}),
    do: "could not start the corral helper #{path}: #{posix(posix)}"

  defp describe({:helper_exit, status}),
    do: "the corral helper exited with status #{status} without an exit report"

  defp describe({:helper_closed, reason}),
    do: "the port to the corral helper closed: #{inspect(reason)}"

  defp describe({:protocol, detail}),
    do: "protocol error from the corral helper: #{inspect(detail, limit: 20)}"

  defp describe({:exit, status, :exit}), do: "the program exited with status #{status}"

  defp describe({:exit, status, reason}),
    do: "the program was ended by #{inspect(reason)} (exit status #{status})"

  defp describe({:nodedown, node}),
    do: "the connection to node #{node} was lost (or the node is not running)"

  defp describe({:version_mismatch, node, {r, p}, {their_r, their_p}}) do
    "node #{node} speaks Corral remote protocol #{their_r} and helper protocol " <>
      "#{their_p}, this node #{r} and #{p}: run the same Corral version on every node"
  end

  defp describe({:version_mismatch, node, _ours, theirs}),
    do: "node #{node} answered with an unknown version #{inspect(theirs)}"

  defp describe({:corral_unavailable, node}),
    do: "node #{node} does not have Corral loaded (or an incompatible version)"

  defp describe({:no_node, :all}),
    do: "no connected node runs the :corral application (node: :any)"

  defp describe({:no_node, nodes}) do
    "none of the nodes #{Enum.map_join(nodes, ", ", &to_string/1)} is connected and runs " <>
      "the :corral application (node: :any)"
  end

  defp describe({:remote_start, reason}),
    do: "the other node could not start the program: #{inspect(reason)}"

  defp describe(other), do: inspect(other)

  defp posix(errno) when is_atom(errno) and errno != nil,
    do: "#{errno} (#{:file.format_error(errno)})"

  defp posix(errno), do: inspect(errno)
end

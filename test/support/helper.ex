defmodule Corral.Test.Helper do
  @moduledoc false
  # Runs the corral helper directly, with the argv Corral.cmd/3 would build,
  # and hands back the decoded frames: what cmd/3 cannot return, the S
  # frame's cgroup dirs and the X frame's usage and reason.

  alias Corral.Options
  alias Corral.Helper
  alias Corral.Protocol, as: Proto

  defstruct [:port, :started, :window]

  @doc """
  Starts `program` under the helper with Corral.cmd/3's options and waits
  for the first frame: `{:ok, session}` once the child runs (the S frame is
  in `session.started`), `{:failed, failed}` for an F frame.
  """
  def open(program, args, opts \\ []) do
    options = Options.new!(opts)
    program = System.find_executable(program) || raise "#{program} not found"

    {:ok, port} = Helper.open(Helper.helper_path(), Helper.argv(program, args, options))

    receive do
      {^port, {:data, body}} ->
        case Proto.decode(body) do
          {:ok, {:started, started}} ->
            {:ok, %__MODULE__{port: port, started: started, window: options.stdio_window}}

          {:ok, {:failed, failed}} ->
            close(port)
            {:failed, failed}
        end

      {^port, {:exit_status, status}} ->
        raise "the helper exited with #{status} before its first frame"
    after
      10_000 -> raise "no first frame from the helper in 10 s"
    end
  end

  @doc "Asks the helper to end the tree (a Q frame); `await/2` gets the report."
  def stop(%__MODULE__{port: port}), do: Port.command(port, Proto.encode(:stop))

  @doc """
  Collects output until the X frame, acking every data frame, then closes
  the port. Returns `%{exit: report, stdout: binary, stderr: binary}`.
  """
  def await(%__MODULE__{port: port}, timeout \\ 30_000) do
    deadline = System.monotonic_time(:millisecond) + timeout
    collect(port, deadline, %{stdout: [], stderr: []})
  end

  @doc "`open/3` then `await/2`; raises if the child did not start."
  def run(program, args, opts \\ []) do
    case open(program, args, opts) do
      {:ok, session} -> Map.put(await(session), :started, session.started)
      {:failed, failed} -> raise "the helper could not start #{program}: #{inspect(failed)}"
    end
  end

  defp collect(port, deadline, acc) do
    left = max(deadline - System.monotonic_time(:millisecond), 0)

    receive do
      {^port, {:data, body}} ->
        case Proto.decode(body) do
          {:ok, {tag, data}} when tag in [:stdout, :stderr] ->
            Port.command(port, Proto.encode({:ack, byte_size(data)}))
            collect(port, deadline, Map.update!(acc, tag, &[&1, data]))

          {:ok, {:exit, report}} ->
            close(port)

            %{
              exit: report,
              stdout: IO.iodata_to_binary(acc.stdout),
              stderr: IO.iodata_to_binary(acc.stderr)
            }
        end

      {^port, {:exit_status, status}} ->
        raise "the helper exited with #{status} without an exit report"
    after
      left ->
        close(port)
        raise "no exit report from the helper in time"
    end
  end

  # After X the helper waits for the port to close (docs/protocol.md).
  defp close(port) do
    Port.close(port)

    receive do
      {^port, {:exit_status, _}} -> :ok
    after
      0 -> :ok
    end
  end
end

defmodule Corral.Daemon.Helper do
  @moduledoc false
  # A daemon's side of its corral helper: resolving the program, opening the
  # port (linked to the calling daemon), waiting for the first frame,
  # sending frames and closing, with the helper's failures as reasons.

  alias Corral.Daemon.Options, as: DaemonOptions
  alias Corral.Port, as: Proto

  # How long the helper may take to send its first frame.
  @start_timeout 15_000

  @doc """
  Starts `command` under a helper whose port is linked to the caller, and
  waits for the S frame: `{:ok, port, started}`, or `{:error, reason}` with
  the port closed.
  """
  @spec open(String.t(), [String.t()], DaemonOptions.t()) ::
          {:ok, port(), Proto.started()} | {:error, term()}
  def open(command, args, %DaemonOptions{} = options) do
    with {:ok, program} <- Proto.find_program(command),
         {:ok, port} <- open_port(DaemonOptions.argv(program, args, options), options),
         {:ok, started} <- await_started(port) do
      {:ok, port, started}
    end
  end

  defp open_port(argv, %DaemonOptions{common: common}),
    do: Proto.open(Proto.helper_path(), argv, common.parallelism)

  # The first frame is S or F, and says which protocol version the helper
  # speaks (docs/protocol.md, "Versioning").
  defp await_started(port) do
    version = Proto.version()

    receive do
      {^port, {:data, body}} ->
        case Proto.decode(body) do
          {:ok, {:started, %{version: ^version} = started}} -> {:ok, started}
          {:ok, {:started, %{version: other}}} -> fail(port, {:protocol, {:version, other}})
          {:ok, {:failed, failed}} -> fail(port, Proto.failure_reason(failed))
          {:ok, frame} -> fail(port, {:protocol, {:unexpected_frame, frame}})
          {:error, error} -> fail(port, {:protocol, error})
        end

      {^port, {:exit_status, status}} ->
        fail(port, {:helper_exit, status})

      {:EXIT, ^port, reason} ->
        fail(port, {:helper_closed, reason})
    after
      @start_timeout -> fail(port, :start_timeout)
    end
  end

  defp fail(port, reason) do
    Proto.close(port)
    {:error, reason}
  end

  @doc """
  Sends one frame. A port that already closed raises; its exit status or
  exit signal is on the way, and the daemon acts on that.
  """
  @spec send_frame(port(), Proto.frame()) :: :ok
  def send_frame(port, frame) do
    Port.command(port, Proto.encode(frame))
    :ok
  rescue
    ArgumentError -> :ok
  end

  @doc "Sends `data` as I frames of at most 64 KiB."
  @spec send_input(port(), binary()) :: :ok
  def send_input(_port, <<>>), do: :ok

  def send_input(port, data) do
    {chunk, rest} = Proto.split_stdin(data)
    send_frame(port, {:stdin, chunk})
    send_input(port, rest)
  end
end

defmodule Corral.Test.DaemonLog do
  @moduledoc false
  # For Corral.Daemon's logging tests: a :logger handler that forwards every
  # event to a test process as {:log, level, message, metadata}, so a test
  # can assert on the level, text and metadata of exactly its daemon's lines
  # (by metadata pid); and send_line/2, a logger_fun for {m, f, a}.

  @doc "Adds a handler sending events to `pid`; removed when the test exits."
  def capture(pid \\ self()) do
    id = :"corral_daemon_log_#{System.unique_integer([:positive])}"
    :ok = :logger.add_handler(id, __MODULE__, %{level: :all, config: %{pid: pid}})
    ExUnit.Callbacks.on_exit(fn -> :logger.remove_handler(id) end)
    id
  end

  # The :logger handler callback.
  def log(%{level: level, msg: msg, meta: meta}, %{config: %{pid: pid}}) do
    send(pid, {:log, level, message(msg), meta})
  end

  defp message({:string, chardata}), do: IO.chardata_to_string(chardata)
  defp message({:report, report}), do: inspect(report)
  defp message({format, args}), do: format |> :io_lib.format(args) |> IO.chardata_to_string()

  @doc "A logger_fun target: sends {:line, tag, line} to `pid`."
  def send_line(line, pid, tag), do: send(pid, {:line, tag, line})

  @doc "A logger_fun target for {m, f}: sends {:line, :mf, line} to the registered :daemon_log_test."
  def send_line(line), do: send(:daemon_log_test, {:line, :mf, line})
end

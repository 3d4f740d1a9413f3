defmodule Corral.ChunkStream do
  @moduledoc false
  # Corral.stream!/3: a Stream.resource/3 over a run the enumerating process
  # drives itself (Corral.Runner, as cmd/3 does: the helper's frames come to
  # the consumer with no process in between), or over a Corral.Process on
  # another node with `:node`. Nothing starts until the stream is
  # enumerated; the helper is at most a window ahead of the consumer;
  # halting stops the run, which ends the tree.

  alias Corral.Error
  alias Corral.Helper
  alias Corral.Options
  alias Corral.Process, as: Proc
  alias Corral.Result
  alias Corral.Runner

  @on_exit [:raise, :ignore, :emit]

  @doc "The stream of `Corral.stream!/3`; options are checked now, nothing runs."
  @spec new(String.t(), [String.t()], keyword()) :: Enumerable.t()
  def new(command, args, opts) do
    Options.check_command!(command, args, "execute Corral.stream!/3", "Corral.stream!/3")

    unless is_list(opts) and Keyword.keyword?(opts) do
      raise ArgumentError, "expected a keyword list of options, got: #{inspect(opts)}"
    end

    {on_exit, opts} = Keyword.pop(opts, :on_exit, :raise)

    unless on_exit in @on_exit do
      raise ArgumentError,
            "invalid option :on_exit with value #{inspect(on_exit)}: expected one of " <>
              inspect(@on_exit)
    end

    for key <- [:into, :separate_stderr], Keyword.has_key?(opts, key) do
      raise ArgumentError,
            "invalid option #{inspect(key)} with value #{inspect(opts[key])}: " <>
              "Corral.stream!/3 has one output, use Corral.Process for more"
    end

    # Checked here, so a bad option raises where the stream is made.
    Options.new!(opts)
    # Without :input the program's stdin is closed at once.
    opts = Keyword.put_new(opts, :input, "")

    Stream.resource(
      fn -> start(command, args, opts) end,
      &next(&1, on_exit, command),
      &stop/1
    )
  end

  defp start(command, args, opts) do
    if Corral.Remote.remote?(opts) do
      case Proc.start(command, args, opts) do
        {:ok, p} -> p
        {:error, :enoent} -> :erlang.error(:enoent, [command, args, opts])
        {:error, reason} -> raise %Error{reason: reason, command: command}
      end
    else
      with {:ok, program} <- Helper.find_program(command),
           {:ok, run} <- Runner.open(program, args, Options.new!(opts), command) do
        run
      else
        {:error, :enoent} -> :erlang.error(:enoent, [command, args, opts])
        {:error, %Error{} = error} -> raise error
      end
    end
  end

  defp next({:done, _} = done, _on_exit, _command), do: {:halt, done}

  defp next(p, on_exit, command) when is_pid(p) do
    case Proc.read(p) do
      {:ok, data} -> {[data], p}
      :eof -> p |> Proc.await_exit() |> exited(on_exit, command)
      {:error, reason} -> raise %Error{reason: reason, command: command}
    end
  end

  defp next(run, on_exit, command) do
    case Runner.next(run) do
      {:output, _stream, data, run} ->
        {[data], run}

      {:exit, report, run} ->
        exited({:ok, Result.new(Runner.started(run), report, %{})}, on_exit, command)

      {:error, :enoent} ->
        :erlang.error(:enoent, [command])

      {:error, %Error{} = error} ->
        raise error
    end
  end

  defp exited({:ok, result}, on_exit, command) do
    cond do
      on_exit == :emit ->
        {[{:exit, result}], {:done, result}}

      on_exit == :ignore or (result.exit_status == 0 and result.reason == :exit) ->
        {:halt, {:done, result}}

      true ->
        raise %Error{reason: {:exit, result.exit_status, result.reason}, command: command}
    end
  end

  defp exited({:error, reason}, _on_exit, command),
    do: raise(%Error{reason: reason, command: command})

  # Halted early (Enum.take/2) or raised: the tree ends now.
  defp stop({:done, _}), do: :ok

  defp stop(p) when is_pid(p) do
    Proc.stop(p)
    :ok
  end

  defp stop(run), do: Runner.stop(run)
end

defmodule Corral.Daemon.Options do
  @moduledoc false
  # Corral.Daemon's options: splits the daemon's own keys from the common
  # ones, which Corral.Options validates exactly as for Corral.cmd/3, and
  # validates the daemon's own, one clause per option.

  alias Corral.Options
  alias Corral.Helper

  @levels [:emergency, :alert, :critical, :error, :warning, :warn, :notice, :info, :debug]

  @own [
    :name,
    :id,
    :log_output,
    :log_prefix,
    :log_transform,
    :logger_metadata,
    :logger_fun,
    :log_stderr_level,
    :wait_for,
    :exit_status_to_reason,
    :stdin
  ]

  # Options of Corral.cmd/3 that have no meaning for a daemon: nothing
  # collects its output, and its stdin is fed with send_input/2.
  @cmd_only [:into, :input, :lines]

  defstruct common: nil,
            log_output: nil,
            log_prefix: nil,
            log_transform: nil,
            logger_metadata: [],
            logger_fun: nil,
            log_stderr_level: nil,
            wait_for: nil,
            exit_status_to_reason: nil,
            stdin: false

  @type logger_fun :: (String.t() -> any()) | {module(), atom()} | {module(), atom(), list()}

  @type t :: %__MODULE__{
          common: Options.t(),
          log_output: Logger.level() | nil,
          log_prefix: String.t(),
          log_transform: (String.t() -> String.t()),
          logger_metadata: keyword(),
          logger_fun: logger_fun() | nil,
          log_stderr_level: Logger.level() | nil,
          wait_for: (() -> any()) | nil,
          exit_status_to_reason: (non_neg_integer() -> term()),
          stdin: boolean()
        }

  @doc "Validates `opts` for a daemon running `command`; raises ArgumentError."
  @spec new!(String.t(), keyword()) :: t()
  def new!(command, opts) when is_binary(command) and is_list(opts) do
    unless Keyword.keyword?(opts) do
      raise ArgumentError, "expected a keyword list of options, got: #{inspect(opts)}"
    end

    {own, common} = Keyword.split(opts, @own)

    for {key, value} <- common, key in @cmd_only do
      raise ArgumentError,
            "invalid option #{inspect(key)} with value #{inspect(value)}: " <>
              "it is for Corral.cmd/3 only (#{cmd_only_hint(key)})"
    end

    defaults = %__MODULE__{
      common: Options.new!(common, @own),
      log_prefix: command <> ": ",
      log_transform: &Corral.Daemon.Lines.replace_invalid/1,
      exit_status_to_reason: fn _status -> :error_exit_status end
    }

    own
    |> Enum.reduce(defaults, &put/2)
    |> check_combination()
  end

  def new!(_command, opts) do
    raise ArgumentError, "expected a keyword list of options, got: #{inspect(opts)}"
  end

  defp cmd_only_hint(:lines), do: "a daemon's output is always read by lines"
  defp cmd_only_hint(_key), do: "a daemon's stdin takes :stdin and send_input/2"

  # :name and :id belong to start_link/3 and child_spec/1.
  defp put({:name, _}, o), do: o
  defp put({:id, _}, o), do: o
  defp put({:log_output, nil}, o), do: %{o | log_output: nil}
  defp put({:log_output, level}, o) when level in @levels, do: %{o | log_output: level}
  defp put({:log_prefix, prefix}, o) when is_binary(prefix), do: %{o | log_prefix: prefix}
  defp put({:log_transform, fun}, o) when is_function(fun, 1), do: %{o | log_transform: fun}

  defp put({:logger_metadata, metadata} = option, o) when is_list(metadata) do
    if Keyword.keyword?(metadata), do: %{o | logger_metadata: metadata}, else: invalid!(option)
  end

  defp put({:logger_fun, nil}, o), do: %{o | logger_fun: nil}
  defp put({:logger_fun, fun}, o) when is_function(fun, 1), do: %{o | logger_fun: fun}

  defp put({:logger_fun, {m, f} = mf}, o) when is_atom(m) and is_atom(f),
    do: %{o | logger_fun: mf}

  defp put({:logger_fun, {m, f, a} = mfa}, o) when is_atom(m) and is_atom(f) and is_list(a),
    do: %{o | logger_fun: mfa}

  defp put({:log_stderr_level, nil}, o), do: %{o | log_stderr_level: nil}

  defp put({:log_stderr_level, level}, o) when level in @levels,
    do: %{o | log_stderr_level: level}

  defp put({:wait_for, nil}, o), do: %{o | wait_for: nil}
  defp put({:wait_for, fun}, o) when is_function(fun, 0), do: %{o | wait_for: fun}

  defp put({:exit_status_to_reason, fun}, o) when is_function(fun, 1),
    do: %{o | exit_status_to_reason: fun}

  defp put({:stdin, bool}, o) when is_boolean(bool), do: %{o | stdin: bool}
  defp put(option, _o), do: invalid!(option)

  @expected %{
    log_output: "a Logger level (#{Enum.map_join(@levels, ", ", &inspect/1)}) or nil",
    log_stderr_level: "a Logger level (#{Enum.map_join(@levels, ", ", &inspect/1)}) or nil",
    log_prefix: "a binary",
    log_transform: "a 1-arity function",
    logger_metadata: "a keyword list",
    logger_fun: "a 1-arity function, {module, function} or {module, function, args}, or nil",
    wait_for: "a 0-arity function or nil",
    exit_status_to_reason: "a 1-arity function",
    stdin: "a boolean"
  }

  defp invalid!({key, value}) do
    raise ArgumentError,
          "invalid option #{inspect(key)} with value #{inspect(value)}: " <>
            "expected #{Map.fetch!(@expected, key)}"
  end

  defp check_combination(%__MODULE__{
         log_stderr_level: level,
         common: %Options{stderr_to_stdout: true}
       })
       when level != nil do
    raise ArgumentError,
          "options :log_stderr_level and :stderr_to_stdout exclude each other " <>
            "(merged stderr is logged at :log_output's level)"
  end

  defp check_combination(o), do: o

  @doc "Whether the child's stdout reaches the daemon (with stderr, when merged)."
  @spec stdout_captured?(t()) :: boolean()
  def stdout_captured?(%__MODULE__{common: common}), do: not common.capture_stderr_only

  @doc """
  Whether the child's stderr reaches the daemon on its own, as E frames:
  with :capture_stderr_only, :log_stderr_level, or Corral.cmd/3's
  :separate_stderr where Corral.Options has it.
  """
  @spec stderr_captured?(t()) :: boolean()
  def stderr_captured?(%__MODULE__{common: common} = o) do
    common.capture_stderr_only or Map.get(common, :separate_stderr, false) == true or
      (o.log_stderr_level != nil and not common.stderr_to_stdout)
  end

  @doc "The Logger level of each stream's lines, nil when not logged."
  @spec level(t(), :stdout | :stderr) :: Logger.level() | nil
  def level(%__MODULE__{} = o, :stdout), do: o.log_output
  def level(%__MODULE__{} = o, :stderr), do: o.log_stderr_level || o.log_output

  @doc """
  The daemon's streams for `Corral.Helper.argv/4`: stdin a pipe with
  `stdin: true`; stdout as for `Corral.cmd/3`; stderr piped on its own
  with `:log_stderr_level` (unless it is the only stream captured).
  """
  @spec stdio(t()) :: Helper.stdio()
  def stdio(%__MODULE__{common: common} = o) do
    {_stdin, stdout, stderr} = Helper.stdio(common)
    stdin = if o.stdin, do: :pipe, else: :null
    stderr = if o.log_stderr_level != nil, do: :pipe, else: stderr
    {stdin, stdout, stderr}
  end
end

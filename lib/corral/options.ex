defmodule Corral.Options do
  @moduledoc false
  # Validates the keyword list given to Corral.cmd/3 into a struct: one clause
  # per option, the last one raises ArgumentError naming the option and value.

  @max_u32 0xFFFF_FFFF

  defstruct cd: nil,
            env: [],
            arg0: nil,
            into: "",
            stderr_to_stdout: false,
            parallelism: nil,
            timeout: :infinity,
            uid: nil,
            gid: nil,
            groups: [],
            delay_to_sigkill: 500,
            stdio_window: 1_048_576,
            capture_stderr_only: false,
            input: nil

  @type id :: non_neg_integer() | String.t()

  @type t :: %__MODULE__{
          cd: String.t() | nil,
          env: [{String.t(), String.t() | nil}],
          arg0: String.t() | nil,
          into: Collectable.t(),
          stderr_to_stdout: boolean(),
          parallelism: boolean() | nil,
          timeout: pos_integer() | :infinity,
          uid: id() | nil,
          gid: id() | nil,
          groups: [id()],
          delay_to_sigkill: non_neg_integer(),
          stdio_window: pos_integer(),
          capture_stderr_only: boolean(),
          input: iodata() | Enumerable.t() | nil
        }

  @doc "Validates `opts`; raises ArgumentError on the first bad option."
  @spec new!(keyword()) :: t()
  def new!(opts) when is_list(opts) do
    opts
    |> Enum.reduce(%__MODULE__{}, &put/2)
    |> check_combination()
  end

  def new!(opts) do
    raise ArgumentError, "expected a keyword list of options, got: #{inspect(opts)}"
  end

  defp put({:into, collectable}, o), do: %{o | into: collectable}
  defp put({:cd, dir}, o) when is_binary(dir), do: %{o | cd: no_null!(:cd, dir)}
  defp put({:env, env}, o) when is_list(env) or is_map(env), do: %{o | env: env!(env)}
  defp put({:arg0, arg0}, o) when is_binary(arg0), do: %{o | arg0: no_null!(:arg0, arg0)}
  defp put({:stderr_to_stdout, bool}, o) when is_boolean(bool), do: %{o | stderr_to_stdout: bool}
  defp put({:parallelism, bool}, o) when is_boolean(bool), do: %{o | parallelism: bool}
  defp put({:timeout, :infinity}, o), do: %{o | timeout: :infinity}
  defp put({:timeout, ms}, o) when is_integer(ms) and ms > 0, do: %{o | timeout: ms}
  defp put({:uid, id}, o) when is_integer(id) and id >= 0, do: %{o | uid: id}

  defp put({:uid, name}, o) when is_binary(name) and name != "",
    do: %{o | uid: no_null!(:uid, name)}

  defp put({:gid, id}, o) when is_integer(id) and id >= 0, do: %{o | gid: id}

  defp put({:gid, name}, o) when is_binary(name) and name != "",
    do: %{o | gid: no_null!(:gid, name)}

  defp put({:groups, groups}, o) when is_list(groups), do: %{o | groups: groups!(groups)}

  defp put({:delay_to_sigkill, ms}, o) when is_integer(ms) and ms >= 0,
    do: %{o | delay_to_sigkill: ms}

  # The window must fit the u32 of an ack frame.
  defp put({:stdio_window, bytes}, o) when is_integer(bytes) and bytes in 1..@max_u32,
    do: %{o | stdio_window: bytes}

  defp put({:capture_stderr_only, bool}, o) when is_boolean(bool),
    do: %{o | capture_stderr_only: bool}

  defp put({:input, data}, o) when is_binary(data), do: %{o | input: data}
  defp put({:input, data}, o) when is_list(data), do: %{o | input: input_list(data)}

  defp put({:input, enum} = option, o) when not is_nil(enum) do
    if Enumerable.impl_for(enum), do: %{o | input: enum}, else: invalid!(option)
  end

  defp put(option, _o), do: invalid!(option)

  defp invalid!({key, value}) do
    raise ArgumentError, "invalid option #{inspect(key)} with value #{inspect(value)}"
  end

  defp invalid!(other) do
    raise ArgumentError, "expected a keyword list of options, got entry: #{inspect(other)}"
  end

  defp check_combination(%__MODULE__{stderr_to_stdout: true, capture_stderr_only: true}) do
    raise ArgumentError, "options :stderr_to_stdout and :capture_stderr_only exclude each other"
  end

  defp check_combination(o), do: o

  # iodata (a charlist too) is one piece of input; any other list is an
  # enumerable of iodata.
  defp input_list(list) do
    IO.iodata_to_binary(list)
  rescue
    ArgumentError -> list
  end

  # Same shape as System.cmd/3: {key, value} with value nil to unset.
  defp env!(env) do
    Enum.map(env, fn
      {key, value} = pair when is_binary(key) and (is_binary(value) or is_nil(value)) ->
        if key == "" or String.contains?(key, ["=", <<0>>]) or
             (is_binary(value) and String.contains?(value, <<0>>)) do
          raise ArgumentError, "invalid environment key-value #{inspect(pair)}"
        end

        pair

      other ->
        raise ArgumentError, "invalid environment key-value #{inspect(other)}"
    end)
  end

  defp groups!(groups) do
    Enum.map(groups, fn
      id when is_integer(id) and id >= 0 -> id
      name when is_binary(name) and name != "" -> no_null!(:groups, name)
      _ -> invalid!({:groups, groups})
    end)
  end

  defp no_null!(key, value) do
    if String.contains?(value, <<0>>), do: invalid!({key, value}), else: value
  end
end

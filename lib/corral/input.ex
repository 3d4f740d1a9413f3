defmodule Corral.Input do
  @moduledoc false
  # An `:input` option as a source of stdin chunks for a driver to write
  # through Corral.Client: a binary, iodata, or an enumerable of iodata,
  # pulled one chunk (at most one I frame) at a time, so an enumerable is
  # read only as fast as the child takes it and may be endless.

  alias Corral.Protocol

  # {buffered binary, suspended enumerable or nil}, or nil when done.
  @type t :: {binary(), (term() -> term()) | nil} | nil

  @doc "The source for an `:input` option value; nil (no input) stays nil."
  @spec new(term()) :: t()
  def new(nil), do: nil
  def new(data) when is_binary(data), do: {data, nil}

  def new(enum) do
    {<<>>, &Enumerable.reduce(enum, &1, fn element, _ -> {:suspend, element} end)}
  end

  @doc "The next chunk, or `:eof` once the source is exhausted."
  @spec pull(t()) :: {:chunk, binary(), t()} | :eof
  def pull({<<>>, nil}), do: :eof

  # Each element is suspended as the accumulator. An enumerable that halts
  # itself (Stream.take/2 on its last element) returns that last element as
  # the halted accumulator instead, so the accumulator starts as a marker
  # no element can be.
  def pull({<<>>, cont}) do
    case cont.({:cont, :corral_no_element}) do
      {:suspended, element, cont} -> pull({iodata!(element, cont), cont})
      {_, :corral_no_element} -> :eof
      {_, element} -> pull({iodata!(element, nil), nil})
    end
  end

  def pull({data, cont}) do
    {chunk, rest} = Protocol.split_stdin(data)
    {:chunk, chunk, {rest, cont}}
  end

  defp iodata!(element, cont) do
    IO.iodata_to_binary(element)
  rescue
    ArgumentError ->
      halt({<<>>, cont})

      reraise ArgumentError,
              [message: "expected :input to yield iodata, got: #{inspect(element)}"],
              __STACKTRACE__
  end

  @doc "Halts a suspended enumerable, so it can release what it holds."
  @spec halt(t()) :: :ok
  def halt({_, cont}) when is_function(cont, 1) do
    cont.({:halt, nil})
    :ok
  end

  def halt(_input), do: :ok
end

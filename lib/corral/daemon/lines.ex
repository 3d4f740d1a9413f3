defmodule Corral.Daemon.Lines do
  @moduledoc false
  # Splits one stream's output into lines for the logger: on "\n", with the
  # unfinished last line kept for the next chunk, and any line longer than
  # max_line/0 handed out in pieces of that size, so the buffer is bounded
  # but no line is cut short.

  @max_line 65_536

  @doc "The longest line handed out in one piece, and the most a stream buffers."
  @spec max_line() :: pos_integer()
  def max_line, do: @max_line

  @doc """
  Adds `data` to the unfinished line `partial`, calls `fun` with each
  complete line (without its "\\n", long ones in pieces, in order) and
  returns the new unfinished line, at most max_line/0 bytes.

  Lines are found one at a time, so a large chunk of output costs no more
  memory than one line: no list of all its lines is built.
  """
  @spec each(binary(), binary(), (binary() -> any())) :: binary()
  def each(partial, data, fun) do
    case :binary.match(data, "\n") do
      :nomatch ->
        rest(partial <> data, fun)

      {pos, 1} ->
        <<head::binary-size(pos), ?\n, tail::binary>> = data
        emit(partial <> head, fun)
        lines(tail, fun)
    end
  end

  @doc "What is left at exit: the unfinished line, if any, in pieces."
  @spec flush(binary(), (binary() -> any())) :: :ok
  def flush("", _fun), do: :ok
  def flush(partial, fun), do: emit(partial, fun)

  defp lines(data, fun) do
    case :binary.match(data, "\n") do
      :nomatch ->
        rest(data, fun)

      {pos, 1} ->
        emit(binary_part(data, 0, pos), fun)
        lines(binary_part(data, pos + 1, byte_size(data) - pos - 1), fun)
    end
  end

  # A complete line: its max_line pieces, then what is left.
  defp emit(line, fun) do
    fun.(pieces(line, fun))
    :ok
  end

  # The unfinished line waits until it exceeds max_line; then whole pieces
  # go out and the remainder waits, as a copy, so that it does not keep the
  # whole frame's binary alive until the next one arrives.
  defp rest(data, fun), do: :binary.copy(pieces(data, fun))

  # Hands out max_line pieces while more than max_line is left; returns the
  # remainder.
  defp pieces(data, fun) when byte_size(data) > @max_line do
    <<piece::binary-size(@max_line), rest::binary>> = data
    fun.(piece)
    pieces(rest, fun)
  end

  defp pieces(data, _fun), do: data

  @doc """
  The default `:log_transform`: valid UTF-8 unchanged, each invalid byte
  replaced by U+FFFD, so Logger and its formatters never see invalid UTF-8.
  """
  @spec replace_invalid(binary()) :: String.t()
  def replace_invalid(line) when is_binary(line) do
    if String.valid?(line) do
      line
    else
      line
      |> String.chunk(:valid)
      |> Enum.map(fn chunk ->
        if String.valid?(chunk), do: chunk, else: :binary.copy("\uFFFD", byte_size(chunk))
      end)
      |> IO.iodata_to_binary()
    end
  end
end

defmodule Corral.Protocol do
  @moduledoc false
  # The wire protocol of docs/protocol.md: frame encoding and decoding, pure
  # functions checked against the golden vectors in test/fixtures/proto/.
  # Only Corral.Client decodes what a helper sends; Corral.Helper opens the
  # helper and builds its argv.

  @version 1
  @max_stdin_chunk 65_536

  # The low two bits are the cgroup kind; 4 is set when the helper could
  # not become a child subreaper (docs/protocol.md, `S`).
  @containment %{
    0 => :none,
    1 => :cgroup_v2,
    2 => :cgroup_v1,
    3 => :hybrid,
    4 => :process_group,
    5 => :cgroup_v2_no_subreaper,
    6 => :cgroup_v1_no_subreaper,
    7 => :hybrid_no_subreaper
  }
  @reasons %{
    0 => :exit,
    1 => :signal,
    2 => :timeout,
    3 => :cpu_time,
    4 => :memory,
    5 => :max_processes,
    6 => :idle,
    7 => :stopped
  }

  # {key, name, type} for the fields that end X frames; usage fields go into
  # the report's :usage map.
  @exit_fields [
    {1, :exit_status, :int},
    {2, :exit_code, :int},
    {3, :signal, :int},
    {4, :signal_name, :text}
  ]
  @usage_fields [
    {5, :wall_time_us, :int},
    {6, :user_time_us, :int},
    {7, :system_time_us, :int},
    {8, :peak_memory, :int},
    {9, :peak_processes, :int},
    {10, :oom_kills, :int},
    {11, :pids_limit_hits, :int},
    {12, :containment, :containment}
  ]
  @failed_fields [
    {32, :errno, :int},
    {33, :errno_name, :text},
    {34, :stage, :text},
    {35, :message, :text}
  ]

  @typedoc "A decoded frame, in either direction."
  @type frame ::
          {:started, started()}
          | {:stdout, binary()}
          | {:stderr, binary()}
          | {:failed, failed()}
          | {:exit, exit_report()}
          | {:stdin_written, non_neg_integer()}
          | {:ack, non_neg_integer()}
          | {:stdin, iodata()}
          | :close_stdin
          | {:signal, String.t()}
          | :stop
          | {:run, [String.t()]}
          | {:resize, 0..65_535, 0..65_535}
          | {:pipe, :stdout | :stderr, non_neg_integer(), non_neg_integer(), pos_integer()}
          | {:pipe_done, :stdout | :stderr, :refused | :read}

  @type containment ::
          :none
          | :cgroup_v2
          | :cgroup_v1
          | :hybrid
          | :process_group
          | :cgroup_v2_no_subreaper
          | :cgroup_v1_no_subreaper
          | :hybrid_no_subreaper
          | non_neg_integer()

  @type started :: %{
          version: non_neg_integer(),
          os_pid: non_neg_integer(),
          containment: containment(),
          paths: [String.t()]
        }

  @type failed :: %{
          version: non_neg_integer(),
          errno: non_neg_integer() | nil,
          errno_name: String.t() | nil,
          stage: String.t() | nil,
          message: String.t() | nil
        }

  @type exit_report :: %{
          reason: atom() | non_neg_integer(),
          exit_status: non_neg_integer() | nil,
          exit_code: non_neg_integer() | nil,
          signal: non_neg_integer() | nil,
          signal_name: String.t() | nil,
          usage: %{atom() => non_neg_integer() | containment() | nil}
        }

  @doc "The protocol version this module speaks."
  @spec version() :: pos_integer()
  def version, do: @version

  @doc "Splits the payload of the next `I` frame, at most 64 KiB, off `data`."
  @spec split_stdin(binary()) :: {binary(), binary()}
  def split_stdin(<<chunk::binary-size(@max_stdin_chunk), rest::binary>>), do: {chunk, rest}
  def split_stdin(data) when is_binary(data), do: {data, <<>>}

  @doc """
  Encodes a frame body: tag and payload, without the length prefix, which
  `{:packet, 4}` adds. `frame/1` adds it for readers without the port driver.
  """
  @spec encode(frame()) :: iodata()
  def encode({:ack, bytes}) when bytes in 0..0xFFFF_FFFF, do: <<?A, bytes::32>>
  def encode({:stdin, data}), do: [?I, data]
  def encode(:close_stdin), do: "C"
  def encode({:signal, name}) when is_binary(name), do: [?K, name]
  def encode(:stop), do: "Q"
  def encode({:run, args}) when is_list(args), do: [?R, Enum.intersperse(args, <<0>>)]

  def encode({:resize, cols, rows}) when cols in 0..0xFFFF and rows in 0..0xFFFF,
    do: <<?T, cols::16, rows::16>>

  def encode({:pipe_done, stream, state}),
    do: <<?D, stream_tag(stream), if(state == :read, do: 1, else: 0)>>

  def encode({:pipe, stream, pid, fd, bytes}),
    do: <<?P, stream_tag(stream), pid::32, fd::32, bytes::32>>

  def encode({:started, %{} = s}) do
    [
      <<?S, s.version, s.os_pid::32, containment_code(s.containment)>>,
      Enum.intersperse(s.paths, "\n")
    ]
  end

  def encode({:stdout, data}), do: [?O, data]
  def encode({:stderr, data}), do: [?E, data]
  def encode({:stdin_written, bytes}) when bytes in 0..0xFFFF_FFFF, do: <<?W, bytes::32>>

  def encode({:failed, %{} = f}),
    do: [?F, f.version, encode_fields(f, @failed_fields)]

  def encode({:exit, %{} = x}) do
    [
      ?X,
      reason_code(x.reason),
      encode_fields(x, @exit_fields),
      encode_fields(x.usage, @usage_fields)
    ]
  end

  @doc "Prefixes a frame body with its 4-byte length, as `{:packet, 4}` does."
  @spec frame(iodata()) :: binary()
  def frame(body), do: IO.iodata_to_binary([<<IO.iodata_length(body)::32>>, body])

  @doc """
  Decodes one frame body (tag and payload, without the length prefix).
  Unknown field keys are skipped; an unknown exit reason or containment
  stays an integer.
  """
  @spec decode(binary()) :: {:ok, frame()} | {:error, term()}
  def decode(<<?O, data::binary>>), do: {:ok, {:stdout, data}}
  def decode(<<?E, data::binary>>), do: {:ok, {:stderr, data}}

  def decode(<<?S, version, os_pid::32, containment, paths::binary>>) do
    {:ok,
     {:started,
      %{
        version: version,
        os_pid: os_pid,
        containment: Map.get(@containment, containment, containment),
        paths: if(paths == "", do: [], else: String.split(paths, "\n"))
      }}}
  end

  def decode(<<?X, reason, fields::binary>>) do
    with {:ok, exit} <- decode_fields(fields, @exit_fields),
         {:ok, usage} <- decode_fields(fields, @usage_fields) do
      {:ok, {:exit, Map.merge(exit, %{reason: Map.get(@reasons, reason, reason), usage: usage})}}
    end
  end

  def decode(<<?F, version, fields::binary>>) do
    with {:ok, failed} <- decode_fields(fields, @failed_fields) do
      {:ok, {:failed, Map.put(failed, :version, version)}}
    end
  end

  def decode(<<?W, bytes::32>>), do: {:ok, {:stdin_written, bytes}}
  def decode(<<?A, bytes::32>>), do: {:ok, {:ack, bytes}}
  def decode(<<?I, data::binary>>), do: {:ok, {:stdin, data}}
  def decode(<<?C>>), do: {:ok, :close_stdin}
  def decode(<<?K, name::binary>>), do: {:ok, {:signal, name}}
  def decode(<<?Q>>), do: {:ok, :stop}
  def decode(<<?R>>), do: {:ok, {:run, []}}
  def decode(<<?R, args::binary>>), do: {:ok, {:run, :binary.split(args, <<0>>, [:global])}}
  def decode(<<?T, cols::16, rows::16>>), do: {:ok, {:resize, cols, rows}}

  def decode(<<?P, tag, pid::32, fd::32, bytes::32>>) when tag in ~c"OE" and bytes > 0,
    do: {:ok, {:pipe, stream(tag), pid, fd, bytes}}

  def decode(<<?D, tag, state>>) when tag in ~c"OE" and state in [0, 1],
    do: {:ok, {:pipe_done, stream(tag), if(state == 1, do: :read, else: :refused)}}

  def decode(<<>>), do: {:error, :empty_frame}

  def decode(<<tag, _::binary>> = body) when tag in ~c"SXFWAIKCQRTPD",
    do: {:error, {:bad_frame, body}}

  def decode(<<tag, _::binary>>), do: {:error, {:unknown_tag, tag}}

  defp stream(?O), do: :stdout
  defp stream(?E), do: :stderr
  defp stream_tag(:stdout), do: ?O
  defp stream_tag(:stderr), do: ?E

  # Reads the whole key/length/value list, keeping the keys `spec` knows, so
  # every known name is in the result (nil when absent).
  defp decode_fields(bin, spec) do
    empty = Map.new(spec, fn {_, name, _} -> {name, nil} end)
    by_key = Map.new(spec, fn {key, name, type} -> {key, {name, type}} end)
    decode_fields(bin, by_key, empty)
  end

  defp decode_fields(<<>>, _by_key, acc), do: {:ok, acc}

  defp decode_fields(<<key, len::16, value::binary-size(len), rest::binary>>, by_key, acc) do
    case {Map.get(by_key, key), value} do
      {nil, _} ->
        decode_fields(rest, by_key, acc)

      {{name, :text}, text} ->
        decode_fields(rest, by_key, Map.put(acc, name, text))

      {{name, :int}, <<n::64>>} ->
        decode_fields(rest, by_key, Map.put(acc, name, n))

      {{name, :containment}, <<n::64>>} ->
        decode_fields(rest, by_key, Map.put(acc, name, Map.get(@containment, n, n)))

      {{name, _}, _} ->
        {:error, {:bad_field, name, value}}
    end
  end

  defp decode_fields(bin, _by_key, _acc), do: {:error, {:truncated_fields, bin}}

  defp encode_fields(map, spec) do
    for {key, name, type} <- spec, value = Map.get(map, name), value != nil do
      value = encode_value(type, value)
      [<<key, IO.iodata_length(value)::16>>, value]
    end
  end

  defp encode_value(:int, n), do: <<n::64>>
  defp encode_value(:text, text), do: text
  defp encode_value(:containment, c), do: <<containment_code(c)::64>>

  for {code, name} <- @containment do
    defp containment_code(unquote(name)), do: unquote(code)
  end

  defp containment_code(code) when is_integer(code), do: code

  for {code, name} <- @reasons do
    defp reason_code(unquote(name)), do: unquote(code)
  end

  defp reason_code(code) when is_integer(code), do: code
end

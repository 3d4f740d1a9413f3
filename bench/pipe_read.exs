# How fast the VM itself can take a 1 GB stream when it reads the pipe in
# chunks larger than a port's 64 KiB: `:file.read/2` on a FIFO that `head`
# writes into, at 64 KiB, 256 KiB and 1 MiB per read (one copy into each
# binary, on a dirty I/O scheduler). Not a comparison with System.cmd: the
# evidence for a reader that would hand Corral's consumers larger chunks
# than the port driver does (issue 14, README "Measurements").
#
# Usage: elixir bench/pipe_read.exs [bytes]

Code.require_file("support/stats.exs", __DIR__)

bytes =
  case System.argv() do
    [b] -> String.to_integer(b)
    [] -> 1_000_000_000
  end

dir = Path.join(System.tmp_dir!(), "corral-pipe-read-#{System.pid()}")
File.mkdir_p!(dir)
fifo = Path.join(dir, "fifo")
{_, 0} = System.cmd("mkfifo", [fifo])

read_all = fn size ->
  writer =
    Task.async(fn -> System.cmd("sh", ["-c", "head -c #{bytes} /dev/zero > '#{fifo}'"]) end)

  {:ok, f} = :file.open(String.to_charlist(fifo), [:raw, :read, :binary])

  read = fn read, n ->
    case :file.read(f, size) do
      {:ok, data} -> read.(read, n + byte_size(data))
      :eof -> n
    end
  end

  {us, n} = :timer.tc(fn -> read.(read, 0) end)
  :ok = :file.close(f)
  {"", 0} = Task.await(writer, :infinity)
  if n != bytes, do: raise("read #{n} of #{bytes} bytes")
  n / us
end

sizes = [65_536, 262_144, 1_048_576]
median = &Bench.Stats.median/1

try do
  # Five rounds, the sizes alternating within each: the median of each.
  rounds = for _ <- 1..5, do: Enum.map(sizes, read_all)

  for {size, i} <- Enum.with_index(sizes) do
    IO.puts(
      "#{div(size, 1024)} KiB reads: #{round(median.(Enum.map(rounds, &Enum.at(&1, i))))} MB/s"
    )
  end
after
  File.rm_rf!(dir)
end

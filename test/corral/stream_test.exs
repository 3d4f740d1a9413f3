defmodule Corral.StreamTest do
  # Not async: the memory test samples the whole VM's memory, which other
  # tests running at the same time would move.
  use ExUnit.Case, async: false

  alias Corral.Test.Memory
  alias Corral.Test.OSProc

  # The pids of the OS processes under this VM whose command is `name`:
  # ours alone, found through the parent links in /proc.
  defp our_processes(name) do
    stats =
      for dir <- File.ls!("/proc"), pid = parse_pid(dir), stat = read_stat(pid), into: %{} do
        {pid, stat}
      end

    vm = List.to_integer(:os.getpid())

    for {pid, {comm, _ppid}} <- stats, comm == name, descends?(stats, pid, vm), do: pid
  end

  defp parse_pid(dir) do
    case Integer.parse(dir) do
      {pid, ""} -> pid
      _ -> nil
    end
  end

  defp read_stat(pid) do
    with {:ok, stat} <- File.read("/proc/#{pid}/stat"),
         [_, comm, rest] <- Regex.run(~r/\A\d+ \((.*)\) (.*)\z/s, stat),
         [_state, ppid | _] <- String.split(rest, " ") do
      {comm, String.to_integer(ppid)}
    else
      _ -> nil
    end
  end

  defp descends?(_stats, pid, vm) when pid == vm, do: true
  defp descends?(_stats, pid, _vm) when pid <= 1, do: false

  defp descends?(stats, pid, vm) do
    case Map.fetch(stats, pid) do
      {:ok, {_, ppid}} -> descends?(stats, ppid, vm)
      :error -> false
    end
  end

  test "Enum.take/2 on `yes` returns, and yes is gone right after" do
    test = self()

    chunks =
      Corral.stream!("yes", [])
      |> Stream.each(fn _ -> send(test, {:yes, our_processes("yes")}) end)
      |> Enum.take(3)

    assert length(chunks) == 3
    # Chunks are cut wherever a frame ends, so only their sum is lines.
    text = IO.iodata_to_binary(chunks)
    assert String.starts_with?(text, "y\n")
    assert String.replace(text, "y\n", "") in ["", "y"]

    pids = for _ <- 1..3, do: assert_received({:yes, pids}) && pids
    pids = pids |> List.flatten() |> Enum.uniq()
    assert pids != []
    # Ended before Enum.take/2 returned.
    assert OSProc.alive(pids) == []
  end

  test "the enumerating process owns the helper's port: no process in between" do
    test = self()

    # {port, its program} for each port this process owns, read while
    # the stream runs (after it, the port is closed or back in the pool).
    owned = fn ->
      for port <- Port.list(),
          Port.info(port, :connected) == {:connected, test},
          {:name, name} <- [Port.info(port, :name)],
          do: {port, to_string(name)}
    end

    before = owned.()

    ports =
      Corral.stream!("sh", ["-c", "echo a; sleep 0.05; echo b"])
      |> Enum.map(fn _ -> owned.() -- before end)

    assert [[{port, name}], [{port, name}]] = ports
    assert name =~ "corral"
  end

  test "nothing runs until enumerated, and each enumeration runs again" do
    path = OSProc.tmp_path("ran")
    stream = Corral.stream!("sh", ["-c", "echo run >> #{path}; echo done"])
    refute File.exists?(path)

    assert Enum.to_list(stream) == ["done\n"]
    assert Enum.join(stream) == "done\n"
    assert File.read!(path) == "run\nrun\n"
    File.rm!(path)
  end

  test "10^9 bytes of head, summed exactly, with the VM's memory flat" do
    :erlang.garbage_collect()
    before = :erlang.memory(:total)

    {sum, peak} =
      Memory.peak_while(
        fn ->
          Corral.stream!("head", ["-c", "1000000000", "/dev/zero"])
          |> Stream.map(&byte_size/1)
          |> Enum.sum()
        end,
        5
      )

    assert sum == 1_000_000_000
    growth = peak - before
    IO.puts("stream of 10^9 bytes: VM memory peak #{div(growth, 1024)} KiB above the start")
    assert growth < 8 * 1024 * 1024
  end

  test "a stream of 10^8 bytes piped into wc -c is counted exactly" do
    input = Corral.stream!("head", ["-c", "100000000", "/dev/zero"])

    assert Corral.stream!("wc", ["-c"], input: input) |> Enum.join() |> String.trim() ==
             "100000000"
  end

  test "an endless input halted early" do
    # Each element is at least one frame to the helper: elements of a few
    # KiB, not single bytes, make a fast input.
    block = :binary.copy("A", 4096)
    chunks = Corral.stream!("cat", [], input: Stream.repeatedly(fn -> block end)) |> Enum.take(2)
    assert [<<"A", _::binary>>, <<"A", _::binary>>] = chunks
  end

  test "the consumer dying ends the tree" do
    test = self()

    consumer =
      spawn(fn ->
        Corral.stream!("sh", ["-c", "sleep 100 & echo $$ $!; wait"])
        |> Stream.each(&send(test, {:pids, &1}))
        |> Stream.run()
      end)

    assert_receive {:pids, line}, 15_000
    pids = line |> String.split() |> Enum.map(&String.to_integer/1)
    assert OSProc.alive(pids) == pids

    Process.exit(consumer, :kill)
    assert OSProc.wait_gone(pids, 2000) == []
  end

  describe "the end of a run" do
    test "a non-zero exit raises after every chunk, with the status and reason" do
      test = self()

      error =
        assert_raise Corral.Error, fn ->
          Corral.stream!("sh", ["-c", "echo partial; exit 3"])
          |> Enum.each(&send(test, {:chunk, &1}))
        end

      assert_received {:chunk, "partial\n"}
      assert error.reason == {:exit, 3, :exit}
      assert Exception.message(error) =~ "exited with status 3"

      assert %Corral.Error{reason: {:exit, _, :timeout}} =
               catch_error(Corral.stream!("sleep", ["10"], timeout: 100) |> Enum.to_list())
    end

    test "on_exit: :ignore and :emit" do
      assert Corral.stream!("sh", ["-c", "echo x; exit 3"], on_exit: :ignore) |> Enum.to_list() ==
               ["x\n"]

      assert [{:exit, %Corral.Result{exit_status: 0, reason: :exit}}] =
               Corral.stream!("true", [], on_exit: :emit) |> Enum.to_list()
    end

    test "bad options raise where the stream is made; a missing program when it runs" do
      assert_raise ArgumentError, ~r/:on_exit/, fn ->
        Corral.stream!("true", [], on_exit: :maybe)
      end

      assert_raise ArgumentError, ~r/:into/, fn -> Corral.stream!("true", [], into: []) end
      assert_raise ArgumentError, ~r/:timeout/, fn -> Corral.stream!("true", [], timeout: -1) end
      assert_raise ArgumentError, fn -> Corral.stream!("true", [], [:oops]) end

      stream = Corral.stream!("corral-no-such-program", [])
      assert_raise ErlangError, ~r/enoent/, fn -> Enum.to_list(stream) end
    end
  end
end

defmodule Corral.DirectOutputTest do
  # Output the VM reads from the pipe itself (docs/protocol.md, "Direct
  # output"): once a child writes faster than frames go out, the helper
  # names the bytes waiting in a pipe of its own (P) and the VM reads them
  # in one binary. Each test checks every byte, in order.
  use ExUnit.Case, async: true

  import Corral.Test.Slowly

  alias Corral.Client
  alias Corral.Protocol

  # seq's output: every line different, so a byte lost, doubled or out of
  # order shows.
  @lines 2_000_000

  setup_all do
    %{expected: Enum.map_join(1..@lines, &"#{&1}\n")}
  end

  # A frame's most payload: a chunk bigger than this came from the pipe.
  @max_frame_payload 65_531

  test "stream!/3: a fast child's output comes whole and in order, in reads bigger than a frame",
       %{expected: expected} do
    chunks = Corral.stream!("seq", ["1", "#{@lines}"]) |> slowly() |> Enum.to_list()

    assert IO.iodata_to_binary(chunks) == expected

    # The forced-portable helper (make portable) relays everything.
    if Corral.Helper.direct_output?() and System.get_env("CORRAL_TEST_PORTABLE", "0") == "0" do
      assert Enum.max(Enum.map(chunks, &byte_size/1)) > @max_frame_payload
    end
  end

  test "cmd/3 into a string and into a list get every byte", %{expected: expected} do
    assert {^expected, 0} = Corral.cmd("seq", ["1", "#{@lines}"])

    {chunks, 0} = Corral.cmd("seq", ["1", "#{@lines}"], into: [])
    assert IO.iodata_to_binary(chunks) == expected
  end

  test "stdout and stderr apart, both fast, each whole", %{expected: expected} do
    script = "seq 1 #{@lines}; seq 1 #{@lines} >&2"

    {:ok, result} = Corral.run("sh", ["-c", script], separate_stderr: true, into: [])

    assert IO.iodata_to_binary(result.stdout) == expected
    assert IO.iodata_to_binary(result.stderr) == expected
  end

  test "Corral.Process: a reader that takes its time gets every byte", %{expected: expected} do
    {:ok, p} = Corral.Process.start("seq", ["1", "#{@lines}"])

    read = fn read, acc, n ->
      if n < 20, do: Process.sleep(5)

      case Corral.Process.read(p) do
        {:ok, data} -> read.(read, [acc | data], n + 1)
        :eof -> IO.iodata_to_binary(acc)
      end
    end

    assert read.(read, [], 0) == expected
    assert {:ok, %{exit_status: 0}} = Corral.Process.await_exit(p)
  end

  test "Corral.Daemon: a fast program's lines all reach its logger_fun, in order" do
    me = self()
    n = 300_000

    {:ok, d} =
      Corral.Daemon.start_link("seq", ["1", "#{n}"],
        logger_fun: fn line -> send(me, {:line, line}) end
      )

    lines = for _ <- 1..n, do: assert_receive({:line, line}, 10_000) && line
    assert lines == Enum.map(1..n, &Integer.to_string/1)
    ref = Process.monitor(d)
    assert_receive {:DOWN, ^ref, :process, ^d, _}, 10_000
  end

  describe "the client" do
    test "reads the bytes a P frame names and says so" do
      {c, pid, fd, write} = client_with_pipe()
      :ok = File.write(write, "hello, pipe")

      {events, _c} = Client.handle(c, encode({:pipe, :stdout, pid, fd, 11}))

      assert events == [
               {:output, :stdout, "hello, pipe"},
               {:send, {:pipe_done, :stdout, :read}}
             ]
    end

    test "refuses a pipe it cannot open, and the helper relays it" do
      {c, _pid, _fd, _write} = client_with_pipe()

      {events, c} = Client.handle(c, encode({:pipe, :stderr, 0, 9, 100}))
      assert events == [{:send, {:pipe_done, :stderr, :refused}}]

      # The next P of that stream is refused at once.
      {events, _c} = Client.handle(c, encode({:pipe, :stderr, 0, 9, 100}))
      assert events == [{:send, {:pipe_done, :stderr, :refused}}]
    end

    test "closes its pipes at the exit report, and when it gives a run up" do
      exit =
        {:exit,
         %{reason: :exit, exit_status: 0, exit_code: 0, signal: nil, signal_name: nil, usage: %{}}}

      {c, pid, fd, write} = client_with_pipe()
      :ok = File.write(write, "ab")
      {_, c} = Client.handle(c, encode({:pipe, :stdout, pid, fd, 2}))
      pipe = c.pipes.stdout
      {[{:exit, _}], _c} = Client.handle(c, encode(exit))
      assert Corral.Native.pipe_read(pipe, 1) == {:error, :ebadf}

      {c, pid, fd, write} = client_with_pipe()
      :ok = File.write(write, "ab")
      {_, c} = Client.handle(c, encode({:pipe, :stdout, pid, fd, 2}))
      pipe = c.pipes.stdout
      assert Client.close_pipes(c).pipes == %{}
      assert Corral.Native.pipe_read(pipe, 1) == {:error, :ebadf}
    end

    test "fails the run when the pipe holds fewer bytes than P names" do
      {c, pid, fd, write} = client_with_pipe()
      :ok = File.write(write, "short")

      {events, c} = Client.handle(c, encode({:pipe, :stdout, pid, fd, 10}))
      assert [{:error, {:protocol, {:pipe, :stdout, {:short, 5, 10}}}, nil}] = events
      assert Client.done?(c)
    end
  end

  # A running client and a pipe a process of ours holds open: a FIFO that
  # a shell keeps as its fd 7, opened through /proc as the helper's is.
  defp client_with_pipe do
    dir = Path.join(System.tmp_dir!(), "corral-direct-#{System.unique_integer([:positive])}")
    File.mkdir_p!(dir)
    on_exit(fn -> File.rm_rf!(dir) end)
    fifo = Path.join(dir, "fifo")
    {_, 0} = System.cmd("mkfifo", [fifo])

    holder =
      Port.open({:spawn_executable, "/bin/sh"}, [
        :binary,
        args: ["-c", "exec 7<>'#{fifo}'; echo ready; read _"]
      ])

    assert_receive {^holder, {:data, "ready\n"}}, 5000
    {:os_pid, pid} = Port.info(holder, :os_pid)

    started = %{version: Protocol.version(), os_pid: 1, containment: :none, paths: []}
    {_, c} = Client.handle(Client.new(1_048_576, false), encode({:started, started}))
    {c, pid, 7, fifo}
  end

  defp encode(frame), do: IO.iodata_to_binary(Protocol.encode(frame))
end

defmodule Corral.ProcessTest do
  use ExUnit.Case, async: true

  alias Corral.Process, as: Proc
  alias Corral.Test.OSProc

  doctest Corral.Process

  # Reads until what was read ends with `suffix`; returns all of it.
  defp read_until(p, suffix, acc \\ "") do
    if String.ends_with?(acc, suffix) do
      acc
    else
      case Proc.read(p, timeout: 10_000) do
        {:ok, data} -> read_until(p, suffix, acc <> data)
        other -> flunk("expected #{inspect(suffix)} after #{inspect(acc)}, got #{inspect(other)}")
      end
    end
  end

  # Reads until there are two lines.
  defp read_more(text, p) do
    if length(String.split(text, "\n", trim: true)) >= 2,
      do: text,
      else: read_more(text <> read_until(p, "\n"), p)
  end

  # The helper's OS pid, to check that none is left behind.
  defp helper_pid(p),
    do: p |> :sys.get_state() |> Map.fetch!(:port) |> Port.info(:os_pid) |> elem(1)

  test "drives a Python REPL: a prompt without newline, 1+1, end of input, status 0" do
    # The interactive prompt goes to stderr, so it is merged.
    {:ok, p} = Proc.start("python3", ["-i", "-u", "-q"], stderr_to_stdout: true)

    assert read_until(p, ">>> ") =~ ">>> "
    assert :ok = Proc.write(p, "1+1\n")
    assert read_until(p, ">>> ") == "2\n>>> "

    assert :ok = Proc.close_input(p)
    assert {:ok, %Corral.Result{exit_status: 0, reason: :exit}} = Proc.await_exit(p, 10_000)
  end

  test "reads chunks as they come, each stream apart with :separate_stderr" do
    {:ok, p} =
      Proc.start("sh", ["-c", "printf out; printf err >&2; read x; printf \"$x\""],
        separate_stderr: true
      )

    assert Proc.read(p, from: :stderr, timeout: 10_000) == {:ok, "err"}
    assert Proc.read(p, from: :stdout, timeout: 10_000) == {:ok, "out"}
    # Nothing more until it reads its line.
    assert Proc.read(p, timeout: 50) == {:error, :timeout}
    :ok = Proc.write(p, ["ag", ?a, "in\n"])
    assert Proc.read(p, timeout: 10_000) == {:ok, "again"}
    assert Proc.read(p, timeout: 10_000) == :eof
    assert {:ok, %Corral.Result{exit_status: 0}} = Proc.await_exit(p)
  end

  test ":input feeds stdin, then closes it" do
    {:ok, p} = Proc.start("wc", ["-c"], input: Stream.map(1..100, fn _ -> "0123456789" end))
    assert read_until(p, "\n") =~ ~r/^\s*1000\n$/
    assert Proc.write(p, "more") == {:error, :closed}
    assert {:ok, %Corral.Result{exit_status: 0}} = Proc.await_exit(p)
  end

  test "signal/2, os_pid/1 and stop/2" do
    {:ok, p} = Proc.start("sleep", ["100"])
    pid = Proc.os_pid(p)
    assert OSProc.alive?(pid)
    :ok = Proc.signal(p, :sigterm)

    assert {:ok, %Corral.Result{exit_status: 143, reason: {:signal, :sigterm}}} =
             Proc.await_exit(p)

    assert OSProc.wait_gone([pid], 5000) == []

    {:ok, p} = Proc.start("sh", ["-c", "trap '' TERM; sleep 100"], delay_to_sigkill: 100)
    pid = Proc.os_pid(p)
    helper = helper_pid(p)
    assert Proc.stop(p) == :ok
    assert OSProc.wait_gone([pid, helper], 5000) == []
    assert Proc.os_pid(p) == {:error, :not_running}
  end

  test "killing the owner ends the whole tree, pid by pid" do
    test = self()

    owner =
      spawn(fn ->
        {:ok, p} = Proc.start("sh", ["-c", "sleep 100 & echo $!; sleep 100 & echo $!; wait"])

        children =
          p
          |> read_until("\n")
          |> read_more(p)
          |> String.split()
          |> Enum.map(&String.to_integer/1)

        send(test, {:pids, [Proc.os_pid(p), helper_pid(p) | children]})
        Process.sleep(:infinity)
      end)

    assert_receive {:pids, pids}, 15_000
    assert OSProc.alive(pids) == pids

    Process.exit(owner, :kill)
    assert OSProc.wait_gone(pids, 1000) == []
  end

  test "start_link/3 links; the tree ends with the server" do
    Process.flag(:trap_exit, true)
    {:ok, p} = Proc.start_link("sleep", ["100"])
    pid = Proc.os_pid(p)
    Process.exit(p, :kill)
    assert_receive {:EXIT, ^p, :killed}
    assert OSProc.wait_gone([pid], 2000) == []
  end

  describe "bad input" do
    test "wrong options raise ArgumentError in the caller, and nothing starts" do
      assert_raise ArgumentError, ~r/:timeout/, fn -> Proc.start("cat", [], timeout: "soon") end
      assert_raise ArgumentError, ~r/:into/, fn -> Proc.start("cat", [], into: []) end
      assert_raise ArgumentError, ~r/:bogus/, fn -> Proc.start("cat", [], bogus: 1) end
      assert Proc.start("corral-no-such-program", []) == {:error, :enoent}
    end

    test "bad arguments to write and read raise; timeouts are checked" do
      {:ok, p} = Proc.start("cat", [])
      assert_raise ArgumentError, ~r/iodata/, fn -> Proc.write(p, :nope) end
      assert_raise ArgumentError, ~r/:from/, fn -> Proc.read(p, from: :stdin) end
      assert_raise ArgumentError, ~r/timeout/, fn -> Proc.read(p, timeout: -1) end
      assert_raise ArgumentError, ~r/timeout/, fn -> Proc.await_exit(p, :soon) end
      assert_raise ArgumentError, ~r/signal/, fn -> Proc.signal(p, :sigbogus) end
      assert Proc.stop(p) == :ok
    end

    test "write after close_input, read after exit, calls after await_exit" do
      {:ok, p} = Proc.start("cat", [])
      helper = helper_pid(p)
      :ok = Proc.write(p, "x")
      :ok = Proc.close_input(p)
      assert Proc.write(p, "y") == {:error, :closed}
      assert Proc.close_input(p) == {:error, :closed}
      assert Proc.read(p, timeout: 10_000) == {:ok, "x"}
      assert Proc.read(p, timeout: 10_000) == :eof
      assert Proc.read(p, timeout: 10_000) == :eof
      assert {:ok, %Corral.Result{exit_status: 0}} = Proc.await_exit(p)

      assert OSProc.wait_gone([helper], 5000) == []
      refute Process.alive?(p)
      assert Proc.read(p) == {:error, :not_running}
      assert Proc.write(p, "z") == {:error, :not_running}
      assert Proc.await_exit(p) == {:error, :not_running}
    end

    test "await_exit drops output nobody read, so a chatty program still ends" do
      {:ok, p} = Proc.start("head", ["-c", "5000000", "/dev/zero"], stdio_window: 65_536)
      assert {:ok, %Corral.Result{exit_status: 0}} = Proc.await_exit(p, 30_000)
    end

    test "await_exit with a timeout leaves the program running" do
      {:ok, p} = Proc.start("sleep", ["100"])
      assert Proc.await_exit(p, 10) == {:error, :timeout}
      assert OSProc.alive?(Proc.os_pid(p))
      assert Proc.stop(p) == :ok
    end
  end
end

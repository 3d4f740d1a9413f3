defmodule Corral.ControlsTest do
  # erlexec's controls: :pty (and Corral.Process.resize/3), :nice,
  # :kill_signal and :clear_env, on real processes. Each runs on a pooled
  # helper (the R frame) and on a fresh one (`parallelism: true`).
  use ExUnit.Case, async: true

  alias Corral.Result

  @helpers [pooled: [], fresh: [parallelism: true]]

  @isatty ["-c", "import sys; print(sys.stdout.isatty())"]

  # Traps INT, TERM, HUP and QUIT, appends the name of each it gets to the
  # file named by its first argument, and exits 7 on INT; prints "ready"
  # once the handlers are in place, in one write (print makes two under
  # PYTHONUNBUFFERED, and a read may take the first alone). SIGKILL cannot
  # be caught: exit status 7 proves it never came.
  @traps """
  import os, signal, sys, time
  def got(sig, frame):
      with open(sys.argv[1], "a") as log:
          log.write(signal.Signals(sig).name + "\\n")
      if sig == signal.SIGINT:
          sys.exit(7)
  for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT):
      signal.signal(s, got)
  os.write(1, b"ready\\n")
  while True:
      time.sleep(1)
  """

  for {helper, extra} <- @helpers do
    describe "#{helper} helper" do
      test "pty: true gives the program a terminal, and its output as the terminal made it" do
        opts = [pty: true] ++ unquote(extra)

        assert {:ok, %Result{output: "True\r\n", exit_status: 0}} =
                 Corral.run("python3", @isatty, opts)

        assert {:ok, %Result{output: "False\n"}} = Corral.run("python3", @isatty, unquote(extra))
      end

      test "pty: {cols, rows} sets the window size" do
        opts = [pty: {100, 40}] ++ unquote(extra)
        assert Corral.cmd("stty", ["size"], opts) == {"40 100\r\n", 0}
      end

      test "pty: input goes to the terminal, and its end is the terminal's EOF" do
        opts = [pty: true, input: "abc"] ++ unquote(extra)
        # The terminal echoes the input, then cat writes it back and exits
        # at the end of file.
        assert Corral.cmd("cat", [], opts) == {"abcabc", 0}
      end

      test "nice: 10 lowers the program's priority" do
        # Unprivileged, only a value at or above the VM's own is taken
        # (the tests may run under `nice -n 15`).
        n = if System.cmd("id", ["-u"]) == {"0\n", 0}, do: 10, else: 19
        opts = [nice: n] ++ unquote(extra)
        {stat, 0} = Corral.cmd("cat", ["/proc/self/stat"], opts)
        # Field 19 (after the parenthesised command name, field 17).
        [_, rest] = String.split(stat, ") ", parts: 2)
        assert rest |> String.split(" ") |> Enum.at(16) == Integer.to_string(n)
      end

      test "clear_env: true passes nothing but :env" do
        opts = [clear_env: true, env: [{"A", "1"}]] ++ unquote(extra)
        assert Corral.cmd("/usr/bin/env", [], opts) == {"A=1\n", 0}
      end
    end
  end

  test "nice: -5 raises the priority of a privileged caller's child" do
    # The unprivileged refusal: test/corral/nice_privilege_test.exs.
    if System.cmd("id", ["-u"]) == {"0\n", 0} do
      assert {:ok, %Result{output: "-5\n"}} =
               Corral.run("sh", ["-c", "cut -d' ' -f19 /proc/$$/stat"], nice: -5)
    end
  end

  # Ends the tree of @traps once it is ready (Corral.Process.stop/2) and
  # returns what it logged and how it ended (await_exit/2, waiting beside
  # the stop).
  defp teardown(opts) do
    log = Corral.Test.OSProc.tmp_path("signals")
    on_exit(fn -> File.rm(log) end)
    {:ok, p} = Corral.Process.start("python3", ["-c", @traps, log], opts)
    assert {:ok, "ready\n"} = Corral.Process.read(p, timeout: 30_000)
    waiter = Task.async(fn -> Corral.Process.await_exit(p) end)

    Corral.Test.OSProc.wait_until(
      fn -> :sys.get_state(p).waiters != [] end,
      5000
    )

    :ok = Corral.Process.stop(p, :infinity)
    {:ok, result} = Task.await(waiter, :infinity)
    {File.read!(log), result}
  end

  test "kill_signal: :sigint ends the tree with SIGINT first, and no SIGKILL follows" do
    # The grace is far longer than the test: SIGKILL would make the status
    # 137, and SIGTERM would be logged.
    {log, result} = teardown(kill_signal: :sigint, delay_to_sigkill: 3_600_000)
    assert log == "SIGINT\n"
    assert %Result{exit_status: 7, reason: :stopped} = result
  end

  test "without kill_signal the teardown starts with SIGTERM" do
    # The trap logs SIGTERM and carries on; SIGKILL follows the grace.
    {log, result} = teardown(delay_to_sigkill: 100)
    assert log == "SIGTERM\n"
    assert %Result{exit_status: 137, reason: :stopped} = result
  end

  test "Corral.Process.resize/3 changes a running terminal's size" do
    script = "stty size; read line; stty size"
    {:ok, p} = Corral.Process.start("sh", ["-c", script], pty: {100, 40})
    assert read_until(p, "40 100\r\n", "") =~ "40 100\r\n"
    assert :ok = Corral.Process.resize(p, 120, 50)
    :ok = Corral.Process.write(p, "\n")
    assert read_until(p, "50 120\r\n", "") =~ "50 120\r\n"
    assert {:ok, %Result{exit_status: 0}} = Corral.Process.await_exit(p)

    {:ok, p} = Corral.Process.start("cat", [])
    assert Corral.Process.resize(p, 80, 24) == {:error, :no_pty}
    assert_raise ArgumentError, fn -> Corral.Process.resize(p, 0, 24) end
    :ok = Corral.Process.stop(p)
  end

  defp read_until(p, want, acc) do
    if String.contains?(acc, want) do
      acc
    else
      case Corral.Process.read(p, timeout: 10_000) do
        {:ok, data} -> read_until(p, want, acc <> data)
        other -> flunk("#{inspect(want)} never came: #{inspect(other)} after #{inspect(acc)}")
      end
    end
  end

  describe "validation" do
    test "bad values name the option and what it takes" do
      for opt <- [
            pty: {0, 24},
            pty: {80, 65_536},
            pty: :yes,
            nice: 20,
            nice: -21,
            nice: "5",
            kill_signal: :sigstop,
            kill_signal: :sigcont,
            kill_signal: :nope,
            kill_signal: 2,
            clear_env: 1
          ] do
        {key, _} = opt
        error = assert_raise ArgumentError, fn -> Corral.Options.new!([opt]) end
        assert error.message =~ "invalid option #{inspect(key)}"
      end
    end

    test "a terminal has no stderr apart" do
      for other <- [separate_stderr: true, capture_stderr_only: true] do
        assert_raise ArgumentError, ~r/exclude each other/, fn ->
          Corral.Options.new!([{:pty, true}, other])
        end
      end
    end

    test "good values reach the helper's command line" do
      o =
        Corral.Options.new!(
          pty: {100, 40},
          nice: -3,
          kill_signal: "quit",
          clear_env: true
        )

      argv = Corral.Helper.argv("/bin/true", [], o)

      for flag <- ["--pty=100x40", "--nice=-3", "--kill-signal=SIGQUIT", "--clear-env"],
          do: assert(flag in argv)

      assert Corral.Options.new!(pty: true).pty == {80, 24}
      assert Corral.Options.new!(kill_signal: :int).kill_signal == "SIGINT"
    end

    test "the Daemon takes them" do
      o = Corral.Daemon.Options.new!("cat", pty: true, nice: 5, kill_signal: :sighup)
      assert %{pty: {80, 24}, nice: 5, kill_signal: "SIGHUP"} = o.common
    end
  end

  test "a Daemon runs its program on a terminal" do
    me = self()
    script = "stty size; python3 -c 'import sys; print(sys.stdout.isatty())'; exec sleep 1000"

    Corral.Test.DaemonStart.start!("sh", ["-c", script],
      pty: {100, 40},
      logger_fun: fn line -> send(me, {:line, line}) end
    )

    assert_receive {:line, size}, 10_000
    assert size =~ ~r/^40 100\r?$/
    assert_receive {:line, tty}, 10_000
    assert tty =~ ~r/^True\r?$/
  end
end

defmodule Corral.DaemonTest do
  # Corral.Daemon against the real helper: MuonTrap.Daemon's documented
  # behaviours, Corral's additions, and the tree dying with the daemon. Not
  # async: "nothing is left behind" lists the VM's shared cgroup
  # directories, and the memory test wants the VM to itself.
  use ExUnit.Case, async: false

  # Daemons log their exits; the tests that check logs use their own
  # :logger handler (Corral.Test.DaemonLog) or capture_log/1.
  @moduletag :capture_log

  import ExUnit.CaptureLog

  alias Corral.Daemon
  alias Corral.Test.Cgroups
  alias Corral.Test.DaemonLog
  alias Corral.Test.OSProc

  import Corral.Test.DaemonStart

  doctest Corral.Daemon

  defp lines_to_me(tag \\ :line) do
    me = self()
    fn line -> send(me, {:line, tag, line}) end
  end

  defp helper_os_pid(daemon) do
    {:os_pid, pid} = Port.info(:sys.get_state(daemon).port, :os_pid)
    pid
  end

  defp sup_spec(children, opts \\ []) do
    opts = Keyword.merge([strategy: :one_for_one, max_restarts: 100, max_seconds: 10], opts)
    %{id: make_ref(), start: {Supervisor, :start_link, [children, opts]}, type: :supervisor}
  end

  describe "child_spec/1 and start_link/3" do
    test "child specs as MuonTrap.Daemon's" do
      assert %{
               id: Daemon,
               start: {Daemon, :start_link, ["echo", ["hi"], []]},
               restart: :permanent,
               type: :worker,
               shutdown: 1500
             } = Daemon.child_spec(["echo", ["hi"]])

      assert %{id: :mine, start: {Daemon, :start_link, ["echo", [], [id: :mine]]}} =
               Daemon.child_spec(["echo", [], [id: :mine]])

      assert %{shutdown: 3000} = Daemon.child_spec(["echo", [], [delay_to_sigkill: 2000]])
    end

    test ":name registers the daemon" do
      pid = start!("sleep", ["1000"], name: :corral_daemon_named)
      assert Process.whereis(:corral_daemon_named) == pid
      assert is_integer(Daemon.os_pid(:corral_daemon_named))
    end

    test "os_pid/1 is the program's pid" do
      pid = start!("sh", ["-c", "echo $$; exec sleep 1000"], logger_fun: lines_to_me())
      os_pid = Daemon.os_pid(pid)
      assert_receive {:line, :line, line}, 5000
      assert String.to_integer(line) == os_pid
      assert OSProc.alive?(os_pid)
    end

    test "bad options raise ArgumentError in the caller, naming them" do
      for {opts, message} <- [
            {[foo: 1], "invalid option :foo with value 1"},
            {[log_output: :loud], "invalid option :log_output with value :loud"},
            {[logger_fun: fn -> :ok end], "invalid option :logger_fun"},
            {[wait_for: fn _ -> :ok end], "invalid option :wait_for"},
            {[into: []], "invalid option :into with value []: it is for Corral.cmd/3 only"},
            {[input: "x"], "invalid option :input"},
            {[stdin: 1], "invalid option :stdin with value 1"},
            {[stdio_window: 0], "invalid option :stdio_window with value 0"},
            {[log_stderr_level: :info, stderr_to_stdout: true], "exclude each other"}
          ] do
        error = assert_raise ArgumentError, fn -> Daemon.start_link("true", [], opts) end
        assert error.message =~ message, "for #{inspect(opts)}: #{error.message}"
      end

      assert_raise ArgumentError, ~r/null byte/, fn -> Daemon.start_link("true", ["a\0b"]) end
    end

    test "a program that cannot start fails start_link with a reason" do
      Process.flag(:trap_exit, true)
      assert Daemon.start_link("corral-no-such-program", []) == {:error, :enoent}
      assert_receive {:EXIT, _, :enoent}

      assert Daemon.start_link("pwd", [], cd: "/no/such/dir") ==
               {:error, {:spawn_failed, :enoent, "chdir"}}
    end
  end

  describe "exit status and restarts" do
    test "status 0 stops the daemon with :normal" do
      {_pid, ref} = start_and_monitor!("sh", ["-c", "exit 0"], [])
      assert_receive {:DOWN, ^ref, :process, _, :normal}, 5000
    end

    test "another status stops it with :error_exit_status, or exit_status_to_reason's" do
      {_pid, ref} = start_and_monitor!("sh", ["-c", "exit 3"], [])
      assert_receive {:DOWN, ^ref, :process, _, :error_exit_status}, 5000

      to_reason = fn status -> {:exited, status} end
      {_pid, ref} = start_and_monitor!("sh", ["-c", "exit 4"], exit_status_to_reason: to_reason)
      assert_receive {:DOWN, ^ref, :process, _, {:exited, 4}}, 5000

      {_pid, ref} =
        start_and_monitor!("sh", ["-c", "kill -9 $$"], exit_status_to_reason: to_reason)

      assert_receive {:DOWN, ^ref, :process, _, {:exited, 137}}, 5000
    end

    # Runs `exit status` as a supervised child with `restart`; the program
    # appends its pid to a file each time it starts.
    defp supervised(status, restart, opts \\ []) do
      file = OSProc.tmp_path("starts")
      on_exit(fn -> File.rm(file) end)
      script = "echo $$ >> #{file}; sleep 0.1; exit #{status}"
      child = Supervisor.child_spec({Daemon, ["sh", ["-c", script], opts]}, restart: restart)
      sup = start_supervised!(sup_spec([child]))
      [{Daemon, first, :worker, _}] = Supervisor.which_children(sup)
      {sup, first, file}
    end

    defp starts(file) do
      case File.read(file) do
        {:ok, text} -> text |> String.split("\n", trim: true) |> length()
        {:error, :enoent} -> 0
      end
    end

    test ":permanent restarts after any exit, 0 included" do
      {_sup, _first, file} = supervised(0, :permanent)
      assert OSProc.wait_until(fn -> starts(file) >= 3 end, 5000)
    end

    test ":transient does not restart after status 0" do
      {sup, first, file} = supervised(0, :transient)
      ref = Process.monitor(first)
      assert_receive {:DOWN, ^ref, :process, _, :normal}, 5000
      assert [{Daemon, :undefined, :worker, _}] = Supervisor.which_children(sup)
      assert starts(file) == 1
    end

    test ":transient restarts after another status" do
      {sup, first, file} = supervised(3, :transient)
      ref = Process.monitor(first)
      assert_receive {:DOWN, ^ref, :process, _, :error_exit_status}, 5000
      assert [{Daemon, second, :worker, _}] = Supervisor.which_children(sup)
      assert is_pid(second) and second != first
      assert OSProc.wait_until(fn -> starts(file) >= 2 end, 5000)
    end

    test ":transient does not restart when exit_status_to_reason says :normal" do
      {sup, first, _file} = supervised(3, :transient, exit_status_to_reason: fn 3 -> :normal end)

      ref = Process.monitor(first)
      assert_receive {:DOWN, ^ref, :process, _, :normal}, 5000
      assert [{Daemon, :undefined, :worker, _}] = Supervisor.which_children(sup)
    end

    test ":temporary never restarts" do
      {sup, first, file} = supervised(3, :temporary)
      ref = Process.monitor(first)
      assert_receive {:DOWN, ^ref, :process, _, :error_exit_status}, 5000
      assert Supervisor.which_children(sup) == []
      assert starts(file) == 1
    end

    test "the exit is logged as MuonTrap logs it" do
      DaemonLog.capture()
      {pid, ref} = start_and_monitor!("sh", ["-c", "exit 0"], [])
      assert_receive {:DOWN, ^ref, :process, _, :normal}, 5000
      assert_received {:log, :info, "sh: Process exited successfully", %{pid: ^pid}}

      {pid, ref} = start_and_monitor!("sh", ["-c", "exit 5"], [])
      assert_receive {:DOWN, ^ref, :process, _, _}, 5000
      assert_received {:log, :error, "sh: Process exited with status 5", %{pid: ^pid}}
    end
  end

  describe "logging" do
    test ":log_output logs each line with the default prefix, and metadata" do
      DaemonLog.capture()

      {pid, ref} =
        start_and_monitor!("sh", ["-c", "echo one; echo two; printf three"],
          log_output: :info,
          logger_metadata: [app: :test]
        )

      assert_receive {:DOWN, ^ref, :process, _, :normal}, 5000

      for text <- ["sh: one", "sh: two", "sh: three"] do
        assert_received {:log, :info, ^text, %{pid: ^pid} = meta}

        assert %{app: :test, corral_cmd: "sh", corral_args: "-c echo one; echo two; printf three"} =
                 meta
      end
    end

    test "a logger_fun that raises stops the daemon, and the tree ends" do
      file = OSProc.tmp_path("pid")
      on_exit(fn -> File.rm(file) end)
      script = "echo $$ > #{file}; echo boom; exec sleep 1000"
      {_pid, ref} = start_and_monitor!("sh", ["-c", script], logger_fun: fn _ -> raise "boom" end)
      assert_receive {:DOWN, ^ref, :process, _, {%RuntimeError{message: "boom"}, _}}, 5000
      [os_pid] = OSProc.wait_for_pids(file, 1)
      assert OSProc.wait_gone([os_pid], 1000) == []
    end

    test ":timeout ends the program and stops the daemon as an error, logged" do
      DaemonLog.capture()
      {pid, ref} = start_and_monitor!("sleep", ["1000"], timeout: 200)
      assert_receive {:DOWN, ^ref, :process, _, :error_exit_status}, 5000

      assert_received {:log, :error,
                       "sleep: Process exited with status 143 (ended by Corral: timeout)",
                       %{pid: ^pid}}
    end

    test "nothing is logged without :log_output, but output is counted" do
      DaemonLog.capture()
      pid = start!("sh", ["-c", "echo quiet; exec sleep 1000"])
      assert OSProc.wait_until(fn -> Daemon.statistics(pid).output_byte_count == 6 end, 5000)
      refute_received {:log, _, "sh: quiet", _}
    end

    test ":log_prefix, :log_transform and the level" do
      DaemonLog.capture()

      {pid, ref} =
        start_and_monitor!("echo", ["Hello"],
          log_output: :warning,
          log_prefix: "[greeter] ",
          log_transform: &String.downcase/1
        )

      assert_receive {:DOWN, ^ref, :process, _, :normal}, 5000
      assert_received {:log, :warning, "[greeter] hello", %{pid: ^pid}}
    end

    test ":logger_fun as a fun, {m, f} and {m, f, a}; the other log options are ignored" do
      DaemonLog.capture()
      script = "echo a; echo b"

      {pid, ref} =
        start_and_monitor!("sh", ["-c", script],
          logger_fun: lines_to_me(:fun),
          log_output: :info,
          log_prefix: "ignored"
        )

      assert_receive {:DOWN, ^ref, :process, _, :normal}, 5000
      assert_received {:line, :fun, "a"}
      assert_received {:line, :fun, "b"}
      refute_received {:log, :info, "ignored" <> _, %{pid: ^pid}}

      Process.register(self(), :daemon_log_test)
      {_, ref} = start_and_monitor!("sh", ["-c", script], logger_fun: {DaemonLog, :send_line})
      assert_receive {:DOWN, ^ref, :process, _, :normal}, 5000
      assert_received {:line, :mf, "a"}
      assert_received {:line, :mf, "b"}

      {_, ref} =
        start_and_monitor!("sh", ["-c", script],
          logger_fun: {DaemonLog, :send_line, [self(), :mfa]}
        )

      assert_receive {:DOWN, ^ref, :process, _, :normal}, 5000
      assert_received {:line, :mfa, "a"}
      assert_received {:line, :mfa, "b"}
    end

    @script "echo out; echo err >&2"

    test "stderr is not captured by default (it goes to the VM's stderr)" do
      pid = start!("sh", ["-c", @script <> "; exec sleep 1000"], logger_fun: lines_to_me())
      assert_receive {:line, :line, "out"}, 5000
      refute_receive {:line, :line, "err"}, 200
      assert %{stdout_byte_count: 4, stderr_byte_count: 0} = Daemon.statistics(pid)
    end

    test ":stderr_to_stdout logs both streams together" do
      start!("sh", ["-c", @script], logger_fun: lines_to_me(), stderr_to_stdout: true)
      assert_receive {:line, :line, "out"}, 5000
      assert_receive {:line, :line, "err"}, 5000
    end

    test ":capture_stderr_only logs stderr and discards stdout" do
      DaemonLog.capture()

      {pid, ref} =
        start_and_monitor!("sh", ["-c", @script], capture_stderr_only: true, log_output: :info)

      assert_receive {:DOWN, ^ref, :process, _, :normal}, 5000
      assert_received {:log, :info, "sh: err", %{pid: ^pid}}
      refute_received {:log, :info, "sh: out", %{pid: ^pid}}
    end

    test ":log_stderr_level logs stderr at its own level, as the protocol tags it" do
      DaemonLog.capture()
      script = "echo out; echo err >&2; exec sleep 1000"
      pid = start!("sh", ["-c", script], log_output: :info, log_stderr_level: :error)
      assert_receive {:log, :info, "sh: out", %{pid: ^pid}}, 5000
      assert_receive {:log, :error, "sh: err", %{pid: ^pid}}, 5000
      assert %{stdout_byte_count: 4, stderr_byte_count: 4} = Daemon.statistics(pid)
    end

    test "invalid UTF-8 is logged safely by the default :log_transform" do
      log =
        capture_log(fn ->
          {_, ref} =
            start_and_monitor!("printf", ["ok \\377\\376 bad\\nnext\\n"], log_output: :info)

          assert_receive {:DOWN, ^ref, :process, _, :normal}, 5000
        end)

      assert log =~ "printf: ok \uFFFD\uFFFD bad"
      assert log =~ "printf: next"
      assert String.valid?(log)
    end

    test "lines are not cut at 256 bytes; longer than 64 KiB they come in 64 KiB pieces" do
      # 1000 bytes, then 200_000, then a line with no newline at exit.
      script =
        "head -c 1000 /dev/zero | tr '\\0' a; echo; " <>
          "head -c 200000 /dev/zero | tr '\\0' b; echo; printf tail"

      {_, ref} = start_and_monitor!("sh", ["-c", script], logger_fun: lines_to_me())
      assert_receive {:DOWN, ^ref, :process, _, :normal}, 5000

      assert_received {:line, :line, a}
      assert a == String.duplicate("a", 1000)

      sizes =
        for _ <- 1..4 do
          assert_received {:line, :line, "b" <> _ = piece}
          byte_size(piece)
        end

      assert sizes == [65_536, 65_536, 65_536, 200_000 - 3 * 65_536]
      assert_received {:line, :line, "tail"}
    end
  end

  describe "lines (Corral.Daemon.Lines)" do
    alias Corral.Daemon.Lines

    defp each(partial, data) do
      me = self()
      rest = Lines.each(partial, data, &send(me, {:piece, &1}))
      {collect_pieces([]), rest}
    end

    defp collect_pieces(acc) do
      receive do
        {:piece, piece} -> collect_pieces([piece | acc])
      after
        0 -> Enum.reverse(acc)
      end
    end

    test "splits on newlines and keeps the unfinished line" do
      assert each("", "a\nb\n") == {["a", "b"], ""}
      assert each("", "a\n\nb") == {["a", ""], "b"}
      assert each("par", "tial\nnext") == {["partial"], "next"}
      assert each("", "no newline") == {[], "no newline"}
      assert each("x", "") == {[], "x"}
    end

    test "a line of exactly 64 KiB is one piece, even split across chunks" do
      max = Lines.max_line()
      line = String.duplicate("z", max)
      {[], rest} = each("", binary_part(line, 0, 1000))
      {[], rest} = each(rest, binary_part(line, 1000, max - 1000))
      assert each(rest, "\n") == {[line], ""}
    end

    test "longer lines come in 64 KiB pieces; the buffer never exceeds 64 KiB" do
      max = Lines.max_line()
      {pieces, rest} = each("", String.duplicate("q", 3 * max + 5))
      assert Enum.map(pieces, &byte_size/1) == [max, max, max]
      assert rest == "qqqqq"

      {pieces, rest} = each("", String.duplicate("q", 2 * max + 5) <> "\ntail")
      assert Enum.map(pieces, &byte_size/1) == [max, max, 5]
      assert rest == "tail"
    end

    test "replace_invalid/1 makes any binary valid UTF-8" do
      assert Lines.replace_invalid("plain ü") == "plain ü"
      assert Lines.replace_invalid(<<"a", 0xFF, 0xFE, "b">>) == "a\uFFFD\uFFFDb"
      assert String.valid?(Lines.replace_invalid(:crypto.strong_rand_bytes(1000)))
    end
  end

  describe ":wait_for" do
    test "the program starts only once wait_for returns" do
      me = self()

      wait_for = fn ->
        send(me, {:waiting, self()})
        receive do: (:go -> :ok)
      end

      pid =
        start!("sh", ["-c", "echo started; exec sleep 1000"],
          wait_for: wait_for,
          logger_fun: lines_to_me()
        )

      assert_receive {:waiting, task}, 5000
      assert Daemon.os_pid(pid) == :error
      assert Daemon.signal(pid, :hup) == {:error, :not_running}
      refute_received {:line, :line, "started"}

      send(task, :go)
      assert_receive {:line, :line, "started"}, 5000
      assert is_integer(Daemon.os_pid(pid))
    end

    test "a wait_for that raises stops the daemon before anything runs" do
      {_pid, ref} = start_and_monitor!("true", [], wait_for: fn -> raise "not ready" end)
      assert_receive {:DOWN, ^ref, :process, _, {%RuntimeError{message: "not ready"}, _}}, 5000
    end

    test "stopping a daemon while wait_for runs ends the wait" do
      me = self()

      wait_for = fn ->
        send(me, {:waiting, self()})
        Process.sleep(:infinity)
      end

      pid = start!("true", [], wait_for: wait_for)
      assert_receive {:waiting, task}, 5000
      ref = Process.monitor(task)
      GenServer.stop(pid)
      assert_receive {:DOWN, ^ref, :process, _, _}, 1000
    end
  end

  describe "statistics, signals, stdin and cgroups" do
    test "statistics/1 counts output per stream and reports usage" do
      pid =
        start!("sh", ["-c", "printf 12345; printf 678 >&2; exec sleep 1000"],
          log_stderr_level: :debug,
          logger_fun: fn _ -> :ok end
        )

      stats =
        OSProc.wait_until(
          fn ->
            stats = Daemon.statistics(pid)
            stats.output_byte_count == 8 and stats
          end,
          5000
        )

      assert %{stdout_byte_count: 5, stderr_byte_count: 3, uptime_ms: uptime} = stats
      assert is_integer(uptime)

      # No cgroup (containment :none, or :process_group under make
      # portable's CORRAL_TEST_PORTABLE): no cgroup statistics.
      case Daemon.containment(pid) do
        %{containment: containment, dirs: []} when containment in [:none, :process_group] ->
          assert stats.cpu_usage_usec == nil

        %{containment: _, dirs: [_ | _]} ->
          assert is_integer(stats.cpu_usage_usec) and stats.cpu_usage_usec > 0
      end
    end

    test "signal/2 sends a signal to the program" do
      script = "trap 'echo got-hup' HUP; echo ready; while :; do sleep 0.05; done"
      pid = start!("sh", ["-c", script], logger_fun: lines_to_me())
      assert_receive {:line, :line, "ready"}, 5000

      assert Daemon.signal(pid, :sighup) == :ok
      assert_receive {:line, :line, "got-hup"}, 5000
      assert Daemon.signal(pid, "HUP") == :ok
      assert_receive {:line, :line, "got-hup"}, 5000

      assert_raise ArgumentError, "unknown signal :sigfoo", fn -> Daemon.signal(pid, :sigfoo) end
    end

    test "send_input/2 and close_input/1 with stdin: true" do
      # cat runs until its stdin closes: no race with the monitor.
      pid = start!("cat", [], stdin: true, logger_fun: lines_to_me())
      ref = Process.monitor(pid)
      assert Daemon.send_input(pid, ["hel", ?l, "o\n"]) == :ok
      assert_receive {:line, :line, "hello"}, 5000

      big = String.duplicate("x", 200_000) <> "\n"
      assert Daemon.send_input(pid, big) == :ok
      assert Daemon.close_input(pid) == :ok
      assert_receive {:DOWN, ^ref, :process, _, :normal}, 5000

      lines =
        for _ <- 1..4 do
          receive do
            {:line, :line, line} -> line
          after
            0 -> flunk("fewer than 4 pieces")
          end
        end

      assert IO.iodata_length(lines) == 200_000
    end

    test "a prompt without a newline reaches logger_fun once the output is quiet" do
      script = ~s(printf "name? "; read name; echo "hello $name"; printf "bye? "; read x)
      pid = start!("sh", ["-c", script], stdin: true, logger_fun: lines_to_me())

      # No newline will come until it has an answer: the prompt goes out.
      assert_receive {:line, :line, "name? "}, 5000
      assert Daemon.send_input(pid, "bob\n") == :ok
      assert_receive {:line, :line, "hello bob"}, 5000
      assert_receive {:line, :line, "bye? "}, 5000

      # Each prompt went out once: nothing is left to flush at exit.
      assert Daemon.close_input(pid) == :ok
      refute_received {:line, :line, _}
    end

    test "without stdin: true, stdin is /dev/null and send_input/2 says :closed" do
      pid = start!("sh", ["-c", "cat; echo eof; exec sleep 1000"], logger_fun: lines_to_me())
      assert_receive {:line, :line, "eof"}, 5000
      assert Daemon.send_input(pid, "x") == {:error, :closed}
      assert Daemon.close_input(pid) == {:error, :closed}
    end

    @tag :cgroup
    test "cgroup_path/1, containment/1, cgget/2 and cgset/3" do
      pid = start!("sleep", ["1000"])

      case Daemon.containment(pid) do
        %{containment: :none} ->
          flunk("the helper found no writable cgroup; run with --exclude cgroup")

        %{dirs: [dir | _] = dirs, cgroup: %{}, cgroup_path: nil} ->
          assert Daemon.cgroup_path(pid) == dir
          assert Enum.all?(dirs, &File.dir?/1)

          assert {:ok, procs} = Daemon.cgget(pid, "cgroup.procs")
          assert Integer.to_string(Daemon.os_pid(pid)) in String.split(procs)
          assert Daemon.cgget(pid, "cgroup", "cgroup.procs") == {:ok, procs}

          assert Daemon.cgset(pid, "cgroup.max.descendants", 5) == :ok
          assert Daemon.cgget(pid, "cgroup.max.descendants") == {:ok, "5"}
          assert Daemon.cgget(pid, "no.such_file") == {:error, :enoent}

          for bad <- ["../cgroup.procs", "cgroup.procs/x", "procs", ""] do
            assert_raise ArgumentError, fn -> Daemon.cgget(pid, bad) end
          end
      end
    end
  end

  describe "the tree dies with the daemon" do
    @describetag :system

    # Three background sleeps, one of them in its own session, then the
    # shell's own pid: four lines in `file` once the tree is up.
    defp tree_script(file) do
      "sleep 1000 & echo $! >> #{file}; sleep 1000 & echo $! >> #{file}; " <>
        "setsid sleep 1000 & echo $! >> #{file}; echo $$ >> #{file}; wait"
    end

    defp tree_file do
      file = OSProc.tmp_path("pids")
      on_exit(fn -> File.rm(file) end)
      file
    end

    defp await_tree(file) do
      pids = OSProc.wait_for_pids(file, 4)
      on_exit(fn -> OSProc.kill(pids) end)
      assert OSProc.alive(pids) == pids
      pids
    end

    test "Supervisor.terminate_child/2" do
      before = Cgroups.corral_dirs()
      file = tree_file()
      child = Supervisor.child_spec({Daemon, ["sh", ["-c", tree_script(file)]]}, id: :tree)
      sup = start_supervised!(sup_spec([child]))
      pids = await_tree(file)

      assert Supervisor.terminate_child(sup, :tree) == :ok
      assert OSProc.wait_gone(pids, 1000) == []
      assert Cgroups.wait_no_new_dirs(before) == []
    end

    test "Process.exit(daemon, :kill)" do
      before = Cgroups.corral_dirs()
      file = tree_file()
      pid = start!("sh", ["-c", tree_script(file)])
      pids = await_tree(file)
      helper = helper_os_pid(pid)

      Process.exit(pid, :kill)
      assert OSProc.wait_gone([helper | pids], 1000) == []
      assert Cgroups.wait_no_new_dirs(before) == []
    end

    test "a tree that ignores SIGTERM is gone once delay_to_sigkill has passed" do
      file = tree_file()
      script = "trap '' TERM; " <> tree_script(file)
      pid = start!("sh", ["-c", script], delay_to_sigkill: 300)
      pids = await_tree(file)

      started = System.monotonic_time(:millisecond)
      GenServer.stop(pid)
      # terminate/2 waited for the tree: it is gone when stop/1 returns.
      assert OSProc.alive(pids) == []
      assert System.monotonic_time(:millisecond) - started >= 300
    end

    @tag :cgroup
    test "a helper killed with SIGKILL: the daemon cleans up its cgroup" do
      before = Cgroups.corral_dirs()
      file = tree_file()
      {pid, ref} = start_and_monitor!("sh", ["-c", tree_script(file)], [])
      pids = await_tree(file)
      dirs = Daemon.containment(pid).dirs
      if dirs == [], do: flunk("the helper found no writable cgroup; run with --exclude cgroup")

      {_, 0} = System.cmd("kill", ["-9", Integer.to_string(helper_os_pid(pid))])
      assert_receive {:DOWN, ^ref, :process, _, {:helper_exit, 137}}, 5000
      assert OSProc.wait_gone(pids, 1000) == []
      assert Enum.filter(dirs, &File.exists?/1) == []
      assert Cgroups.wait_no_new_dirs(before) == []
    end

    test "a helper killed with SIGKILL, no cgroup: the daemon kills the process group" do
      file = tree_file()

      script =
        "sleep 1000 & echo $! >> #{file}; (sleep 1000 & echo $! >> #{file}; wait) & " <>
          "echo $$ >> #{file}; wait"

      {pid, ref} = start_and_monitor!("sh", ["-c", script], no_cgroup: true)
      pids = OSProc.wait_for_pids(file, 3)
      on_exit(fn -> OSProc.kill(pids) end)

      {_, 0} = System.cmd("kill", ["-9", Integer.to_string(helper_os_pid(pid))])
      assert_receive {:DOWN, ^ref, :process, _, {:helper_exit, 137}}, 5000
      assert OSProc.wait_gone(pids, 2000) == []
    end

    @tag :vm
    test "kill -9 of the whole VM" do
      file = tree_file()

      code = """
      {:ok, _} = Corral.Daemon.start_link("sh", ["-c", #{inspect(tree_script(file))}])
      Process.sleep(:infinity)
      """

      run = OSProc.kill_vm_running(code, file, 4)
      assert run.before == run.pids
      assert run.status == 137
      assert run.left == []
    end
  end

  describe "at scale" do
    @describetag :system

    @tag timeout: 120_000
    test "500 daemons at once: all start, all answer, all are torn down" do
      before = Cgroups.corral_dirs()
      n = 500

      children =
        for i <- 1..n, do: Supervisor.child_spec({Daemon, ["sleep", ["1000"]]}, id: {:sleep, i})

      {start_us, sup} = :timer.tc(fn -> start_supervised!(sup_spec(children), id: :many) end)
      daemons = for {_, pid, :worker, _} <- Supervisor.which_children(sup), do: pid
      assert length(daemons) == n

      stats = Task.async_stream(daemons, &Daemon.statistics/1, max_concurrency: 50)
      assert Enum.count(stats, &match?({:ok, %{output_byte_count: 0}}, &1)) == n

      os_pids = Enum.map(daemons, &Daemon.os_pid/1)
      helpers = Enum.map(daemons, &helper_os_pid/1)
      dirs = Enum.flat_map(daemons, &Daemon.containment(&1).dirs)
      on_exit(fn -> OSProc.kill(os_pids ++ helpers) end)
      assert OSProc.alive(os_pids) == os_pids

      {stop_us, :ok} = :timer.tc(fn -> stop_supervised(:many) end)
      assert OSProc.wait_gone(os_pids ++ helpers, 1000) == []
      assert Enum.filter(dirs, &File.exists?/1) == []
      assert Cgroups.wait_no_new_dirs(before) == []

      IO.puts(
        "\n500 daemons: started in #{div(start_us, 1000)} ms, " <>
          "stopped in #{div(stop_us, 1000)} ms"
      )
    end

    @tag timeout: 60_000
    test "memory stays bounded when a daemon floods a slow logger_fun" do
      counter = :counters.new(1, [])

      # Slow: a millisecond's nap every 100 lines, about 10 MB/s of these
      # lines, against `yes`, which writes far faster.
      slow = fn _line ->
        :counters.add(counter, 1, 1)
        if rem(:counters.get(counter, 1), 100) == 0, do: Process.sleep(1)
      end

      line = String.duplicate("0123456789", 10)
      :erlang.garbage_collect()
      baseline = :erlang.memory(:total)
      pid = start!("yes", [line], logger_fun: slow)

      samples =
        for _ <- 1..60 do
          Process.sleep(50)
          {:messages, messages} = Process.info(pid, :messages)
          waiting = for {_port, {:data, <<_tag, data::binary>>}} <- messages, do: byte_size(data)
          {:erlang.memory(:total), Enum.sum(waiting)}
        end

      growth = (samples |> Enum.map(&elem(&1, 0)) |> Enum.max()) - baseline
      max_waiting = samples |> Enum.map(&elem(&1, 1)) |> Enum.max()
      lines = :counters.get(counter, 1)

      assert lines > 10_000, "the logger got only #{lines} lines"
      assert growth < 20 * 1_048_576, "the VM grew by #{growth} bytes"
      # Acked only after logging: what waits in the daemon's mailbox is
      # never more than the window (1 MiB).
      assert max_waiting <= 1_048_576, "#{max_waiting} bytes waited in the daemon's mailbox"

      IO.puts(
        "\nslow logger: #{lines} lines in 3 s, VM growth #{div(growth, 1024)} KiB, " <>
          "at most #{max_waiting} bytes waiting"
      )
    end
  end
end

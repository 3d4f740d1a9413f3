defmodule Corral.Compat.DaemonTest do
  # MuonTrap.Daemon's documented behaviour (MuonTrap 2), checked against
  # Corral.Daemon with real programs: restart kinds, logging (with
  # ExUnit's capture_log, as MuonTrap's users test theirs), os_pid/1,
  # statistics/1 and cgroup_config/1. Written from MuonTrap's documentation
  # and public-API tests; its C test programs are sh scripts here.
  use ExUnit.Case, async: false

  # Daemons that outlive a test's capture_log still log their exits.
  @moduletag :capture_log

  import ExUnit.CaptureLog
  import Corral.Test.DaemonStart

  alias Corral.Daemon
  alias Corral.Test.OSProc

  require Logger

  # A daemon that stays up: the program sleeps until it is ended.
  @forever "exec sleep 1000"

  defp daemon_spec(cmd, args, opts \\ []) do
    Supervisor.child_spec({Daemon, [cmd, args, opts]}, id: :test_daemon)
  end

  # Runs `fun` (which starts daemons and waits for them to stop) with the
  # log captured, as MuonTrap's tests do, and returns the log.
  defp log_of(fun) do
    capture_log(fn ->
      fun.()
      Logger.flush()
    end)
  end

  defp await_down({_pid, ref}) do
    assert_receive {:DOWN, ^ref, :process, _, reason}, 10_000
    reason
  end

  describe "stopping" do
    test "stopping the daemon kills the process" do
      {:ok, pid} = start_supervised(daemon_spec("sleep", ["1000"]))
      os_pid = Daemon.os_pid(pid)
      assert OSProc.alive?(os_pid)

      :ok = stop_supervised(:test_daemon)
      assert OSProc.wait_gone([os_pid], 5000) == []
    end

    test "stopping a very chatty daemon kills its child too" do
      file = OSProc.tmp_path("pids")
      on_exit(fn -> File.rm(file) end)
      script = "(echo $$ >> #{file}; exec yes) & echo $$ >> #{file}; wait"

      log_of(fn ->
        {:ok, _pid} = start_supervised(daemon_spec("sh", ["-c", script], log_output: :debug))
        pids = OSProc.wait_for_pids(file, 2)
        on_exit(fn -> OSProc.kill(pids) end)
        :ok = stop_supervised(:test_daemon)
        assert OSProc.wait_gone(pids, 5000) == []
      end)
    end
  end

  describe "logging" do
    test "logs output when told" do
      log =
        log_of(fn ->
          await_down(start_and_monitor!("echo", ["hello"], log_output: :error))
        end)

      assert log =~ "hello"
    end

    test "log lines pass through :log_transform" do
      log =
        log_of(fn ->
          transform = &String.replace(&1, "hello", "goodbye")

          await_down(
            start_and_monitor!("echo", ["hello"], log_output: :error, log_transform: transform)
          )
        end)

      assert log =~ "goodbye"
      refute log =~ "hello"
    end

    test "logs nothing of the output by default" do
      log =
        log_of(fn ->
          await_down(
            start_and_monitor!("sh", ["-c", "echo stdout here; echo stderr here >&2"],
              stderr_to_stdout: true
            )
          )
        end)

      refute log =~ "here"
    end

    test "logs stderr with :stderr_to_stdout" do
      log =
        log_of(fn ->
          await_down(
            start_and_monitor!("sh", ["-c", "echo stderr message >&2"],
              log_output: :error,
              stderr_to_stdout: true
            )
          )
        end)

      assert log =~ "stderr message"
    end

    test "does not log stderr without :stderr_to_stdout" do
      log =
        log_of(fn ->
          await_down(
            start_and_monitor!("sh", ["-c", "echo stdout here; echo stderr here >&2"],
              log_output: :error,
              stderr_to_stdout: false
            )
          )
        end)

      assert log =~ "sh: stdout here"
      refute log =~ "stderr here"
    end

    test ":capture_stderr_only logs stderr alone" do
      log =
        log_of(fn ->
          await_down(
            start_and_monitor!("sh", ["-c", "echo stdout message; echo stderr message >&2"],
              log_output: :error,
              capture_stderr_only: true
            )
          )
        end)

      assert log =~ "stderr message"
      refute log =~ "stdout message"
    end

    test ":capture_stderr_only without logging counts the output and does not crash" do
      pid =
        start!("sh", ["-c", "echo stderr message >&2; " <> @forever], capture_stderr_only: true)

      assert OSProc.wait_until(fn -> Daemon.statistics(pid).output_byte_count == 15 end, 5000)
      assert OSProc.alive?(Daemon.os_pid(pid))
    end

    test "both streams with :stderr_to_stdout, only stdout without it" do
      script = "echo stdout message; echo stderr message >&2"

      both =
        log_of(fn ->
          await_down(
            start_and_monitor!("sh", ["-c", script], log_output: :error, stderr_to_stdout: true)
          )
        end)

      assert both =~ "stdout message" and both =~ "stderr message"

      one =
        log_of(fn ->
          await_down(start_and_monitor!("sh", ["-c", script], log_output: :error))
        end)

      assert one =~ "stdout message"
      refute one =~ "stderr message"
    end

    test ":log_prefix" do
      log =
        log_of(fn ->
          await_down(
            start_and_monitor!("echo", ["hello"], log_output: :error, log_prefix: "echo says: ")
          )
        end)

      assert log =~ "echo says: hello"
    end

    test "log metadata: :logger_metadata and corral_cmd/corral_args (MuonTrap's muontrap_cmd/muontrap_args)" do
      log =
        capture_log(
          [metadata: [:foo, :corral_cmd, :corral_args], format: "[$level] $message $metadata\n"],
          fn ->
            await_down(
              start_and_monitor!("echo", ["-n", "hello"],
                log_output: :error,
                logger_metadata: [foo: :bar]
              )
            )

            Logger.flush()
          end
        )

      assert log =~ "foo=bar"
      assert log =~ "corral_cmd=echo"
      assert log =~ "corral_args=-n hello"
    end

    test ":logger_fun as a function replaces Logger" do
      me = self()

      log =
        log_of(fn ->
          await_down(
            start_and_monitor!("echo", ["stdout here"],
              log_output: :error,
              logger_fun: &send(me, {:line, &1})
            )
          )
        end)

      refute log =~ "stdout here"
      assert_received {:line, "stdout here"}
      refute_received {:line, _}
    end

    test ":logger_fun as {m, f} and {m, f, a}" do
      log =
        log_of(fn ->
          await_down(
            start_and_monitor!("echo", ["stdout here"],
              log_output: :error,
              logger_fun: {__MODULE__, :logger_fun_fun}
            )
          )
        end)

      assert log =~ "stdout here"

      log =
        log_of(fn ->
          await_down(
            start_and_monitor!("echo", ["stdout here"],
              log_output: :error,
              logger_fun: {__MODULE__, :logger_fun_fun, ["logger_fun: "]}
            )
          )
        end)

      assert log =~ "logger_fun: stdout here"
    end

    test "can pass environment variables" do
      log =
        log_of(fn ->
          await_down(
            start_and_monitor!("env", [],
              log_output: :error,
              env: [{"CORRAL_TEST_VAR", "HELLO_THERE"}]
            )
          )
        end)

      assert log =~ "CORRAL_TEST_VAR=HELLO_THERE"
    end

    test "invalid UTF-8 is logged without crashing the logger" do
      log =
        log_of(fn ->
          await_down(start_and_monitor!("printf", ["\\377\\376ok\\n"], log_output: :error))
        end)

      assert log =~ "ok"
      refute log =~ "FORMATTER ERROR"
    end

    test "flow control when logging: every line arrives with a small window" do
      line = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
      script = "i=0; while [ $i -lt 1000 ]; do echo #{line}; i=$((i+1)); done"

      log =
        log_of(fn ->
          await_down(
            start_and_monitor!("sh", ["-c", script], log_output: :error, stdio_window: 101)
          )
        end)

      assert length(String.split(log, line)) == 1001
    end

    test "the exit is logged" do
      log = log_of(fn -> await_down(start_and_monitor!("sh", ["-c", "exit 3"], [])) end)
      assert log =~ "sh: Process exited with status 3"
      log = log_of(fn -> await_down(start_and_monitor!("true", [], [])) end)
      assert log =~ "true: Process exited successfully"
    end
  end

  @doc false
  def logger_fun_fun(line, prefix \\ ""), do: Logger.info([prefix, line])

  describe "restart kinds" do
    # A program that exits 1 the first time and 0 after, logging
    # "Called N times" each time, as MuonTrap's succeed_second_time.
    defp succeed_second_time(file) do
      "n=$(cat #{file} 2>/dev/null || echo 0); echo \"Called $n times\"; " <>
        "echo $((n + 1)) > #{file}; [ \"$n\" -ge 1 ]"
    end

    defp calls(file) do
      case File.read(file) do
        # Read while the shell rewrites it: "" counts as not yet written.
        {:ok, text} -> with {n, _} <- Integer.parse(text), do: n, else: (_ -> 0)
        {:error, :enoent} -> 0
      end
    end

    defp supervised(file, restart) do
      on_exit(fn -> File.rm(file) end)
      spec = {Daemon, ["sh", ["-c", succeed_second_time(file)], [log_output: :error]]}

      sup_spec = %{
        id: :sup,
        start:
          {Supervisor, :start_link,
           [
             [Supervisor.child_spec(spec, restart: restart)],
             [strategy: :one_for_one, max_restarts: 100, max_seconds: 10]
           ]},
        type: :supervisor
      }

      start_supervised!(sup_spec)
    end

    test ":transient restarts after a failed exit, not after a successful one" do
      file = OSProc.tmp_path("transient")

      log =
        log_of(fn ->
          sup = supervised(file, :transient)

          assert OSProc.wait_until(
                   fn -> match?([{_, :undefined, _, _}], Supervisor.which_children(sup)) end,
                   10_000
                 )
        end)

      assert calls(file) == 2
      assert log =~ "Called 0 times"
      assert log =~ "Called 1 times"
      refute log =~ "Called 2 times"
    end

    test ":permanent always restarts" do
      file = OSProc.tmp_path("permanent")

      log =
        log_of(fn ->
          sup = supervised(file, :permanent)
          assert OSProc.wait_until(fn -> calls(file) >= 3 end, 10_000)
          :ok = Supervisor.stop(sup)
        end)

      assert log =~ "Called 0 times"
      assert log =~ "Called 1 times"
      assert log =~ "Called 2 times"
    end

    test ":temporary never restarts" do
      file = OSProc.tmp_path("temporary")

      log_of(fn ->
        sup = supervised(file, :temporary)
        assert OSProc.wait_until(fn -> Supervisor.which_children(sup) == [] end, 10_000)
      end)

      assert calls(file) == 1
    end

    test "a failed exit stops the daemon with :error_exit_status" do
      log =
        log_of(fn ->
          {_pid, ref} = start_and_monitor!("sh", ["-c", "kill -USR1 $$"], [])
          assert await_down({nil, ref}) == :error_exit_status
        end)

      assert log =~ "Process exited with status"
    end

    test ":exit_status_to_reason maps the status to the stop reason" do
      to_reason = fn
        138 -> :error_exit_sigusr1
        s -> {:error_exit_status, s}
      end

      log_of(fn ->
        started =
          start_and_monitor!("sh", ["-c", "kill -USR1 $$"], exit_status_to_reason: to_reason)

        assert await_down(started) == :error_exit_sigusr1
        started = start_and_monitor!("sh", ["-c", "exit 7"], exit_status_to_reason: to_reason)
        assert await_down(started) == {:error_exit_status, 7}
      end)
    end
  end

  describe "os_pid/1, statistics/1, cgroup_config/1" do
    test "os_pid/1 is the running program's pid" do
      file = OSProc.tmp_path("pid")
      on_exit(fn -> File.rm(file) end)
      pid = start!("sh", ["-c", "echo $$ > #{file}; " <> @forever])
      [os_pid] = OSProc.wait_for_pids(file, 1)
      assert Daemon.os_pid(pid) == os_pid
    end

    test "os_pid/1 is :error until :wait_for returns" do
      me = self()

      wait_for = fn ->
        send(me, {:waiting, self()})
        receive(do: (:proceed -> :ok))
      end

      {:ok, pid} = start_supervised(daemon_spec("sleep", ["1000"], wait_for: wait_for))
      assert_receive {:waiting, task}, 5000
      assert Daemon.os_pid(pid) == :error
      send(task, :proceed)

      os_pid =
        OSProc.wait_until(fn -> is_integer(Daemon.os_pid(pid)) and Daemon.os_pid(pid) end, 5000)

      assert OSProc.alive?(os_pid)
    end

    test "a :wait_for that raises stops the daemon through the link" do
      Process.flag(:trap_exit, true)

      log_of(fn ->
        {:ok, pid} = Daemon.start_link("sleep", ["1000"], wait_for: fn -> raise "boom" end)
        assert_receive {:EXIT, ^pid, {%RuntimeError{message: "boom"}, _}}, 5000
      end)
    end

    test "statistics/1: :output_byte_count and a :cgroup map" do
      pid = start!("sh", ["-c", "echo 12345678901234; " <> @forever])
      assert OSProc.wait_until(fn -> Daemon.statistics(pid).output_byte_count == 15 end, 5000)
      assert %{output_byte_count: 15, cgroup: cgroup} = Daemon.statistics(pid)
      assert is_map(cgroup)
    end

    @tag :cgroup
    test "statistics/1 and cgroup_config/1 with a memory limit" do
      pid = start!("sleep", ["1000"], cgroup: %{memory_max: 268_435_456})

      stats = Daemon.statistics(pid)
      assert is_integer(stats.cgroup["memory.current"]) and stats.cgroup["memory.current"] >= 0
      assert is_integer(stats.cgroup["memory.events"]["oom_kill"])
      assert is_integer(stats.cgroup["cpu.stat"]["usage_usec"])

      config = Daemon.cgroup_config(pid)
      assert config.memory_max == 268_435_456
      refute Map.has_key?(config, :cgroup_path)
      assert is_binary(Daemon.cgroup_path(pid))
    end

    @tag :cgroup
    test "cgroup_config/1 can be passed back as :cgroup" do
      limits = %{memory_max: 268_435_456, pids_max: 64, cpu_max: {50_000, 100_000}}
      first = start!("sleep", ["1000"], cgroup: limits)
      config = Daemon.cgroup_config(first)
      assert Map.take(config, Map.keys(limits)) == limits

      second = start!("sleep", ["1000"], cgroup: config)
      assert Daemon.cgroup_config(second) == config
    end

    test "cgroup_config/1 is %{} without a cgroup, statistics/1's :cgroup too" do
      pid = start!("sleep", ["1000"], no_cgroup: true)
      assert Daemon.cgroup_config(pid) == %{}
      assert Daemon.statistics(pid).cgroup == %{}
      assert Daemon.cgroup_path(pid) == nil
      assert Daemon.cgget(pid, "memory.max") == {:error, :no_cgroup}
      assert Daemon.cgset(pid, "memory.max", "1000000") == {:error, :no_cgroup}
    end

    @tag :cgroup
    test "cgget/2 and cgset/3 read and write the daemon's cgroup files" do
      pid = start!("sleep", ["1000"], cgroup: %{pids_max: 100})
      assert Daemon.cgget(pid, "pids.max") == {:ok, "100"}
      assert Daemon.cgset(pid, "pids.max", "50") == :ok
      assert Daemon.cgget(pid, "pids.max") == {:ok, "50"}
      assert Daemon.cgroup_config(pid).pids_max == 50
    end
  end
end

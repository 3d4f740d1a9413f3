defmodule Corral.Compat.DifferencesTest do
  # One test for each difference from MuonTrap that issue 15 measured
  # (MuonTrap 2.0.0-rc.1's own suite, renamed, against Corral): each fails
  # on the Corral that had the difference. docs/migrating.md lists them,
  # with the differences Corral keeps on purpose.
  use ExUnit.Case, async: false

  @moduletag :capture_log

  alias Corral.Daemon
  alias Corral.Test.OSProc

  import Corral.Test.DaemonStart

  describe "statistics/1" do
    test "has MuonTrap 2's :cgroup map, without a cgroup too" do
      pid = start!("sleep", ["1000"], no_cgroup: true)
      assert %{output_byte_count: 0, cgroup: %{}} = Daemon.statistics(pid)

      pid = start!("sleep", ["1000"])
      assert is_map(Map.fetch!(Daemon.statistics(pid), :cgroup))
    end

    @tag :cgroup
    test "code written against MuonTrap 2 reads the cgroup figures" do
      pid = start!("sleep", ["1000"], cgroup: %{memory_max: 268_435_456})
      stats = Daemon.statistics(pid)
      assert is_integer(stats.cgroup["memory.current"])
      assert %{"usage_usec" => usage} = stats.cgroup["cpu.stat"]
      assert is_integer(usage)
      # Corral's own figures stay, under keys MuonTrap does not use.
      assert stats.memory_current == stats.cgroup["memory.current"] or
               is_integer(stats.memory_current)
    end
  end

  describe "cgroup_config/1" do
    test "is %{} with no cgroup" do
      pid = start!("sleep", ["1000"], no_cgroup: true)
      assert Daemon.cgroup_config(pid) == %{}
    end

    @tag :cgroup
    test "holds the settings read back, which :cgroup takes back" do
      pid = start!("sleep", ["1000"], cgroup: %{pids_max: 32})
      config = Daemon.cgroup_config(pid)
      assert config.pids_max == 32
      assert Enum.all?(Map.keys(config), &(&1 in Corral.Options.cgroup_keys()))
      assert {"", 0} = Corral.cmd("true", [], cgroup: config)
    end
  end

  test "capture_stderr_only wins over stderr_to_stdout" do
    assert Corral.cmd("sh", ["-c", "echo out; echo err >&2"],
             stderr_to_stdout: true,
             capture_stderr_only: true
           ) == {"err\n", 0}
  end

  test ":groups is checked when the options are, as MuonTrap checks it" do
    # ArgumentError from start_link/3 in the caller, before any helper runs.
    for groups <- [["audio,video"], [0], ["0"], [""], [:audio]] do
      assert_raise ArgumentError, ~r/invalid option :groups/, fn ->
        Daemon.start_link("true", [], groups: groups)
      end

      assert_raise ArgumentError, ~r/invalid option :groups/, fn ->
        Corral.cmd("true", [], groups: groups)
      end
    end
  end

  describe "a program that exits at once" do
    # MuonTrap's "supports mapping exit status to stop reason", with no gate
    # before the monitor: 15 runs, each of which once lost the race.
    test "the caller that started it can monitor it and call it" do
      to_reason = fn
        138 -> :error_exit_sigusr1
        status -> {:error_exit_status, status}
      end

      for _ <- 1..15 do
        {:ok, pid} =
          start_supervised(
            Supervisor.child_spec(
              {Daemon, ["sh", ["-c", "kill -USR1 $$"], [exit_status_to_reason: to_reason]]},
              id: :exits_at_once,
              restart: :temporary
            )
          )

        ref = Process.monitor(pid)
        os_pid = Daemon.os_pid(pid)
        assert is_integer(os_pid)
        assert %{output_byte_count: 0} = Daemon.statistics(pid)
        assert_receive {:DOWN, ^ref, :process, _, :error_exit_sigusr1}, 5000
        refute OSProc.alive?(os_pid)
        stop_supervised(:exits_at_once)
      end
    end

    # Deterministic: the daemon is suspended while its program exits and a
    # call is queued behind the exit report; the call is answered, it does
    # not exit its caller with the daemon's stop reason.
    test "a call queued behind the exit is answered" do
      file = OSProc.tmp_path("go")
      on_exit(fn -> File.rm(file) end)
      script = "while [ ! -e #{file} ]; do sleep 0.01; done; exit 3"
      {pid, ref} = start_and_monitor!("sh", ["-c", script], [])

      os_pid =
        OSProc.wait_until(fn -> Daemon.os_pid(pid) |> then(&(is_integer(&1) and &1)) end, 5000)

      :ok = :sys.suspend(pid)
      File.write!(file, "")

      assert OSProc.wait_until(
               fn -> Process.info(pid, :message_queue_len) != {:message_queue_len, 0} end,
               5000
             )

      assert OSProc.wait_gone([os_pid], 5000) == []

      caller =
        Task.async(fn ->
          try do
            Daemon.os_pid(pid)
          catch
            :exit, reason -> {:exited, reason}
          end
        end)

      assert OSProc.wait_until(
               fn -> Process.info(pid, :message_queue_len) >= {:message_queue_len, 2} end,
               5000
             )

      :ok = :sys.resume(pid)

      assert Task.await(caller) == os_pid
      assert_receive {:DOWN, ^ref, :process, _, :error_exit_status}, 5000
    end
  end

  test "the :logger application is one of Corral's, so capture_log works" do
    assert :logger in Application.spec(:corral, :applications)
    assert List.keymember?(Application.started_applications(), :logger, 0)
  end

  describe "public functions MuonTrap has" do
    test "Corral.helper_path/0 (MuonTrap.muontrap_path/0) runs the helper directly" do
      path = Corral.helper_path()
      assert Path.type(path) == :absolute
      assert {_, 0} = System.cmd(path, ["--", "true"], stderr_to_stdout: true)
    end

    test "Corral.Options.validate/4 (MuonTrap.Options.validate/4) is public and documented" do
      {:docs_v1, _, _, _, moduledoc, _, docs} = Code.fetch_docs(Corral.Options)
      assert %{"en" => _} = moduledoc

      assert Enum.any?(docs, fn
               {{:function, :validate, 4}, _, _, %{"en" => _}, _} -> true
               _ -> false
             end)

      assert %Corral.Options{timeout: 5} = Corral.Options.validate(:cmd, "true", [], timeout: 5)
    end
  end

  test "every option of System.cmd/3 (Elixir 1.19) is taken" do
    for opt <- [
          into: [],
          lines: 1024,
          cd: "/",
          env: [{"A", "1"}],
          arg0: "x",
          stderr_to_stdout: true,
          use_stdio: true,
          parallelism: false
        ] do
      assert %Corral.Options{} = Corral.Options.validate(:cmd, "true", [], [opt])
    end

    assert Corral.cmd("printf", ["a\\nb"], into: [], lines: 1024) == {["a", "b"], 0}

    error = assert_raise ArgumentError, fn -> Corral.cmd("true", [], use_stdio: false) end
    assert error.message =~ "invalid option :use_stdio with value false: expected true"
  end

  describe "error messages" do
    test "name the option, the value and what was expected" do
      error =
        assert_raise ArgumentError, fn ->
          Corral.cmd("true", [], cgroup: %{cpu_max: {10, 100}})
        end

      assert error.message =~ ":cpu_max with value {10, 100}: expected"
      assert error.message =~ "quota 1000 to"
    end

    test "a misspelt option gets a \"did you mean\"" do
      assert_raise ArgumentError, ~r/:tiemout .*did you mean :timeout\?/, fn ->
        Corral.cmd("true", [], tiemout: 100)
      end
    end

    test "a missing user or group is reported as such" do
      error =
        assert_raise Corral.Error, fn -> Corral.cmd("true", [], uid: "corral-no-such-user") end

      assert Exception.message(error) ==
               ~s("true": could not start the program: no such user "corral-no-such-user")

      error =
        assert_raise Corral.Error, fn -> Corral.cmd("true", [], gid: "corral-no-such-group") end

      assert Exception.message(error) =~ ~s(no such group "corral-no-such-group")
      refute Exception.message(error) =~ "einval"
    end
  end
end

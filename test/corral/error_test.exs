defmodule Corral.ErrorTest do
  # Fake helpers, chosen through CORRAL_HELPER, which is global: not async.
  use ExUnit.Case, async: false

  import ExUnit.CaptureLog

  alias Corral.Protocol, as: Port
  alias Corral.Test.OSProc

  setup do
    dir = OSProc.tmp_path("fake-helpers")
    File.mkdir_p!(dir)
    previous = System.get_env("CORRAL_HELPER")

    on_exit(fn ->
      if previous,
        do: System.put_env("CORRAL_HELPER", previous),
        else: System.delete_env("CORRAL_HELPER")

      File.rm_rf!(dir)
    end)

    %{dir: dir}
  end

  @started {:started, %{version: 1, os_pid: 1, containment: :none, paths: []}}

  # A helper that sends `frames` and then runs `tail`, a line of shell.
  defp fake_helper(dir, frames, tail) do
    data = Path.join(dir, "frames.bin")
    File.write!(data, Enum.map(frames, &Port.frame(Port.encode(&1))))
    helper = Path.join(dir, "corral")
    File.write!(helper, "#!/bin/sh\n" <> String.replace(tail, "FRAMES", data) <> "\n")
    File.chmod!(helper, 0o755)
    System.put_env("CORRAL_HELPER", helper)
    helper
  end

  defp cmd_error(opts \\ []) do
    error = catch_error(Corral.cmd("true", [], opts))
    assert Process.info(self(), :messages) == {:messages, []}
    error
  end

  test "a helper that cannot be started", %{dir: dir} do
    helper = Path.join(dir, "missing")
    System.put_env("CORRAL_HELPER", helper)

    assert %Corral.Error{reason: {:helper_unavailable, :enoent, ^helper}} = error = cmd_error()
    assert Exception.message(error) =~ "could not start the corral helper"
  end

  test "a helper that exits before the first frame", %{dir: dir} do
    fake_helper(dir, [], "exit 64")
    assert %Corral.Error{reason: {:helper_exit, 64}, command: "true"} = cmd_error()
  end

  test "a helper that exits without an exit report", %{dir: dir} do
    fake_helper(dir, [@started, {:stdout, "some"}], "cat FRAMES; exit 70")
    assert %Corral.Error{reason: {:helper_exit, 70}} = cmd_error()
  end

  test "a caller that traps exits gets no message from the port",
       %{dir: dir} do
    fake_helper(dir, [], "exit 64")
    Process.flag(:trap_exit, true)

    for _ <- 1..20 do
      assert %Corral.Error{reason: {:helper_exit, 64}} = cmd_error()
    end
  end

  test "a helper of another protocol version", %{dir: dir} do
    fake_helper(dir, [put_elem(@started, 1, %{elem(@started, 1) | version: 2})], """
    cat FRAMES; exec cat >/dev/null
    """)

    assert %Corral.Error{reason: {:protocol, {:version, 2}}} = cmd_error()
  end

  test "a frame protocol version 1 does not have", %{dir: dir} do
    fake_helper(dir, [@started, {:stdin, "not from a helper"}], "cat FRAMES; exec cat >/dev/null")
    assert %Corral.Error{reason: {:protocol, {:unexpected_frame, {:stdin, _}}}} = cmd_error()
  end

  test "an exit report without a status", %{dir: dir} do
    report = %{
      reason: :exit,
      exit_status: nil,
      exit_code: nil,
      signal: nil,
      signal_name: nil,
      usage: %{}
    }

    fake_helper(dir, [@started, {:exit, report}], "cat FRAMES; exec cat >/dev/null")
    assert %Corral.Error{reason: {:protocol, {:no_exit_status, _}}} = cmd_error()
  end

  test "a failed frame carries errno, stage and message", %{dir: dir} do
    failed = %{version: 1, errno: 1, errno_name: "eperm", stage: "setuid", message: "no"}
    fake_helper(dir, [{:failed, failed}], "cat FRAMES; exec cat >/dev/null")

    assert %Corral.Error{reason: {:spawn_failed, :eperm, "setuid"}, details: "no"} =
             error = cmd_error()

    assert Exception.message(error) =~ "setuid failed with eperm"
  end

  test "a failed frame at the cgroup stage raises {:cgroup, errno, message}", %{dir: dir} do
    message = "memory_min has no equivalent on the hybrid layout"
    failed = %{version: 1, errno: 22, errno_name: "einval", stage: "cgroup", message: message}
    fake_helper(dir, [{:failed, failed}], "cat FRAMES; exec cat >/dev/null")

    assert %Corral.Error{reason: {:cgroup, :einval, ^message}, command: "true"} =
             error = cmd_error()

    assert Exception.message(error) ==
             "\"true\": could not set up the cgroup (einval (invalid argument)): #{message}"
  end

  test "an errno name the VM does not know stays a string", %{dir: dir} do
    failed = %{version: 1, errno: 999, errno_name: "enotanerrno_corral", stage: "spawn"}

    fake_helper(
      dir,
      [{:failed, Map.put(failed, :message, nil)}],
      "cat FRAMES; exec cat >/dev/null"
    )

    assert %Corral.Error{reason: {:spawn_failed, "enotanerrno_corral", "spawn"}} = cmd_error()
  end

  test "a helper that dies while the caller writes to it raises instead of exiting the caller",
       %{dir: dir} do
    # The helper closes its stdin at once, so the caller's first ack fails
    # with EPIPE and the port exits with reason :epipe.
    fake_helper(dir, [@started], """
    exec 0<&-
    cat FRAMES
    while printf '\\000\\000\\000\\002Ox' 2>/dev/null; do :; done
    """)

    refute Process.flag(:trap_exit, false)
    assert %Corral.Error{reason: {:helper_closed, :epipe}} = cmd_error(stdio_window: 1)
  end

  describe "run/3 returns the reasons cmd/3 raises" do
    test "as {:error, reason}, leaving nothing in the mailbox", %{dir: dir} do
      missing = Path.join(dir, "missing")
      System.put_env("CORRAL_HELPER", missing)
      assert Corral.run("true", []) == {:error, {:helper_unavailable, :enoent, missing}}

      fake_helper(dir, [], "exit 64")
      assert Corral.run("true", []) == {:error, {:helper_exit, 64}}

      fake_helper(dir, [@started, {:stdout, "some"}], "cat FRAMES; exit 70")
      assert Corral.run("true", []) == {:error, {:helper_exit, 70}}

      fake_helper(dir, [@started, {:stdin, "x"}], "cat FRAMES; exec cat >/dev/null")
      assert {:error, {:protocol, {:unexpected_frame, {:stdin, "x"}}}} = Corral.run("true", [])

      failed = %{version: 1, errno: 1, errno_name: "eperm", stage: "setuid", message: "no"}
      fake_helper(dir, [{:failed, failed}], "cat FRAMES; exec cat >/dev/null")
      assert Corral.run("true", []) == {:error, {:spawn_failed, :eperm, "setuid"}}

      failed = %{failed | errno: 2, errno_name: "enoent", stage: "exec"}
      fake_helper(dir, [{:failed, failed}], "cat FRAMES; exec cat >/dev/null")
      assert Corral.run("true", []) == {:error, :enoent}
      assert catch_error(Corral.cmd("true", [])) == :enoent

      assert Process.info(self(), :messages) == {:messages, []}
    end

    test "a helper that dies after S: its cgroups are cleaned up, a failure is logged",
         %{dir: dir} do
      # Not a cgroup directory: Corral.Cgroup.cleanup/1 refuses it, and the
      # caller still gets the helper's exit.
      started = {:started, %{version: 1, os_pid: 1, containment: :cgroup_v2, paths: [dir]}}
      fake_helper(dir, [started], "cat FRAMES; exit 70")

      # Corral logs through :logger; mix.exs does not start the Elixir app.
      {:ok, _} = Application.ensure_all_started(:logger)
      log = capture_log(fn -> assert Corral.run("true", []) == {:error, {:helper_exit, 70}} end)
      assert log =~ "could not remove the cgroups [#{inspect(dir)}]"
      assert File.dir?(dir)
    end
  end

  describe "exit reports" do
    defp report(reason, status, signal_name) do
      %{
        reason: reason,
        exit_status: status,
        exit_code: nil,
        signal: nil,
        signal_name: signal_name,
        usage: %{wall_time_us: 5, user_time_us: 3, system_time_us: 2, peak_memory: 4096}
      }
    end

    test "cmd/3 names a limit only when it was given as a limit option", %{dir: dir} do
      fake_helper(dir, [@started, {:exit, report(:memory, 137, "SIGKILL")}], """
      cat FRAMES; exec cat >/dev/null
      """)

      # The :cgroup option's memory_max killed it: the status a shell sees.
      assert Corral.cmd("true", []) == {"", 137}
      assert Corral.cmd("true", [], memory: 1_000_000) == {"", :memory}

      fake_helper(dir, [@started, {:exit, report(:idle, 143, "SIGTERM")}], """
      cat FRAMES; exec cat >/dev/null
      """)

      assert Corral.cmd("true", [], idle_timeout: 10) == {"", :idle}
    end

    test "run/3 builds a Corral.Result from the S and X frames", %{dir: dir} do
      frames = [
        {:started, %{version: 1, os_pid: 77, containment: :hybrid, paths: []}},
        {:stdout, "out"},
        {:stderr, "err"},
        {:exit, report(:signal, 139, "SIGSEGV")}
      ]

      fake_helper(dir, frames, "cat FRAMES; exec cat >/dev/null")

      assert Corral.run("true", [], separate_stderr: true) ==
               {:ok,
                %Corral.Result{
                  output: nil,
                  stdout: "out",
                  stderr: "err",
                  exit_status: 139,
                  reason: {:signal, :sigsegv},
                  usage: %{
                    wall_time: 5,
                    user_time: 3,
                    system_time: 2,
                    peak_memory: 4096,
                    peak_processes: nil
                  },
                  os_pid: 77,
                  containment: :hybrid,
                  oom_kills: nil,
                  pids_limit_hits: nil
                }}

      assert {:ok, %Corral.Result{output: "outerr", stdout: nil}} = Corral.run("true", [])
    end
  end
end

defmodule Corral.ErrorTest do
  # Fake helpers, chosen through CORRAL_HELPER, which is global: not async.
  use ExUnit.Case, async: false

  alias Corral.Port
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
end

defmodule Corral.StartWindowTest do
  # The S frame names the process group and the cgroups the VM ends when a
  # helper dies without an X frame (Corral.Orphans). The child writes S
  # itself just before exec (docs/protocol.md, "Start"), so the VM holds it
  # before the program runs. CORRAL_TEST_SPAWN_PAUSE_MS (test only,
  # docs/helper.md) makes the helper sleep right after the spawn, as a
  # preempted helper would: were S sent by the helper after the spawn, it
  # would not have gone out when the helper is SIGKILLed here, and the
  # program's children would survive. Every helper inherits the VM's
  # environment, so this module is not async.
  use ExUnit.Case, async: false

  alias Corral.Test.{Cgroups, OSProc}

  setup do: OSProc.helper_env("CORRAL_TEST_SPAWN_PAUSE_MS", "600000")

  # A shell with two sleeps in its process group (their pids and the
  # shell's go to `file`) and one in a session of its own (its pid goes to
  # `file`.esc once it has left the group); the shell's cgroups to `file`.cg.
  defp script(file) do
    "cat /proc/self/cgroup > #{file}.cg; " <>
      "sleep 1000 & echo $! >> #{file}; (sleep 1000 & echo $! >> #{file}; wait) & " <>
      "setsid sh -c 'echo $$ > #{file}.esc; exec sleep 1000' & echo $$ >> #{file}; wait"
  end

  defp start(opts) do
    file = OSProc.tmp_path("pids")
    on_exit(fn -> File.rm(file) end)
    on_exit(fn -> File.rm(file <> ".cg") end)
    on_exit(fn -> File.rm(file <> ".esc") end)
    task = Task.async(fn -> Corral.run("sh", ["-c", script(file)], opts) end)
    pids = OSProc.wait_for_pids(file, 3)
    [escaped] = OSProc.wait_for_pids(file <> ".esc", 1)
    on_exit(fn -> OSProc.kill([escaped | pids]) end)
    helper = OSProc.helper_of(task.pid)
    {_, 0} = System.cmd("kill", ["-KILL", Integer.to_string(helper)])
    assert Task.await(task) == {:error, {:helper_exit, 137}}
    {file, pids, escaped}
  end

  @tag :cgroup
  test "a helper SIGKILLed right after the spawn: the cgroup named by S ends every process" do
    {file, pids, escaped} = start([])

    dirs =
      for dir <- Cgroups.dirs_of_text(File.read!(file <> ".cg")),
          String.starts_with?(Path.basename(dir), "corral-"),
          do: dir

    assert dirs != []
    assert OSProc.wait_gone([escaped | pids], 5000) == []
    OSProc.wait_until(fn -> not Enum.any?(dirs, &File.exists?/1) end, 5000)
    assert Enum.filter(dirs, &File.exists?/1) == []
  end

  test "without a cgroup: the process group named by S ends" do
    # The setsid sleep left the group; nothing names it without a cgroup
    # (README, "What can escape"), so on_exit kills it by pid.
    {_file, pids, _escaped} = start(no_cgroup: true)
    assert OSProc.wait_gone(pids, 5000) == []
  end
end

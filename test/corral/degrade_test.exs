defmodule Corral.DegradeTest do
  # A helper that cannot become a child subreaper (qemu-user answers
  # PR_SET_CHILD_SUBREAPER with EINVAL) runs the child anyway, holds the
  # tree with what is left, and says which level in the result.
  # CORRAL_TEST_NO_SUBREAPER (test only, docs/helper.md) makes the helper
  # act so; `make cross` checks the real thing under qemu. Every helper
  # inherits the VM's environment, so this module is not async: ExUnit runs
  # it after the async modules, alone.
  use ExUnit.Case, async: false

  alias Corral.Test.OSProc

  @without_subreaper [
    :process_group,
    :cgroup_v2_no_subreaper,
    :cgroup_v1_no_subreaper,
    :hybrid_no_subreaper
  ]

  setup do: OSProc.helper_env("CORRAL_TEST_NO_SUBREAPER", "1")

  test "runs the child and reports the process group alone without a cgroup" do
    assert Corral.cmd("echo", ["hi"], no_cgroup: true) == {"hi\n", 0}
    assert Corral.cmd("sh", ["-c", "echo out; exit 7"], no_cgroup: true) == {"out\n", 7}
    assert {:ok, result} = Corral.run("true", [], no_cgroup: true)
    assert result.containment == :process_group
  end

  test "keeps a cgroup where one can be made, and says the subreaper is missing" do
    assert {:ok, result} = Corral.run("sh", ["-c", "echo hi"])
    assert result.output == "hi\n"
    assert result.containment in @without_subreaper
  end

  test "a timeout ends an orphaned grandchild through the process group" do
    pids_file = OSProc.tmp_path("orphan")
    on_exit(fn -> File.rm(pids_file) end)
    # The inner shell starts a sleep and exits, so the sleep is orphaned
    # out of the helper's subtree; only its process group still names it.
    script =
      "sh -c 'sleep 300 >/dev/null 2>&1 & echo $! > #{pids_file}'; echo started; exec sleep 300"

    assert {"started\n", :timeout} =
             Corral.cmd("sh", ["-c", script], no_cgroup: true, timeout: 3000)

    [orphan] = OSProc.wait_for_pids(pids_file, 1)
    left = OSProc.wait_gone([orphan], 2000)
    OSProc.kill(left)
    assert left == [], "the orphaned sleep survived the timeout"
  end
end

defmodule Corral.PortableTest do
  # The portable backend, the one macOS and FreeBSD get: the helper forks
  # the child into its own process group and holds the tree by that group
  # alone (no cgroup, no subreaper), ending it with killpg and the same
  # SIGSTOP/SIGTERM/grace/SIGKILL sequence. CORRAL_TEST_PORTABLE (test
  # only, docs/helper.md) makes the helper on Linux take exactly that path.
  # `make portable` runs this module and type-checks the crates for macOS
  # and FreeBSD. Every helper inherits the VM's environment, so this
  # module is not async: ExUnit runs it after the async modules, alone.
  use ExUnit.Case, async: false

  alias Corral.Test.OSProc

  @moduletag :portable

  setup do: OSProc.helper_env("CORRAL_TEST_PORTABLE", "1")

  test "cmd output and exit status are exact, and containment is the process group" do
    assert Corral.cmd("echo", ["hi"]) == {"hi\n", 0}

    assert Corral.cmd("sh", ["-c", "echo out; echo err >&2; exit 7"], stderr_to_stdout: true) ==
             {"out\nerr\n", 7}

    # No :no_cgroup: this host has cgroups, and the portable backend
    # still makes none.
    assert {:ok, result} = Corral.run("true", [])
    assert result.containment == :process_group
  end

  test "10 MB of output arrive byte-exact" do
    path = OSProc.tmp_path("portable-10mb")
    on_exit(fn -> File.rm(path) end)
    data = :crypto.strong_rand_bytes(10_000_000)
    File.write!(path, data)
    assert {out, 0} = Corral.cmd("cat", [path])
    assert byte_size(out) == 10_000_000
    assert out == data
  end

  test "a timeout returns the partial output and ends the process group" do
    pids_file = OSProc.tmp_path("portable-timeout")
    on_exit(fn -> File.rm(pids_file) end)
    script = "sleep 300 & echo $! > #{pids_file}; echo partial; exec sleep 300"
    assert Corral.cmd("sh", ["-c", script], timeout: 300) == {"partial\n", :timeout}
    [sleep] = OSProc.wait_for_pids(pids_file, 1)
    left = OSProc.wait_gone([sleep], 2000)
    OSProc.kill(left)
    assert left == [], "the background sleep survived the timeout"
  end

  test "killing the owner ends the whole process group, orphans included" do
    file = OSProc.tmp_path("portable-owner")
    on_exit(fn -> File.rm(file) end)
    # Two background sleeps, one orphaned away from the helper by an inner
    # shell that exits (no subreaper holds it), then the shell itself: each
    # line is a pid and its process group.
    script =
      "sleep 1000 & echo $! $(ps -o pgid= -p $!) >> #{file}; " <>
        "sh -c 'sleep 1000 >/dev/null 2>&1 & echo $! $(ps -o pgid= -p $!) >> #{file}'; " <>
        "echo $$ $(ps -o pgid= -p $$) >> #{file}; wait"

    caller = spawn(fn -> Corral.cmd("sh", ["-c", script]) end)
    OSProc.wait_until(fn -> length(lines(file)) == 3 end, 5000)
    [[sleep, g1], [orphan, g2], [shell, g3]] = lines(file)
    pids = [sleep, orphan, shell]
    on_exit(fn -> OSProc.kill(pids) end)
    assert g1 == shell and g2 == shell and g3 == shell, "one process group, led by the shell"
    assert OSProc.alive(pids) == pids

    Process.exit(caller, :kill)
    assert OSProc.wait_gone(pids, 2000) == []
  end

  test "cgroup options give a clear error, not a crash" do
    for opts <- [
          [cgroup: %{memory_max: 64 * 1024 * 1024}],
          [cgroup_base: "corral-portable"],
          [cgroup_sets: [{"memory", "memory.max", "67108864"}]]
        ] do
      assert {:error, {:cgroup, :enosys, message}} = Corral.run("echo", ["never"], opts)
      assert message =~ "cgroups are not available", inspect(opts)

      error = assert_raise Corral.Error, fn -> Corral.cmd("echo", ["never"], opts) end
      assert {:cgroup, :enosys, _} = error.reason
      assert Exception.message(error) =~ "cgroups are not available"
    end
  end

  defp lines(file) do
    case File.read(file) do
      {:ok, text} ->
        text
        |> String.split("\n", trim: true)
        |> Enum.map(fn line -> line |> String.split() |> Enum.map(&String.to_integer/1) end)

      {:error, _} ->
        []
    end
  end
end

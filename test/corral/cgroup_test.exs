defmodule Corral.CgroupTest do
  # Real cgroups on this machine, through Corral.cmd/3 and, where cmd/3 cannot
  # show it (the S frame's dirs, the X frame's usage), through the helper
  # directly. Not async: the CPU measurement wants the machine to itself, and
  # "nothing is left behind" is checked by listing shared directories.
  use ExUnit.Case, async: false

  alias Corral.Test.Cgroups
  alias Corral.Test.Helper
  alias Corral.Test.OSProc

  @moduletag :cgroup

  @mib 1_048_576

  setup_all do
    case Helper.run("true", []) do
      %{started: %{containment: :none}} ->
        raise """
        cgroups are not usable here: the corral helper fell back to subreaper
        containment (no writable cgroup hierarchy under the VM's own cgroup,
        see /proc/self/cgroup). These tests need root or a delegated cgroup;
        run the rest with `mix test --exclude cgroup`.
        """

      %{started: %{containment: _}} ->
        %{layout: Cgroups.layout(), before: Cgroups.corral_dirs(), prefix: test_prefix()}
    end
  end

  # Every directory a test makes itself (for :cgroup_path and :cgroup_base)
  # goes under the VM's own cgroup in every hierarchy: the deepest own path,
  # when every other own path is a prefix of it (as on this machine, where
  # only the memory hierarchy puts the VM below the root).
  defp test_prefix do
    owns = Cgroups.hierarchies() |> Enum.map(& &1.own) |> Enum.uniq()
    deepest = Enum.max_by(owns, &byte_size/1)

    unless Enum.all?(owns, &(&1 == "/" or String.starts_with?(deepest <> "/", &1 <> "/"))) do
      raise "the VM's own cgroups are not nested (#{inspect(owns)}); " <>
              "no one path is under all of them for :cgroup_path tests"
    end

    String.trim(deepest, "/")
  end

  # The helper removes its directories just after the exit report, so they
  # may outlive cmd/3's return by a few milliseconds.
  defp gone?(paths) do
    OSProc.wait_until(fn -> not Enum.any?(paths, &File.exists?/1) end, 1000) ||
      flunk("still there after 1 s: #{inspect(Enum.filter(paths, &File.exists?/1))}")
  end

  defp unique(name), do: "#{name}-#{System.unique_integer([:positive])}"

  defp relative(prefix, name), do: Path.join([prefix, name]) |> String.trim_leading("/")

  # Directories in `hierarchies` for the relative path `rel`.
  defp dirs_for(rel), do: Enum.map(Cgroups.hierarchies(), &Path.join(&1.mount, rel))

  # A shell prelude that writes the shell's /proc/self/cgroup to `file`, and
  # the test side that waits for it and turns it into directories.
  defp cgroup_file do
    file = OSProc.tmp_path("cgroup")
    on_exit(fn -> File.rm(file) end)
    file
  end

  defp wait_for_dirs(file) do
    OSProc.wait_until(
      fn ->
        case File.read(file) do
          {:ok, text} -> String.ends_with?(text, "\n") and Cgroups.dirs_of_text(text)
          _ -> false
        end
      end,
      5000
    ) || raise "#{file} was not written in 5 s"
  end

  describe "memory_max" do
    test "an allocation over the limit ends in an OOM kill: status 137 from cmd/3",
         %{before: before} do
      assert {"", 137} =
               Corral.cmd("python3", ["-c", "x = bytearray(300 * 2**20)"],
                 cgroup: %{memory_max: 64 * @mib}
               )

      assert Cgroups.wait_no_new_dirs(before) == []
    end

    test "the exit report says :memory, counts the OOM kill and the peak near the limit",
         %{before: before} do
      %{exit: report} =
        Helper.run("python3", ["-c", "x = bytearray(300 * 2**20)"],
          cgroup: %{memory_max: 64 * @mib}
        )

      assert %{reason: :memory, exit_status: 137, signal_name: "SIGKILL"} = report
      assert report.usage.oom_kills >= 1
      assert_in_delta report.usage.peak_memory, 64 * @mib, 6.4 * @mib
      assert Cgroups.wait_no_new_dirs(before) == []
    end

    # OOMPolicy=stop: the OOM killer picks one python; the run must not go on
    # with the others (and the shell that waits for them) until they end.
    @oom_tree "for i in 1 2 3 4; do python3 -c \"import time; x=b'x'*(30*2**20); " <>
                "time.sleep(60)\" & done; wait; echo shell-done"

    for {name, opts} <- [
          {"memory:", quote(do: [memory: 64 * @mib])},
          {"cgroup: %{memory_max:}", quote(do: [cgroup: %{memory_max: 64 * @mib}])},
          {"raw cgroup_sets",
           quote(
             do: [
               cgroup_controllers: ["memory"],
               cgroup_sets: [{"memory", "memory.limit_in_bytes", 64 * @mib}]
             ]
           )}
        ] do
      test "#{name}: an OOM kill of any member ends the whole tree with :memory",
           %{before: before} do
        %{exit: report, stdout: out} = Helper.run("sh", ["-c", @oom_tree], unquote(opts))

        assert %{reason: :memory} = report
        assert report.usage.oom_kills >= 1
        refute out =~ "shell-done"
        assert Cgroups.wait_no_new_dirs(before) == []
      end
    end

    test "cmd/3: :memory even when the main child exits 0 after a member's OOM kill" do
      # The member is killed at once; the shell then exits 0 by itself.
      script = "python3 -c \"x = bytearray(300 * 2**20)\"; exit 0"

      assert {:ok, %Corral.Result{reason: :memory}} =
               Corral.run("sh", ["-c", script], memory: 64 * @mib)
    end

    test "a child under the limit is not touched" do
      assert {"ok\n", 0} =
               Corral.cmd("python3", ["-c", "x = bytearray(16 * 2**20); print('ok')"],
                 cgroup: [memory_max: 64 * @mib]
               )
    end
  end

  describe "pids_max" do
    # bash retries a fork that fails with EAGAIN, so the loop keeps pushing
    # against the limit for as long as the test watches.
    test "a fork loop never has more than 20 tasks and leaves nothing behind",
         %{before: before} do
      file = cgroup_file()
      pids_file = OSProc.tmp_path("pids")
      on_exit(fn -> File.rm(pids_file) end)

      script =
        "cat /proc/self/cgroup > #{file}; " <>
          "for i in $(seq 1 100); do sleep 30 & echo $! >> #{pids_file}; done; wait"

      task =
        Task.async(fn ->
          Corral.cmd("bash", ["-c", script],
            cgroup: %{pids_max: 20},
            timeout: 1500,
            stderr_to_stdout: true
          )
        end)

      dir = file |> wait_for_dirs() |> Enum.find(&String.starts_with?(&1, pids_mount()))
      {counts, {_output, :timeout}} = sample_while(fn -> length(Cgroups.procs(dir)) end, task)

      assert Enum.max(counts) <= 20
      assert Enum.max(counts) >= 15, "the loop never got near the limit: #{inspect(counts)}"

      pids = OSProc.wait_for_pids(pids_file, 1)
      on_exit(fn -> OSProc.kill(pids) end)
      assert OSProc.alive(pids) == []
      assert gone?([dir])
      assert Cgroups.wait_no_new_dirs(before) == []
    end

    test "the exit report counts the limit hits" do
      %{exit: report} =
        Helper.run("sh", ["-c", "for i in $(seq 1 100); do sleep 30 & done; wait"],
          cgroup: %{pids_max: 20},
          stderr_to_stdout: true
        )

      assert report.usage.pids_limit_hits >= 1
      assert report.usage.peak_processes <= 20
    end
  end

  defp pids_mount, do: Cgroups.hierarchy("pids").mount <> "/"

  # Calls `fun` every 10 ms until `task` has replied: the values in order,
  # and the reply.
  defp sample_while(fun, task, acc \\ []) do
    case Task.yield(task, 10) do
      {:ok, reply} -> {Enum.reverse(acc), reply}
      nil -> sample_while(fun, task, [fun.() | acc])
    end
  end

  describe "cpu_max" do
    @busy ["-c", "while :; do :; done"]

    # Measured from the cgroup's own CPU counter over 2 s windows while the
    # loop runs. The cap must hold in every window. Other load on the host
    # can only push a window below 0.40, never above 0.60, so a second
    # window is taken before calling a low one a failure.
    test "{50_000, 100_000} holds a busy loop at half a core through cmd/3",
         %{before: before} do
      file = cgroup_file()
      script = "cat /proc/self/cgroup > #{file}; while :; do :; done"

      task =
        Task.async(fn ->
          Corral.cmd("sh", ["-c", script], cgroup: %{cpu_max: {50_000, 100_000}}, timeout: 4700)
        end)

      dirs = wait_for_dirs(file)
      Process.sleep(200)

      shares =
        Enum.reduce_while(1..2, [], fn _, shares ->
          {usage1, t1} = {cpu_usage_us(dirs), System.monotonic_time(:microsecond)}
          Process.sleep(2000)
          {usage2, t2} = {cpu_usage_us(dirs), System.monotonic_time(:microsecond)}
          share = (usage2 - usage1) / (t2 - t1)
          assert share <= 0.60, "the loop used #{Float.round(share, 3)} of a core"
          if share >= 0.40, do: {:halt, [share | shares]}, else: {:cont, [share | shares]}
        end)

      assert {"", :timeout} = Task.await(task)
      assert hd(shares) >= 0.40, "the loop used #{inspect(shares)} of a core"
      assert Cgroups.wait_no_new_dirs(before) == []
    end

    test "{50_000, 100_000}: the exit report's CPU time is half the wall time" do
      %{exit: report} =
        Helper.run("sh", @busy, cgroup: %{cpu_max: {50_000, 100_000}}, timeout: 2500)

      assert report.reason == :timeout
      %{user_time_us: user, system_time_us: system, wall_time_us: wall} = report.usage
      share = (user + system) / wall
      assert share >= 0.40 and share <= 0.60, "the loop used #{Float.round(share, 3)} of a core"
    end
  end

  # usage_usec from the v2 cpu.stat when there is a v2 dir, else v1
  # cpuacct.usage (nanoseconds).
  defp cpu_usage_us(dirs) do
    case {dir_in(dirs, :unified), dir_in(dirs, "cpuacct")} do
      {dir, _} when is_binary(dir) ->
        [_, usec] = Regex.run(~r/^usage_usec (\d+)$/m, File.read!(Path.join(dir, "cpu.stat")))
        String.to_integer(usec)

      {nil, dir} when is_binary(dir) ->
        nsec = dir |> Path.join("cpuacct.usage") |> File.read!() |> String.trim()
        div(String.to_integer(nsec), 1000)
    end
  end

  defp dir_in(dirs, controller) do
    case Cgroups.hierarchy(controller) do
      nil -> nil
      %{mount: mount} -> Enum.find(dirs, &String.starts_with?(&1, mount <> "/"))
    end
  end

  describe "containment by default" do
    test "with no cgroup options the child lands in a fresh corral- cgroup under the VM's",
         %{before: before} do
      {text, 0} = Corral.cmd("cat", ["/proc/self/cgroup"])
      own = File.read!("/proc/self/cgroup")
      assert text != own

      child_dirs = Cgroups.dirs_of_text(text)
      moved = child_dirs -- Cgroups.dirs_of_text(own)
      assert moved != []

      for dir <- moved do
        assert Path.basename(dir) =~ ~r/^corral-/
        assert Path.dirname(dir) in Enum.map(Cgroups.hierarchies(), & &1.dir)
      end

      assert Enum.find(moved, &String.starts_with?(&1, Cgroups.hierarchy(:unified).mount))
      assert Cgroups.wait_no_new_dirs(before) == []
    end

    test "/proc/<pid>/cgroup of the running child names the S frame's dirs" do
      {:ok, session} = Helper.open("sleep", ["1000"])
      %{os_pid: pid, paths: paths, containment: containment} = session.started
      on_exit(fn -> OSProc.kill([pid]) end)

      assert containment != :none
      dirs = Cgroups.dirs_of_text(File.read!("/proc/#{pid}/cgroup"))
      assert paths != [] and Enum.all?(paths, &(&1 in dirs))
      assert Enum.all?(paths, &(Path.basename(&1) =~ ~r/^corral-/))
      assert Enum.all?(paths, &(pid in Cgroups.procs(&1)))

      Helper.stop(session)
      assert %{exit: %{reason: :stopped}} = Helper.await(session)
      assert OSProc.wait_gone([pid], 1000) == []
      assert gone?(paths)
    end

    @tag :system
    test "a double-forked, setsid grandchild is killed with the caller's death",
         %{before: before} do
      file = OSProc.tmp_path("pids")
      on_exit(fn -> File.rm(file) end)

      # The subshell forks the background job and exits: the grandchild is
      # orphaned, in its own session, and writes its pid before it sleeps.
      script =
        "(setsid sh -c 'echo $$ >> #{file}; exec sleep 1000' &); " <>
          "echo $$ >> #{file}; exec sleep 1000"

      caller = spawn(fn -> Corral.cmd("sh", ["-c", script]) end)
      pids = OSProc.wait_for_pids(file, 2)
      on_exit(fn -> OSProc.kill(pids) end)
      assert OSProc.alive(pids) == pids

      for pid <- pids do
        assert File.read!("/proc/#{pid}/cgroup") =~ "/corral-"
      end

      sessions = Enum.map(pids, &session_id/1)
      assert Enum.uniq(sessions) == sessions

      Process.exit(caller, :kill)
      assert OSProc.wait_gone(pids, 1000) == []
      assert Cgroups.wait_no_new_dirs(before) == []
    end
  end

  # The session id, field 6 of /proc/<pid>/stat (after the command name).
  defp session_id(pid) do
    stat = File.read!("/proc/#{pid}/stat")
    [_, rest] = String.split(stat, ") ", parts: 2)
    rest |> String.split(" ") |> Enum.at(3)
  end

  # mkdir -p; returns the directories it made, parents first.
  defp mkdir_p(dir) do
    if File.dir?(dir) do
      []
    else
      parents = mkdir_p(Path.dirname(dir))
      File.mkdir!(dir)
      parents ++ [dir]
    end
  end

  describe "placement" do
    test ":cgroup_base gets a fresh child under it, and both go at exit",
         %{prefix: prefix, before: before} do
      base = relative(prefix, unique("corral-test-base"))
      missing = Enum.reject(dirs_for(prefix), &File.exists?/1)
      assert Enum.reject(dirs_for(base), &File.exists?/1) == dirs_for(base)

      {:ok, session} = Helper.open("sleep", ["1000"], cgroup_base: base)
      paths = session.started.paths
      assert paths != []

      for path <- paths do
        assert Path.basename(path) =~ ~r/^corral-/
        assert String.ends_with?(Path.dirname(path), "/" <> base)
      end

      Helper.stop(session)
      Helper.await(session)
      assert gone?(paths ++ dirs_for(base) ++ missing)
      assert Cgroups.wait_no_new_dirs(before) == []
    end

    test ":cgroup_path is used as it is, and removed at exit when it was made for the run",
         %{prefix: prefix, before: before} do
      path = relative(prefix, unique("corral-test-path"))
      missing = Enum.reject(dirs_for(prefix), &File.exists?/1)

      {:ok, session} = Helper.open("sleep", ["1000"], cgroup_path: path)
      paths = session.started.paths
      assert paths != [] and Enum.all?(paths, &String.ends_with?(&1, "/" <> path))
      assert Enum.all?(paths, &(session.started.os_pid in Cgroups.procs(&1)))

      Helper.stop(session)
      Helper.await(session)
      assert gone?(dirs_for(path) ++ missing)
      assert Cgroups.wait_no_new_dirs(before) == []
    end

    test ":cgroup_path that exists is left in place", %{prefix: prefix} do
      path = relative(prefix, unique("corral-test-path"))
      dirs = dirs_for(path)
      made = Enum.flat_map(dirs, &mkdir_p/1)
      on_exit(fn -> made |> Enum.reverse() |> Enum.each(&File.rmdir/1) end)

      assert {"in\n", 0} = Corral.cmd("sh", ["-c", "echo in"], cgroup_path: path)
      assert Enum.filter(made, &File.dir?/1) == made
      assert Enum.all?(dirs, &(Cgroups.procs(&1) == []))
    end

    test ":cgroup_path held by a live run is refused with :ebusy; the first run goes on",
         %{prefix: prefix} do
      path = relative(prefix, unique("corral-test-shared"))
      {:ok, first} = Helper.open("sleep", ["1000"], cgroup_path: path)

      error = assert_raise Corral.Error, fn -> Corral.cmd("true", [], cgroup_path: path) end

      assert {:cgroup, :ebusy, message} = error.reason
      assert message =~ path

      assert OSProc.alive?(first.started.os_pid)
      Helper.stop(first)
      assert %{exit: %{reason: :stopped}} = Helper.await(first)
      assert gone?(dirs_for(path))
    end

    test "a group made with Corral.Cgroup.create/2 serves :cgroup_path runs",
         %{prefix: prefix} do
      path = relative(prefix, unique("corral-test-api"))
      {:ok, group} = Corral.Cgroup.create(path)
      on_exit(fn -> Corral.Cgroup.delete(group) end)

      assert {"in\n", 0} = Corral.cmd("sh", ["-c", "echo in"], cgroup_path: path)
      assert {"again\n", 0} = Corral.cmd("sh", ["-c", "echo again"], cgroup_path: path)
    end

    test "through cmd/3: the child runs in :cgroup_path", %{prefix: prefix} do
      path = relative(prefix, unique("corral-test-path"))
      {text, 0} = Corral.cmd("cat", ["/proc/self/cgroup"], cgroup_path: path)
      assert text =~ "::/#{path}\n"
      assert gone?(dirs_for(path))
    end
  end

  describe "MuonTrap 1 options" do
    test "cgroup_controllers and cgroup_sets write the v1 file before the child runs",
         %{layout: _layout} do
      memory = Cgroups.hierarchy("memory")

      if memory == nil do
        flunk("this host has no cgroup v1 memory controller for MuonTrap 1's raw writes")
      end

      memory = memory.mount

      script =
        "cat \"#{memory}$(grep -E '^[0-9]+:memory:' /proc/self/cgroup | cut -d: -f3)" <>
          "/memory.limit_in_bytes\""

      assert {"268435456\n", 0} =
               Corral.cmd("sh", ["-c", script],
                 cgroup_controllers: ["memory"],
                 cgroup_sets: [{"memory", "memory.limit_in_bytes", "268435456"}]
               )
    end

    test "an integer value is written as its decimal text" do
      {:ok, session} =
        Helper.open("sleep", ["1000"],
          cgroup_controllers: ["memory"],
          cgroup_sets: [{"memory", "memory.limit_in_bytes", 128 * @mib}]
        )

      dir = Cgroups.dir_for(session.started.paths, "memory")
      assert File.read!(Path.join(dir, "memory.limit_in_bytes")) == "#{128 * @mib}\n"
      Helper.stop(session)
      Helper.await(session)
    end
  end

  describe "bad setups" do
    test "a key this layout cannot express raises {:cgroup, errno, message} naming it",
         %{layout: layout} do
      if layout == :cgroup_v2 do
        assert {"", 0} = Corral.cmd("true", [], cgroup: %{memory_min: @mib})
      else
        error =
          assert_raise Corral.Error, fn -> Corral.cmd("true", [], cgroup: %{memory_min: @mib}) end

        assert {:cgroup, :einval, message} = error.reason
        assert message =~ "memory_min"
        assert Exception.message(error) =~ "memory_min"
      end
    end

    test "a raw write the kernel rejects raises {:cgroup, _, _} and the child never runs" do
      file = OSProc.tmp_path("ran")
      on_exit(fn -> File.rm(file) end)

      error =
        assert_raise Corral.Error, fn ->
          Corral.cmd("touch", [file],
            cgroup_controllers: ["memory"],
            cgroup_sets: [{"memory", "memory.limit_in_bytes", "lots"}]
          )
        end

      assert {:cgroup, errno, message} = error.reason
      assert is_atom(errno) and is_binary(message)
      refute File.exists?(file)
    end

    test "a controller no hierarchy has raises {:cgroup, :einval, message} naming it" do
      error =
        assert_raise Corral.Error, fn ->
          Corral.cmd("true", [], cgroup_controllers: ["nosuch"])
        end

      assert {:cgroup, :einval, message} = error.reason
      assert message =~ "`nosuch` is not usable"
      assert message =~ "mount"
    end

    test "a hierarchy the VM may not write: limits fail with :eacces, plain runs go uncontained" do
      setpriv = System.find_executable("setpriv") || flunk("setpriv (util-linux) is needed")
      elixir = System.find_executable("elixir") || flunk("elixir is not on PATH")
      ebin = Path.dirname(:code.which(Corral))

      # A second VM as nobody, for whom /sys/fs/cgroup is not writable.
      script = """
      {:ok, _} = Application.ensure_all_started(:corral)
      limited = Corral.run("true", [], cgroup: %{pids_max: 10})
      {:ok, plain} = Corral.run("true", [])
      IO.inspect({limited, plain.exit_status, plain.containment})
      """

      {output, 0} =
        System.cmd(
          setpriv,
          ["--reuid=65534", "--regid=65534", "--clear-groups", elixir, "-pa", ebin, "-e", script],
          env: [{"HOME", System.tmp_dir!()}, {"CORRAL_HELPER", Corral.Helper.helper_path()}],
          stderr_to_stdout: true
        )

      assert {{:error, {:cgroup, :eacces, message}}, 0, :none} =
               output |> Code.eval_string() |> elem(0)

      assert message =~ "Permission denied"
    end

    test "bad option types raise ArgumentError before anything runs" do
      assert_raise ArgumentError, ~r/invalid :cgroup key :memory_max with value "64M"/, fn ->
        Corral.cmd("true", [], cgroup: %{memory_max: "64M"})
      end

      assert_raise ArgumentError, ~r/unknown :cgroup key :memory_limit/, fn ->
        Corral.cmd("true", [], cgroup: [memory_limit: 1])
      end

      assert_raise ArgumentError, ~r/invalid option :cgroup_path with value "..\/etc"/, fn ->
        Corral.cmd("true", [], cgroup_path: "../etc")
      end
    end
  end

  test "1,000 runs of cmd/3 leave no cgroup directory behind", %{before: before} do
    1..1000
    |> Task.async_stream(fn _ -> {"", 0} = Corral.cmd("true", []) end,
      max_concurrency: 8,
      timeout: 30_000
    )
    |> Stream.run()

    assert Cgroups.wait_no_new_dirs(before) == []
  end
end

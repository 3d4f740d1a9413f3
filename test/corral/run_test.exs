defmodule Corral.RunTest do
  # Corral.run/3 and the limits of the whole tree, on real processes.
  # Not async: the CPU figures want the machine to themselves, and "nothing
  # is left behind" lists shared cgroup directories.
  use ExUnit.Case, async: false

  alias Corral.Result
  alias Corral.Test.Cgroups
  alias Corral.Test.OSProc

  @mib 1_048_576

  # Threads (two by default, the main one included) that spin in hashlib,
  # which lets go of the GIL, so the process really uses two cores. It
  # first appends its pid to the file named by its first argument.
  @spin """
  import hashlib, os, sys, threading
  with open(sys.argv[1], "a") as f:
      f.write(f"{os.getpid()}\\n")
  threads = int(sys.argv[2]) if len(sys.argv) > 2 else 2
  buf = b"x" * (1 << 20)
  def spin():
      while True:
          hashlib.sha256(buf).digest()
  for _ in range(threads - 1):
      threading.Thread(target=spin, daemon=True).start()
  spin()
  """

  setup_all do
    # The interpreter itself, not a pyenv-style shim script, whose own CPU
    # would count in the tree's usage.
    {python, 0} = System.cmd("python3", ["-c", "import sys; print(sys.executable)"])
    %{python: String.trim(python)}
  end

  defp cpu(%Result{usage: usage}), do: usage.user_time + usage.system_time

  defp pid_file do
    file = OSProc.tmp_path("pids")
    on_exit(fn -> File.rm(file) end)
    file
  end

  defp read_pids(file) do
    for line <- file |> File.read!() |> String.split("\n", trim: true),
        do: String.to_integer(line)
  end

  # A shell prelude that writes the shell's /proc/self/cgroup to `file`: the
  # cgroups the helper made for this run, to check afterwards. (Listing every
  # corral-* directory would also see those of other test runs on the
  # machine.)
  defp cgroup_prelude(file), do: "cat /proc/self/cgroup > #{file}.tmp; mv #{file}.tmp #{file}; "

  defp run_dirs(file) do
    text = OSProc.wait_until(fn -> File.exists?(file) and File.read!(file) end, 5000)
    on_exit(fn -> File.rm(file) end)

    for dir <- Cgroups.dirs_of_text(text),
        String.starts_with?(Path.basename(dir), "corral-"),
        do: dir
  end

  defp assert_dirs_gone(dirs) do
    OSProc.wait_until(fn -> not Enum.any?(dirs, &File.exists?/1) end, 1000)
    assert Enum.filter(dirs, &File.exists?/1) == []
  end

  defp assert_gone(pids) do
    on_exit(fn -> OSProc.kill(pids) end)
    assert OSProc.wait_gone(pids, 1000) == []
  end

  # Where cgroups are usable (this machine), the default run uses them; say
  # so clearly instead of testing the fallback twice.
  defp assert_contained(%Result{containment: containment}, opts) do
    if opts[:no_cgroup] do
      assert containment == :none
    else
      assert containment != :none,
             "the helper fell back to subreaper containment: no writable cgroup " <>
               "hierarchy under the VM's own (see /proc/self/cgroup); these cases need one"
    end
  end

  describe "results" do
    test "output, status and reason of a child that exits" do
      assert {:ok, %Result{} = result} = Corral.run("sh", ["-c", "echo hi; exit 3"])
      assert %{output: "hi\n", stdout: nil, stderr: nil, exit_status: 3, reason: :exit} = result
      assert is_integer(result.os_pid) and result.os_pid > 0
      # make portable also runs this suite with the portable backend forced.
      if System.get_env("CORRAL_TEST_PORTABLE"),
        do: assert(result.containment == :process_group),
        else: assert(result.containment in [:none, :cgroup_v2, :cgroup_v1, :hybrid])

      assert result.usage.wall_time > 0
      assert Process.info(self(), :messages) == {:messages, []}
    end

    test "separate_stderr keeps the two streams apart, each into its own :into" do
      script = "echo out; echo err >&2; echo out2"

      assert {:ok, %Result{output: nil, stdout: "out\nout2\n", stderr: "err\n"}} =
               Corral.run("sh", ["-c", script], separate_stderr: true)

      assert {:ok, %Result{stdout: out, stderr: err}} =
               Corral.run("sh", ["-c", script], separate_stderr: true, into: [])

      assert IO.iodata_to_binary(out) == "out\nout2\n"
      assert IO.iodata_to_binary(err) == "err\n"
    end

    test "the cmd/3 output options and :into work as in cmd/3" do
      script = "echo out; echo err >&2"

      assert {:ok, %Result{output: "out\nerr\n"}} =
               Corral.run("sh", ["-c", script], stderr_to_stdout: true)

      assert {:ok, %Result{output: "err\n"}} =
               Corral.run("sh", ["-c", script], capture_stderr_only: true)

      assert {:ok, %Result{output: chunks}} = Corral.run("printf", ["a\\nb\\n"], into: [])
      assert IO.iodata_to_binary(chunks) == "a\nb\n"
      assert {:ok, %Result{output: "abc"}} = Corral.run("cat", [], input: "abc")
    end

    test "a signal nobody in Corral sent is {:signal, name}" do
      assert {:ok, %Result{reason: {:signal, :sigkill}, exit_status: 137}} =
               Corral.run("sh", ["-c", "kill -KILL $$"])

      assert {:ok, %Result{reason: {:signal, :sigsegv}, exit_status: 139}} =
               Corral.run("sh", ["-c", "kill -SEGV $$"])
    end
  end

  describe ":cpu_time" do
    @describetag :slow

    # A 1 s budget, over two busy threads: the whole tree's user + system
    # must land in [1.0 s, 1.1 s]. Without a cgroup the two-thread orphan is
    # the case that once lost its CPU: its leader thread shows as a zombie
    # while the other thread still exits, and the helper took the tree for
    # empty before it could reap it.
    for {name, opts, threads} <- [
          {"with cgroups", [], "2"},
          {"with no_cgroup: true", [no_cgroup: true], "2"}
        ] do
      @opts opts
      @threads threads

      test "stops a two-thread busy loop at 1 s of CPU, #{name}", %{python: python} do
        file = pid_file()

        assert {:ok, result} =
                 Corral.run(
                   python,
                   ["-c", @spin, file],
                   [cpu_time: 1000, timeout: 20_000] ++ @opts
                 )

        assert result.reason == :cpu_time
        assert cpu(result) in 1_000_000..1_100_000, "CPU #{cpu(result)} us"
        assert_contained(result, @opts)
        assert_gone(read_pids(file))
      end

      test "stops a busy loop in a double-forked setsid grandchild, #{name}",
           %{python: python} do
        file = pid_file()

        # The subshell forks the interpreter into the background and exits:
        # the grandchild is adopted by the helper, in a session of its own.
        script = ~s{(setsid "$0" -c "$1" "$2" "$3" &); echo $$ >> "$2"; exec sleep 1000}

        assert {:ok, result} =
                 Corral.run(
                   "sh",
                   ["-c", script, python, @spin, file, @threads],
                   [cpu_time: 1000, timeout: 20_000] ++ @opts
                 )

        assert result.reason == :cpu_time
        assert cpu(result) in 1_000_000..1_100_000, "CPU #{cpu(result)} us"
        assert_contained(result, @opts)

        pids = read_pids(file)
        assert length(pids) == 2
        assert_gone(pids)
      end
    end

    test "cmd/3 returns the partial output and :cpu_time" do
      assert Corral.cmd("sh", ["-c", "echo started; while :; do :; done"], cpu_time: 200) ==
               {"started\n", :cpu_time}
    end
  end

  describe ":memory" do
    @describetag :slow

    test "64 MiB on a child allocating 300 MiB: the cgroup limit", %{python: python} do
      assert {:ok, result} =
               Corral.run(python, ["-c", "x = bytearray(300 * 2**20)"], memory: 64 * @mib)

      assert result.reason == :memory
      assert_contained(result, [])
      # The kernel's OOM killer did it.
      assert result.oom_kills >= 1
      assert result.exit_status == 137
    end

    test "64 MiB on a child allocating 300 MiB: the polled fallback", %{python: python} do
      assert {:ok, result} =
               Corral.run(python, ["-c", "x = bytearray(300 * 2**20)"],
                 memory: 64 * @mib,
                 no_cgroup: true
               )

      assert result.reason == :memory
      assert result.containment == :none
    end

    test "cmd/3 returns :memory for the :memory option", %{python: python} do
      assert Corral.cmd(python, ["-c", "x = bytearray(300 * 2**20)"], memory: 64 * @mib) ==
               {"", :memory}
    end

    test "a child under the limit is not touched", %{python: python} do
      for opts <- [[], [no_cgroup: true]] do
        assert {:ok, %Result{reason: :exit, exit_status: 0, output: "ok\n"}} =
                 Corral.run(
                   python,
                   ["-c", "x = bytearray(b'1') * (16 * 2**20); print('ok')"],
                   [memory: 256 * @mib] ++ opts
                 )
      end
    end
  end

  describe ":timeout and :idle_timeout" do
    @describetag :slow

    test "a 300 ms timeout on sleep 10: :timeout after about 0.3 s" do
      assert {:ok, result} = Corral.run("sleep", ["10"], timeout: 300)
      assert result.reason == :timeout
      assert result.usage.wall_time in 250_000..600_000, "wall #{result.usage.wall_time} us"
    end

    test "idle_timeout: 500 on a child that blocks forever: :idle" do
      assert {:ok, result} = Corral.run("sleep", ["1000"], idle_timeout: 500, timeout: 20_000)
      assert result.reason == :idle
      assert result.usage.wall_time in 500_000..2_000_000, "wall #{result.usage.wall_time} us"
      assert Corral.cmd("sleep", ["1000"], idle_timeout: 300) == {"", :idle}
    end

    test "a busy child is never idle" do
      for opts <- [[], [no_cgroup: true]] do
        assert {:ok, result} =
                 Corral.run(
                   "sh",
                   ["-c", "while :; do :; done"],
                   [timeout: 1500, idle_timeout: 500] ++ opts
                 )

        assert result.reason == :timeout
      end
    end

    test "a quiet child that writes output within the idle time is not idle" do
      # CPU stays near zero between lines: only the output keeps it alive.
      script = "for i in 1 2 3 4 5 6; do echo $i; sleep 0.2; done"

      assert {:ok, %Result{reason: :exit, output: "1\n2\n3\n4\n5\n6\n"}} =
               Corral.run("sh", ["-c", script], idle_timeout: 600, timeout: 20_000)
    end
  end

  describe ":max_processes" do
    @describetag :slow
    @describetag :system

    for {name, opts} <- [{"with cgroups", []}, {"with no_cgroup: true", [no_cgroup: true]}] do
      @opts opts

      test "20 on a fork loop: :max_processes and nothing escapes, #{name}" do
        file = pid_file()
        cgroup_file = OSProc.tmp_path("cgroup")

        script =
          cgroup_prelude(cgroup_file) <>
            "echo $$ >> #{file}; while :; do sleep 1000 & echo $! >> #{file}; done"

        assert {:ok, result} =
                 Corral.run(
                   "sh",
                   ["-c", script],
                   [max_processes: 20, timeout: 20_000, stderr_to_stdout: true] ++ @opts
                 )

        assert result.reason == :max_processes
        assert result.usage.peak_processes >= 20
        assert_contained(result, @opts)

        pids = read_pids(file)
        assert length(pids) >= 19
        assert_gone(pids)

        dirs = run_dirs(cgroup_file)
        if @opts[:no_cgroup], do: assert(dirs == []), else: assert(dirs != [])
        assert_dirs_gone(dirs)
      end
    end
  end

  describe "usage against the kernel's own accounting" do
    @describetag :slow

    # The child reads its own CPU clock (CLOCK_PROCESS_CPUTIME_ID) as it
    # leaves; only interpreter teardown comes after it.
    test "user + system time within 10% of the child's process_time()", %{python: python} do
      script = """
      import time
      while time.process_time() < 0.3:
          pass
      print(int(time.process_time() * 1_000_000))
      """

      for opts <- [[], [no_cgroup: true]] do
        assert {:ok, %Result{reason: :exit, output: out} = result} =
                 Corral.run(python, ["-c", script], opts)

        own = out |> String.trim() |> String.to_integer()
        assert_in_delta cpu(result), own, own * 0.1, "#{inspect(opts)}: #{cpu(result)} vs #{own}"
      end
    end

    test "peak_memory within 15% of the child's own ru_maxrss", %{python: python} do
      # Repeating a one-byte bytearray writes every page.
      script = """
      import resource
      x = bytearray(b"1") * (100 * 2**20)
      print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)
      """

      for opts <- [[], [no_cgroup: true], [cgroup_controllers: ["memory"]]] do
        assert {:ok, %Result{reason: :exit, output: out} = result} =
                 Corral.run(python, ["-c", script], opts)

        own = out |> String.trim() |> String.to_integer()
        assert own >= 100 * @mib

        assert_in_delta result.usage.peak_memory,
                        own,
                        own * 0.15,
                        "#{inspect(opts)}: #{result.usage.peak_memory} vs #{own}"
      end
    end
  end

  describe "errors" do
    test "a program that is not found: {:error, :enoent}" do
      assert Corral.run("corral-no-such-program", []) == {:error, :enoent}
      assert Corral.run("/no/such/program", []) == {:error, :enoent}
      assert Process.info(self(), :messages) == {:messages, []}
    end

    test "a program that cannot be executed: {:spawn_failed, :eacces, \"exec\"}" do
      path = OSProc.tmp_path("not-executable")
      File.write!(path, "#!/bin/sh\n")
      on_exit(fn -> File.rm(path) end)
      assert Corral.run(path, []) == {:error, {:spawn_failed, :eacces, "exec"}}
    end

    # execve fails after the child has sent S (docs/protocol.md, "Start"):
    # the run fails as any failed start, and leaves nothing behind.
    test "a program the kernel cannot execute: {:spawn_failed, :enoexec, \"exec\"}" do
      path = OSProc.tmp_path("no-shebang")
      File.write!(path, "echo hi\n")
      File.chmod!(path, 0o755)
      on_exit(fn -> File.rm(path) end)

      for opts <- [[], [no_cgroup: true]] do
        assert Corral.run(path, [], opts) == {:error, {:spawn_failed, :enoexec, "exec"}}
        assert_raise Corral.Error, ~r/enoexec/, fn -> Corral.cmd(path, [], opts) end
      end

      assert Process.info(self(), :messages) == {:messages, []}
    end

    test "a missing working directory: {:spawn_failed, :enoent, \"chdir\"}" do
      assert Corral.run("pwd", [], cd: "/no/such/dir") ==
               {:error, {:spawn_failed, :enoent, "chdir"}}
    end

    @tag :cgroup
    test "a cgroup that cannot be set up: {:cgroup, errno, message}, and nothing runs" do
      file = OSProc.tmp_path("ran")
      on_exit(fn -> File.rm(file) end)

      assert {:error, {:cgroup, errno, message}} =
               Corral.run("touch", [file],
                 cgroup_controllers: ["memory"],
                 cgroup_sets: [{"memory", "memory.limit_in_bytes", "lots"}]
               )

      assert is_atom(errno) and is_binary(message)
      refute File.exists?(file)
    end

    test "bad arguments still raise ArgumentError" do
      assert_raise ArgumentError, ~r/^invalid option :cpu_time with value 0: expected/, fn ->
        Corral.run("true", [], cpu_time: 0)
      end

      assert_raise ArgumentError, "invalid option :foo with value 1", fn ->
        Corral.run("corral-no-such-program", [], foo: 1)
      end

      assert_raise ArgumentError, ~r/all arguments for Corral.run\/3 must be binaries/, fn ->
        Corral.run("echo", [:hi])
      end

      assert_raise ArgumentError, ~r/Corral.run\/3 for program with null byte/, fn ->
        Corral.run("ec\0ho", [])
      end

      assert_raise ArgumentError, ~r/Corral.run\/3 with null byte in argument/, fn ->
        Corral.run("echo", ["a\0b"])
      end

      assert_raise ArgumentError, ~r/:no_cgroup and :cgroup_path exclude each other/, fn ->
        Corral.run("true", [], no_cgroup: true, cgroup_path: "x")
      end

      assert_raise FunctionClauseError, fn -> Corral.run(~c"echo", []) end
    end

    test "cmd/3 has no :separate_stderr" do
      assert_raise ArgumentError, ~r/invalid option :separate_stderr with value true/, fn ->
        Corral.cmd("true", [], separate_stderr: true)
      end

      assert Corral.cmd("echo", ["x"], separate_stderr: false) == {"x\n", 0}
    end
  end

  describe "a helper that dies" do
    @describetag :system
    @describetag :cgroup

    # Three sleeps (one in its own session) and the shell: four pids.
    defp tree_script(file, cgroup_file) do
      cgroup_prelude(cgroup_file) <>
        "sleep 1000 & echo $! >> #{file}; sleep 1000 & echo $! >> #{file}; " <>
        "setsid sleep 1000 & echo $! >> #{file}; echo $$ >> #{file}; wait"
    end

    defp start_tree(fun, script, opts \\ [])

    defp start_tree(:run, script, opts), do: Corral.run("sh", ["-c", script], opts)

    defp start_tree(:cmd, script, opts) do
      Corral.cmd("sh", ["-c", script], opts)
    rescue
      error in Corral.Error -> error
    end

    defp assert_helper_killed(:run, result), do: assert(result == {:error, {:helper_exit, 137}})

    defp assert_helper_killed(:cmd, error),
      do: assert(%Corral.Error{reason: {:helper_exit, 137}} = error)

    for fun <- [:run, :cmd] do
      @fun fun

      test "#{fun}/3: a SIGKILLed helper's cgroup is cleaned up: every pid gone within 1 s" do
        file = pid_file()
        cgroup_file = OSProc.tmp_path("cgroup")
        task = Task.async(fn -> start_tree(@fun, tree_script(file, cgroup_file)) end)

        dirs = run_dirs(cgroup_file)
        assert dirs != [], "the child is in no cgroup of its own: #{inspect(dirs)}"
        pids = OSProc.wait_for_pids(file, 4)
        on_exit(fn -> OSProc.kill(pids) end)
        helper = OSProc.helper_of(task.pid)
        {_, 0} = System.cmd("kill", ["-KILL", Integer.to_string(helper)])
        killed_at = System.monotonic_time(:millisecond)

        assert_helper_killed(@fun, Task.await(task))

        assert OSProc.wait_gone(
                 pids,
                 max(killed_at + 1000 - System.monotonic_time(:millisecond), 0)
               ) ==
                 []

        assert_dirs_gone(dirs)
      end

      # Without a cgroup the VM ends what it can reach from the S frame: the
      # child (which also dies with the helper, PR_SET_PDEATHSIG) and its
      # process group, grandchildren included.
      test "#{fun}/3 without a cgroup: a SIGKILLed helper's process group goes with it" do
        file = pid_file()

        script =
          "sleep 1000 & echo $! >> #{file}; (sleep 1000 & echo $! >> #{file}; wait) & " <>
            "echo $$ >> #{file}; wait"

        task = Task.async(fn -> start_tree(@fun, script, no_cgroup: true) end)
        pids = OSProc.wait_for_pids(file, 3)
        on_exit(fn -> OSProc.kill(pids) end)
        {_, 0} = System.cmd("kill", ["-KILL", Integer.to_string(OSProc.helper_of(task.pid))])
        assert_helper_killed(@fun, Task.await(task))
        assert OSProc.wait_gone(pids, 2000) == []
      end
    end
  end
end

defmodule CorralTest do
  # These tests run the real helper (priv/corral, built by `mix compile`).
  use ExUnit.Case, async: true

  alias Corral.Test.Counter
  alias Corral.Test.OSProc

  doctest Corral

  # cmd/3 leaves nothing from the port in the caller's mailbox.
  defp assert_empty_mailbox do
    assert Process.info(self(), :messages) == {:messages, []}
  end

  describe "output and exit status" do
    test "echo" do
      assert Corral.cmd("echo", ["hi"]) == {"hi\n", 0}
      assert_empty_mailbox()
    end

    test "exit statuses match System.cmd/3" do
      for script <- ["exit 0", "exit 3", "exit 255", "kill -9 $$", "kill -TERM $$"] do
        assert Corral.cmd("sh", ["-c", script]) == System.cmd("sh", ["-c", script]),
               "for sh -c #{inspect(script)}"
      end

      assert Corral.cmd("sh", ["-c", "kill -9 $$"]) == {"", 137}
      assert_empty_mailbox()
    end

    test ":into any Collectable" do
      assert {lines, 0} = Corral.cmd("printf", ["a\\nb\\n"], into: [])
      assert IO.iodata_to_binary(lines) == "a\nb\n"
      assert Corral.cmd("printf", ["abc"], into: "x") == {"xabc", 0}
    end

    test "seq 1 100000 is byte-identical to System.cmd/3" do
      assert Corral.cmd("seq", ["1", "100000"]) == System.cmd("seq", ["1", "100000"])
    end

    @tag timeout: 120_000
    test "head -c n /dev/zero returns exactly n bytes, 20 runs each" do
      for n <- [1, 10_000, 20_000, 100_000, 1_000_000], _run <- 1..20 do
        assert {out, 0} = Corral.cmd("head", ["-c", Integer.to_string(n), "/dev/zero"])
        assert byte_size(out) == n
        assert out == :binary.copy(<<0>>, n)
      end

      assert_empty_mailbox()
    end

    # 20 GB in all: counted, not kept, so the test measures delivery and not
    # the VM's ability to build a 1 GB binary 20 times.
    @tag :slow
    @tag timeout: 300_000
    test "head -c 1000000000 /dev/zero returns exactly 10^9 bytes, 20 runs" do
      n = 1_000_000_000

      for _run <- 1..20 do
        assert Corral.cmd("head", ["-c", Integer.to_string(n), "/dev/zero"], into: %Counter{}) ==
                 {n, 0}
      end
    end

    test "a small window still delivers everything" do
      # A 1-byte window costs a round trip per byte: keep that output short.
      for {window, last} <- [{1, "1000"}, {7, "5000"}, {4096, "100000"}] do
        assert Corral.cmd("seq", ["1", last], stdio_window: window) ==
                 System.cmd("seq", ["1", last])
      end
    end
  end

  describe "errors identical to System.cmd/3" do
    test "a program that is not found raises ErlangError :enoent" do
      for command <- ["corral-no-such-program", "/no/such/program"] do
        assert catch_error(System.cmd(command, ["x"])) == :enoent
        assert catch_error(Corral.cmd(command, ["x"])) == :enoent

        assert_raise ErlangError, "Erlang error: :enoent", fn -> Corral.cmd(command, ["x"]) end
      end

      assert_empty_mailbox()
    end

    test "a missing program raises :enoent before a bad option is seen" do
      assert catch_error(System.cmd("corral-no-such-program", [], foo: 1)) == :enoent
      assert catch_error(Corral.cmd("corral-no-such-program", [], foo: 1)) == :enoent
      assert_raise ArgumentError, fn -> Corral.cmd("true", [], foo: 1) end
    end

    test "argv[0] is the path the program was found at, as with System.cmd/3" do
      # A bare name is looked up by the helper (Helper.program/2).
      assert Corral.Helper.program("sh") == {:ok, "sh"}
      {zero, 0} = System.cmd("sh", ["-c", "echo $0"])
      assert String.starts_with?(zero, "/")
      assert Corral.cmd("sh", ["-c", "echo $0"]) == {zero, 0}
      assert {:ok, %{output: ^zero}} = Corral.run("sh", ["-c", "echo $0"])
    end

    test "the VM looks a program up itself when PATH has a relative entry or none" do
      found = Corral.Helper.find_program("sh")
      assert {:ok, "/" <> _} = found
      assert Corral.Helper.program("sh", "/usr/bin:/bin") == {:ok, "sh"}
      assert Corral.Helper.program("sh", "bin:/usr/bin") == found
      assert Corral.Helper.program("sh", "/usr/bin::/bin") == found
      assert Corral.Helper.program("sh", nil) == found
      assert Corral.Helper.program("./sh", "/usr/bin") == Corral.Helper.find_program("./sh")
    end

    test "a command that is not a binary raises FunctionClauseError" do
      assert_raise FunctionClauseError, fn -> System.cmd(~c"echo", []) end
      assert_raise FunctionClauseError, fn -> Corral.cmd(~c"echo", []) end
      assert_raise FunctionClauseError, fn -> Corral.cmd("echo", "hi") end
    end

    test "arguments that are not binaries raise ArgumentError" do
      system = catch_error(System.cmd("echo", [~c"hi"]))
      corral = catch_error(Corral.cmd("echo", [~c"hi"]))
      assert corral.__struct__ == ArgumentError
      assert corral.message == String.replace(system.message, "System.cmd", "Corral.cmd")
    end

    test "a null byte in the command raises ArgumentError" do
      system = catch_error(System.cmd("ec\0ho", []))
      corral = catch_error(Corral.cmd("ec\0ho", []))
      assert corral.__struct__ == ArgumentError
      assert corral.message == String.replace(system.message, "System.cmd", "Corral.cmd")
    end

    test "a null byte in an argument raises ArgumentError (argv cannot carry it)" do
      assert_raise ArgumentError, ~r/null byte in argument/, fn ->
        Corral.cmd("echo", ["a\0b"])
      end
    end

    test "an unknown option raises ArgumentError" do
      assert_raise ArgumentError, "invalid option :foo with value 1", fn ->
        Corral.cmd("echo", [], foo: 1)
      end
    end

    test "a program that cannot be executed raises Corral.Error" do
      path = OSProc.tmp_path("not-executable")
      File.write!(path, "#!/bin/sh\n")
      on_exit(fn -> File.rm(path) end)

      assert %Corral.Error{reason: {:spawn_failed, :eacces, "exec"}, command: ^path} =
               catch_error(Corral.cmd(path, []))

      assert_empty_mailbox()
    end

    test "a missing working directory raises Corral.Error" do
      assert %Corral.Error{reason: {:spawn_failed, :enoent, "chdir"}} =
               catch_error(Corral.cmd("pwd", [], cd: "/no/such/dir"))
    end
  end

  describe "stdin" do
    test "input: binary" do
      assert Corral.cmd("cat", [], input: "hello") == {"hello", 0}
    end

    test "input: iodata and enumerables of iodata" do
      assert Corral.cmd("cat", [], input: ["he", ?l, ["lo"]]) == {"hello", 0}
      assert Corral.cmd("cat", [], input: Stream.map(1..3, &"#{&1}\n")) == {"1\n2\n3\n", 0}
      assert Corral.cmd("cat", [], input: [~c"a", "b", [?c]]) == {"abc", 0}
      assert Corral.cmd("cat", [], input: []) == {"", 0}
      assert Corral.cmd("cat", [], input: "") == {"", 0}
    end

    test "input larger than the window streams both ways" do
      input = :crypto.strong_rand_bytes(5_000_000)
      assert Corral.cmd("cat", [], input: input, stdio_window: 65_536) == {input, 0}

      chunks = Stream.map(1..100, fn _ -> :binary.copy("z", 100_000) end)
      assert {10_000_000, 0} = Corral.cmd("cat", [], input: chunks, into: %Counter{})
    end

    test "a child that exits before reading its input" do
      input = :binary.copy("y", 2_000_000)

      for _ <- 1..20 do
        assert Corral.cmd("head", ["-c", "1"], input: input) == {"y", 0}
      end

      assert_empty_mailbox()
    end

    test "input that is not iodata raises ArgumentError and halts the enumerable" do
      parent = self()

      stream =
        Stream.resource(
          fn -> [~c"ok", :bad] end,
          fn
            [] -> {:halt, []}
            [h | t] -> {[h], t}
          end,
          fn _ -> send(parent, :halted) end
        )

      assert_raise ArgumentError, ~r/expected :input to yield iodata, got: :bad/, fn ->
        Corral.cmd("cat", [], input: stream)
      end

      assert_received :halted
      assert_empty_mailbox()
    end

    test "without input, stdin is /dev/null: head -c 1 returns at once" do
      {micros, result} = :timer.tc(fn -> Corral.cmd("head", ["-c", "1"]) end)
      assert result == {"", 0}
      assert micros < 2_000_000
    end
  end

  describe "stderr" do
    @script "echo out; echo err >&2"

    test "stderr_to_stdout merges like System.cmd/3" do
      assert Corral.cmd("sh", ["-c", @script], stderr_to_stdout: true) ==
               System.cmd("sh", ["-c", @script], stderr_to_stdout: true)
    end

    test "capture_stderr_only collects stderr and discards stdout" do
      assert Corral.cmd("sh", ["-c", @script], capture_stderr_only: true) == {"err\n", 0}
    end
  end

  describe "child setup" do
    test ":cd" do
      dir = System.tmp_dir!() |> Path.expand()
      assert Corral.cmd("pwd", [], cd: dir) == System.cmd("pwd", [], cd: dir)
      assert Corral.cmd("pwd", [], cd: dir) == {dir <> "\n", 0}
    end

    test ":env sets and unsets like System.cmd/3" do
      script = "echo ${CORRAL_A-unset} ${HOME-unset}"
      env = [{"CORRAL_A", "1"}, {"HOME", nil}]
      assert Corral.cmd("sh", ["-c", script], env: env) == {"1 unset\n", 0}

      assert Corral.cmd("sh", ["-c", script], env: env) ==
               System.cmd("sh", ["-c", script], env: env)
    end

    test ":arg0 like System.cmd/3" do
      args = ["/proc/self/cmdline"]
      assert Corral.cmd("cat", args, arg0: "kitty") == {"kitty\0/proc/self/cmdline\0", 0}
      assert Corral.cmd("cat", args, arg0: "kitty") == System.cmd("cat", args, arg0: "kitty")
    end

    test "the child runs in its own process group" do
      {out, 0} = Corral.cmd("sh", ["-c", "echo $$; ps -o pgid= -p $$"])
      [pid, pgid] = out |> String.split() |> Enum.map(&String.to_integer/1)
      assert pid == pgid
    end
  end

  describe ":timeout" do
    test "returns the partial output and :timeout" do
      {micros, result} =
        :timer.tc(fn -> Corral.cmd("sh", ["-c", "echo partial; sleep 10"], timeout: 300) end)

      assert result == {"partial\n", :timeout}
      assert micros < 5_000_000
      assert_empty_mailbox()
    end

    test "a child that finishes in time returns its status" do
      assert Corral.cmd("sh", ["-c", "exit 4"], timeout: 5_000) == {"", 4}
    end
  end

  describe "ending the tree" do
    @describetag :system

    # Three background sleeps, one of them in its own session, then the
    # shell's own pid: four lines in `file` once the tree is up.
    defp tree_script(file, prelude) do
      prelude <>
        "sleep 1000 & echo $! >> #{file}; sleep 1000 & echo $! >> #{file}; " <>
        "setsid sleep 1000 & echo $! >> #{file}; echo $$ >> #{file}; wait"
    end

    defp start_tree(opts, prelude \\ "") do
      file = OSProc.tmp_path("pids")
      on_exit(fn -> File.rm(file) end)
      caller = spawn(fn -> Corral.cmd("sh", ["-c", tree_script(file, prelude)], opts) end)
      pids = OSProc.wait_for_pids(file, 4)
      on_exit(fn -> OSProc.kill(pids) end)
      assert OSProc.alive(pids) == pids
      {caller, pids}
    end

    test "killing the caller leaves no process of the tree alive after 1 s" do
      {caller, pids} = start_tree([])
      Process.exit(caller, :kill)
      assert OSProc.wait_gone(pids, 1000) == []
    end

    test "a caller that exits normally ends the tree too" do
      {caller, pids} = start_tree(delay_to_sigkill: 100)
      Process.exit(caller, :shutdown)
      assert OSProc.wait_gone(pids, 1000) == []
    end

    @tag :vm
    test "kill -9 of the whole VM leaves no process of the tree alive after 1 s" do
      file = OSProc.tmp_path("pids")
      on_exit(fn -> File.rm(file) end)
      code = ~s{Corral.cmd("sh", ["-c", #{inspect(tree_script(file, ""))}])}

      run = OSProc.kill_vm_running(code, file, 4)
      assert run.before == run.pids
      assert run.status == 137
      assert run.left == []
    end

    test "a tree that ignores SIGTERM is gone once delay_to_sigkill has passed" do
      {caller, pids} = start_tree([delay_to_sigkill: 1000], "trap '' TERM; ")
      killed_at = System.monotonic_time(:millisecond)
      Process.exit(caller, :kill)

      # SIGTERM is ignored, so the tree waits out the delay...
      Process.sleep(300)
      assert OSProc.alive(pids) != []

      # ...and SIGKILL ends it then.
      assert OSProc.wait_gone(pids, 2000) == []
      assert System.monotonic_time(:millisecond) - killed_at >= 1000
    end
  end

  describe "collectable failures" do
    test "an exception in the collectable closes the port and ends the tree" do
      pids = OSProc.tmp_path("pids")
      on_exit(fn -> File.rm(pids) end)

      into = %Corral.Test.RaisingCollectable{}

      assert_raise RuntimeError, "collector failed", fn ->
        Corral.cmd("sh", ["-c", "echo $$ >> #{pids}; echo x; exec sleep 1000"], into: into)
      end

      [pid] = OSProc.wait_for_pids(pids, 1)
      on_exit(fn -> OSProc.kill([pid]) end)
      assert OSProc.wait_gone([pid], 1000) == []
      assert_empty_mailbox()
    end
  end
end

defmodule Corral.Compat.CmdTest do
  # MuonTrap.cmd/3's documented behaviour (and System.cmd/3's, which it
  # follows), checked against Corral.cmd/3 with real programs. Written from
  # MuonTrap 2's documentation and public-API tests: the same cases, not
  # the same code (MuonTrap's test programs are C; these are sh).
  use ExUnit.Case, async: true

  alias Corral.Test.OSProc

  @line "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"

  # 1000 lines of @line, as MuonTrap's print_a_lot test program writes.
  @print_a_lot "i=0; while [ $i -lt 1000 ]; do echo #{@line}; i=$((i+1)); done"

  describe "as System.cmd/3" do
    test "cmd/2" do
      assert {"hello\n", 0} = Corral.cmd("echo", ["hello"])
    end

    test "cmd/3 with System.cmd/3's options" do
      opts = [
        into: [],
        cd: File.cwd!(),
        env: %{"foo" => "bar", "baz" => nil},
        arg0: "echo",
        stderr_to_stdout: true,
        parallelism: true
      ]

      assert {["hello\n"], 0} = Corral.cmd("echo", ["hello"], opts)
    end

    test ":env sets and unsets, :cd and :arg0 reach the program" do
      System.put_env("CORRAL_COMPAT_UNSET_ME", "set")
      on_exit(fn -> System.delete_env("CORRAL_COMPAT_UNSET_ME") end)
      script = ~S|echo "$FOO:${CORRAL_COMPAT_UNSET_ME-unset}:$(pwd):$0"|

      assert Corral.cmd("sh", ["-c", script],
               env: [{"FOO", "bar"}, {"CORRAL_COMPAT_UNSET_ME", nil}],
               cd: "/",
               arg0: "myname"
             ) == {"bar:unset:/:myname\n", 0}
    end

    test "a program with a null byte raises ArgumentError, as System.cmd/3" do
      assert_raise ArgumentError,
                   ~r"cannot execute Corral.cmd/3 for program with null byte",
                   fn ->
                     Corral.cmd("null\0byte", [])
                   end
    end

    test "arguments that are not binaries raise ArgumentError, as System.cmd/3" do
      assert_raise ArgumentError, ~r"all arguments for Corral.cmd/3 must be binaries", fn ->
        Corral.cmd("ls", [~c"/usr"])
      end
    end

    test "a program that is not found raises ErlangError :enoent, as System.cmd/3" do
      assert catch_error(Corral.cmd("corral-compat-no-such-program", [])) == :enoent
    end

    test "absolute and relative paths, and :arg0" do
      dir = OSProc.tmp_path("bin")
      File.mkdir_p!(dir)
      on_exit(fn -> File.rm_rf(dir) end)
      echo = Path.join(dir, "echo-corral-compat")
      File.ln_s!(System.find_executable("sh"), echo)

      # Not found by its bare name: the current directory is not searched.
      assert catch_error(Corral.cmd("echo-corral-compat", ["-c", "echo hello"])) == :enoent

      assert {"hello\n", 0} = Corral.cmd(echo, ["-c", "echo hello"], arg0: "sh")
    end

    test "a signal gives 128 + its number" do
      assert {"", 128 + 15} == Corral.cmd("sh", ["-c", "kill -TERM $$"])
    end

    test "the exit status is returned with the output" do
      assert {"out\n", 3} == Corral.cmd("sh", ["-c", "echo out; exit 3"])
    end

    test ":into a list, a binary with a prefix, and a stream" do
      assert {chunks, 0} = Corral.cmd("printf", ["a\\nb\\n"], into: [])
      assert IO.iodata_to_binary(chunks) == "a\nb\n"
      assert {"prefix:a\n", 0} = Corral.cmd("echo", ["a"], into: "prefix:")
    end

    test ":stderr_to_stdout merges stderr into the output" do
      assert {"out\nerr\n", 0} =
               Corral.cmd("sh", ["-c", "echo out; echo err >&2"], stderr_to_stdout: true)
    end

    test ":lines gives each line without its newline (System.cmd/3 of Elixir 1.15)" do
      assert Corral.cmd("printf", ["hello\\nworld"], into: [], lines: 1024) ==
               {["hello", "world"], 0}

      assert Corral.cmd("printf", ["a\\n\\nb\\n"], into: [], lines: 1) == {["a", "", "b"], 0}
      # A line longer than the buffer still comes whole, as System.cmd/3 says.
      long = String.duplicate("x", 5000)
      assert Corral.cmd("echo", [long], into: [], lines: 16) == {[long], 0}
      assert Corral.cmd("printf", ["a\\nb\\n"], lines: 1024) == {"ab", 0}
    end

    test ":use_stdio true is System.cmd/3's default" do
      assert Corral.cmd("echo", ["hi"], use_stdio: true) == {"hi\n", 0}
    end
  end

  describe "as MuonTrap.cmd/3" do
    test "a lot of output with the default window" do
      {output, 0} = Corral.cmd("sh", ["-c", @print_a_lot], parallelism: true)
      assert length(String.split(output, @line)) == 1001
    end

    test "a lot of output with a small :stdio_window" do
      {output, 0} = Corral.cmd("sh", ["-c", @print_a_lot], parallelism: true, stdio_window: 63)
      assert length(String.split(output, @line)) == 1001
    end

    test ":timeout returns the output so far and :timeout" do
      script = "echo start; while :; do echo more; sleep 0.01; done"
      assert {output, :timeout} = Corral.cmd("sh", ["-c", script], timeout: 250)
      assert String.starts_with?(output, "start\n")
    end

    test "a program that ends before its :timeout gives its status, and no timer message" do
      {_, status} = Corral.cmd("sh", ["-c", "kill -TERM $$"], timeout: 100)
      assert status == 128 + 15
      refute_receive :timeout, 200
    end

    test "cmd/3 does not eat the caller's messages" do
      message = {:timeout, make_ref()}
      send(self(), message)
      send(self(), :foo)

      assert {_, :timeout} = Corral.cmd("sleep", ["1000"], timeout: 250)

      assert_received ^message
      assert_received :foo
    end

    test "many concurrent callers whose programs exit while output is in flight" do
      refs =
        for _ <- 1..100 do
          {_pid, ref} =
            spawn_monitor(fn -> exit(Corral.cmd("sh", ["-c", "echo a; echo b; exit 0"])) end)

          ref
        end

      for ref <- refs do
        assert_receive {:DOWN, ^ref, :process, _pid, {"a\nb\n", 0}}, 60_000
      end
    end

    test ":capture_stderr_only collects stderr and drops stdout" do
      assert Corral.cmd("sh", ["-c", "echo out; echo err >&2"], capture_stderr_only: true) ==
               {"err\n", 0}
    end

    test ":delay_to_sigkill: a program ignoring SIGTERM is killed after it" do
      file = OSProc.tmp_path("pid")
      on_exit(fn -> File.rm(file) end)
      script = "trap '' TERM; echo $$ > #{file}; while :; do sleep 0.05; done"

      assert {"", :timeout} =
               Corral.cmd("sh", ["-c", script], timeout: 200, delay_to_sigkill: 100)

      [pid] = OSProc.read_pids(file)
      refute OSProc.alive?(pid)
    end

    test ":uid, :gid and :groups run the program as that user" do
      if System.cmd("id", ["-u"]) != {"0\n", 0}, do: flunk("needs root to change user")

      assert Corral.cmd("sh", ["-c", "id -u; id -g; id -G"], uid: 65_534, gid: 65_534, groups: [])
             |> elem(0)
             |> String.split() == ["65534", "65534", "65534"]

      {out, 0} = Corral.cmd("id", ["-G"], uid: 65_534, gid: 65_534, groups: [65_533])
      assert out |> String.split() |> Enum.sort() == ["65533", "65534"]
    end
  end
end

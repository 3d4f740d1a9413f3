defmodule Corral.ErlangTest do
  # :corral (src/corral.erl), the Erlang front: Erlang's spellings in,
  # plain Erlang terms out.
  use ExUnit.Case, async: true

  test "cmd/2,3 take charlists or binaries and a proplist" do
    assert :corral.cmd(~c"echo", [~c"hi"]) == {"hi\n", 0}
    assert :corral.cmd("echo", ["hi"], [:stderr_to_stdout]) == {"hi\n", 0}

    assert :corral.cmd(~c"sh", [~c"-c", "echo out; echo err >&2; exit 3"], [:stderr_to_stdout]) ==
             {"out\nerr\n", 3}

    assert :corral.cmd(~c"sh", [~c"-c", ~c"echo $A$B"],
             env: [{~c"A", ~c"x"}, {"B", "y"}],
             cd: ~c"/"
           ) == {"xy\n", 0}

    assert :corral.cmd("sh", ["-c", "echo partial; sleep 10"], timeout: 200) ==
             {"partial\n", :timeout}
  end

  test "run/3 returns a map with undefined for what was not measured" do
    assert {:ok, result} = :corral.run(~c"sh", [~c"-c", ~c"echo hi; exit 2"], [{:timeout, 5000}])
    refute is_struct(result)
    assert %{output: "hi\n", exit_status: 2, reason: :exit, usage: usage} = result
    assert is_integer(usage.wall_time)
    refute Enum.any?(Map.values(result) ++ Map.values(usage), &is_nil/1)
    assert :corral.run(~c"corral-no-such-program", [], []) == {:error, :enoent}
  end

  test "errors are Erlang terms" do
    assert catch_error(:corral.cmd(~c"corral-no-such-program", [])) == :enoent
    assert {:badarg, message} = catch_error(:corral.cmd("true", [], [{:no_such_option, 1}]))
    assert message =~ "no_such_option"

    assert {:corral, {:spawn_failed, :enoent, "chdir"}} =
             catch_error(:corral.cmd("true", [], cd: ~c"/corral/no/such/dir"))
  end

  test "a daemon from a child spec under a supervisor" do
    spec = :corral.daemon_child_spec(~c"sleep", [~c"1000"], id: :erl_sleep)
    assert %{id: :erl_sleep, start: {Corral.Daemon, :start_link, _}} = spec
    pid = start_supervised!(spec)
    assert is_integer(Corral.Daemon.os_pid(pid))
  end

  test "erl with only the Elixir runtime on the code path prints {<<\"hi\\n\">>,0}" do
    ebins = [Path.join(Mix.Project.app_path(), "ebin"), Path.join(:code.lib_dir(:elixir), "ebin")]
    eval = ~s|io:format("~p~n", [corral:cmd("echo", ["hi"], [stderr_to_stdout])]), halt().|
    args = ["-noshell"] ++ Enum.flat_map(ebins, &["-pa", &1]) ++ ["-eval", eval]
    assert System.cmd("erl", args, stderr_to_stdout: true) == {"{<<\"hi\\n\">>,0}\n", 0}
  end
end

defmodule Corral.Compat.OptionsTest do
  # MuonTrap.Options.validate/4's documented behaviour, checked against
  # Corral.Options.validate/4: the error types for bad options (ArgumentError
  # for a bad option, ErlangError :enoent for a missing program, as
  # System.cmd/3), what each context takes, and messages that name the
  # option, the value and what was expected.
  use ExUnit.Case, async: true

  alias Corral.Options

  doctest Corral.Options

  test "errors match System.cmd/3's" do
    for context <- [:cmd, :daemon] do
      assert catch_error(Options.validate(context, "__this_should_not_exist", [], [])) == :enoent

      assert_raise ArgumentError, fn ->
        Options.validate(context, "echo", [~c"not_a_binary"], [])
      end

      assert_raise ArgumentError, fn -> Options.validate(context, "why\0would", [], []) end
    end
  end

  test "cmd-only and daemon-only options" do
    # Corral.cmd/3 only
    assert Options.validate(:cmd, "echo", [], into: []).into == []
    assert Options.validate(:cmd, "echo", [], timeout: 1000).timeout == 1000
    assert_raise ArgumentError, fn -> Options.validate(:daemon, "echo", [], into: "") end

    # Corral.Daemon only
    assert_raise ArgumentError, fn -> Options.validate(:cmd, "echo", [], name: Something) end

    for level <- [:error, :warn, :info, :debug] do
      assert Options.validate(:daemon, "echo", [], log_output: level).log_output == level
      assert_raise ArgumentError, fn -> Options.validate(:cmd, "echo", [], log_output: level) end
    end

    assert_raise ArgumentError, fn -> Options.validate(:daemon, "echo", [], log_output: :bad) end

    assert Options.validate(:daemon, "echo", [], logger_metadata: [foo: :bar]).logger_metadata ==
             [foo: :bar]

    assert_raise ArgumentError, fn ->
      Options.validate(:cmd, "echo", [], logger_metadata: [foo: :bar])
    end

    fun = &Function.identity/1
    assert Options.validate(:daemon, "echo", [], logger_fun: fun).logger_fun == fun

    assert Options.validate(:daemon, "echo", [], logger_fun: {Function, :identity, []}).logger_fun ==
             {Function, :identity, []}

    assert Options.validate(:daemon, "echo", [], logger_fun: {Function, :identity}).logger_fun ==
             {Function, :identity}

    assert_raise ArgumentError, fn ->
      Options.validate(:daemon, "echo", [], logger_fun: &DateTime.add/2)
    end

    assert_raise ArgumentError, fn -> Options.validate(:cmd, "echo", [], logger_fun: fun) end

    wait_fun = fn -> :ok end
    assert Options.validate(:daemon, "echo", [], wait_for: wait_fun).wait_for == wait_fun
    assert_raise ArgumentError, fn -> Options.validate(:cmd, "echo", [], wait_for: wait_fun) end
    assert_raise ArgumentError, fn -> Options.validate(:daemon, "echo", [], wait_for: :no) end

    assert_raise ArgumentError, fn ->
      Options.validate(:daemon, "echo", [], wait_for: &Function.identity/1)
    end
  end

  test "the common options, in both contexts" do
    input = [
      cd: "path",
      arg0: "arg0",
      stderr_to_stdout: true,
      parallelism: true,
      uid: 5,
      gid: "bill",
      delay_to_sigkill: 1,
      stdio_window: 1024,
      env: [{"KEY", "VALUE"}, {"KEY2", "VALUE2"}],
      cgroup_base: "base",
      cgroup: %{memory_max: 268_435_456, cpu_weight: 50}
    ]

    for context <- [:cmd, :daemon] do
      options = Options.validate(context, "echo", [], input)
      common = if context == :daemon, do: options.common, else: options

      assert %Options{
               cd: "path",
               arg0: "arg0",
               stderr_to_stdout: true,
               parallelism: true,
               uid: 5,
               gid: "bill",
               delay_to_sigkill: 1,
               stdio_window: 1024,
               env: [{"KEY", "VALUE"}, {"KEY2", "VALUE2"}],
               cgroup_base: "base",
               cgroup: %{memory_max: 268_435_456, cpu_weight: 50}
             } = common
    end
  end

  test ":cgroup_path and :cgroup_base exclude each other" do
    assert_raise ArgumentError, fn ->
      Options.validate(:cmd, "echo", [], cgroup_base: "base", cgroup_path: "path")
    end
  end

  test "unknown and malformed :cgroup settings" do
    assert_raise ArgumentError, ~r/unknown :cgroup key :bogus_key/, fn ->
      Options.validate(:daemon, "echo", [], cgroup: %{bogus_key: 1})
    end

    assert_raise ArgumentError, ~r/unknown :cgroup key :cgroup_path/, fn ->
      Options.validate(:daemon, "echo", [], cgroup: %{cgroup_path: "x"})
    end

    for bad <- [%{memory_max: -1}, %{cpu_max: {-1, 100}}, %{memory_max: "500M"}] do
      assert_raise ArgumentError, ~r/invalid :cgroup key/, fn ->
        Options.validate(:daemon, "echo", [], cgroup: bad)
      end
    end
  end

  test ":groups takes ids and names, [] included" do
    assert Options.validate(:cmd, "echo", [], groups: [10, "audio", 100]).groups ==
             [10, "audio", 100]

    assert Options.validate(:cmd, "echo", [], groups: []).groups == []
  end

  test "malformed :groups entries raise ArgumentError naming the entry" do
    for {groups, entry} <- [
          {[10, -1], "-1"},
          {[10, :atom], ":atom"},
          {[""], ~s("")},
          {["audio,video"], ~s("audio,video")},
          {[0], "0"},
          {["0"], ~s("0")}
        ] do
      error =
        assert_raise ArgumentError, fn -> Options.validate(:cmd, "echo", [], groups: groups) end

      assert error.message =~ "invalid option :groups with value #{inspect(groups)}"
      assert String.ends_with?(error.message, "got entry: #{entry}"), error.message
    end

    assert_raise ArgumentError, ~r/invalid option :groups with value "audio"/, fn ->
      Options.validate(:cmd, "echo", [], groups: "audio")
    end
  end

  # Each message: the option, the value, then what was expected.
  @bad [
    {[cd: ~c"/tmp"], ~s(invalid option :cd with value '/tmp': expected a directory path)},
    {[stderr_to_stdout: 1], "invalid option :stderr_to_stdout with value 1: expected a boolean"},
    {[timeout: 0], "invalid option :timeout with value 0: expected an integer from 1 to"},
    {[timeout: :never],
     "invalid option :timeout with value :never: expected an integer from 1 to 18446744073709551615 (milliseconds) or :infinity"},
    {[delay_to_sigkill: -1],
     "invalid option :delay_to_sigkill with value -1: expected an integer from 0 to 2147483647 (milliseconds)"},
    {[stdio_window: "1M"],
     ~s[invalid option :stdio_window with value "1M": expected an integer from 1 to 4294967295 (bytes)]},
    {[uid: :root], "invalid option :uid with value :root: expected a user name"},
    {[env: "A=1"], ~s(invalid option :env with value "A=1": expected an enumerable)},
    {[lines: 0], "invalid option :lines with value 0: expected a positive integer"},
    {[cgroup: %{cpu_max: {10, 100}}],
     "invalid :cgroup key :cpu_max with value {10, 100}: expected {quota_us | :max, period_us} (quota 1000 to"},
    {[tiemout: 100],
     "invalid option :tiemout with value 100: unknown option, did you mean :timeout?"},
    {[stderr_to_stdot: true],
     "invalid option :stderr_to_stdot with value true: unknown option, did you mean :stderr_to_stdout?"},
    # Far from every name: System.cmd/3's message, word for word.
    {[foo: 1], "invalid option :foo with value 1"}
  ]

  test "messages name the option, the value and what was expected" do
    for {opts, message} <- @bad do
      error = assert_raise ArgumentError, fn -> Options.validate(:cmd, "echo", [], opts) end
      assert String.starts_with?(error.message, message), error.message
    end
  end

  test "daemon options: the same, and \"did you mean\" among the daemon's own" do
    for {opts, message} <- [
          {[log_output: :loud],
           "invalid option :log_output with value :loud: expected a Logger level"},
          {[stdin: 1], "invalid option :stdin with value 1: expected a boolean"},
          {[log_ouptut: :info],
           "invalid option :log_ouptut with value :info: unknown option, did you mean :log_output?"}
        ] do
      error = assert_raise ArgumentError, fn -> Options.validate(:daemon, "echo", [], opts) end
      assert String.starts_with?(error.message, message), error.message
    end
  end

  test "an unknown option far from every name: System.cmd/3's message" do
    system = assert_raise ArgumentError, fn -> System.cmd("true", [], foo: 1) end
    corral = assert_raise ArgumentError, fn -> Corral.cmd("true", [], foo: 1) end
    assert corral.message == system.message
  end

  test "no suggestion farther than two edits" do
    error = assert_raise ArgumentError, fn -> Options.validate(:cmd, "echo", [], tmeout_ms: 1) end
    refute error.message =~ "did you mean"
  end
end

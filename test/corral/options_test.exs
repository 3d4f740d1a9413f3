defmodule Corral.OptionsTest do
  use ExUnit.Case, async: true

  alias Corral.Options

  # The message starts by naming the option and value; a range or the
  # expected form may follow.
  defp assert_invalid(opts, message) do
    error = assert_raise ArgumentError, fn -> Options.new!(opts) end
    assert String.starts_with?(Exception.message(error), message), Exception.message(error)
  end

  test "defaults" do
    assert %Options{
             into: "",
             env: [],
             stderr_to_stdout: false,
             timeout: :infinity,
             delay_to_sigkill: 500,
             stdio_window: 1_048_576,
             capture_stderr_only: false,
             input: nil,
             groups: [],
             cpu_time: :infinity,
             memory: :infinity,
             max_processes: :infinity,
             idle_timeout: :infinity,
             no_cgroup: false,
             separate_stderr: false
           } = Options.new!([])
  end

  test "an unknown option raises naming it and its value, as System.cmd/3 does" do
    assert_invalid([foo: 1], "invalid option :foo with value 1")

    assert_raise ArgumentError, "invalid option :foo with value 1", fn ->
      System.cmd("true", [], foo: 1)
    end
  end

  test "options must be a keyword list" do
    assert_raise ArgumentError, ~r/expected a keyword list/, fn -> Options.new!(:cd) end
    assert_raise ArgumentError, ~r/expected a keyword list/, fn -> Options.new!([:cd]) end
  end

  test ":into takes any term; Collectable checks it" do
    assert Options.new!(into: []).into == []
    assert Options.new!(into: %{}).into == %{}
  end

  test ":cd" do
    assert Options.new!(cd: "/tmp").cd == "/tmp"
    assert_invalid([cd: ~c"/tmp"], "invalid option :cd with value '/tmp'")
    assert_invalid([cd: "/t\0mp"], "invalid option :cd with value #{inspect("/t\0mp")}")
  end

  test ":env" do
    assert Options.new!(env: [{"A", "1"}, {"B", nil}]).env == [{"A", "1"}, {"B", nil}]
    assert Options.new!(env: %{"A" => "1"}).env == [{"A", "1"}]
    assert_invalid([env: "A=1"], ~s(invalid option :env with value "A=1"))
    assert_invalid([env: [{"A", 1}]], ~s(invalid environment key-value {"A", 1}))
    assert_invalid([env: [{:A, "1"}]], ~s(invalid environment key-value {:A, "1"}))
    assert_invalid([env: ["A=1"]], ~s(invalid environment key-value "A=1"))
    assert_invalid([env: [{"A=B", "1"}]], ~s(invalid environment key-value {"A=B", "1"}))
    assert_invalid([env: [{"", "1"}]], ~s(invalid environment key-value {"", "1"}))
    assert_invalid([env: [{"A", "\0"}]], "invalid environment key-value #{inspect({"A", "\0"})}")
  end

  test ":arg0" do
    assert Options.new!(arg0: "zero").arg0 == "zero"
    assert_invalid([arg0: :zero], "invalid option :arg0 with value :zero")
    assert_invalid([arg0: "a\0"], "invalid option :arg0 with value #{inspect("a\0")}")
  end

  test "the switches are booleans" do
    for key <- [
          :stderr_to_stdout,
          :capture_stderr_only,
          :parallelism,
          :separate_stderr,
          :no_cgroup
        ] do
      assert Map.fetch!(Options.new!([{key, true}]), key) == true
      assert Map.fetch!(Options.new!([{key, false}]), key) == false
      assert_invalid([{key, 1}], "invalid option #{inspect(key)} with value 1")
      assert_invalid([{key, nil}], "invalid option #{inspect(key)} with value nil")
    end
  end

  test ":capture_stderr_only wins over :stderr_to_stdout, as in MuonTrap" do
    options = Options.new!(stderr_to_stdout: true, capture_stderr_only: true)
    assert {options.capture_stderr_only, options.stderr_to_stdout} == {true, false}

    assert Options.new!(stderr_to_stdout: false, capture_stderr_only: true).capture_stderr_only
  end

  test ":timeout is a positive integer or :infinity" do
    assert Options.new!(timeout: 1).timeout == 1
    assert Options.new!(timeout: :infinity).timeout == :infinity
    assert_invalid([timeout: 0], "invalid option :timeout with value 0")
    assert_invalid([timeout: -1], "invalid option :timeout with value -1")
    assert_invalid([timeout: 1.5], "invalid option :timeout with value 1.5")
    assert_invalid([timeout: :never], "invalid option :timeout with value :never")
  end

  test "the limits of the whole tree are positive integers or :infinity" do
    for key <- [:cpu_time, :memory, :max_processes, :idle_timeout] do
      assert Map.fetch!(Options.new!([{key, 1}]), key) == 1
      big = if key == :max_processes, do: 4_194_304, else: 2 ** 40
      assert Map.fetch!(Options.new!([{key, big}]), key) == big
      assert Map.fetch!(Options.new!([{key, :infinity}]), key) == :infinity

      for bad <- [0, -1, 1.5, "1s", nil, :max] do
        assert_invalid([{key, bad}], "invalid option #{inspect(key)} with value #{inspect(bad)}")
      end
    end
  end

  test ":separate_stderr excludes the other stderr options" do
    for other <- [:stderr_to_stdout, :capture_stderr_only] do
      assert_raise ArgumentError,
                   "options :separate_stderr and #{inspect(other)} exclude each other",
                   fn -> Options.new!([{:separate_stderr, true}, {other, true}]) end

      assert Options.new!([{:separate_stderr, true}, {other, false}]).separate_stderr
    end
  end

  test ":no_cgroup excludes every cgroup option" do
    for {key, value} <- [
          cgroup_path: "a",
          cgroup_base: "b",
          cgroup: [pids_max: 10],
          cgroup_controllers: ["memory"],
          cgroup_sets: [{"memory", "memory.limit_in_bytes", 1}]
        ] do
      assert_raise ArgumentError,
                   "options :no_cgroup and #{inspect(key)} exclude each other",
                   fn ->
                     Options.new!([{:no_cgroup, true}, {key, value}])
                   end

      assert Options.new!([{:no_cgroup, false}, {key, value}])
    end

    # Limits of the whole tree need no cgroup.
    assert Options.new!(no_cgroup: true, memory: 1024, max_processes: 5).no_cgroup
  end

  test ":uid and :gid are ids or names" do
    for key <- [:uid, :gid] do
      assert Map.fetch!(Options.new!([{key, 0}]), key) == 0
      assert Map.fetch!(Options.new!([{key, "nobody"}]), key) == "nobody"
      assert_invalid([{key, -1}], "invalid option #{inspect(key)} with value -1")
      assert_invalid([{key, ""}], ~s(invalid option #{inspect(key)} with value ""))
      assert_invalid([{key, :root}], "invalid option #{inspect(key)} with value :root")
    end
  end

  test ":groups is a list of ids or names" do
    assert Options.new!(groups: [10, "adm"]).groups == [10, "adm"]
    assert_invalid([groups: [0]], "invalid option :groups with value [0]")
    assert Options.new!(groups: []).groups == []
    assert_invalid([groups: "adm"], ~s(invalid option :groups with value "adm"))
    assert_invalid([groups: [-1]], "invalid option :groups with value [-1]")
    assert_invalid([groups: [:adm]], "invalid option :groups with value [:adm]")
  end

  test ":delay_to_sigkill is a non-negative integer of milliseconds" do
    assert Options.new!(delay_to_sigkill: 0).delay_to_sigkill == 0
    assert Options.new!(delay_to_sigkill: 2000).delay_to_sigkill == 2000
    assert_invalid([delay_to_sigkill: -1], "invalid option :delay_to_sigkill with value -1")

    assert_invalid(
      [delay_to_sigkill: :infinity],
      "invalid option :delay_to_sigkill with value :infinity"
    )
  end

  test ":stdio_window is a positive integer that fits an ack frame" do
    assert Options.new!(stdio_window: 1).stdio_window == 1
    assert Options.new!(stdio_window: 0xFFFF_FFFF).stdio_window == 0xFFFF_FFFF
    assert_invalid([stdio_window: 0], "invalid option :stdio_window with value 0")

    assert_invalid(
      [stdio_window: 0x1_0000_0000],
      "invalid option :stdio_window with value 4294967296"
    )

    assert_invalid([stdio_window: "1M"], ~s(invalid option :stdio_window with value "1M"))
  end

  test ":input is a binary, iodata or an enumerable" do
    assert Options.new!(input: "abc").input == "abc"
    assert Options.new!(input: ["a", ?b, ["c"]]).input == "abc"
    assert Options.new!(input: ~c"abc").input == "abc"
    assert Options.new!(input: [:not_iodata]).input == [:not_iodata]
    stream = Stream.map(1..2, &Integer.to_string/1)
    assert Options.new!(input: stream).input == stream
    assert_invalid([input: nil], "invalid option :input with value nil")
    assert_invalid([input: 1], "invalid option :input with value 1")
    assert_invalid([input: {:a}], "invalid option :input with value {:a}")
  end

  test "the last occurrence of an option wins, as in System.cmd/3" do
    assert Options.new!(cd: "/a", cd: "/b").cd == "/b"
  end

  describe "cgroups" do
    test "defaults: no path, no base, no limits" do
      assert %Options{
               cgroup_path: nil,
               cgroup_base: nil,
               cgroup: %{},
               cgroup_controllers: [],
               cgroup_sets: []
             } = Options.new!([])
    end

    test ":cgroup_path and :cgroup_base are relative paths that cannot escape" do
      for key <- [:cgroup_path, :cgroup_base] do
        for ok <- ["corral", "/corral", "a/b/c", "user.slice/app-1.scope", "muontrap test"] do
          assert Map.fetch!(Options.new!([{key, ok}]), key) == ok
        end

        assert Map.fetch!(Options.new!([{key, nil}]), key) == nil

        for bad <- ["", "/", "..", "a/../b", "a/./b", "a//b", "a/", "//a", "a\nb", "a\0b"] do
          assert_invalid(
            [{key, bad}],
            "invalid option #{inspect(key)} with value #{inspect(bad)}"
          )
        end

        assert_invalid([{key, :a}], "invalid option #{inspect(key)} with value :a")
        assert_invalid([{key, ~c"a"}], "invalid option #{inspect(key)} with value 'a'")
      end
    end

    test ":cgroup_path and :cgroup_base exclude each other" do
      assert_raise ArgumentError, ~r/:cgroup_path and :cgroup_base exclude each other/, fn ->
        Options.new!(cgroup_path: "a", cgroup_base: "b")
      end

      assert Options.new!(cgroup_path: "a", cgroup_base: nil).cgroup_path == "a"
    end

    test ":cgroup takes a map or a keyword list of every MuonTrap 2 key" do
      limits = %{
        memory_max: 64 * 2 ** 20,
        memory_high: :max,
        memory_swap_max: 0,
        memory_oom_group: true,
        memory_min: 0,
        memory_low: 1,
        cpu_max: {50_000, 100_000},
        cpu_weight: 1,
        cpu_idle: false,
        pids_max: 20,
        io_weight: 10_000,
        cpuset_cpus: "0-1,3",
        cpuset_mems: "0"
      }

      assert Options.new!(cgroup: limits).cgroup == limits
      assert Options.new!(cgroup: Map.to_list(limits)).cgroup == limits
      assert Enum.sort(Map.keys(limits)) == Enum.sort(Options.cgroup_keys())
      assert Options.new!(cgroup: [cpu_max: :max]).cgroup == %{cpu_max: :max}
      assert Options.new!(cgroup: [cpu_max: {:max, 1000}]).cgroup == %{cpu_max: {:max, 1000}}
      assert Options.new!(cgroup: [pids_max: :max]).cgroup == %{pids_max: :max}
      assert Options.new!(cgroup: []).cgroup == %{}
    end

    test "an unknown :cgroup key raises naming it" do
      assert_raise ArgumentError,
                   ~r/unknown :cgroup key :memory_limit with value 1, expected/,
                   fn ->
                     Options.new!(cgroup: [memory_limit: 1])
                   end

      assert_raise ArgumentError,
                   ~r/invalid option :cgroup .* got entry: \{"memory_max", 1\}/,
                   fn ->
                     Options.new!(cgroup: %{"memory_max" => 1})
                   end

      assert_invalid([cgroup: :max], "invalid option :cgroup with value :max")
    end

    test "a :cgroup value of the wrong type raises naming the key and value" do
      for {key, bad} <- [
            memory_max: -1,
            memory_max: "64M",
            memory_max: 1.5,
            memory_high: nil,
            pids_max: :infinity,
            memory_oom_group: 1,
            cpu_idle: "true",
            cpu_weight: 0,
            cpu_weight: 10_001,
            io_weight: :max,
            cpu_max: 50_000,
            cpu_max: {999, 100_000},
            cpu_max: {50_000, 999},
            cpu_max: {50_000, 1_000_001},
            cpu_max: {:max, 0},
            cpu_max: {50_000, 100_000, 1},
            cpuset_cpus: 1,
            cpuset_cpus: "",
            cpuset_cpus: "0-",
            cpuset_mems: "0\n1"
          ] do
        assert_invalid(
          [cgroup: [{key, bad}]],
          "invalid :cgroup key #{inspect(key)} with value #{inspect(bad)}"
        )
      end
    end

    test ":cgroup_controllers is a list of controller names" do
      assert Options.new!(cgroup_controllers: ["memory", "name=systemd"]).cgroup_controllers ==
               ["memory", "name=systemd"]

      assert_invalid(
        [cgroup_controllers: "memory"],
        ~s(invalid option :cgroup_controllers with value "memory")
      )

      for bad <- [[:memory], ["mem:ory"], ["../memory"], [""]] do
        assert_invalid(
          [cgroup_controllers: bad],
          "invalid option :cgroup_controllers with value #{inspect(bad)}"
        )
      end
    end

    test ":cgroup_sets is a list of {controller, file, value} as in MuonTrap 1" do
      sets = [{"memory", "memory.limit_in_bytes", "268435456"}, {"pids", "pids.max", 20}]

      assert Options.new!(cgroup_sets: sets).cgroup_sets ==
               [{"memory", "memory.limit_in_bytes", "268435456"}, {"pids", "pids.max", "20"}]

      for bad <- [
            {"memory", "memory.limit_in_bytes"},
            {:memory, "memory.limit_in_bytes", "1"},
            {"memory", "../memory.limit_in_bytes", "1"},
            {"memory", "memory.max/x", "1"},
            {"memory", "memory.max", :max},
            {"memory", "memory.max", "1\0"}
          ] do
        assert_invalid(
          [cgroup_sets: [bad]],
          "invalid option :cgroup_sets with value #{inspect(bad)}"
        )
      end

      assert_invalid([cgroup_sets: %{}], "invalid option :cgroup_sets with value %{}")
    end

    test ":cgroup_sets never writes the files that move, freeze or kill processes" do
      for file <- ~w(cgroup.procs cgroup.threads cgroup.kill cgroup.freeze
                     cgroup.subtree_control tasks) do
        set = {"memory", file, "1"}

        assert_raise ArgumentError, ~r/:cgroup_sets .*#{Regex.escape(file)} moves/, fn ->
          Options.new!(cgroup_sets: [set])
        end
      end
    end
  end
end

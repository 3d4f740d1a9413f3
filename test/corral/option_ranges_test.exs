defmodule Corral.OptionRangesTest do
  # Integer options past what they can mean raise ArgumentError naming the
  # option, the value and the range, before any helper starts; the largest
  # value of each range runs (a deadline past the end of the helper's clock
  # is never reached).
  use ExUnit.Case, async: true

  @max_u64 2 ** 64 - 1

  @out_of_range [
    timeout: 10 ** 22,
    timeout: 10 ** 30,
    timeout: 0,
    cpu_time: 2 ** 64,
    idle_timeout: -1,
    delay_to_sigkill: 10 ** 22,
    delay_to_sigkill: 2 ** 31,
    memory: 10 ** 30,
    max_processes: 2 ** 64,
    max_processes: 4_194_305,
    stdio_window: 2 ** 32,
    uid: 2 ** 32 - 1,
    gid: 2 ** 40
  ]

  test "each out-of-range value raises ArgumentError with the range" do
    for {key, value} <- @out_of_range, fun <- [&Corral.cmd/3, &Corral.run/3] do
      error = assert_raise ArgumentError, fn -> fun.("true", [], [{key, value}]) end
      message = Exception.message(error)
      assert message =~ "invalid option #{inspect(key)} with value #{value}", message
      assert message =~ ~r/expected an integer from \d+ to \d+/, message
    end
  end

  @cgroup_out_of_range [
    memory_max: 10 ** 30,
    memory_max: 0,
    memory_high: 2 ** 64,
    memory_swap_max: -1,
    pids_max: 0,
    pids_max: 2 ** 64,
    pids_max: 4_194_305
  ]

  test "each out-of-range :cgroup value raises ArgumentError with the range" do
    for {key, value} <- @cgroup_out_of_range do
      error =
        assert_raise ArgumentError, fn -> Corral.run("true", [], cgroup: %{key => value}) end

      message = Exception.message(error)
      assert message =~ "invalid :cgroup key #{inspect(key)} with value #{value}", message
      assert message =~ ~r/expected an integer from \d+ to \d+/, message
    end

    for cpu_max <- [{2 ** 44, 100_000}, {999, 100_000}, {1000, 999}, {:max, 10 ** 30}] do
      error =
        assert_raise ArgumentError, fn -> Corral.run("true", [], cgroup: %{cpu_max: cpu_max}) end

      assert Exception.message(error) =~ "17592186044415"
    end
  end

  for {helper, extra} <- [pooled: [], fresh: [parallelism: true]] do
    test "the largest values run, #{helper} helper" do
      extra = unquote(extra)
      sleep = ["-c", "sleep 0.2"]

      assert Corral.cmd("sh", sleep, [timeout: @max_u64] ++ extra) == {"", 0}

      assert Corral.cmd("sh", sleep, [cpu_time: @max_u64, idle_timeout: @max_u64] ++ extra) ==
               {"", 0}

      assert Corral.cmd("sh", sleep, [memory: @max_u64, max_processes: 4_194_304] ++ extra) ==
               {"", 0}

      # SIGTERM ends `sleep`; the SIGKILL, 24.8 days later, is never needed.
      assert Corral.cmd("sleep", ["5"], [timeout: 100, delay_to_sigkill: 2 ** 31 - 1] ++ extra) ==
               {"", :timeout}
    end

    # Before: {:helper_exit, 7} from a fresh helper (its own exec failed),
    # {:spawn_failed, "e2big", "exec"} from a pooled one (the child's).
    test "a command line execve(2) refuses is one error, #{helper} helper" do
      extra = unquote(extra)
      e2big = {:spawn_failed, :e2big, "exec"}
      arg = String.duplicate("a", 999)

      # 10 MB in all, over any stack rlimit's share; one argument over
      # MAX_ARG_STRLEN (128 KiB); and the environment counts too.
      for args <- [List.duplicate(arg, 10_000), [String.duplicate("a", 200_000)]] do
        assert Corral.run("true", args, extra) == {:error, e2big}
        assert %Corral.Error{reason: ^e2big} = catch_error(Corral.cmd("true", args, extra))
      end

      env = for i <- 1..5, do: {"CORRAL_BIG_#{i}", String.duplicate("b", 120_000)}
      many = List.duplicate(arg, 1_500)
      assert Corral.run("true", many, [env: env] ++ extra) == {:error, e2big}
      assert Corral.cmd("true", many, extra) == {"", 0}
    end

    @tag :cgroup
    test "the largest :cgroup values run, #{helper} helper" do
      limits = %{
        memory_max: @max_u64,
        memory_high: @max_u64,
        pids_max: 4_194_304,
        cpu_max: {17_592_186_044_415, 100_000}
      }

      assert Corral.cmd("echo", ["ok"], [cgroup: limits] ++ unquote(extra)) == {"ok\n", 0}
    end
  end
end

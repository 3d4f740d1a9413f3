# Kill stress: owner kills, helper SIGKILLs and whole-VM `kill -9` over
# seven tree shapes, with and without cgroups, plus output floods checked
# byte for byte. One row per case:
#
#   | case | runs | survivors | leftover cgroups | lost bytes | crashes |
#
# Only what this script starts is looked at: every process of a tree writes
# its own pid (and its /proc/self/cgroup) to a file of its run, and only
# those pids and the corral-* cgroups they name are checked and, on the way
# out, killed by pid. Exits 1 on any survivor, leftover cgroup, lost byte
# or crash.
#
# Without a cgroup, a helper SIGKILL is survived by processes that left the
# child's process group (setsid, a double-fork daemon): nothing the VM can
# reach names them (README, "What can escape"). Those rows count survivors
# among the process group and the helper only, and say how many escaped in
# a line under the table; the escaped ones are killed by pid.
#
# Usage: MIX_ENV=dev mix run bench/stress/kills.exs [runs per case]
# CORRAL_STRESS_ONLY=<regex> runs only the rows whose name matches, e.g.
# "helper SIGKILL .* / cgroup$" to chase one kind of survivor.

runs =
  case System.argv() do
    [r] -> String.to_integer(r)
    [] -> 10
  end

# wait_until, wait_gone, kill and read_pids: the tests' own (test/support).
Code.require_file("../../test/support/os_proc.ex", __DIR__)

defmodule Stress.Kills do
  import Corral.Test.OSProc, only: [wait_until: 2, wait_gone: 2, kill: 1, read_pids: 1, helper_of: 2]

  @tmp Path.join(System.tmp_dir!(), "corral-stress-#{System.pid()}")
  @grace 200

  def tmp, do: @tmp

  # Each shape: {name, program, args (given the pid file), pids to expect,
  # whether some of them leave the child's process group}.
  def shapes do
    chain = Path.join(@tmp, "chain.sh")

    File.write!(chain, """
    echo $$ >> "$1"; cat /proc/self/cgroup >> "$1.cg"
    if [ "$2" -gt 1 ]; then sh "$0" "$1" $(($2 - 1)) & wait; else exec sleep 1000; fi
    """)

    rec = fn f -> "echo $$ >> #{f}; cat /proc/self/cgroup >> #{f}.cg; " end

    [
      {"single child", fn f -> ["sh", ["-c", rec.(f) <> "exec sleep 1000"]] end, 1, false},
      {"fork tree",
       fn f ->
         [
           "sh",
           [
             "-c",
             "sleep 1000 & echo $! >> #{f}; (sleep 1000 & echo $! >> #{f}; wait) & " <>
               rec.(f) <> "wait"
           ]
         ]
       end, 3, false},
      {"setsid grandchild",
       fn f -> ["sh", ["-c", "setsid sleep 1000 & echo $! >> #{f}; " <> rec.(f) <> "wait"]] end,
       2, true},
      {"double-fork daemon",
       fn f ->
         [
           "sh",
           [
             "-c",
             "(setsid sh -c 'sleep 1000 & echo $! >> #{f}' &); " <>
               rec.(f) <> "exec sleep 1000"
           ]
         ]
       end, 2, true},
      {"SIGTERM-ignoring tree",
       fn f ->
         ["sh", ["-c", "trap '' TERM; sleep 1000 & echo $! >> #{f}; " <> rec.(f) <> "wait"]]
       end, 2, false},
      {"threaded",
       fn f ->
         [
           "python3",
           [
             "-c",
             "import os, threading, time\n" <>
               "for _ in range(4): threading.Thread(target=time.sleep, args=(1000,), daemon=True).start()\n" <>
               "open(#{inspect(f)}, 'a').write(f'{os.getpid()}\\n')\n" <>
               "open(#{inspect(f <> ".cg")}, 'a').write(open('/proc/self/cgroup').read())\n" <>
               "time.sleep(1000)"
           ]
         ]
       end, 1, false},
      {"deep chain (8)", fn f -> ["sh", [chain, f, "8"]] end, 8, false}
    ]
  end

  def modes, do: [{"cgroup", []}, {"no cgroup", [no_cgroup: true]}]

  def opts(extra), do: [delay_to_sigkill: @grace, stderr_to_stdout: true] ++ extra

  ## What a run left

  def wait_pids(file, n, ms \\ 20_000) do
    wait_until(fn -> length(read_pids(file)) >= n end, ms)
    read_pids(file)
  end

  # The run's own cgroups: the corral-* directories its processes named.
  def cgroup_dirs(file) do
    mounts = mounts()

    case File.read(file <> ".cg") do
      {:ok, text} ->
        text
        |> String.split("\n", trim: true)
        |> Enum.flat_map(fn line ->
          [_, ctrls, path] = String.split(line, ":", parts: 3)

          if Path.basename(path) =~ ~r/^corral-/ do
            case ctrls do
              "" ->
                if mounts.v2, do: [Path.join(mounts.v2, path)], else: []

              c ->
                c
                |> String.split(",")
                |> Enum.flat_map(&List.wrap(mounts.v1[&1]))
                |> Enum.map(&Path.join(&1, path))
            end
          else
            []
          end
        end)
        |> Enum.uniq()

      _ ->
        []
    end
  end

  defp mounts do
    case :persistent_term.get({__MODULE__, :mounts}, nil) do
      nil ->
        m =
          case Corral.Cgroup.layout() do
            {:ok, %{mounts: m}} -> m
            _ -> %{v2: nil, v1: %{}}
          end

        :persistent_term.put({__MODULE__, :mounts}, m)
        m

      m ->
        m
    end
  end

  def leftover(dirs) do
    wait_until(fn -> not Enum.any?(dirs, &File.dir?/1) end, 3000)
    Enum.filter(dirs, &File.dir?/1)
  end

  def pid_file do
    f = Path.join(@tmp, "run-#{System.unique_integer([:positive])}")
    f
  end

  # The OS pgid of a pid, for telling escapes from survivors.
  def pgid(pid) do
    case File.read("/proc/#{pid}/stat") do
      {:ok, stat} ->
        stat
        |> String.split(") ")
        |> List.last()
        |> String.split(" ")
        |> Enum.at(2)
        |> String.to_integer()

      _ ->
        nil
    end
  end


  ## One run of each kind: %{survivors, escaped, leftover, crash}

  def owner_kill({_, argv, n, _}, extra) do
    file = pid_file()
    [program, args] = argv.(file)
    me = self()

    owner =
      spawn(fn ->
        send(me, {:result, self(), Corral.run(program, args, opts(extra))})
      end)

    pids = wait_pids(file, n)
    helper = helper_of(owner, 10_000)
    dirs = cgroup_dirs(file)
    Process.exit(owner, :kill)
    left = wait_gone([helper | pids] -- [nil], 5000)
    crash = length(pids) < n or helper == nil
    kill(left)
    %{survivors: length(left), escaped: 0, leftover: length(leftover(dirs)), crash: crash}
  end

  def helper_kill({_, argv, n, _}, extra) do
    file = pid_file()
    [program, args] = argv.(file)
    task = Task.async(fn -> Corral.run(program, args, opts(extra)) end)
    pids = wait_pids(file, n)
    helper = helper_of(task.pid, 10_000)
    dirs = cgroup_dirs(file)
    # The helper's child leads the process group the VM can kill.
    child_group =
      case File.read("/proc/#{helper}/task/#{helper}/children") do
        {:ok, text} -> text |> String.split() |> Enum.map(&String.to_integer/1) |> List.first()
        _ -> nil
      end

    System.cmd("kill", ["-KILL", to_string(helper)])
    result = Task.await(task, 30_000)
    left = wait_gone(pids, 3000)
    # Without a cgroup, only the process group is within reach. Read after
    # the fact: a setsid may not have run yet when the pids were written.
    {counted, escaped} =
      if extra[:no_cgroup],
        do: Enum.split_with(left, &(pgid(&1) == child_group)),
        else: {left, []}

    kill(left)
    crash = result != {:error, {:helper_exit, 137}} or length(pids) < n

    %{
      survivors: length(counted),
      escaped: length(escaped),
      leftover: length(leftover(dirs)),
      crash: crash
    }
  end

  # One second VM runs every shape at once, then is kill -9ed.
  def vm_kill(shapes, extra) do
    files = Enum.map(shapes, fn _ -> pid_file() end)
    vm_file = pid_file()
    ebin = Path.dirname(:code.which(Corral))

    starts =
      for {{_, argv, _, _}, f} <- Enum.zip(shapes, files) do
        [program, args] = argv.(f)

        "spawn(fn -> Corral.run(#{inspect(program)}, #{inspect(args)}, #{inspect(opts(extra))}) end)"
      end

    code =
      "File.write!(#{inspect(vm_file)}, System.pid()); " <>
        Enum.join(starts, "; ") <> "; Process.sleep(:infinity)"

    vm =
      Port.open({:spawn_executable, System.find_executable("elixir")}, [
        :binary,
        :exit_status,
        args: ["-pa", ebin, "-e", code],
        env: [{~c"CORRAL_HELPER", String.to_charlist(Corral.Helper.helper_path())}]
      ])

    [vm_pid] = wait_pids(vm_file, 1, 30_000)

    results =
      for {{_, _, n, _}, f} <- Enum.zip(shapes, files) do
        {read_pids(f), n, f}
      end

    results = Enum.map(results, fn {_, n, f} -> {wait_pids(f, n), n, f} end)
    dirs = Enum.map(results, fn {_, _, f} -> cgroup_dirs(f) end)
    System.cmd("kill", ["-9", to_string(vm_pid)])

    status =
      receive do
        {^vm, {:exit_status, s}} -> s
      after
        10_000 -> :timeout
      end

    out =
      for {{pids, n, _}, d} <- Enum.zip(results, dirs) do
        left = wait_gone(pids, 3000)
        kill(left)

        %{
          survivors: length(left),
          escaped: 0,
          leftover: length(leftover(d)),
          crash: status != 137 or length(pids) < n
        }
      end

    out
  end

  ## Floods: exact byte counts from concurrent runs

  def flood(extra, n, bytes) do
    1..n
    |> Task.async_stream(
      fn _ -> Corral.cmd("sh", ["-c", "yes 0123456789abcdef | head -c #{bytes}"], extra) end,
      max_concurrency: 20,
      timeout: 120_000
    )
    |> Enum.map(fn
      {:ok, {out, 0}} -> %{lost: abs(bytes - byte_size(out)), crash: false}
      _ -> %{lost: bytes, crash: true}
    end)
  end
end

alias Stress.Kills

File.mkdir_p!(Kills.tmp())

row = fn name, n, list ->
  sum = fn key -> Enum.sum(Enum.map(list, &Map.get(&1, key, 0))) end
  crashes = Enum.count(list, &Map.get(&1, :crash, false))

  IO.puts(
    "| #{name} | #{n} | #{sum.(:survivors)} | #{sum.(:leftover)} | #{sum.(:lost)} | #{crashes} |"
  )

  %{
    bad: sum.(:survivors) + sum.(:leftover) + sum.(:lost) + crashes,
    escaped: sum.(:escaped),
    name: name
  }
end

started = System.monotonic_time(:millisecond)

only =
  case System.get_env("CORRAL_STRESS_ONLY") do
    nil -> fn _name -> true end
    re -> fn name -> name =~ Regex.compile!(re) end
  end
# The header once per table: `make stress` sets CORRAL_STRESS_NO_HEADER
# for every script after the first.
unless System.get_env("CORRAL_STRESS_NO_HEADER") do
  IO.puts("| case | runs | survivors | leftover cgroups | lost bytes | crashes |")
  IO.puts("|---|---|---|---|---|---|")
end

rows =
  for {mode, extra} <- Kills.modes(),
      {kind, fun} <- [
        {"owner kill", &Kills.owner_kill/2},
        {"helper SIGKILL", &Kills.helper_kill/2}
      ],
      {name, _, _, _} = shape <- Kills.shapes(),
      only.("#{kind} / #{name} / #{mode}") do
    results =
      1..runs
      |> Task.async_stream(fn _ -> fun.(shape, extra) end, max_concurrency: 3, timeout: 120_000)
      |> Enum.map(fn {:ok, r} -> r end)

    row.("#{kind} / #{name} / #{mode}", runs, results)
  end

vm_runs = max(div(runs, 3), 1)

vm_rows =
  for {mode, extra} <- Kills.modes(),
      Enum.any?(Kills.shapes(), fn {name, _, _, _} -> only.("VM kill -9 / #{name} / #{mode}") end) do
    shapes = Kills.shapes()
    per_vm = for _ <- 1..vm_runs, do: Kills.vm_kill(shapes, extra)

    for {{name, _, _, _}, i} <- Enum.with_index(shapes) do
      row.("VM kill -9 / #{name} / #{mode}", vm_runs, Enum.map(per_vm, &Enum.at(&1, i)))
    end
  end
  |> List.flatten()

flood_rows =
  for {mode, extra} <- Kills.modes(), only.("flood 20 MB x 40 / #{mode}") do
    row.("flood 20 MB x 40 / #{mode}", 40, Kills.flood(extra, 40, 20_000_000))
  end

all = rows ++ vm_rows ++ flood_rows
escaped = Enum.filter(all, &(&1.escaped > 0))

for r <- escaped do
  IO.puts(
    "  #{r.name}: #{r.escaped} process(es) outside the process group escaped (documented; killed by pid)"
  )
end

File.rm_rf!(Kills.tmp())
IO.puts("kills.exs: #{div(System.monotonic_time(:millisecond) - started, 1000)} s")

if Enum.any?(all, &(&1.bad > 0)), do: System.halt(1)

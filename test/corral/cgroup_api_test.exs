defmodule Corral.CgroupApiTest do
  # Corral.Cgroup on this machine's real cgroups. Every group is made under
  # the VM's own cgroup with a unique name and deleted on exit; every
  # process is a `sleep` this test started, and is killed on exit. Not
  # async: groups share the VM's own cgroup with other tests.
  use ExUnit.Case, async: false

  alias Corral.Cgroup
  alias Corral.Helper
  alias Corral.Protocol, as: Proto
  alias Corral.Test.OSProc

  @moduletag :cgroup

  setup_all do
    unless Cgroup.available?() do
      raise """
      Corral.Cgroup.available?() is false: no writable cgroup hierarchy under
      the VM's own cgroup (see /proc/self/cgroup), or the NIF did not load
      (see the warning above). These tests need root or a delegated cgroup;
      run the rest with `mix test --exclude cgroup`.
      """
    end

    {:ok, layout} = Cgroup.layout()
    %{layout: layout, prefix: prefix(layout)}
  end

  setup %{prefix: prefix} do
    name = Path.join(prefix, "cgapi-#{System.unique_integer([:positive])}")

    on_exit(fn ->
      case Cgroup.open(name) do
        {:ok, group} -> Cgroup.delete(group, kill: true)
        {:error, :enoent} -> :ok
      end

      # A group deleted through open/1 leaves the parents its creation made
      # (only the creating handle knows them): remove those that are empty.
      for dir <- Enum.reverse(ancestors(name)), not String.ends_with?(dir, "/" <> name) do
        File.rmdir(dir)
      end
    end)

    %{name: name}
  end

  # The directories from below each hierarchy's root down to `name`, in
  # every hierarchy, parents first; named v1 hierarchies left out.
  defp ancestors(name) do
    {:ok, %{mounts: %{v2: v2, v1: v1}}} = Cgroup.layout()

    mounts =
      v1
      |> Enum.reject(fn {controller, _} -> String.starts_with?(controller, "name=") end)
      |> Enum.map(&elem(&1, 1))
      |> Enum.concat(List.wrap(v2))
      |> Enum.uniq()

    parts = Path.split(name)

    for depth <- 1..length(parts), mount <- mounts do
      Path.join([mount | Enum.take(parts, depth)])
    end
  end

  # One path under the VM's own cgroup in every hierarchy: the deepest own
  # path, when the others are its prefixes (here only the memory hierarchy
  # puts the VM below the root).
  defp prefix(%{own: %{v2: v2, v1: v1}}) do
    owns =
      v1
      |> Enum.reject(fn {controller, _} -> String.starts_with?(controller, "name=") end)
      |> Enum.map(&elem(&1, 1))
      |> Enum.concat(List.wrap(v2))
      |> Enum.uniq()

    deepest = Enum.max_by(owns, &byte_size/1)

    unless Enum.all?(owns, &(&1 == "/" or String.starts_with?(deepest <> "/", &1 <> "/"))) do
      raise "the VM's own cgroups are not nested (#{inspect(owns)})"
    end

    String.trim(deepest, "/")
  end

  # A `sleep 1000` child of the VM, killed when the test ends.
  defp sleeper do
    port = Port.open({:spawn_executable, System.find_executable("sleep")}, args: ["1000"])
    {:os_pid, pid} = Port.info(port, :os_pid)
    on_exit(fn -> OSProc.kill([pid]) end)
    pid
  end

  # The cgroup of `pid` in the hierarchy mounted at `mount`, from /proc.
  defp cgroup_of(pid, %{layout: %{mounts: mounts}}, hierarchy) do
    key =
      case hierarchy do
        :v2 -> ""
        controller -> controller
      end

    mount = if hierarchy == :v2, do: mounts.v2, else: mounts.v1[hierarchy]

    "/proc/#{pid}/cgroup"
    |> File.read!()
    |> String.split("\n", trim: true)
    |> Enum.map(&String.split(&1, ":", parts: 3))
    |> Enum.find_value(fn [_, controllers, path] ->
      if key in String.split(controllers, ","), do: Path.join(mount, path)
    end)
  end

  defp gone_within(pids, deadline) do
    for pid <- pids do
      left = max(deadline - System.monotonic_time(:millisecond), 0)
      assert OSProc.wait_gone([pid], left) == [], "pid #{pid} still alive"
    end
  end

  describe "available?/0 and layout/0" do
    test "this machine's layout, mounts and the VM's own cgroups", %{layout: layout} do
      assert Cgroup.available?()
      assert layout.layout in [:v1, :v2, :hybrid]

      proc =
        for line <- "/proc/self/cgroup" |> File.read!() |> String.split("\n", trim: true),
            [_, controllers, path] = String.split(line, ":", parts: 3),
            controller <- if(controllers == "", do: [:v2], else: String.split(controllers, ",")),
            into: %{},
            do: {controller, path}

      if v2 = layout.own.v2, do: assert(proc[:v2] == v2)

      for {controller, own} <- layout.own.v1 do
        assert proc[controller] == own
        assert File.dir?(layout.mounts.v1[controller])
      end

      if layout.mounts.v2, do: assert(File.regular?(Path.join(layout.mounts.v2, "cgroup.procs")))

      if layout.layout == :hybrid do
        assert layout.mounts.v2 && map_size(layout.mounts.v1) > 0
        # Hybrid: the controllers bound to v1 are not in the v2 tree.
        v2_controllers =
          Path.join(layout.mounts.v2, "cgroup.controllers") |> File.read!() |> String.split()

        assert v2_controllers -- Map.keys(layout.mounts.v1) == v2_controllers
      end
    end
  end

  describe "create/2, open/1 and delete/2" do
    test "creates the group under the VM's own cgroup, opens and deletes it",
         %{name: name, layout: layout} do
      assert {:ok, %Cgroup{name: ^name, dirs: dirs} = group} =
               Cgroup.create(name, controllers: ["memory", "pids"])

      assert Enum.all?(dirs, &File.dir?/1)
      assert Enum.all?(dirs, &String.ends_with?(&1, "/" <> name))
      if layout.layout != :v1, do: assert(hd(dirs) == Path.join(layout.mounts.v2, name))

      if layout.layout != :v2 do
        assert Path.join(layout.mounts.v1["memory"], name) in dirs
        assert Path.join(layout.mounts.v1["pids"], name) in dirs
      end

      assert {:ok, %Cgroup{dirs: ^dirs} = opened} = Cgroup.open(name)
      assert {:ok, %Cgroup{dirs: ^dirs}} = Cgroup.open("/" <> name)
      assert Cgroup.delete(group) == :ok
      refute Enum.any?(dirs, &File.exists?/1)

      for dir <- dirs, {:ok, names} <- [File.ls(Path.dirname(dir))] do
        refute Path.basename(dir) in names
      end

      assert Cgroup.delete(opened) == {:error, :enoent}
      assert Cgroup.open(name) == {:error, :enoent}
    end

    test "delete/2 removes the parent directories create/2 made, and only those",
         %{name: name} do
      chain = ancestors(name)
      existed = Enum.filter(chain, &File.dir?/1)
      {:ok, group} = Cgroup.create(name, controllers: ["memory", "pids", "cpu"])
      assert Enum.all?(group.dirs, &(&1 in chain))
      assert Cgroup.delete(group) == :ok
      assert Enum.filter(chain, &File.dir?/1) == existed
    end

    test "a group outlives its garbage-collected handle until delete/2", %{name: name} do
      # The parent holds the directories made above the group, which only
      # the handle that made them removes, even after a refused delete.
      existed = name |> ancestors() |> Enum.filter(&File.dir?/1)
      {:ok, parent} = Cgroup.create(name)
      child = name <> "/child"
      {pid, ref} = spawn_monitor(fn -> {:ok, _group} = Cgroup.create(child) end)
      assert_receive {:DOWN, ^ref, :process, ^pid, :normal}, 5000
      :erlang.garbage_collect()

      assert {:ok, %Cgroup{dirs: [_ | _] = dirs} = group} = Cgroup.open(child)
      assert Enum.all?(dirs, &File.dir?/1)
      assert Cgroup.delete(parent) == {:error, :ebusy}
      assert Cgroup.delete(group) == :ok
      refute Enum.any?(dirs, &File.exists?/1)
      assert Cgroup.delete(parent) == :ok
      assert name |> ancestors() |> Enum.filter(&File.dir?/1) == existed
    end

    test "delete/2 refuses a populated group unless kill: true", %{name: name} do
      {:ok, group} = Cgroup.create(name)
      pid = sleeper()
      :ok = Cgroup.add(group, pid)

      assert Cgroup.delete(group) == {:error, :populated}
      assert Enum.all?(group.dirs, &File.dir?/1)
      assert OSProc.alive?(pid)

      deadline = System.monotonic_time(:millisecond) + 1000
      assert Cgroup.delete(group, kill: true) == :ok
      gone_within([pid], deadline)
      refute Enum.any?(group.dirs, &File.exists?/1)
      assert Cgroup.pids(group) == {:error, :enoent}
    end

    test "create/2 applies limits and leaves nothing behind when one is refused",
         %{name: name, layout: layout} do
      if layout.layout != :v2 do
        assert Cgroup.create(name, limits: %{memory_min: 4096}) ==
                 {:error, {:unsupported, "memory_min"}}
      end

      assert {:error, {:invalid, message}} = Cgroup.create(name, limits: %{cpu_weight: 20_000})
      assert message =~ "cpu_weight"
      assert Cgroup.open(name) == {:error, :enoent}

      assert {:ok, group} = Cgroup.create(name, limits: [pids_max: 12])
      assert Cgroup.get(group, :pids_max) == {:ok, 12}
      assert Cgroup.delete(group) == :ok
    end

    test "unknown options raise, like other option lists", %{name: name} do
      assert_raise ArgumentError, fn -> Cgroup.create(name, limit: %{}) end
      assert_raise ArgumentError, fn -> Cgroup.create(name, controllers: [:memory]) end
      assert Cgroup.open(name) == {:error, :enoent}
    end
  end

  describe "add/2, remove/2 and pids/1" do
    test "moves a process in, and out to the group's parent, in every hierarchy",
         %{name: name} = ctx do
      {:ok, group} = Cgroup.create(name, controllers: ["pids"])
      pid = sleeper()
      where = fn -> Enum.sort(for h <- [:v2, "pids"], do: cgroup_of(pid, ctx, h)) end

      assert Cgroup.pids(group) == {:ok, []}
      assert Cgroup.add(group, pid) == :ok
      assert Cgroup.pids(group) == {:ok, [pid]}
      assert where.() == Enum.sort(group.dirs)

      assert Cgroup.remove(group, pid) == :ok
      assert Cgroup.pids(group) == {:ok, []}
      assert where.() == Enum.sort(Enum.map(group.dirs, &Path.dirname/1))
    end

    test "a missing or bad pid is an error", %{name: name} do
      {:ok, group} = Cgroup.create(name)
      assert Cgroup.add(group, 0x7FFF_FFFF) == {:error, :esrch}
      assert {:error, {:invalid, _}} = Cgroup.add(group, -1)
      assert {:error, {:invalid, _}} = Cgroup.add(group, "1")
      assert {:error, {:invalid, _}} = Cgroup.remove(group, 0)
      assert Cgroup.pids(group) == {:ok, []}
    end
  end

  describe "set/2 and get/2" do
    test "typed limits go in and come back the same", %{name: name, layout: layout} do
      {:ok, group} = Cgroup.create(name, controllers: ["memory", "pids", "cpu"])

      limits = %{
        memory_max: 64 * 1024 * 1024,
        memory_high: 32 * 1024 * 1024,
        pids_max: 20,
        cpu_max: {50_000, 100_000},
        cpu_weight: 200
      }

      assert Cgroup.set(group, limits) == :ok
      for {key, value} <- limits, do: assert(Cgroup.get(group, key) == {:ok, value})

      assert Cgroup.set(group, memory_max: :max, pids_max: :max, cpu_max: :max) == :ok
      assert Cgroup.get(group, :memory_max) == {:ok, :max}
      assert Cgroup.get(group, :pids_max) == {:ok, :max}
      assert Cgroup.get(group, :cpu_max) == {:ok, {:max, 100_000}}

      if layout.layout != :v2 do
        assert Cgroup.set(group, memory_max: 4096 * 1024) == :ok
        assert Cgroup.read(group, "memory.limit_in_bytes") == {:ok, "4194304\n"}
        assert Cgroup.set(group, io_weight: 100) == {:error, {:unsupported, "io_weight"}}
        assert Cgroup.get(group, :memory_min) == {:error, {:unsupported, "memory_min"}}
      end
    end

    test "bad keys, values and missing controllers are errors", %{name: name, layout: layout} do
      {:ok, group} = Cgroup.create(name, controllers: ["pids"])

      assert {:error, {:invalid, message}} = Cgroup.set(group, %{nope: 1})
      assert message =~ ":nope"
      assert {:error, {:invalid, _}} = Cgroup.set(group, %{pids_max: -1})
      assert {:error, {:invalid, _}} = Cgroup.set(group, %{pids_max: "20"})
      assert {:error, {:invalid, _}} = Cgroup.set(group, %{cpu_max: {500, 100_000}})
      assert {:error, {:invalid, _}} = Cgroup.set(group, %{cpuset_cpus: "0-3;5"})
      assert {:error, {:invalid, _}} = Cgroup.set(group, "pids_max=20")
      assert {:error, {:invalid, _}} = Cgroup.get(group, :nope)

      if layout.layout != :v2 do
        assert Cgroup.set(group, cpu_max: {50_000, 100_000}) ==
                 {:error, {:missing_controller, "cpu"}}

        assert Cgroup.get(group, :memory_max) == {:error, {:missing_controller, "memory"}}
      end

      assert Cgroup.get(group, :pids_max) == {:ok, :max}
    end
  end

  describe "read/2 and write/3" do
    test "raw files, with validated names", %{name: name} do
      {:ok, group} = Cgroup.create(name, controllers: ["pids"])

      assert Cgroup.write(group, "pids.max", 7) == :ok
      assert Cgroup.read(group, "pids.max") == {:ok, "7\n"}
      assert Cgroup.write(group, "pids.max", "max") == :ok
      assert {:ok, "populated 0\n" <> _} = Cgroup.read(group, "cgroup.events")

      assert Cgroup.read(group, "pids.nope") == {:error, :enoent}
      assert Cgroup.write(group, "pids.nope", "1") == {:error, :enoent}
      assert Cgroup.write(group, "pids.max", "lots") == {:error, :einval}

      for bad <- ["../pids.max", "pids.max/x", "a/b.c", "..", "pids..max", "tasks", "", "pids.\n"] do
        assert {:error, {:invalid, _}} = Cgroup.read(group, bad), inspect(bad)
        assert {:error, {:invalid, _}} = Cgroup.write(group, bad, "1"), inspect(bad)
      end

      assert {:error, {:invalid, _}} = Cgroup.read(group, <<"pids.", 0xFF>>)
    end
  end

  describe "stats/1" do
    test "MuonTrap 2's keys, counted for the processes inside", %{name: name} do
      {:ok, group} = Cgroup.create(name, controllers: ["memory", "pids"])
      :ok = Cgroup.add(group, sleeper())
      :ok = Cgroup.add(group, sleeper())

      assert {:ok, stats} = Cgroup.stats(group)

      assert stats |> Map.keys() |> Enum.sort() ==
               Enum.sort([
                 :memory_peak,
                 :memory_current,
                 :oom_kills,
                 :cpu_usage_usec,
                 :user_usec,
                 :system_usec,
                 :pids_current,
                 :pids_peak,
                 :pids_limit_hits
               ])

      assert stats.pids_current == 2
      assert stats.oom_kills == 0
      assert stats.pids_limit_hits == 0
      assert is_integer(stats.memory_current) and is_integer(stats.memory_peak)
      assert is_integer(stats.cpu_usage_usec) and is_integer(stats.user_usec)
    end
  end

  describe "freeze/1, thaw/1 and kill/1" do
    test "freezes and thaws every process", %{name: name, layout: layout} do
      {:ok, group} = Cgroup.create(name, controllers: ["freezer"])
      pids = [sleeper(), sleeper()]
      for pid <- pids, do: :ok = Cgroup.add(group, pid)

      assert Cgroup.freeze(group) == :ok
      assert frozen?(group, layout)
      assert Cgroup.thaw(group) == :ok
      refute frozen?(group, layout)
      assert OSProc.alive(pids) == pids
    end

    test "kills every process, pid by pid, within a second", %{name: name} do
      {:ok, group} = Cgroup.create(name)
      pids = [sleeper(), sleeper(), sleeper()]
      for pid <- pids, do: :ok = Cgroup.add(group, pid)

      deadline = System.monotonic_time(:millisecond) + 1000
      assert Cgroup.kill(group) == :ok
      gone_within(pids, deadline)
      assert Cgroup.pids(group) == {:ok, []}
      assert Cgroup.kill(group) == :ok
    end
  end

  defp frozen?(group, %{layout: :v1}),
    do: Cgroup.read(group, "freezer.state") == {:ok, "FROZEN\n"}

  defp frozen?(group, _layout) do
    {:ok, events} = Cgroup.read(group, "cgroup.events")
    events =~ "frozen 1"
  end

  defp os_pid, do: String.to_integer(System.pid())

  describe "errors never crash the VM" do
    test "bad names are {:invalid, _}", %{name: name} do
      for bad <- ["../x", "#{name}/../..", "/", "", "a//b", "a/./b", "a\nb", "a\0b", <<0xFF>>] do
        assert {:error, {:invalid, _}} = Cgroup.create(bad), inspect(bad)
        assert {:error, {:invalid, _}} = Cgroup.open(bad), inspect(bad)
      end
    end

    test "a deleted handle answers :enoent everywhere", %{name: name} do
      {:ok, group} = Cgroup.create(name)
      :ok = Cgroup.delete(group)

      for result <- [
            Cgroup.add(group, os_pid()),
            Cgroup.remove(group, os_pid()),
            Cgroup.pids(group),
            Cgroup.set(group, pids_max: 1),
            Cgroup.get(group, :pids_max),
            Cgroup.read(group, "cgroup.procs"),
            Cgroup.write(group, "cgroup.procs", "1"),
            Cgroup.stats(group),
            Cgroup.freeze(group),
            Cgroup.thaw(group),
            Cgroup.kill(group),
            Cgroup.delete(group, kill: true)
          ] do
        assert result == {:error, :enoent}
      end
    end

    test "permission errors come back as :eacces and :unavailable", %{name: name} do
      {:ok, group} = Cgroup.create(name, controllers: ["pids"])
      setpriv = System.find_executable("setpriv") || flunk("setpriv (util-linux) is needed")
      elixir = System.find_executable("elixir") || flunk("elixir is not on PATH")
      ebin = Path.dirname(:code.which(Cgroup))

      script = """
      {:ok, g} = Corral.Cgroup.open(#{inspect(name)})
      pid = String.to_integer(System.pid())
      IO.puts(inspect([
        Corral.Cgroup.add(g, pid),
        Corral.Cgroup.write(g, "pids.max", "5"),
        Corral.Cgroup.delete(g),
        Corral.Cgroup.create(#{inspect(name <> "/sub")}),
        Corral.Cgroup.available?()
      ]))
      """

      {output, 0} =
        System.cmd(
          setpriv,
          ["--reuid=65534", "--regid=65534", "--clear-groups", elixir, "-pa", ebin, "-e", script],
          env: [{"HOME", System.tmp_dir!()}],
          stderr_to_stdout: true
        )

      assert output =~
               "[{:error, :eacces}, {:error, :eacces}, {:error, :eacces}, " <>
                 "{:error, :unavailable}, false]"

      assert Enum.all?(group.dirs, &File.dir?/1)
      assert Cgroup.read(group, "pids.max") == {:ok, "max\n"}
    end
  end

  describe "cleanup/1" do
    test "kills and removes what a SIGKILLed helper left behind" do
      argv =
        ~w(--port --protocol 1 --stdout null --stderr null --cgroup-set pids_max=100 --) ++
          [System.find_executable("sh"), "-c", "sleep 1000 & sleep 1000 & wait"]

      {:ok, port} = Helper.open(Helper.helper_path(), argv)

      assert_receive {^port, {:data, frame}}, 10_000
      assert {:ok, {:started, %{paths: [_ | _] = dirs, os_pid: child}}} = Proto.decode(frame)
      [v2_dir | _] = dirs
      pids = OSProc.wait_for_pids(Path.join(v2_dir, "cgroup.procs"), 3)

      on_exit(fn ->
        OSProc.kill(pids)
        Cgroup.cleanup(dirs)
      end)

      {:os_pid, helper} = Port.info(port, :os_pid)
      {_, 0} = System.cmd("kill", ["-KILL", Integer.to_string(helper)])
      assert_receive {^port, {:exit_status, 137}}, 5000
      refute OSProc.alive?(helper)
      # The child dies with its helper (PR_SET_PDEATHSIG); its own children
      # outlive the helper until cleanup.
      assert OSProc.wait_gone([child], 1000) == []
      grandchildren = pids -- [child]
      assert length(grandchildren) == 2

      assert OSProc.alive(grandchildren) == grandchildren,
             "the grandchildren should outlive the helper until cleanup"

      deadline = System.monotonic_time(:millisecond) + 1000
      assert Cgroup.cleanup(dirs) == :ok
      gone_within(pids, deadline)

      for dir <- dirs do
        refute File.exists?(dir)
        refute Path.basename(dir) in File.ls!(Path.dirname(dir))
      end

      assert Cgroup.cleanup(dirs) == :ok
    end

    test "refuses paths that are not cgroup directories" do
      assert Cgroup.cleanup([]) == :ok
      assert {:error, {:invalid, _}} = Cgroup.cleanup(["/etc"])
      assert {:error, {:invalid, _}} = Cgroup.cleanup(["/sys/fs/cgroup/unified/../memory"])
      assert {:error, {:invalid, _}} = Cgroup.cleanup([:nope])
    end
  end
end

defmodule Corral.CgroupApiPureTest do
  # The parts of Corral.Cgroup that need no cgroup: the encoding of limit
  # terms into the text corral_cgroup parses.
  use ExUnit.Case, async: true

  alias Corral.Cgroup

  test "limit terms become corral_cgroup's set_str text, in order" do
    assert Cgroup.limit_pairs(
             memory_max: 67_108_864,
             memory_high: :max,
             memory_oom_group: true,
             cpu_idle: false,
             cpu_max: {50_000, 100_000},
             cpu_weight: 100,
             io_weight: 10_000,
             pids_max: 20,
             cpuset_cpus: "0-1",
             cpuset_mems: "0"
           ) ==
             {:ok,
              [
                {"memory_max", "67108864"},
                {"memory_high", "max"},
                {"memory_oom_group", "1"},
                {"cpu_idle", "0"},
                {"cpu_max", "50000 100000"},
                {"cpu_weight", "100"},
                {"io_weight", "10000"},
                {"pids_max", "20"},
                {"cpuset_cpus", "0-1"},
                {"cpuset_mems", "0"}
              ]}

    assert Cgroup.limit_pairs(%{cpu_max: :max}) == {:ok, [{"cpu_max", "max"}]}
    assert Cgroup.limit_pairs(%{cpu_max: {:max, 20_000}}) == {:ok, [{"cpu_max", "max 20000"}]}
    assert Cgroup.limit_pairs(%{}) == {:ok, []}
  end

  test "wrong keys and types are {:invalid, message} naming them" do
    for {limits, fragment} <- [
          {%{memory_max: -1}, ":memory_max"},
          {%{memory_max: 1.5}, ":memory_max"},
          {%{memory_oom_group: 1}, ":memory_oom_group"},
          {%{cpu_max: {0, 100_000}}, ":cpu_max"},
          {%{cpu_max: 50_000}, ":cpu_max"},
          {%{cpu_weight: 0}, ":cpu_weight"},
          {%{cpuset_cpus: 3}, ":cpuset_cpus"},
          {%{"memory_max" => 1}, "\"memory_max\""},
          {%{memory: 1}, ":memory"},
          {[:memory_max], ":memory_max"},
          {"memory_max=1", "memory_max=1"}
        ] do
      assert {:error, {:invalid, message}} = Cgroup.limit_pairs(limits)
      assert message =~ fragment, "#{inspect(limits)}: #{message}"
    end
  end

  test "without the NIF's answer, nothing raises" do
    assert is_boolean(Cgroup.available?())
  end
end

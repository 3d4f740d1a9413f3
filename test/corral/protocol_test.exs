defmodule Corral.ProtocolTest do
  use ExUnit.Case, async: true

  alias Corral.Options
  alias Corral.Client
  alias Corral.Helper
  alias Corral.Protocol, as: Port
  alias Corral.Test.Golden

  # The frame each golden vector holds, written out independently of the
  # decoder (docs/protocol.md, "Golden vectors").
  @expected %{
    "started.hex" =>
      {:started,
       %{
         version: 1,
         os_pid: 4242,
         containment: :hybrid,
         paths: ["/sys/fs/cgroup/unified/corral-1", "/sys/fs/cgroup/memory/corral-1"]
       }},
    "started_no_subreaper.hex" =>
      {:started,
       %{
         version: 1,
         os_pid: 4242,
         containment: :cgroup_v2_no_subreaper,
         paths: ["/sys/fs/cgroup/unified/corral-1"]
       }},
    "stdout.hex" => {:stdout, "hello\n"},
    "stderr.hex" => {:stderr, "oops"},
    "written.hex" => {:stdin_written, 65_536},
    "exit_code.hex" =>
      {:exit,
       %{
         reason: :exit,
         exit_status: 3,
         exit_code: 3,
         signal: nil,
         signal_name: nil,
         usage: %{
           wall_time_us: 1_500_000,
           user_time_us: 250_000,
           system_time_us: 50_000,
           peak_memory: 67_108_864,
           peak_processes: 4,
           oom_kills: 0,
           pids_limit_hits: 0,
           containment: :hybrid
         }
       }},
    "exit_signal.hex" =>
      {:exit,
       %{
         reason: :signal,
         exit_status: 137,
         exit_code: nil,
         signal: 9,
         signal_name: "SIGKILL",
         usage: %{
           wall_time_us: 2000,
           user_time_us: nil,
           system_time_us: nil,
           peak_memory: nil,
           peak_processes: nil,
           oom_kills: nil,
           pids_limit_hits: nil,
           containment: nil
         }
       }},
    "failed.hex" =>
      {:failed,
       %{
         version: 1,
         errno: 2,
         errno_name: "enoent",
         stage: "exec",
         message: "/no/such: No such file or directory"
       }},
    "ack.hex" => {:ack, 65_536},
    "stdin.hex" => {:stdin, "hi"},
    "close_stdin.hex" => :close_stdin,
    "signal.hex" => {:signal, "SIGHUP"},
    "stop.hex" => :stop,
    "run.hex" => {:run, ["--cd", "/tmp", "--", "/bin/echo", "hi"]},
    "resize.hex" => {:resize, 100, 40},
    "pipe.hex" => {:pipe, :stdout, 4242, 9, 1_048_576},
    "pipe_read.hex" => {:pipe_done, :stdout, :read},
    "pipe_refused.hex" => {:pipe_done, :stderr, :refused}
  }

  test "every golden vector has an expected frame here" do
    assert Golden.names() == @expected |> Map.keys() |> Enum.sort()
  end

  for {name, expected} <- @expected do
    @name name
    @frame expected

    test "decodes and re-encodes #{name}" do
      bytes = Golden.read!(@name)
      <<len::32, body::binary>> = bytes
      assert len == byte_size(body)

      assert Port.decode(body) == {:ok, @frame}
      assert Port.frame(Port.encode(@frame)) == bytes
    end
  end

  describe "decode/1" do
    test "skips unknown field keys and keeps known ones after them" do
      body = <<?X, 0, 99, 3::16, "new", 1, 8::16, 5::64, 200, 0::16>>
      assert {:ok, {:exit, %{reason: :exit, exit_status: 5}}} = Port.decode(body)
    end

    test "keeps an unknown exit reason and containment as integers" do
      body = <<?X, 42, 1, 8::16, 1::64, 12, 8::16, 9::64>>

      assert {:ok, {:exit, %{reason: 42, exit_status: 1, usage: %{containment: 9}}}} =
               Port.decode(body)

      assert {:ok, {:started, %{containment: 9, paths: []}}} = Port.decode(<<?S, 1, 10::32, 9>>)
    end

    test "reads a started frame without cgroup paths" do
      assert Port.decode(<<?S, 1, 77::32, 0>>) ==
               {:ok, {:started, %{version: 1, os_pid: 77, containment: :none, paths: []}}}

      assert Port.decode(<<?S, 1, 77::32, 4>>) ==
               {:ok,
                {:started, %{version: 1, os_pid: 77, containment: :process_group, paths: []}}}
    end

    test "rejects truncated and malformed frames" do
      assert {:error, :empty_frame} = Port.decode(<<>>)
      assert {:error, {:unknown_tag, ?Z}} = Port.decode("Zhello")
      assert {:error, {:bad_frame, _}} = Port.decode(<<?S, 1, 0, 0>>)
      assert {:error, {:bad_frame, _}} = Port.decode(<<?A, 1, 2>>)
      assert {:error, {:bad_frame, _}} = Port.decode(<<?X>>)
      assert {:error, {:truncated_fields, _}} = Port.decode(<<?X, 0, 1, 0, 8, 0, 0>>)
      assert {:error, {:bad_field, :exit_status, _}} = Port.decode(<<?X, 0, 1, 0::16>>)
    end
  end

  # A VM that reads output pipes itself says so to every helper.
  @direct if Corral.Helper.direct_output?(), do: ["--direct-output"], else: []

  describe "argv/3" do
    test "defaults: no stdin, stdout piped, stderr inherited" do
      assert Helper.argv("/bin/echo", ["hi"], %Options{}) ==
               [
                 "--port",
                 "--protocol",
                 "1",
                 "--stdin=null",
                 "--stdout=pipe",
                 "--stderr=inherit",
                 "--stdio-window=1048576"
               ] ++
                 @direct ++
                 [
                   "--grace=500ms",
                   "--",
                   "/bin/echo",
                   "hi"
                 ]
    end

    test "every option" do
      opts =
        Options.new!(
          cd: "/tmp",
          env: [{"A", "1"}, {"B", nil}],
          arg0: "zero",
          uid: "nobody",
          gid: 65_534,
          groups: [1, "adm"],
          input: "x",
          stderr_to_stdout: true,
          stdio_window: 4096,
          delay_to_sigkill: 50,
          timeout: 1000
        )

      assert Helper.argv("/bin/cat", ["-"], opts) ==
               ~w(--port --protocol 1 --cd=/tmp --env=A=1 --unset=B --arg0=zero
                  --uid=nobody --gid=65534 --group=1 --group=adm --stdin=pipe
                  --stdout=pipe --stderr=stdout --stdio-window=4096) ++
                 @direct ++ ~w(--grace=50ms --timeout=1000ms -- /bin/cat -)
    end

    test "cgroup options become --cgroup-* flags, limits in the helper's order" do
      opts =
        Options.new!(
          cgroup_base: "corral-tests",
          cgroup: [
            pids_max: :max,
            cpu_max: {50_000, 100_000},
            memory_oom_group: true,
            cpu_idle: false,
            memory_max: 67_108_864,
            cpuset_cpus: "0-1"
          ],
          cgroup_controllers: ["memory"],
          cgroup_sets: [{"memory", "memory.limit_in_bytes", 268_435_456}]
        )

      argv = Helper.argv("/bin/true", [], opts)
      [_ | tail] = Enum.drop_while(argv, &(&1 != "--grace=500ms"))

      assert tail == [
               "--cgroup-base=corral-tests",
               "--cgroup-set=cpuset_cpus=0-1",
               "--cgroup-set=memory_max=67108864",
               "--cgroup-set=memory_oom_group=1",
               "--cgroup-set=cpu_max=50000 100000",
               "--cgroup-set=cpu_idle=0",
               "--cgroup-set=pids_max=max",
               "--cgroup-controller=memory",
               "--cgroup-raw=memory:memory.limit_in_bytes=268435456",
               "--",
               "/bin/true"
             ]

      assert "--cgroup-path=a/b" in Helper.argv("/bin/true", [], Options.new!(cgroup_path: "a/b"))

      assert "--cgroup-set=cpu_max=max 1000" in Helper.argv(
               "/bin/true",
               [],
               Options.new!(cgroup: %{cpu_max: {:max, 1000}})
             )

      assert "--cgroup-set=cpu_max=max" in Helper.argv(
               "/bin/true",
               [],
               Options.new!(cgroup: %{cpu_max: :max})
             )
    end

    test "limits of the whole tree: durations with ms, sizes in bytes" do
      opts =
        Options.new!(
          timeout: 300,
          cpu_time: 1000,
          memory: 64 * 1_048_576,
          max_processes: 20,
          idle_timeout: 500,
          no_cgroup: true
        )

      argv = Helper.argv("/bin/true", [], opts)
      [_ | tail] = Enum.drop_while(argv, &(&1 != "--grace=500ms"))

      assert tail ==
               ~w(--timeout=300ms --cpu-time=1000ms --memory-limit=67108864
                  --max-processes=20 --idle-timeout=500ms --no-cgroup -- /bin/true)

      refute Enum.any?(Helper.argv("/bin/true", [], %Options{}), &(&1 =~ ~r/limit|cpu|idle|no-c/))
    end

    test "separate_stderr pipes stderr, tagged apart" do
      argv = Helper.argv("/bin/true", [], Options.new!(separate_stderr: true))
      assert ["--stdout=pipe", "--stderr=pipe"] in Enum.chunk_every(argv, 2, 1)
    end

    test "capture_stderr_only discards stdout and pipes stderr" do
      argv = Helper.argv("/bin/true", [], Options.new!(capture_stderr_only: true))
      assert ["--stdout=null", "--stderr=pipe"] in Enum.chunk_every(argv, 2, 1)
    end

    test "arguments after -- are passed as they are" do
      argv = Helper.argv("/bin/echo", ["--", "--cd", ""], %Options{})
      assert Enum.drop_while(argv, &(&1 != "--")) == ["--", "/bin/echo", "--", "--cd", ""]
    end
  end

  describe "flow control and stdin" do
    test "acks in batches of a quarter window, at least one byte" do
      assert Client.ack_threshold(1_048_576) == 262_144
      assert Client.ack_threshold(3) == 1
      assert Client.ack_threshold(1) == 1
    end

    test "stdin frames carry at most 64 KiB" do
      data = :binary.copy("a", 65_536 * 2 + 1)
      assert {c1, rest} = Port.split_stdin(data)
      assert byte_size(c1) == 65_536
      assert {c2, rest} = Port.split_stdin(rest)
      assert byte_size(c2) == 65_536
      assert Port.split_stdin(rest) == {"a", ""}
      assert Port.split_stdin("") == {"", ""}
    end

    test "encodes BEAM to helper frames" do
      assert IO.iodata_to_binary(Port.encode({:ack, 1})) == <<?A, 0, 0, 0, 1>>
      assert IO.iodata_to_binary(Port.encode({:stdin, ["a", ?b]})) == "Iab"
      assert IO.iodata_to_binary(Port.encode({:signal, "TERM"})) == "KTERM"
    end
  end
end

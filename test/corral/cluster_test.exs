defmodule Corral.ClusterTest do
  # Programs on other nodes (`:node`, `node: :any`): peers started with
  # :peer on this machine, running this build's Corral.
  use ExUnit.Case, async: false

  @moduletag :distribution

  alias Corral.Test.OSProc

  setup_all do
    unless Node.alive?() do
      {_, 0} = System.cmd("epmd", ["-daemon"])
      name = :"corral_test_#{System.unique_integer([:positive])}"
      {:ok, _} = :net_kernel.start([name, :shortnames])
      on_exit(fn -> :net_kernel.stop() end)
    end

    :ok
  end

  # A peer node with this VM's code paths, running :corral.
  defp peer(schedulers \\ 1) do
    paths = Enum.flat_map(:code.get_path(), &[~c"-pa", &1])
    args = paths ++ [~c"+S", ~c"#{schedulers}"]
    name = :"corral_peer_#{System.unique_integer([:positive])}"
    {:ok, pid, node} = :peer.start(%{name: name, args: args, wait_boot: 60_000})
    {:ok, _} = :erpc.call(node, Application, :ensure_all_started, [:corral])
    on_exit(fn -> stop_peer(pid) end)
    {pid, node}
  end

  defp stop_peer(pid) do
    :peer.stop(pid)
  catch
    :exit, _ -> :ok
  end

  # The pids from `pid` up to init, by /proc/<pid>/stat's ppid.
  defp ancestors(pid) do
    case File.read("/proc/#{pid}/stat") do
      {:ok, stat} ->
        [_, after_comm] = String.split(stat, ") ", parts: 2)
        ppid = after_comm |> String.split(" ") |> Enum.at(1) |> String.to_integer()
        if ppid <= 1, do: [pid], else: [pid | ancestors(ppid)]

      {:error, _} ->
        [pid]
    end
  end

  defp await_pids(path, count) do
    OSProc.wait_for_pids(path, count, 10_000) || flunk("no pids in #{path}")
  end

  test "cmd/3 and run/3 with :node run the program on that node" do
    {_, node} = peer()
    remote_vm = :erpc.call(node, :os, :getpid, []) |> List.to_integer()
    local_vm = :os.getpid() |> List.to_integer()
    path = OSProc.tmp_path("remote_pid")

    # The program waits until its ancestry has been read.
    task =
      Task.async(fn ->
        Corral.cmd("sh", ["-c", "hostname; echo $$ > #{path}; echo $$; sleep 0.5"], node: node)
      end)

    [pid] = await_pids(path, 1)
    chain = ancestors(pid)
    assert remote_vm in chain
    refute local_vm in chain

    {output, 0} = Task.await(task, 30_000)
    [hostname, printed] = String.split(output, "\n", trim: true)
    assert hostname == output_of("hostname")
    assert String.to_integer(printed) == pid

    assert {:ok, %Corral.Result{exit_status: 3, reason: :exit, output: "out\n"}} =
             Corral.run("sh", ["-c", "echo out; exit 3"], node: node)

    assert {"abc", 0} = Corral.cmd("cat", [], node: node, input: "abc")

    assert {["a\n", "b\n"], 0} =
             Corral.cmd("sh", ["-c", "echo a; sleep 0.1; echo b"], node: node, into: [])

    assert {:error, :enoent} = Corral.run("corral-no-such-program", [], node: node)

    assert_raise ErlangError, ~r/enoent/, fn ->
      Corral.cmd("corral-no-such-program", [], node: node)
    end

    assert {"", :timeout} = Corral.cmd("sleep", ["10"], node: node, timeout: 100)
  end

  defp output_of(program) do
    {out, 0} = System.cmd(program, [])
    String.trim(out)
  end

  test "a remote stream is exact and the caller's memory stays bounded" do
    {_, node} = peer()
    bytes = 100_000_000
    :erlang.garbage_collect()
    before = :erlang.memory(:total)
    parent = self()

    sampler =
      spawn_link(fn ->
        sample = fn sample, peak ->
          receive do
            :stop -> send(parent, {:peak, peak})
          after
            5 -> sample.(sample, max(peak, :erlang.memory(:total)))
          end
        end

        sample.(sample, before)
      end)

    {counted, 0} =
      Corral.cmd("head", ["-c", "#{bytes}", "/dev/zero"], node: node, into: %Corral.Test.Counter{})

    send(sampler, :stop)
    assert_receive {:peak, peak}, 5000
    assert counted == bytes
    # A window (1 MiB) and the chunk being collected, with room for the
    # test's own garbage: far below the 100 MB that went through.
    assert peak - before < 16_000_000, "peak #{peak - before} bytes above the start"
  end
end

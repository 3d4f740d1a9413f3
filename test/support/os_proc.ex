defmodule Corral.Test.OSProc do
  @moduledoc false
  # OS process liveness for tests, read from /proc, and polling with a
  # deadline instead of sleeping and hoping.

  @poll_ms 10

  @doc "True while `pid` exists and is not a zombie."
  def alive?(pid) do
    case File.read("/proc/#{pid}/stat") do
      # The state follows the command name, which may itself hold ") ".
      {:ok, stat} -> stat |> String.split(") ") |> List.last() |> String.first() != "Z"
      {:error, _} -> false
    end
  end

  @doc "The pids still alive among `pids`."
  def alive(pids), do: Enum.filter(pids, &alive?/1)

  @doc "Polls `fun` until it returns a truthy value or `timeout_ms` passes."
  def wait_until(fun, timeout_ms) do
    deadline = System.monotonic_time(:millisecond) + timeout_ms
    poll(fun, deadline)
  end

  defp poll(fun, deadline) do
    cond do
      result = fun.() ->
        result

      System.monotonic_time(:millisecond) >= deadline ->
        nil

      true ->
        Process.sleep(@poll_ms)
        poll(fun, deadline)
    end
  end

  @doc "Waits until `path` holds `count` pids, one a line, and returns them."
  def wait_for_pids(path, count, timeout_ms \\ 5000) do
    wait_until(
      fn ->
        pids = read_pids(path)
        length(pids) >= count and pids
      end,
      timeout_ms
    ) ||
      raise "#{path} did not get #{count} pids in #{timeout_ms} ms: #{inspect(read_pids(path))}"
  end

  @doc "The pids in `path`, one a line; [] while it does not exist."
  def read_pids(path) do
    case File.read(path) do
      {:ok, text} -> for line <- String.split(text, "\n"), line != "", do: String.to_integer(line)
      {:error, _} -> []
    end
  end

  @doc "Waits up to `timeout_ms` for every pid to be gone; returns those left."
  def wait_gone(pids, timeout_ms) do
    wait_until(fn -> alive(pids) == [] end, timeout_ms)
    alive(pids)
  end

  @doc "SIGKILLs the pids still alive: cleanup for a test that failed."
  def kill(pids) do
    for pid <- alive(pids), do: System.cmd("kill", ["-9", Integer.to_string(pid)])
    :ok
  end

  @doc """
  The OS pid of the helper whose port is connected to `owner`, waiting up
  to `timeout_ms` for it to appear; nil if none does.
  """
  def helper_of(owner, timeout_ms \\ 5000) do
    wait_until(
      fn -> Enum.find(Port.list(), &(Port.info(&1, :connected) == {:connected, owner})) end,
      timeout_ms
    )
    |> case do
      nil -> nil
      port -> with {:os_pid, p} <- Port.info(port, :os_pid), do: p
    end
  end

  @doc """
  Sets `var` in the VM's environment, which every helper started from now
  on inherits, for the rest of the calling test. On exit it is put back as
  it was, and one cmd retires the pooled helpers that saw it
  (Corral.Pool), so the next module finds fresh ones waiting. Call it from
  `setup` of a module that is not async.
  """
  def helper_env(var, value) do
    before = System.get_env(var)
    System.put_env(var, value)

    ExUnit.Callbacks.on_exit(fn ->
      if before, do: System.put_env(var, before), else: System.delete_env(var)
      {"", 0} = Corral.cmd("true", [])
      Corral.Pool.shrink()
      wait_until(fn -> Corral.Pool.waiting() == 2 end, 5000)
    end)

    :ok
  end

  @doc """
  A fresh temporary path for this test. The VM's OS pid keeps it apart
  from the paths of other test VMs running at the same time (unique
  integers start again in each VM), and a file left there by a VM that
  had this pid before is removed.
  """
  def tmp_path(name) do
    unique = "#{:os.getpid()}-#{System.unique_integer([:positive])}"
    path = Path.join(System.tmp_dir!(), "corral-test-#{unique}-#{name}")
    File.rm_rf!(path)
    path
  end

  @doc """
  Runs `code` in a second VM with this project's code and helper until
  the `count` pids it starts write themselves to `pids_file`, then `kill
  -9`s that VM. Returns the pids, those alive just before the kill, the
  VM's exit status (`:timeout` after 5 s) and those still alive 1 s after
  it exited. Whatever it started is killed on the way out.
  """
  def kill_vm_running(code, pids_file, count) do
    vm_file = tmp_path("vm-pid")
    ebin = Path.dirname(:code.which(Corral))

    vm =
      Port.open({:spawn_executable, System.find_executable("elixir")}, [
        :binary,
        :exit_status,
        args: ["-pa", ebin, "-e", "File.write!(#{inspect(vm_file)}, System.pid())\n" <> code],
        env: [{~c"CORRAL_HELPER", String.to_charlist(Corral.Helper.helper_path())}]
      ])

    [vm_pid] = wait_for_pids(vm_file, 1, 20_000)

    try do
      pids = wait_for_pids(pids_file, count, 20_000)
      before = alive(pids)
      {_, 0} = System.cmd("kill", ["-9", Integer.to_string(vm_pid)])

      status =
        receive do
          {^vm, {:exit_status, status}} -> status
        after
          5000 -> :timeout
        end

      %{pids: pids, before: before, status: status, left: wait_gone(pids, 1000)}
    after
      kill([vm_pid | read_pids(pids_file)])
      File.rm(vm_file)
    end
  end
end

# MuonTrap, driven the way MuonTrap.cmd/3 (2.0.0-rc.1, lib/muontrap/port.ex)
# drives its C port program, so the benches measure its mechanism and not
# a guess at it. Nothing of MuonTrap is vendored: MUONTRAP_PATH names a
# `muontrap` binary built from its source by bench/muontrap-build.
#
# What MuonTrap.cmd does, and what cmd/3 here does the same way:
#   * System.find_executable/1 on the command (MuonTrap.Options.validate/4);
#   * Port.open({:spawn_executable, muontrap}, [:use_stdio, :exit_status,
#     :binary, :hide, args: ["--capture-output", "--", abs_cmd | args]])
#     (no cgroup options: this machine's hybrid layout has no cgroup v2 at
#     /sys/fs/cgroup, which muontrap's --group requires);
#   * each {port, {:data, data}} goes into the collectable and is acked at
#     once with MuonTrap.Port.encode_acks/1's bytes: one byte per 256 bytes
#     acknowledged, value n-1 for n bytes (muontrap's default window is
#     10,240 bytes, --stdio-window unset as in MuonTrap.cmd);
#   * {port, {:exit_status, status}} ends the run.
# When the owner dies, the port closes, muontrap sees POLLHUP on its stdin,
# SIGTERMs its direct child and SIGKILLs it after --delay-to-sigkill (500 ms
# by default). Without a cgroup it signals nothing else: grandchildren, in
# a new session or not, are left running.

defmodule Bench.MuonTrap do
  @skipped "MuonTrap: skipped (set MUONTRAP_PATH)"

  @doc "The muontrap binary from MUONTRAP_PATH, or nil (and says so) when absent."
  def path do
    case System.get_env("MUONTRAP_PATH") do
      p when is_binary(p) and p != "" ->
        if Path.basename(p) == "muontrap" and File.regular?(p) do
          p
        else
          IO.puts("MuonTrap: skipped (MUONTRAP_PATH=#{p} is not a built `muontrap` binary)")
          nil
        end

      _ ->
        IO.puts(@skipped)
        nil
    end
  end

  @doc "Like MuonTrap.cmd(cmd, args, into: into): {collected, exit_status}."
  def cmd(muontrap, cmd, args, opts \\ []) do
    abs = System.find_executable(cmd) || :erlang.error(:enoent, [cmd, args, opts])

    port =
      Port.open({:spawn_executable, String.to_charlist(muontrap)}, [
        :use_stdio,
        :exit_status,
        :binary,
        :hide,
        args: ["--capture-output", "--", abs | args]
      ])

    {initial, fun} = Collectable.into(Keyword.get(opts, :into, ""))

    try do
      loop(port, initial, fun)
    catch
      kind, reason ->
        fun.(initial, :halt)
        :erlang.raise(kind, reason, __STACKTRACE__)
    else
      {acc, status} -> {fun.(acc, :done), status}
    end
  end

  defp loop(port, acc, fun) do
    receive do
      {^port, {:data, data}} ->
        ack(port, byte_size(data))
        loop(port, fun.(acc, {:cont, data}), fun)

      {^port, {:exit_status, status}} ->
        {acc, status}
    end
  end

  defp ack(port, count) do
    Port.command(port, encode_acks(count))
  rescue
    # The port may close between the data and its exit status.
    ArgumentError -> true
  end

  # MuonTrap.Port.encode_acks/1.
  def encode_acks(count) when count > 0 do
    case {div(count, 256), rem(count, 256)} do
      {0, partial} -> <<partial - 1>>
      {full, 0} -> :binary.copy(<<255>>, full)
      {full, partial} -> [:binary.copy(<<255>>, full), partial - 1]
    end
  end
end

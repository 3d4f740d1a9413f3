defmodule Corral.UidTest do
  # Dropping privileges with :uid: the child must never keep root's group.
  # Checked from the child's /proc/<pid>/status (Uid, Gid, Groups lines).
  use ExUnit.Case, async: true

  @moduletag :root

  setup_all do
    unless File.read!("/proc/self/status") =~ ~r/^Uid:\t0\t/m do
      raise "these tests change the child's uid and need root; " <>
              "run the rest with `mix test --exclude root`"
    end

    :ok
  end

  @helpers [pooled: [], fresh: [parallelism: true]]

  # {uid, gid} of the passwd entries, from /etc/passwd (the test's own view).
  defp passwd do
    for line <- String.split(File.read!("/etc/passwd"), "\n", trim: true),
        [_name, _pw, uid, gid | _] = String.split(line, ":"),
        do: {String.to_integer(uid), String.to_integer(gid)}
  end

  # An unprivileged user whose primary group is not its uid, so that the
  # test tells the passwd group from the uid number.
  defp user_with_other_group do
    Enum.find(passwd(), fn {uid, gid} -> uid != 0 and gid != 0 and gid != uid end) ||
      Enum.find(passwd(), fn {uid, gid} -> uid != 0 and gid != 0 end)
  end

  defp unused_id do
    used = passwd() |> Enum.flat_map(fn {u, g} -> [u, g] end) |> MapSet.new()
    Enum.find(54_321..64_000, &(not MapSet.member?(used, &1)))
  end

  # The Uid, Gid and Groups lines of the child's own status.
  defp ids(opts) do
    {text, 0} = Corral.cmd("grep", ["-E", "^(Uid|Gid|Groups):", "/proc/self/status"], opts)

    for line <- String.split(text, "\n", trim: true), into: %{} do
      [key, values] = String.split(line, ":", parts: 2)
      {key, values |> String.split() |> Enum.map(&String.to_integer/1)}
    end
  end

  for {helper, extra} <- @helpers do
    describe "numeric :uid, #{helper} helper" do
      test "takes the primary group from the passwd entry" do
        {uid, gid} = user_with_other_group()
        ids = ids([uid: uid] ++ unquote(extra))
        assert ids["Uid"] == [uid, uid, uid, uid]
        assert ids["Gid"] == [gid, gid, gid, gid]
        assert ids["Groups"] == []
      end

      test "without a passwd entry needs :gid" do
        id = unused_id()

        assert_raise ArgumentError, ~r/invalid option :uid with value #{id}.*:gid/, fn ->
          Corral.cmd("true", [], [uid: id] ++ unquote(extra))
        end

        assert_raise ArgumentError, ~r/:gid is required/, fn ->
          Corral.run("true", [], [uid: id] ++ unquote(extra))
        end

        ids = ids([uid: id, gid: id] ++ unquote(extra))
        assert ids["Uid"] == [id, id, id, id]
        assert ids["Gid"] == [id, id, id, id]
        assert ids["Groups"] == []
      end
    end
  end
end

defmodule Corral.OptionValuesTest do
  # Option values that could be mistaken for something else on the helper's
  # command line: values that begin with "-" are values, and values that
  # name nothing are refused in Elixir before any helper starts. Each case
  # runs on a pooled helper (the R frame) and on a fresh one (the argv;
  # `parallelism: true` forces a fresh helper).
  use ExUnit.Case, async: true

  alias Corral.Test.Cgroups

  @helpers [pooled: [], fresh: [parallelism: true]]

  # A directory whose name begins with "-", relative to the VM's working
  # directory (a relative :cd is relative to it, as in System.cmd/3).
  setup do
    name = "-corral-dash-#{System.unique_integer([:positive])}"
    File.mkdir!(name)
    on_exit(fn -> File.rmdir(name) end)
    %{dir: name}
  end

  for {helper, extra} <- @helpers do
    describe "values that begin with a dash, #{helper} helper" do
      test ":arg0, the login-shell convention System.cmd/3 supports" do
        opts = [arg0: "-sh"] ++ unquote(extra)
        assert Corral.cmd("sh", ["-c", "echo $0"], opts) == {"-sh\n", 0}
        assert System.cmd("sh", ["-c", "echo $0"], arg0: "-sh") == {"-sh\n", 0}
      end

      test ":cd", %{dir: dir} do
        opts = [cd: dir] ++ unquote(extra)
        assert Corral.cmd("pwd", [], opts) == {Path.join(File.cwd!(), dir) <> "\n", 0}
      end

      # A shell hides variables whose names are not identifiers, so the
      # child reads the environment it was given.
      test ":env keys set and unset" do
        System.put_env("-corral-unset", "1")
        opts = [env: [{"-x", "-1"}, {"-corral-unset", nil}]] ++ unquote(extra)
        {environ, 0} = Corral.cmd("cat", ["/proc/self/environ"], opts)
        vars = String.split(environ, <<0>>)
        assert "-x=-1" in vars
        refute Enum.any?(vars, &String.starts_with?(&1, "-corral-unset="))
      end

      test ":uid, :gid and :groups names are looked up, not parsed" do
        for opt <- [uid: "-nobody", gid: "-nogroup", groups: ["-nogroup"]] do
          assert {:error, {:spawn_failed, :einval, "user"}} =
                   Corral.run("true", [], [opt | unquote(extra)])
        end
      end

      @tag :cgroup
      test ":cgroup_path" do
        if Cgroups.layout() == :none, do: flunk("no cgroup hierarchy here")
        name = "-corral-dash-#{System.unique_integer([:positive])}"
        opts = [cgroup_path: name] ++ unquote(extra)
        {text, 0} = Corral.cmd("cat", ["/proc/self/cgroup"], opts)
        assert text =~ ~r{:/#{name}\n}

        for h <- Cgroups.hierarchies() do
          refute File.exists?(Path.join(h.mount, name)), "#{name} left in #{h.mount}"
        end
      end

      test "an empty :cd is refused before a helper starts" do
        assert_raise ArgumentError, ~r/^invalid option :cd with value "": expected/, fn ->
          Corral.cmd("true", [], [cd: ""] ++ unquote(extra))
        end

        assert_raise ArgumentError, ~r/^invalid option :cd with value "": expected/, fn ->
          Corral.run("true", [], [cd: ""] ++ unquote(extra))
        end
      end
    end
  end
end

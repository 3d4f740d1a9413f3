defmodule Corral.NicePrivilegeTest do
  # :nice below the current value needs privilege. The helper is run as
  # user nobody (setpriv) when the VM is root, so the refusal is real.
  # CORRAL_HELPER is global: not async.
  use ExUnit.Case, async: false

  alias Corral.Test.OSProc

  setup do
    previous = System.get_env("CORRAL_HELPER")
    real = Corral.Helper.helper_path()
    dir = OSProc.tmp_path("unprivileged-helper")
    File.mkdir_p!(dir)
    File.chmod!(dir, 0o755)

    on_exit(fn ->
      if previous,
        do: System.put_env("CORRAL_HELPER", previous),
        else: System.delete_env("CORRAL_HELPER")

      File.rm_rf!(dir)
    end)

    if System.cmd("id", ["-u"]) == {"0\n", 0} do
      wrapper = Path.join(dir, "corral")

      File.write!(wrapper, """
      #!/bin/sh
      exec setpriv --reuid=65534 --regid=65534 --clear-groups #{real} "$@"
      """)

      File.chmod!(wrapper, 0o755)
      System.put_env("CORRAL_HELPER", wrapper)
    end

    :ok
  end

  test "raising the priority without privilege is a start failure, and nothing runs" do
    # parallelism: true, a fresh helper: the pooled ones were started before.
    path = OSProc.tmp_path("ran")

    assert {:error, {:spawn_failed, :eacces, "nice"}} =
             Corral.run("touch", [path], nice: -5, parallelism: true)

    refute File.exists?(path)

    error = catch_error(Corral.cmd("true", [], nice: -5, parallelism: true))
    assert %Corral.Error{reason: {:spawn_failed, :eacces, "nice"}} = error

    # Lowering it needs nothing (19 is the lowest, whatever `nice -n`
    # the tests run under).
    assert {:ok, %Corral.Result{exit_status: 0}} =
             Corral.run("true", [], nice: 19, parallelism: true)
  end
end

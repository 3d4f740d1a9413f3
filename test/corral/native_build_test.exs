defmodule Corral.NativeBuildTest do
  # The Mix compiler in mix.exs (Mix.Tasks.Compile.CorralNative): which Rust
  # target it builds for, which ELF machine it accepts, and what it says
  # when cargo cannot build the crates. `make cross` builds for real.
  use ExUnit.Case, async: true

  alias Mix.Tasks.Compile.CorralNative, as: Compiler

  describe "target/1" do
    test "the host unless a target is named" do
      assert Compiler.target(%{}) == {:ok, nil}
      assert Compiler.target(%{"MIX_TARGET" => "host", "TARGET_ARCH" => "aarch64"}) == {:ok, nil}
    end

    test "CORRAL_TARGET, then CARGO_BUILD_TARGET, then Nerves' variables" do
      nerves = %{
        "MIX_TARGET" => "rpi4",
        "TARGET_ARCH" => "aarch64",
        "TARGET_OS" => "linux",
        "TARGET_ABI" => "gnu"
      }

      assert Compiler.target(nerves) == {:ok, "aarch64-unknown-linux-gnu"}

      assert Compiler.target(Map.put(nerves, "CARGO_BUILD_TARGET", "x86_64-unknown-linux-musl")) ==
               {:ok, "x86_64-unknown-linux-musl"}

      assert nerves
             |> Map.put("CARGO_BUILD_TARGET", "x86_64-unknown-linux-musl")
             |> Map.put("CORRAL_TARGET", "riscv64gc-unknown-linux-gnu")
             |> Compiler.target() == {:ok, "riscv64gc-unknown-linux-gnu"}
    end

    test "Nerves boards map to Rust's triples" do
      board = fn arch, abi, extra ->
        Map.merge(
          %{
            "MIX_TARGET" => "b",
            "TARGET_ARCH" => arch,
            "TARGET_OS" => "linux",
            "TARGET_ABI" => abi
          },
          extra
        )
      end

      assert Compiler.target(board.("arm", "gnueabihf", %{"TARGET_CPU" => "cortex_a53"})) ==
               {:ok, "armv7-unknown-linux-gnueabihf"}

      assert Compiler.target(board.("arm", "gnueabihf", %{"TARGET_CPU" => "arm1176jzf_s"})) ==
               {:ok, "arm-unknown-linux-gnueabihf"}

      assert Compiler.target(board.("arm", "musleabihf", %{})) ==
               {:ok, "armv7-unknown-linux-musleabihf"}

      assert Compiler.target(board.("aarch64", "musl", %{})) ==
               {:ok, "aarch64-unknown-linux-musl"}

      assert Compiler.target(board.("x86_64", "gnu", %{})) == {:ok, "x86_64-unknown-linux-gnu"}

      assert Compiler.target(board.("riscv64", "gnu", %{})) ==
               {:ok, "riscv64gc-unknown-linux-gnu"}
    end

    test "a Nerves target without its variables is an error, not a host build" do
      ExUnit.CaptureIO.capture_io(:stderr, fn ->
        assert {:error, [%{message: message}]} = Compiler.target(%{"MIX_TARGET" => "rpi4"})
        assert message =~ "MIX_TARGET is rpi4"
        assert message =~ "CORRAL_TARGET"
      end)
    end
  end

  test "the helper in priv/ has the host's ELF machine" do
    host = :erlang.system_info(:system_architecture) |> List.to_string()
    want = Compiler.elf_machine_of_triple(host)
    assert is_integer(want)
    assert Compiler.elf_machine(Corral.Helper.helper_path()) == {:ok, want}
    assert Compiler.elf_machine_of_triple("aarch64-unknown-linux-gnu") == 183
    assert Compiler.elf_machine_of_triple("armv7-unknown-linux-gnueabihf") == 40
    assert Compiler.elf_machine(Path.join(File.cwd!(), "mix.exs")) == {:error, :not_elf}
  end

  test "on macOS the NIF cargo builds is the .dylib, installed under the .so name" do
    for triple <- ["x86_64-apple-darwin", "aarch64-apple-darwin", "aarch64-apple-darwin23.4.0"] do
      assert Compiler.artifact_file("libcorral_nif.so", triple) == "libcorral_nif.dylib"
      assert Compiler.artifact_file("corral", triple) == "corral"
    end

    for triple <- ["x86_64-unknown-linux-gnu", "x86_64-unknown-freebsd", "x86_64-pc-linux-gnu"] do
      assert Compiler.artifact_file("libcorral_nif.so", triple) == "libcorral_nif.so"
    end

    assert Compiler.elf_machine_of_triple("aarch64-apple-darwin") == nil
  end

  test "a missing or old cargo gets one message: the minimum, how to install, CORRAL_HELPER" do
    missing = Compiler.cargo_problem("corral-no-such-cargo")
    assert missing =~ "cargo 1.91 or newer"
    assert missing =~ "no `corral-no-such-cargo` was found in PATH"
    assert missing =~ "rustup"
    assert missing =~ "cargo-web"
    assert missing =~ "CORRAL_HELPER"

    dir = Path.join(System.tmp_dir!(), "corral-old-cargo-#{System.unique_integer([:positive])}")
    File.mkdir_p!(dir)
    on_exit(fn -> File.rm_rf!(dir) end)
    old = Path.join(dir, "cargo")
    File.write!(old, "#!/bin/sh\necho 'cargo 1.63.0'\n")
    File.chmod!(old, 0o755)
    assert Compiler.cargo_problem(old) =~ "#{old} is version 1.63.0"
    assert Compiler.cargo_problem(System.get_env("CARGO", "cargo")) == nil
  end
end

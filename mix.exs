defmodule Mix.Tasks.Compile.CorralNative do
  @moduledoc false
  # Builds the Rust parts with cargo into the app's build priv/
  # (`_build/<env>[/<target>]/lib/corral/priv`, never the source tree).
  # Listed before the Elixir compiler in `compilers:` so priv/ is ready when
  # code loads.
  #
  # The Rust target is, in order: CORRAL_TARGET, CARGO_BUILD_TARGET, or
  # Nerves' TARGET_ARCH/TARGET_OS/TARGET_ABI when MIX_TARGET is set and is
  # not `host`; the linker is CC (or $CROSSCOMPILE-gcc). $CARGO is the cargo
  # to run, CARGO_TARGET_DIR where it builds. What it built is checked for
  # the target's ELF machine, so a cross build can never ship host binaries.
  #
  # Set CORRAL_SKIP_CARGO=1 to skip cargo (for example when CI built the
  # workspace already); artifacts that exist in the target directory are
  # still copied. A manifest of the inputs (native/, Cargo.toml, Cargo.lock,
  # the build settings, RUSTC and RUSTFLAGS) makes an unchanged build a no-op
  # without cargo; `mix compile --force` runs cargo anyway.

  use Mix.Task.Compiler

  # rustler 0.39 (the NIF) needs Rust 1.91.
  @min_cargo {1, 91}

  # {cargo package, cargo profile, file it builds, file under priv/}. The
  # `ship` profile (Cargo.toml) is small and stripped: fat LTO, one codegen
  # unit, built for these two artifacts alone. On macOS cargo names the NIF
  # libcorral_nif.dylib (artifact_file/2), while :erlang.load_nif/2 looks
  # for a .so on every Unix, so it is installed under the .so name. It needs
  # no `-undefined dynamic_lookup` link flag there: rustler (0.39) looks the
  # enif_* functions up with dlsym when the NIF loads on macOS, so the
  # library has no undefined symbols at link time.
  @artifacts [
    {"corral", "ship", "corral", "corral"},
    {"corral_nif", "ship", "libcorral_nif.so", "libcorral_nif.so"}
  ]

  @manifest "compile.corral_native"

  @impl true
  def manifests, do: [manifest()]

  defp manifest, do: Path.join(Mix.Project.manifest_path(), @manifest)

  @impl true
  def run(args) do
    root = Path.dirname(Mix.Project.project_file())
    priv = Path.join(Mix.Project.app_path(), "priv")
    skip? = System.get_env("CORRAL_SKIP_CARGO") in ["1", "true"]

    with {:ok, build} <- settings(root),
         :ok <- build_priv(root, priv) do
      fingerprint = fingerprint(root, build, skip?)

      if "--force" not in args and up_to_date?(fingerprint) do
        {:noop, []}
      else
        build(root, priv, build, skip?, fingerprint)
      end
    end
  end

  defp build(root, priv, build, skip?, fingerprint) do
    with :ok <- if(skip?, do: :ok, else: cargo_build(root, build)),
         {:ok, copied} <- copy_artifacts(build, priv, required: not skip?) do
      write_manifest(fingerprint, priv)

      if copied == [] do
        {:noop, []}
      else
        Mix.shell().info("Copied #{Enum.map_join(copied, ", ", &Path.relative_to_cwd/1)}")
        {:ok, []}
      end
    end
  end

  @impl true
  def clean do
    priv = Path.join(Mix.Project.app_path(), "priv")
    for {_, _, _, dest} <- @artifacts, do: File.rm(Path.join(priv, dest))
    File.rm(manifest())
    :ok
  end

  ## Build settings

  # Everything about where and how cargo builds, from the environment.
  defp settings(root) do
    with {:ok, target} <- target(System.get_env()) do
      cargo = System.get_env("CARGO") |> blank_to_nil() || "cargo"

      target_dir =
        (blank_to_nil(System.get_env("CARGO_TARGET_DIR")) ||
           blank_to_nil(System.get_env("CARGO_BUILD_TARGET_DIR")) || "target")
        |> Path.expand(root)

      {:ok,
       %{
         cargo: cargo,
         target: target,
         target_dir: target_dir,
         linker: linker(target)
       }}
    end
  end

  @doc false
  # The Rust target triple for the environment `env`, or nil for the host.
  def target(env) do
    mix_target = blank_to_nil(env["MIX_TARGET"])

    cond do
      triple = blank_to_nil(env["CORRAL_TARGET"]) ->
        {:ok, triple}

      triple = blank_to_nil(env["CARGO_BUILD_TARGET"]) ->
        {:ok, triple}

      mix_target in [nil, "host"] ->
        {:ok, nil}

      true ->
        nerves_target(env, mix_target)
    end
  end

  # Nerves systems set TARGET_ARCH, TARGET_OS and TARGET_ABI (and
  # TARGET_CPU) for the board; Rust spells the same target as one triple.
  defp nerves_target(env, mix_target) do
    case Enum.map(~w(TARGET_ARCH TARGET_OS TARGET_ABI), &blank_to_nil(env[&1])) do
      [arch, os, abi] when arch != nil and os != nil and abi != nil ->
        {:ok, "#{rust_arch(arch, env["TARGET_CPU"])}-unknown-#{os}-#{abi}"}

      _ ->
        error("""
        MIX_TARGET is #{mix_target}, but TARGET_ARCH, TARGET_OS and TARGET_ABI are not all set, \
        so Corral cannot tell which Rust target to build for (and will not build for the host). \
        Build from a Nerves project (its system sets them), or set CORRAL_TARGET to a Rust \
        target triple such as aarch64-unknown-linux-gnu.\
        """)
    end
  end

  # Nerves' `arm` is ARMv7 except on ARMv6 boards (the Raspberry Pi Zero
  # and 1), which Rust calls plain `arm`.
  defp rust_arch("arm", cpu) when cpu in ["arm1176jzf_s", "arm1136jf_s"], do: "arm"
  defp rust_arch("arm", _cpu), do: "armv7"
  defp rust_arch("riscv64", _cpu), do: "riscv64gc"
  defp rust_arch(arch, _cpu), do: arch

  # The C compiler Nerves (or the user) set up for the target links the
  # Rust artifacts too; cargo's own default would be the host's `cc`.
  defp linker(nil), do: nil

  defp linker(_target) do
    cross = blank_to_nil(System.get_env("CROSSCOMPILE"))

    case blank_to_nil(System.get_env("CC")) do
      nil when cross != nil -> cross <> "-gcc"
      cc -> cc
    end
  end

  defp triple_env(triple),
    do: triple |> String.upcase() |> String.replace(["-", "."], "_")

  defp blank_to_nil(nil), do: nil
  defp blank_to_nil(s), do: if(String.trim(s) == "", do: nil, else: s)

  ## Incremental builds

  defp fingerprint(root, build, skip?) do
    inputs =
      [Path.join(root, "Cargo.toml"), Path.join(root, "Cargo.lock")] ++
        Path.wildcard(Path.join(root, ".cargo/*")) ++
        Path.wildcard(Path.join(root, "native/**/*"))

    stats =
      for path <- Enum.sort(inputs),
          {:ok, s} <- [File.stat(path, time: :posix)],
          s.type == :regular,
          do: {path, s.size, s.mtime}

    # Settings cargo reads from the environment that change what it builds.
    env =
      for var <- ~w(RUSTC RUSTFLAGS CARGO_ENCODED_RUSTFLAGS RUSTC_WRAPPER),
          do: System.get_env(var)

    {1, build, skip?, env, stats}
  end

  defp up_to_date?(fingerprint) do
    with {:ok, bin} <- File.read(manifest()),
         {^fingerprint, outputs} <- safe_binary_to_term(bin) do
      Enum.all?(outputs, fn {path, size, mtime} ->
        match?({:ok, %File.Stat{size: ^size, mtime: ^mtime}}, File.stat(path, time: :posix))
      end)
    else
      _ -> false
    end
  end

  defp safe_binary_to_term(bin) do
    :erlang.binary_to_term(bin)
  rescue
    ArgumentError -> nil
  end

  defp write_manifest(fingerprint, priv) do
    outputs =
      for {_, _, _, dest} <- @artifacts,
          path = Path.join(priv, dest),
          {:ok, s} <- [File.stat(path, time: :posix)],
          do: {path, s.size, s.mtime}

    File.mkdir_p!(Path.dirname(manifest()))
    File.write!(manifest(), :erlang.term_to_binary({fingerprint, outputs}))
  end

  ## Cargo

  defp cargo_build(root, build) do
    with :ok <- check_cargo(build.cargo) do
      build_groups(root, build)
    end
  end

  # One cargo run per profile, in artifact order.
  defp build_groups(root, build) do
    @artifacts
    |> Enum.group_by(fn {_, profile, _, _} -> profile end, fn {package, _, _, _} -> package end)
    |> Enum.reduce_while(:ok, fn {profile, packages}, :ok ->
      case run_cargo(root, build, profile, packages) do
        :ok -> {:cont, :ok}
        error -> {:halt, error}
      end
    end)
  end

  defp run_cargo(root, build, profile, packages) do
    args =
      ["build", "--profile", profile] ++
        Enum.flat_map(packages, &["-p", &1]) ++
        if(build.target, do: ["--target", build.target], else: [])

    env =
      [{"CARGO_TARGET_DIR", build.target_dir}] ++
        if build.target && build.linker do
          var = "CARGO_TARGET_#{triple_env(build.target)}_LINKER"
          if System.get_env(var), do: [], else: [{var, build.linker}]
        else
          []
        end

    Mix.shell().info("Running #{build.cargo} #{Enum.join(args, " ")}")

    # Cargo's progress goes straight to the terminal as it happens: a first
    # build takes minutes.
    case System.cmd(build.cargo, args,
           cd: root,
           env: env,
           into: IO.stream(:stdio, :line),
           stderr_to_stdout: true
         ) do
      {_, 0} -> :ok
      {_, status} -> error("#{build.cargo} #{Enum.join(args, " ")} failed with status #{status}")
    end
  end

  # One message, whatever is wrong: no cargo, or one too old for the crates.
  defp check_cargo(cargo) do
    case cargo_problem(cargo) do
      nil -> :ok
      message -> error(message)
    end
  end

  @doc false
  # nil when `cargo` can build the crates, else the message saying why not.
  def cargo_problem(cargo) do
    found =
      case System.find_executable(cargo) do
        nil ->
          :missing

        path ->
          case System.cmd(path, ["--version"], stderr_to_stdout: true) do
            {"cargo " <> rest, 0} -> {path, rest |> String.split() |> hd()}
            {other, _} -> {path, String.trim(other)}
          end
      end

    case found do
      {_path, version} ->
        if version_at_least?(version, @min_cargo), do: nil, else: cargo_message(cargo, found)

      :missing ->
        cargo_message(cargo, found)
    end
  end

  defp version_at_least?(version, {major, minor}) do
    case Regex.run(~r/^(\d+)\.(\d+)/, version) do
      [_, ma, mi] -> {String.to_integer(ma), String.to_integer(mi)} >= {major, minor}
      _ -> false
    end
  end

  defp cargo_message(cargo, found) do
    {major, minor} = @min_cargo

    have =
      case found do
        :missing -> "no `#{cargo}` was found in PATH"
        {path, version} -> "#{path} is version #{version}"
      end

    """
    Corral builds its helper with Rust: it needs cargo #{major}.#{minor} or newer, and #{have}. \
    Install Rust with rustup (https://rustup.rs), or on Debian 12 with \
    `apt-get install cargo-web` (Rust 1.96 from bookworm-security), or point CARGO at a cargo \
    that is new enough. To build without Rust, set CORRAL_SKIP_CARGO=1 and, at run time, \
    CORRAL_HELPER=/path/to/corral (a prebuilt helper; Corral.Cgroup then reports :unavailable).\
    """
  end

  ## Artifacts

  # compile.all links _build/*/lib/corral/priv to the source priv/ when that
  # exists: older Corral builds wrote there. Move such leftovers out of the
  # way so the build priv/ is a directory of its own.
  defp build_priv(root, priv) do
    source_priv = Path.join(root, "priv")

    for {_, _, _, dest} <- @artifacts, do: File.rm(Path.join(source_priv, dest))
    _ = File.rmdir(source_priv)

    case File.lstat(priv) do
      {:ok, %File.Stat{type: :symlink}} -> File.rm!(priv)
      _ -> :ok
    end

    File.mkdir_p!(priv)
    :ok
  end

  @doc false
  # The file cargo builds for `file` (a Linux name) on target `triple`.
  def artifact_file(file, triple) do
    if String.contains?(triple, "-apple-") and Path.extname(file) == ".so",
      do: Path.rootname(file) <> ".dylib",
      else: file
  end

  defp copy_artifacts(build, priv, required: required?) do
    Enum.reduce_while(@artifacts, {:ok, []}, fn {_, profile, source, dest}, {:ok, copied} ->
      source = artifact_file(source, build.target || host_triple())
      source = Path.join([build.target_dir, build.target || "", profile_dir(profile), source])
      dest = Path.join(priv, dest)

      cond do
        not File.regular?(source) and required? ->
          {:halt, error("cargo did not produce #{source}")}

        not File.regular?(source) ->
          {:cont, {:ok, copied}}

        true ->
          case check_machine(source, build.target) do
            :ok ->
              if copy_if_changed(source, dest),
                do: {:cont, {:ok, [dest | copied]}},
                else: {:cont, {:ok, copied}}

            error ->
              {:halt, error}
          end
      end
    end)
  end

  defp profile_dir("dev"), do: "debug"
  defp profile_dir(profile), do: profile

  # The ELF header's e_machine (elf(5)) of what was built must be the
  # target's: a cross build that picked up host binaries fails here.
  defp check_machine(path, target) do
    triple = target || host_triple()
    want = elf_machine_of_triple(triple)

    case {want, elf_machine(path)} do
      {nil, _} ->
        :ok

      {want, {:ok, want}} ->
        :ok

      {want, found} ->
        error(
          "#{path} is not a binary for #{triple}: its ELF machine is #{describe_machine(found)}, " <>
            "#{triple} needs #{describe_machine({:ok, want})}"
        )
    end
  end

  defp host_triple, do: :erlang.system_info(:system_architecture) |> List.to_string()

  @machines %{
    3 => "x86 (3)",
    40 => "ARM (40)",
    62 => "x86-64 (62)",
    183 => "AArch64 (183)",
    243 => "RISC-V (243)"
  }

  @doc false
  # nil: not an ELF platform, or an architecture this check does not know.
  def elf_machine_of_triple(triple) do
    [arch | _] = String.split(triple, "-")

    cond do
      String.contains?(triple, ["apple", "windows"]) -> nil
      arch == "x86_64" -> 62
      arch == "aarch64" -> 183
      String.starts_with?(arch, ["arm", "thumb"]) -> 40
      arch in ["i386", "i486", "i586", "i686"] -> 3
      String.starts_with?(arch, "riscv") -> 243
      true -> nil
    end
  end

  @doc false
  def elf_machine(path) do
    case File.open(path, [:read, :binary], &IO.binread(&1, 20)) do
      {:ok, <<0x7F, "ELF", _class, 1, _::binary-size(12), m::little-16>>} -> {:ok, m}
      {:ok, <<0x7F, "ELF", _class, 2, _::binary-size(12), m::big-16>>} -> {:ok, m}
      {:ok, _} -> {:error, :not_elf}
      {:error, reason} -> {:error, reason}
    end
  end

  defp describe_machine({:ok, m}), do: Map.get(@machines, m, "#{m}")
  defp describe_machine({:error, :not_elf}), do: "none (not an ELF file)"
  defp describe_machine({:error, reason}), do: "unreadable (#{reason})"

  # Copies through a temporary file and a rename: overwriting the binary in
  # place fails with ETXTBSY while a helper from it is running.
  defp copy_if_changed(source, dest) do
    %File.Stat{size: size, mtime: mtime, mode: mode} = File.stat!(source, time: :posix)

    case File.stat(dest, time: :posix) do
      {:ok, %File.Stat{size: ^size, mtime: ^mtime}} ->
        false

      _ ->
        tmp = dest <> ".tmp"
        File.cp!(source, tmp)
        File.chmod!(tmp, mode)
        File.touch!(tmp, mtime)
        File.rename!(tmp, dest)
        true
    end
  end

  defp error(message) do
    Mix.shell().error(message)

    {:error,
     [
       %Mix.Task.Compiler.Diagnostic{
         compiler_name: "corral_native",
         file: Mix.Project.project_file(),
         position: nil,
         message: message,
         severity: :error
       }
     ]}
  end
end

defmodule Corral.MixProject do
  use Mix.Project

  def project do
    [
      app: :corral,
      version: "0.1.0",
      elixir: "~> 1.14",
      start_permanent: Mix.env() == :prod,
      compilers: [:corral_native] ++ Mix.compilers(),
      elixirc_paths: elixirc_paths(Mix.env()),
      deps: [],
      description:
        "Runs OS programs from the BEAM with their whole process tree contained " <>
          "(cgroups, subreaper, process group), flow-controlled output and tree-wide limits.",
      package: package(),
      docs: docs()
    ]
  end

  # The Rust sources ship with the package: the Mix compiler builds the
  # helper and the NIF on the user's machine, for the user's target.
  defp package do
    [
      licenses: ["Apache-2.0"],
      # Add the source repository here once it has a public address.
      links: %{"License" => "https://www.apache.org/licenses/LICENSE-2.0"},
      files: ~w(lib src native docs mix.exs Cargo.toml Cargo.lock README.md CHANGELOG.md LICENSE)
    ]
  end

  defp docs do
    [
      main: "Corral",
      extras: [
        "README.md",
        "docs/migrating.md",
        "docs/protocol.md",
        "docs/helper.md",
        "CHANGELOG.md"
      ]
    ]
  end

  def application do
    [mod: {Corral.Application, []}, extra_applications: [:logger]]
  end

  defp elixirc_paths(:test), do: ["lib", "test/support"]
  defp elixirc_paths(_), do: ["lib"]
end

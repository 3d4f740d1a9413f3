defmodule Mix.Tasks.Compile.CorralNative do
  @moduledoc false
  # Builds the Rust parts with cargo and copies them into priv/. Listed before
  # the Elixir compiler in `compilers:` so priv/ is ready when code loads.
  #
  # Set CORRAL_SKIP_CARGO=1 to skip cargo (for example when CI built the
  # workspace already); artifacts that exist under target/release are still
  # copied.

  use Mix.Task.Compiler

  # {cargo package, file under target/release, file under priv, required?}.
  # Each package is built with `cargo build --release -p PACKAGE`.
  @artifacts [
    {"corral", "corral", "corral", true},
    {"corral_nif", "libcorral_nif.so", "libcorral_nif.so", true}
  ]

  @impl true
  def run(_args) do
    root = Path.dirname(Mix.Project.project_file())
    skip? = System.get_env("CORRAL_SKIP_CARGO") in ["1", "true"]

    with :ok <- if(skip?, do: :ok, else: cargo_build(root)),
         {:ok, copied} <- copy_artifacts(root, required: not skip?) do
      # compile.all links _build/*/lib/corral/priv before compilers run, but
      # only when priv/ existed then; link it now that it surely does.
      Mix.Project.build_structure()

      if copied == [] do
        {:noop, []}
      else
        Mix.shell().info("Copied #{Enum.map_join(copied, ", ", &Path.relative_to(&1, root))}")
        {:ok, []}
      end
    end
  end

  @impl true
  def clean do
    root = Path.dirname(Mix.Project.project_file())
    for {_, _, dest, _} <- @artifacts, do: File.rm(Path.join([root, "priv", dest]))
    :ok
  end

  defp cargo_build(root) do
    packages = Enum.flat_map(@artifacts, fn {package, _, _, _} -> ["-p", package] end)
    args = ["build", "--release" | packages]

    try do
      System.cmd("cargo", args, cd: root, stderr_to_stdout: true)
    rescue
      e in ErlangError -> error("could not run cargo: #{Exception.message(e)}")
    else
      {_output, 0} ->
        :ok

      {output, status} ->
        Mix.shell().error(output)
        error("cargo #{Enum.join(args, " ")} failed with status #{status}")
    end
  end

  defp copy_artifacts(root, required: required?) do
    priv = Path.join(root, "priv")
    File.mkdir_p!(priv)

    Enum.reduce_while(@artifacts, {:ok, []}, fn {_, source, dest, required_artifact?},
                                                {:ok, copied} ->
      source = Path.join([root, "target", "release", source])
      dest = Path.join(priv, dest)

      cond do
        File.regular?(source) ->
          if copy_if_changed(source, dest),
            do: {:cont, {:ok, [dest | copied]}},
            else: {:cont, {:ok, copied}}

        required? and required_artifact? ->
          {:halt, error("cargo did not produce #{source}")}

        true ->
          {:cont, {:ok, copied}}
      end
    end)
  end

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
      deps: []
    ]
  end

  def application do
    [mod: {Corral.Application, []}]
  end

  defp elixirc_paths(:test), do: ["lib", "test/support"]
  defp elixirc_paths(_), do: ["lib"]
end

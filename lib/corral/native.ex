defmodule Corral.Native do
  @moduledoc false
  # NIF stubs for native/corral_nif (thin bindings over corral_cgroup, and
  # the output pipes the VM reads itself) and the @on_load hook that loads
  # priv/libcorral_nif.so. Corral.Cgroup (Corral.Orphans for
  # process_group_kill, Corral.Client for pipe_*) call them and translate
  # what they return.

  @on_load :load_nif

  @doc false
  def load_nif do
    path = nif_path()

    case :erlang.load_nif(String.to_charlist(path), 0) do
      :ok ->
        :ok

      {:error, {reason, text}} ->
        # Keep the module loaded so callers get {:error, :unavailable} from
        # Corral.Cgroup instead of an UndefinedFunctionError; say why once.
        :logger.warning("Corral: cannot load the cgroup NIF #{path}.so (#{reason}): #{text}")
        :ok
    end
  end

  # priv/ of the :corral application; next to this module's ebin/ when the
  # application is not known to the code server (e.g. a bare -pa path).
  defp nif_path do
    candidates =
      [
        fn -> Application.app_dir(:corral, "priv/libcorral_nif") end,
        fn -> priv_dir(:code.priv_dir(:corral)) end,
        fn -> __MODULE__ |> :code.which() |> beside_ebin() end
      ]
      |> Enum.flat_map(fn candidate ->
        try do
          [candidate.()]
        rescue
          _ -> []
        end
      end)
      |> Enum.reject(&is_nil/1)

    Enum.find(candidates, &File.regular?(&1 <> ".so")) || List.first(candidates, "libcorral_nif")
  end

  defp priv_dir({:error, _}), do: nil
  defp priv_dir(dir), do: Path.join(to_string(dir), "libcorral_nif")

  defp beside_ebin(beam) when is_list(beam),
    do: beam |> to_string() |> Path.dirname() |> Path.join("../priv/libcorral_nif")

  defp beside_ebin(_), do: nil

  defp nif_not_loaded, do: :erlang.nif_error(:nif_not_loaded)

  def cgroup_available, do: nif_not_loaded()
  def cgroup_layout, do: nif_not_loaded()
  def cgroup_create(_name, _limits, _controllers), do: nif_not_loaded()
  def cgroup_open(_name), do: nif_not_loaded()
  def cgroup_open_dirs(_dirs), do: nif_not_loaded()
  def cgroup_add(_group, _pid), do: nif_not_loaded()
  def cgroup_remove_pid(_group, _pid), do: nif_not_loaded()
  def cgroup_pids(_group), do: nif_not_loaded()
  def cgroup_set(_group, _limits), do: nif_not_loaded()
  def cgroup_get(_group, _key), do: nif_not_loaded()
  def cgroup_read(_group, _file), do: nif_not_loaded()
  def cgroup_write(_group, _file, _value), do: nif_not_loaded()
  def cgroup_stats(_group), do: nif_not_loaded()
  def cgroup_freeze(_group), do: nif_not_loaded()
  def cgroup_thaw(_group), do: nif_not_loaded()
  def cgroup_kill(_group), do: nif_not_loaded()
  def cgroup_delete(_group, _kill), do: nif_not_loaded()
  def process_group_kill(_pgid), do: nif_not_loaded()
  def pipe_available, do: nif_not_loaded()
  def pipe_open(_os_pid, _fd), do: nif_not_loaded()
  def pipe_read(_pipe, _bytes), do: nif_not_loaded()
  def pipe_close(_pipe), do: nif_not_loaded()
end

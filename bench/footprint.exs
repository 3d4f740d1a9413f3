# What Corral costs on a small device: the size of the helper and the NIF
# as shipped (the Mix compiler builds them with `--profile ship`, stripped),
# and the private memory of an idle helper holding one child.
# Usage: mix run bench/footprint.exs

priv = Application.app_dir(:corral, "priv")

for file <- ["corral", "libcorral_nif.so"] do
  path = Path.join(priv, file)
  {kind, 0} = System.cmd("file", ["-b", path])
  stripped = if kind =~ "not stripped", do: "NOT stripped", else: "stripped"
  IO.puts("#{file}: #{File.stat!(path).size} bytes (#{stripped})")
end

# The helper's pid is the port's; the daemon keeps its port in its state.
{:ok, daemon} = Corral.Daemon.start_link("sleep", ["1000"])
{:os_pid, helper} = Port.info(:sys.get_state(daemon).port, :os_pid)

# Let it settle into its idle wait, then read what only it holds.
Process.sleep(200)

rollup =
  for line <- String.split(File.read!("/proc/#{helper}/smaps_rollup"), "\n"),
      [key, value] <- [String.split(line, ":", parts: 2)],
      into: %{},
      do: {key, value |> String.split() |> hd()}

kib = fn key -> String.to_integer(Map.get(rollup, key, "0")) end

IO.puts(
  "idle helper: private #{kib.("Private_Clean") + kib.("Private_Dirty")} KiB " <>
    "(dirty #{kib.("Private_Dirty")} KiB, anonymous #{kib.("Anonymous")} KiB), " <>
    "RSS #{kib.("Rss")} KiB, PSS #{kib.("Pss")} KiB"
)

GenServer.stop(daemon)

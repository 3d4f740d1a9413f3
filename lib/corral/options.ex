defmodule Corral.Options do
  @moduledoc """
  Validates the options of `Corral.cmd/3`, `Corral.run/3` and
  `Corral.Daemon.start_link/3`, as `MuonTrap.Options` does for MuonTrap.

  The functions that take options call this module themselves, so it is
  rarely called directly; it is where a bad option is reported. Call
  `validate/4` to check options without running anything.

  Every problem raises `ArgumentError` with a message that names the
  option, its value and what was expected:

      iex> Corral.Options.validate(:cmd, "echo", [], stdio_window: 0)
      ** (ArgumentError) invalid option :stdio_window with value 0: expected an integer from 1 to 4294967295 (bytes)

  An unknown option within two edits of a known one says which:

      iex> Corral.Options.validate(:cmd, "echo", [], tiemout: 100)
      ** (ArgumentError) invalid option :tiemout with value 100: unknown option, did you mean :timeout?
  """

  # One clause per option; the last one raises ArgumentError naming the
  # option, the value and what was expected.

  alias Corral.Cgroup.Limits

  @max_u64 0xFFFF_FFFF_FFFF_FFFF
  @max_i32 0x7FFF_FFFF
  # PID_MAX_LIMIT on 64-bit Linux (include/linux/threads.h): the most tasks
  # pids.max takes, corral_cgroup::PIDS_MAX_LIMIT.
  @pid_max_limit 4_194_304

  @max_u32 0xFFFF_FFFF

  # The integer options' ranges, {first, last, unit}: what the helper takes
  # (durations and sizes are u64 there, docs/helper.md), what the kernel
  # takes, or what the protocol can carry.
  @ranges %{
    # A deadline past the end of the helper's clock never comes.
    timeout: {1, @max_u64, "milliseconds"},
    cpu_time: {1, @max_u64, "milliseconds"},
    idle_timeout: {1, @max_u64, "milliseconds"},
    # The Daemon waits this long (and a margin) in a receive, whose timeout
    # is at most 2^32 - 1 ms.
    delay_to_sigkill: {0, @max_i32, "milliseconds"},
    memory: {1, @max_u64, "bytes"},
    # No tree holds more tasks: the kernel's PID_MAX_LIMIT.
    max_processes: {1, @pid_max_limit, "processes"},
    # The u32 of an ack frame.
    stdio_window: {1, @max_u32, "bytes"},
    # uid_t and gid_t; -1 (2^32 - 1) means "unchanged" to setuid(2).
    uid: {0, @max_u32 - 1, "a user id"},
    gid: {0, @max_u32 - 1, "a group id"},
    groups: {1, @max_u32 - 1, "a group id"},
    # setpriority(2)'s range; below the current value needs CAP_SYS_NICE.
    nice: {-20, 19, "a nice value; lower is a higher priority, which needs privilege"}
  }

  # What each option takes, for the message of a value of the wrong type.
  # The integer options' ranges come from @ranges.
  @expected %{
    into: "a Collectable",
    cd: "a directory path (a non-empty binary without null bytes)",
    env: "an enumerable of {key, value} binaries (a nil value unsets key)",
    arg0: "a binary without null bytes",
    stderr_to_stdout: "a boolean",
    parallelism: "a boolean",
    capture_stderr_only: "a boolean",
    separate_stderr: "a boolean",
    no_cgroup: "a boolean",
    clear_env: "a boolean",
    pty:
      "true, false or {cols, rows} with each an integer from 1 to 65535 " <>
        "(the terminal's window size; true is {80, 24})",
    kill_signal:
      "a signal whose default action ends a process, such as :sigint, :sigquit, " <>
        ":sighup, :sigterm or :sigusr1",
    uid: "a user name (a non-empty binary) or a user id from 0 to 4294967294",
    gid: "a group name (a non-empty binary) or a group id from 0 to 4294967294",
    groups:
      ~s[a list of group names (not empty, no commas, not "0") or group ids from 1 to 4294967294],
    input: "a binary, iodata or an enumerable of iodata",
    cgroup_path:
      "a path relative to the hierarchy root without empty, \".\" or \"..\" parts, or nil",
    cgroup_base:
      "a path relative to the hierarchy root without empty, \".\" or \"..\" parts, or nil",
    cgroup: "a map or keyword list of cgroup limits",
    cgroup_controllers: ~s[a list of controller names such as "memory"],
    cgroup_sets:
      ~s[a list of {controller, file, value} such as {"memory", "memory.max", "1000000"}],
    lines: "a positive integer (the bytes of a line to buffer, as in System.cmd/3)",
    use_stdio:
      "true (Corral reads the program's output through its helper; " <>
        "false, which gives the program the VM's terminal, is not supported)",
    node: "a node name (an atom), or :any for Corral.Cluster's pick",
    nodes: "a non-empty list of node names (atoms)"
  }

  @known Map.keys(@expected) ++ Map.keys(@ranges)

  # The limits of the whole tree, which also take :infinity.
  @limits [:timeout, :cpu_time, :memory, :max_processes, :idle_timeout]

  defstruct cd: nil,
            env: [],
            arg0: nil,
            into: "",
            stderr_to_stdout: false,
            parallelism: nil,
            timeout: :infinity,
            cpu_time: :infinity,
            memory: :infinity,
            max_processes: :infinity,
            idle_timeout: :infinity,
            uid: nil,
            gid: nil,
            groups: [],
            delay_to_sigkill: 500,
            stdio_window: 1_048_576,
            capture_stderr_only: false,
            separate_stderr: false,
            input: nil,
            cgroup_path: nil,
            cgroup_base: nil,
            cgroup: %{},
            cgroup_controllers: [],
            cgroup_sets: [],
            no_cgroup: false,
            clear_env: false,
            pty: nil,
            nice: nil,
            kill_signal: nil,
            node: nil,
            nodes: nil,
            lines: nil

  @type id :: non_neg_integer() | String.t()

  @type max :: non_neg_integer() | :max

  @typedoc "A limit of the whole tree: milliseconds, bytes or processes."
  @type limit :: pos_integer() | :infinity

  @type cgroup_limits :: %{
          optional(:memory_max) => max(),
          optional(:memory_high) => max(),
          optional(:memory_swap_max) => max(),
          optional(:memory_oom_group) => boolean(),
          optional(:memory_min) => max(),
          optional(:memory_low) => max(),
          optional(:cpu_max) => {pos_integer(), pos_integer()} | :max | {:max, pos_integer()},
          optional(:cpu_weight) => 1..10_000,
          optional(:cpu_idle) => boolean(),
          optional(:pids_max) => max(),
          optional(:io_weight) => 1..10_000,
          optional(:cpuset_cpus) => String.t(),
          optional(:cpuset_mems) => String.t()
        }

  @type t :: %__MODULE__{
          cd: String.t() | nil,
          env: [{String.t(), String.t() | nil}],
          arg0: String.t() | nil,
          into: Collectable.t(),
          stderr_to_stdout: boolean(),
          parallelism: boolean() | nil,
          timeout: limit(),
          cpu_time: limit(),
          memory: limit(),
          max_processes: limit(),
          idle_timeout: limit(),
          uid: id() | nil,
          gid: id() | nil,
          groups: [id()],
          delay_to_sigkill: non_neg_integer(),
          stdio_window: pos_integer(),
          capture_stderr_only: boolean(),
          separate_stderr: boolean(),
          input: iodata() | Enumerable.t() | nil,
          cgroup_path: String.t() | nil,
          cgroup_base: String.t() | nil,
          cgroup: cgroup_limits(),
          cgroup_controllers: [String.t()],
          cgroup_sets: [{String.t(), String.t(), String.t()}],
          no_cgroup: boolean(),
          clear_env: boolean(),
          pty: {1..65_535, 1..65_535} | nil,
          nice: -20..19 | nil,
          kill_signal: String.t() | nil,
          lines: pos_integer() | nil
        }

  @doc "The `:cgroup` keys, in the order the helper applies them."
  @spec cgroup_keys() :: [atom()]
  def cgroup_keys, do: Limits.keys()

  @doc """
  System.cmd/3's checks of a command and its arguments, with its messages:
  `action` is what could not be done ("execute Corral.cmd/3") and `name`
  whose arguments they are ("Corral.cmd/3").
  """
  @spec check_command!(binary(), [term()], String.t(), String.t()) :: :ok
  def check_command!(command, args, action, name) do
    if String.contains?(command, <<0>>) do
      raise ArgumentError,
            "cannot #{action} for program with null byte, got: #{inspect(command)}"
    end

    unless Enum.all?(args, &is_binary/1) do
      raise ArgumentError, "all arguments for #{name} must be binaries"
    end

    if arg = Enum.find(args, &String.contains?(&1, <<0>>)) do
      raise ArgumentError,
            "cannot #{action} with null byte in argument, got: #{inspect(arg)}"
    end

    :ok
  end

  @doc """
  Validates `opts` for `context` (`:cmd` for `Corral.cmd/3` and
  `Corral.run/3`, `:daemon` for `Corral.Daemon.start_link/3`) and returns
  them as a struct: `t:t/0` for `:cmd`, `t:Corral.Daemon.Options.t/0` for
  `:daemon`. Like `MuonTrap.Options.validate/4`:

    * `command` and `args` are checked as `System.cmd/3` checks them
      (`ArgumentError` for a null byte or an argument that is not a binary);
    * a `command` that is not found raises `ErlangError` with `:enoent`;
    * a bad option raises `ArgumentError` naming the option, its value and
      what was expected.

  ## Examples

      iex> options = Corral.Options.validate(:cmd, "echo", ["hi"], timeout: 1000)
      iex> options.timeout
      1000

      iex> Corral.Options.validate(:cmd, "echo", [], groups: ["audio,video"])
      ** (ArgumentError) invalid option :groups with value ["audio,video"]: expected a list of group names (not empty, no commas, not "0") or group ids from 1 to 4294967294, got entry: "audio,video"
  """
  @spec validate(:cmd | :daemon, binary(), [binary()], keyword()) ::
          t() | Corral.Daemon.Options.t()
  def validate(context, command, args, opts)
      when context in [:cmd, :daemon] and is_binary(command) and is_list(args) do
    name = if context == :cmd, do: "Corral.cmd/3", else: "Corral.Daemon"
    check_command!(command, args, "execute #{name}", name)

    if Corral.Helper.find_program(command) == {:error, :enoent} do
      :erlang.error(:enoent, [command, args, opts])
    end

    case context do
      :cmd -> new!(opts)
      :daemon -> Corral.Daemon.Options.new!(command, opts)
    end
  end

  @doc """
  Validates `opts`; raises ArgumentError on the first bad option. `also`
  lists options a caller takes besides these (`Corral.Daemon`'s own), only
  to suggest them for a misspelt one.
  """
  @spec new!(keyword(), [atom()]) :: t()
  def new!(opts, also \\ [])

  def new!(opts, also) when is_list(opts) do
    opts
    |> Enum.reduce(%__MODULE__{}, &put(&1, &2, also))
    |> check_combination()
    |> lines()
  end

  def new!(opts, _also) do
    raise ArgumentError, "expected a keyword list of options, got: #{inspect(opts)}"
  end

  @doc "The options `new!/2` knows."
  @spec known() :: [atom()]
  def known, do: @known

  # Corral.Options.Lines splits the output into lines, as System.cmd/3's
  # :lines (Elixir 1.15) does, on every Elixir version.
  defp lines(%__MODULE__{lines: nil} = o), do: o
  defp lines(%__MODULE__{lines: _} = o), do: %{o | into: %Corral.Options.Lines{into: o.into}}

  # A known option with a bad value goes to invalid!/1, which says what was
  # expected; an unknown one is named as such, with the nearest known one.
  defp put({key, _} = option, o, also) when is_atom(key) do
    if key in @known, do: put(option, o), else: unknown!(option, @known ++ also)
  end

  defp put(other, _o, _also), do: invalid!(other)

  defp put({:into, collectable}, o), do: %{o | into: collectable}
  # An empty directory names none: chdir("") fails with ENOENT.
  defp put({:cd, dir}, o) when is_binary(dir) and dir != "", do: %{o | cd: no_null!(:cd, dir)}
  defp put({:env, env}, o) when is_list(env) or is_map(env), do: %{o | env: env!(env)}
  defp put({:arg0, arg0}, o) when is_binary(arg0), do: %{o | arg0: no_null!(:arg0, arg0)}
  defp put({:stderr_to_stdout, bool}, o) when is_boolean(bool), do: %{o | stderr_to_stdout: bool}
  defp put({:parallelism, bool}, o) when is_boolean(bool), do: %{o | parallelism: bool}
  # The limits of the whole tree (docs/helper.md): milliseconds for the
  # times, bytes for :memory, a count for :max_processes.
  defp put({:timeout, ms}, o) when is_integer(ms), do: %{o | timeout: in_range!(:timeout, ms)}
  defp put({:timeout, :infinity}, o), do: %{o | timeout: :infinity}
  defp put({:cpu_time, ms}, o) when is_integer(ms), do: %{o | cpu_time: in_range!(:cpu_time, ms)}
  defp put({:cpu_time, :infinity}, o), do: %{o | cpu_time: :infinity}

  defp put({:memory, bytes}, o) when is_integer(bytes),
    do: %{o | memory: in_range!(:memory, bytes)}

  defp put({:memory, :infinity}, o), do: %{o | memory: :infinity}

  defp put({:max_processes, n}, o) when is_integer(n),
    do: %{o | max_processes: in_range!(:max_processes, n)}

  defp put({:max_processes, :infinity}, o), do: %{o | max_processes: :infinity}

  defp put({:idle_timeout, ms}, o) when is_integer(ms),
    do: %{o | idle_timeout: in_range!(:idle_timeout, ms)}

  defp put({:idle_timeout, :infinity}, o), do: %{o | idle_timeout: :infinity}
  defp put({:uid, id}, o) when is_integer(id), do: %{o | uid: in_range!(:uid, id)}

  defp put({:uid, name}, o) when is_binary(name) and name != "",
    do: %{o | uid: no_null!(:uid, name)}

  defp put({:gid, id}, o) when is_integer(id), do: %{o | gid: in_range!(:gid, id)}

  defp put({:gid, name}, o) when is_binary(name) and name != "",
    do: %{o | gid: no_null!(:gid, name)}

  defp put({:groups, groups}, o) when is_list(groups), do: %{o | groups: groups!(groups)}

  defp put({:delay_to_sigkill, ms}, o) when is_integer(ms),
    do: %{o | delay_to_sigkill: in_range!(:delay_to_sigkill, ms)}

  defp put({:stdio_window, bytes}, o) when is_integer(bytes),
    do: %{o | stdio_window: in_range!(:stdio_window, bytes)}

  defp put({:capture_stderr_only, bool}, o) when is_boolean(bool),
    do: %{o | capture_stderr_only: bool}

  defp put({:separate_stderr, bool}, o) when is_boolean(bool),
    do: %{o | separate_stderr: bool}

  defp put({:input, data}, o) when is_binary(data), do: %{o | input: data}
  defp put({:input, data}, o) when is_list(data), do: %{o | input: input_list(data)}

  defp put({:input, enum} = option, o) when not is_nil(enum) do
    if Enumerable.impl_for(enum), do: %{o | input: enum}, else: invalid!(option)
  end

  # Relative to each hierarchy's root, as in MuonTrap; nil is the default
  # placement (a fresh cgroup under the VM's own).
  defp put({:cgroup_path, nil}, o), do: %{o | cgroup_path: nil}

  defp put({:cgroup_path, path}, o) when is_binary(path),
    do: %{o | cgroup_path: cgroup_path!(:cgroup_path, path)}

  defp put({:cgroup_base, nil}, o), do: %{o | cgroup_base: nil}

  defp put({:cgroup_base, path}, o) when is_binary(path),
    do: %{o | cgroup_base: cgroup_path!(:cgroup_base, path)}

  defp put({:cgroup, limits}, o) when is_map(limits) or is_list(limits),
    do: %{o | cgroup: cgroup_limits!(limits)}

  defp put({:cgroup_controllers, list}, o) when is_list(list),
    do: %{o | cgroup_controllers: controllers!(list)}

  defp put({:cgroup_sets, list}, o) when is_list(list),
    do: %{o | cgroup_sets: cgroup_sets!(list)}

  defp put({:no_cgroup, bool}, o) when is_boolean(bool), do: %{o | no_cgroup: bool}
  # Start from an empty environment; :env then sets what the program gets.
  defp put({:clear_env, bool}, o) when is_boolean(bool), do: %{o | clear_env: bool}
  # A pseudo-terminal for the program, {cols, rows}; true is the VT100's 80x24.
  defp put({:pty, false}, o), do: %{o | pty: nil}
  defp put({:pty, true}, o), do: %{o | pty: {80, 24}}

  defp put({:pty, {cols, rows}}, o)
       when cols in 1..65_535 and rows in 1..65_535,
       do: %{o | pty: {cols, rows}}

  defp put({:nice, n}, o) when is_integer(n), do: %{o | nice: in_range!(:nice, n)}

  defp put({:kill_signal, sig} = option, o) when is_atom(sig) or is_binary(sig) do
    case kill_signal(sig) do
      nil -> invalid!(option)
      name -> %{o | kill_signal: name}
    end
  end

  # System.cmd/3's (Elixir 1.15): the output by lines, without "\n".
  # System.cmd/3 buffers at most that many bytes of a line in the port;
  # Corral's lines come whole from its own buffer, so the number is checked
  # and then only says that lines are wanted.
  defp put({:lines, n}, o) when is_integer(n) and n > 0, do: %{o | lines: n}
  # System.cmd/3's default; `false` would give the program the VM's
  # terminal, and Corral always reads its output through the helper.
  defp put({:use_stdio, true}, o), do: o

  # Corral.Remote: the node to run on (:any for Corral.Cluster's pick), and the nodes :any picks from.
  defp put({:node, node}, o) when is_atom(node), do: %{o | node: node}

  defp put({:nodes, [_ | _] = ns} = opt, o),
    do: if(Enum.all?(ns, &is_atom/1), do: %{o | nodes: ns}, else: invalid!(opt))

  defp put(option, _o), do: invalid!(option)

  # The signals whose default action ends a process (signal(7)), the ones
  # the helper takes as --kill-signal: stopping, continuing and ignored
  # ones would end nothing.
  @kill_signals ~w(HUP INT QUIT ILL TRAP ABRT BUS FPE KILL USR1 SEGV USR2 PIPE ALRM TERM
                   STKFLT XCPU XFSZ VTALRM PROF IO PWR SYS)

  defp kill_signal(sig) do
    name = Corral.Helper.signal_name(sig)
    if name != nil and String.replace_prefix(name, "SIG", "") in @kill_signals, do: name
  end

  # `value` is the option's whole value, when `n` is one of its elements.
  defp in_range!(key, n, value \\ nil) do
    {first, last, unit} = Map.fetch!(@ranges, key)

    if n in first..last do
      n
    else
      raise ArgumentError,
            "invalid option #{inspect(key)} with value #{inspect(value || n)}: " <>
              "expected an integer from #{first} to #{last} (#{unit})"
    end
  end

  defp invalid!({key, value}) do
    raise ArgumentError,
          "invalid option #{inspect(key)} with value #{inspect(value)}: expected #{expected(key)}"
  end

  defp invalid!(other) do
    raise ArgumentError, "expected a keyword list of options, got entry: #{inspect(other)}"
  end

  defp expected(key) do
    case {Map.fetch(@expected, key), Map.fetch(@ranges, key)} do
      {{:ok, text}, _} ->
        text

      {:error, {:ok, {first, last, unit}}} ->
        infinity = if key in @limits, do: " or :infinity", else: ""
        "an integer from #{first} to #{last} (#{unit})#{infinity}"
    end
  end

  # Without a near name, System.cmd/3's own message, word for word.
  defp unknown!({key, value}, known) do
    message = "invalid option #{inspect(key)} with value #{inspect(value)}"

    case did_you_mean(key, known) do
      "" -> raise ArgumentError, message
      hint -> raise ArgumentError, message <> ": unknown option" <> hint
    end
  end

  @doc """
  `", did you mean :name?"` for the one of `known` nearest to `key` within
  two edits (insertions, deletions, substitutions), or `""`.
  """
  @spec did_you_mean(atom(), [atom()]) :: String.t()
  def did_you_mean(key, known) do
    name = Atom.to_string(key)

    known
    |> Enum.uniq()
    |> Enum.map(&{edit_distance(name, Atom.to_string(&1)), &1})
    |> Enum.filter(fn {d, _} -> d <= 2 end)
    |> Enum.min(fn -> nil end)
    |> case do
      nil -> ""
      {_, best} -> ", did you mean #{inspect(best)}?"
    end
  end

  # Levenshtein distance, one row at a time.
  defp edit_distance(a, b) do
    b = String.graphemes(b)
    first = Enum.to_list(0..length(b))

    a
    |> String.graphemes()
    |> Enum.with_index(1)
    |> Enum.reduce(first, fn {ca, i}, prev ->
      prev
      |> Enum.zip(tl(prev))
      |> Enum.zip(b)
      |> Enum.reduce([i], fn {{diag, up}, cb}, [left | _] = row ->
        cost = if ca == cb, do: 0, else: 1
        [Enum.min([left + 1, up + 1, diag + cost]) | row]
      end)
      |> Enum.reverse()
    end)
    |> List.last()
  end

  # Pairs of options that cannot both be given; --no-cgroup conflicts with
  # every cgroup option in the helper too.
  @exclusive [
    {:separate_stderr, :stderr_to_stdout},
    {:separate_stderr, :capture_stderr_only},
    {:cgroup_path, :cgroup_base},
    # The terminal is the program's stderr too: there is no stderr apart.
    {:pty, :separate_stderr},
    {:pty, :capture_stderr_only},
    {:no_cgroup, :cgroup_path},
    {:no_cgroup, :cgroup_base},
    {:no_cgroup, :cgroup},
    {:no_cgroup, :cgroup_controllers},
    {:no_cgroup, :cgroup_sets}
  ]

  defp check_combination(%__MODULE__{} = o) do
    for {a, b} <- @exclusive, given?(Map.fetch!(o, a)) and given?(Map.fetch!(o, b)) do
      raise ArgumentError, "options #{inspect(a)} and #{inspect(b)} exclude each other"
    end

    # As in MuonTrap: only stderr is captured, so there is no stdout to
    # merge it into.
    if o.capture_stderr_only, do: %{o | stderr_to_stdout: false}, else: o
  end

  defp given?(value), do: value not in [nil, false, [], %{}]

  # iodata (a charlist too) is one piece of input; any other list is an
  # enumerable of iodata.
  defp input_list(list) do
    IO.iodata_to_binary(list)
  rescue
    ArgumentError -> list
  end

  # Same shape as System.cmd/3: {key, value} with value nil to unset.
  defp env!(env) do
    Enum.map(env, fn
      {key, value} = pair when is_binary(key) and (is_binary(value) or is_nil(value)) ->
        if key == "" or String.contains?(key, ["=", <<0>>]) or
             (is_binary(value) and String.contains?(value, <<0>>)) do
          raise ArgumentError, "invalid environment key-value #{inspect(pair)}"
        end

        pair

      other ->
        raise ArgumentError, "invalid environment key-value #{inspect(other)}"
    end)
  end

  # As MuonTrap checks them: gid 0 (root's group, as a number or "0") is
  # never a supplementary group here, and a name is not empty and has no
  # comma, which MuonTrap's helper would split it on.
  defp groups!(groups) do
    Enum.map(groups, fn
      id when is_integer(id) and id > 0 -> in_range!(:groups, id, groups)
      name when is_binary(name) -> group_name!(name, groups)
      other -> bad_group!(other, groups)
    end)
  end

  defp group_name!(name, groups) do
    if name in ["", "0"] or String.contains?(name, [",", <<0>>]),
      do: bad_group!(name, groups),
      else: name
  end

  defp bad_group!(entry, groups) do
    raise ArgumentError,
          "invalid option :groups with value #{inspect(groups)}: expected #{expected(:groups)}, " <>
            "got entry: #{inspect(entry)}"
  end

  defp no_null!(key, value) do
    if String.contains?(value, <<0>>), do: invalid!({key, value}), else: value
  end

  # The same rules as the helper's (corral_cgroup::validate_path): relative to
  # the hierarchy root, one leading "/" meaning the same, no empty, "." or
  # ".." components, no newline or NUL, so no path can leave the hierarchy.
  defp cgroup_path!(key, path) do
    parts = path |> String.replace_prefix("/", "") |> String.split("/")

    if String.contains?(path, ["\0", "\n", "\r"]) or
         Enum.any?(parts, &(&1 in ["", ".", ".."])) do
      invalid!({key, path})
    end

    path
  end

  # Checked by Corral.Cgroup.Limits, as Corral.Cgroup checks them; here a
  # problem raises, naming the key and value.
  defp cgroup_limits!(limits) do
    case Limits.check(limits) do
      {:ok, pairs} ->
        Enum.each(pairs, &startable!/1)
        Map.new(pairs)

      {:error, {:unknown_key, key, value}} ->
        hint = if is_atom(key), do: did_you_mean(key, Limits.keys()), else: ""

        raise ArgumentError,
              "unknown :cgroup key #{inspect(key)} with value #{inspect(value)}, " <>
                "expected one of: #{Enum.map_join(Limits.keys(), ", ", &inspect/1)}#{hint}"

      {:error, {:bad_value, key, value}} ->
        raise ArgumentError,
              "invalid :cgroup key #{inspect(key)} with value #{inspect(value)}: " <>
                "expected #{Limits.expected(key)}"

      {:error, {_, other}} ->
        raise ArgumentError,
              "invalid option :cgroup with value #{inspect(limits)}: " <>
                "expected a map or keyword list of limits, got entry: #{inspect(other)}"
    end
  end

  # A run's tree needs its first process (pids_max 0 would let none start,
  # and on v1 the first one joins anyway) and memory to load it (with
  # memory_max 0 the loader fails and the run looks like an exit 127).
  # Corral.Cgroup.set/2 may set them on a cgroup that exists.
  @startable_max %{memory_max: @max_u64, pids_max: @pid_max_limit}

  defp startable!({key, 0}) when key in [:memory_max, :pids_max] do
    raise ArgumentError,
          "invalid :cgroup key #{inspect(key)} with value 0: the program could not start; " <>
            "expected an integer from 1 to #{@startable_max[key]} or :max"
  end

  defp startable!(_pair), do: :ok

  defp controllers!(list) do
    Enum.map(list, fn name ->
      if controller?(name), do: name, else: invalid!({:cgroup_controllers, list})
    end)
  end

  # Raw writes that could pull any process (PID 1 included) into the run's
  # cgroup, where ending the run kills it; the helper refuses them too
  # (corral_cgroup::FORBIDDEN_RAW_FILES).
  @forbidden_raw_files ~w(cgroup.procs cgroup.threads cgroup.kill cgroup.freeze
                          cgroup.subtree_control tasks)

  # MuonTrap 1's raw writes, {controller, file, value}. The file must name a
  # file in the cgroup's own directory, as the helper checks too
  # (corral_cgroup::validate_file).
  defp cgroup_sets!(list) do
    Enum.map(list, fn
      {_controller, file, _value} = set when file in @forbidden_raw_files ->
        raise ArgumentError,
              "invalid option :cgroup_sets with value #{inspect(set)}: " <>
                "#{file} moves, freezes or kills processes, and a run's cgroup is Corral's to manage"

      {controller, file, value} = set when is_binary(file) ->
        value = if is_integer(value), do: Integer.to_string(value), else: value

        if controller?(controller) and
             file =~ ~r/\A[A-Za-z0-9_]+\.[A-Za-z0-9_]+(\.[A-Za-z0-9_]+)*\z/ and
             is_binary(value) and not String.contains?(value, <<0>>) do
          {controller, file, value}
        else
          invalid!({:cgroup_sets, set})
        end

      other ->
        invalid!({:cgroup_sets, other})
    end)
  end

  # A v1 controller or named hierarchy ("memory", "name=systemd"): no ":" so
  # it survives --cgroup-raw CONTROLLER:FILE=VALUE, no "/" to escape.
  defp controller?(name) do
    is_binary(name) and name =~ ~r/\A[A-Za-z0-9_=]+\z/
  end
end

%% @doc Corral for Erlang: run OS programs with their whole process tree
%% contained, from Erlang code.
%%
%% This module is a thin front to the Elixir API (`Corral.cmd/3',
%% `Corral.run/3', `Corral.Daemon'): it takes Erlang's spellings and
%% returns plain Erlang terms. It needs nothing beyond what any Elixir
%% dependency needs: the Elixir runtime (the `elixir' application's
%% `ebin', and `logger''s for daemons that log) on the code path. With
%% rebar3, add Corral as a Mix dependency (`rebar_mix'); in a bare node,
%% `erl -pa' the `ebin' directories:
%%
%% ```
%% erl -noshell -pa _build/dev/lib/corral/ebin -pa $(elixir -e 'IO.write(:code.lib_dir(:elixir))')/ebin \
%%     -eval 'io:format("~p~n", [corral:cmd("echo", ["hi"], [stderr_to_stdout])]), halt().'
%% {<<"hi\n">>,0}
%% '''
%%
%% Strings may be charlists or binaries: the command, its arguments and
%% every option that takes a string or a list of them (`cd', `arg0', `env',
%% `uid', `gid', `groups', `cgroup_path', `cgroup_base',
%% `cgroup_controllers', `cgroup_sets'). Options are a proplist: a bare
%% atom means `{Atom, true}' (`[stderr_to_stdout, {timeout, 5000}]'), and
%% in `env' the value `false' unsets a variable, as in `open_port/2'. The
%% options and their meaning are `Corral.cmd/3''s (see its documentation).
%%
%% Output is collected into a binary. Errors are Erlang terms: a program
%% that is not found raises `error:enoent' (as `os:cmd' users expect from
%% `open_port/2'), a bad option `error:{badarg, Message}', and a failure of
%% the helper `error:{corral, Reason}' from `cmd/2,3' or
%% `{error, Reason}' from `run/3', with the reasons `Corral.Error'
%% documents (for example `{spawn_failed, eacces, <<"exec">>}').
-module(corral).

-export([cmd/2, cmd/3, run/3, daemon_child_spec/3, start_daemon/3]).

-type string_like() :: string() | binary().
-type option() :: atom() | {atom(), term()}.
-type status() :: non_neg_integer() | timeout | cpu_time | memory | max_processes | idle.

-export_type([option/0, status/0]).

%% @equiv cmd(Command, Args, [])
-spec cmd(string_like(), [string_like()]) -> {binary(), status()}.
cmd(Command, Args) ->
    cmd(Command, Args, []).

%% @doc Runs `Command' with `Args' and returns `{Output, Status}'.
%%
%% `Status' is the exit code (128 + the signal number when a signal killed
%% the child), or the name of the limit that ended the run (`timeout',
%% `cpu_time', `memory', `max_processes', `idle'), as in `Corral.cmd/3'.
%%
%% ```
%% 1> corral:cmd("echo", ["hi"], [stderr_to_stdout]).
%% {<<"hi\n">>,0}
%% 2> corral:cmd("sh", ["-c", "echo partial; sleep 10"], [{timeout, 300}]).
%% {<<"partial\n">>,timeout}
%% '''
-spec cmd(string_like(), [string_like()], [option()]) -> {binary(), status()}.
cmd(Command, Args, Options) ->
    call(fun() -> 'Elixir.Corral':cmd(bin(Command), bins(Args), options(Options)) end).

%% @doc Runs `Command' with `Args' and reports how it ended and what its
%% whole tree used: `{ok, Result}' with `Result' a map with the fields of
%% `Corral.Result' (`output', `stdout', `stderr', `exit_status', `reason',
%% `usage', `os_pid', `containment', `oom_kills', `pids_limit_hits'; a
%% figure the system could not measure is `undefined'), or
%% `{error, Reason}' when the child never ran (`enoent', or a reason of
%% `Corral.Error'). Takes `cmd/3''s options plus `separate_stderr'.
%%
%% ```
%% 1> {ok, #{output := Out, exit_status := 3, reason := exit}} =
%% 1>     corral:run("sh", ["-c", "echo hi; exit 3"], []).
%% '''
-spec run(string_like(), [string_like()], [option()]) -> {ok, map()} | {error, term()}.
run(Command, Args, Options) ->
    case call(fun() -> 'Elixir.Corral':run(bin(Command), bins(Args), options(Options)) end) of
        {ok, Result} -> {ok, plain(maps:remove('__struct__', Result))};
        {error, _} = Error -> Error
    end.

%% @doc A supervisor child spec that keeps `Command' running under a
%% `Corral.Daemon', for example in an Erlang supervisor's child list:
%%
%% ```
%% init([]) ->
%%     {ok, {#{strategy => one_for_one},
%%           [corral:daemon_child_spec("redis-server", ["--port", "7777"],
%%                                     [{id, redis}, {log_output, info}])]}}.
%% '''
%%
%% The options are `Corral.Daemon.start_link/3''s; `id' names the child.
-spec daemon_child_spec(string_like(), [string_like()], [option()]) -> supervisor:child_spec().
daemon_child_spec(Command, Args, Options) ->
    call(fun() ->
        'Elixir.Corral.Daemon':child_spec([bin(Command), bins(Args), options(Options)])
    end).

%% @doc Starts a `Corral.Daemon' running `Command', linked to the caller:
%% `{ok, Pid}' once the program runs, or `{error, Reason}'.
-spec start_daemon(string_like(), [string_like()], [option()]) -> {ok, pid()} | {error, term()}.
start_daemon(Command, Args, Options) ->
    call(fun() ->
        'Elixir.Corral.Daemon':start_link(bin(Command), bins(Args), options(Options))
    end).

%% Elixir's `nil' (a figure the system could not measure) is Erlang's
%% `undefined'.
plain(Map) when is_map(Map) -> maps:map(fun(_, V) -> plain(V) end, Map);
plain(nil) -> undefined;
plain(V) -> V.

%% Elixir exceptions become Erlang error terms; `enoent' stays as it is.
call(Fun) ->
    try
        Fun()
    catch
        error:#{'__struct__' := 'Elixir.Corral.Error', reason := Reason} ->
            erlang:error({corral, Reason});
        error:#{'__struct__' := 'Elixir.ArgumentError', message := Message} ->
            erlang:error({badarg, Message})
    end.

options(Options) when is_list(Options) ->
    [option(O) || O <- Options];
options(Options) ->
    erlang:error({badarg, <<"options must be a proplist">>}, [Options]).

option(Key) when is_atom(Key) -> {Key, true};
option({Key, Value}) when is_atom(Key) -> {Key, value(Key, Value)};
option(Other) -> erlang:error({badarg, <<"not an option">>}, [Other]).

value(Key, V) when Key =:= cd; Key =:= arg0; Key =:= cgroup_path; Key =:= cgroup_base ->
    bin(V);
value(Key, V) when Key =:= uid; Key =:= gid ->
    maybe_bin(V);
value(groups, Vs) when is_list(Vs) -> [maybe_bin(V) || V <- Vs];
value(cgroup_controllers, Vs) when is_list(Vs) -> bins(Vs);
value(cgroup_sets, Vs) when is_list(Vs) ->
    [{bin(C), bin(F), maybe_bin(V)} || {C, F, V} <- Vs];
value(env, Vs) when is_list(Vs) ->
    [{bin(K), env_value(V)} || {K, V} <- Vs];
value(_Key, V) ->
    V.

env_value(false) -> nil;
env_value(V) -> bin(V).

bins(Strings) when is_list(Strings) -> [bin(S) || S <- Strings].

bin(S) when is_binary(S) -> S;
bin(S) when is_list(S) -> unicode:characters_to_binary(S);
bin(S) when is_atom(S) -> atom_to_binary(S, utf8);
bin(S) -> S.

%% A name (a string) or a number.
maybe_bin(V) when is_integer(V) -> V;
maybe_bin(V) -> bin(V).

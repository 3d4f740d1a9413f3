complete -c corral -s m -l memory-limit -d 'Memory limit of the whole tree: K, M, G (powers of 1024) or bytes' -r
complete -c corral -s c -l cpu-limit -d 'CPU bandwidth limit; 100% is one core' -r
complete -c corral -s t -l timeout -d 'Wall-time limit (exit status 124 when it ends the run)' -r
complete -c corral -l cpu-time -d 'CPU-time limit of the whole tree, reaped processes included' -r
complete -c corral -l max-processes -d 'Most processes alive in the tree at once' -r
complete -c corral -l idle-timeout -d 'End the tree after this long with no CPU progress and no output' -r
complete -c corral -l grace -d 'Time between SIGTERM and SIGKILL when the tree is ended' -r
complete -c corral -l kill-signal -d 'The first signal sent when the tree is ended (INT, QUIT, HUP...); SIGKILL still follows after --grace' -r
complete -c corral -l nice -d 'Scheduling priority of the command, -20 (highest) to 19 (lowest); below the current value needs privilege (CAP_SYS_NICE)' -r
complete -c corral -l capture-env -d 'Pass your whole environment to the command [default: no]' -r -f -a "true\t''
false\t''"
complete -c corral -l capture-path -d 'Pass PATH when the environment is not captured [default: yes]' -r -f -a "true\t''
false\t''"
complete -c corral -l env -d 'Set an environment variable (repeatable)' -r
complete -c corral -l unset -d 'Remove an environment variable (repeatable)' -r
complete -c corral -l cd -d 'The command\'s working directory' -r -F
complete -c corral -l arg0 -d 'The command\'s argv[0]' -r
complete -c corral -l uid -d 'Run as this user (name or number)' -r
complete -c corral -l gid -d 'Run with this group (name or number)' -r
complete -c corral -l group -d 'A supplementary group (repeatable)' -r
complete -c corral -l report -d 'Write the JSON report to this file instead' -r -F
complete -c corral -l stdin -d 'The command\'s stdin [default: inherit]' -r -f -a "inherit\t'corral\'s own stream'
null\t'`/dev/null`'"
complete -c corral -l stdout -d 'The command\'s stdout [default: inherit]' -r -f -a "inherit\t'corral\'s own stream'
null\t'`/dev/null`'"
complete -c corral -l pty -d 'Run the command on a pseudo-terminal of its own, COLSxROWS (80x24 without a size): stdin, stdout and stderr are the terminal' -r
complete -c corral -l stderr -d 'The command\'s stderr [default: inherit]' -r -f -a "inherit\t'corral\'s own stream'
null\t'`/dev/null`'
stdout\t'into stdout, as `2>&1`'"
complete -c corral -l cgroup-path -d 'Run in exactly this cgroup (relative to each hierarchy\'s root)' -r
complete -c corral -l cgroup-base -d 'Run in a fresh cgroup under this one (relative to each hierarchy\'s root) [default: under corral\'s own]' -r
complete -c corral -l cgroup-set -d 'A typed cgroup limit, MuonTrap 2\'s keys: `memory_max=67108864`, `cpu_max=50000 100000`, `pids_max=20` (repeatable)' -r
complete -c corral -l cgroup-controller -d 'A v1 controller to join, as MuonTrap 1\'s `cgroup_controllers` (repeatable)' -r
complete -c corral -l cgroup-raw -d 'A raw write, as MuonTrap 1\'s `cgroup_sets`: `memory:memory.limit_in_bytes=268435456` (repeatable)' -r
complete -c corral -l clear-env -d 'Start the command with an empty environment (then --env)'
complete -c corral -s q -l quiet -d 'Print no summary'
complete -c corral -l json -d 'Print the report as one JSON object on stderr instead of the summary'
complete -c corral -l no-cgroup -d 'Do not use cgroups at all: subreaper containment only'
complete -c corral -s h -l help -d 'Print help (--help for more)'
complete -c corral -s V -l version -d 'Print the version'

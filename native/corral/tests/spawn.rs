//! Starting the child: exit codes and signals, failures reported in `F`,
//! environment, arg0, working directory and credentials.

mod support;
use std::time::Duration;

use support::*;

fn run(opts: &[&str], command: &[&str]) -> (Helper, Reason, Fields) {
    let mut h = Helper::port(opts, command);
    h.started();
    let (reason, fields) = h.finish(SOON);
    (h, reason, fields)
}

/// Runs something that must fail to start and returns the `F` fields.
fn fails(opts: &[&str], command: &[&str], exit_code: i32) -> Fields {
    let mut h = Helper::port(opts, command);
    h.until("F", SOON, |h| h.failed.is_some() || h.eof);
    // The helper waits for the BEAM to close the port after F, as after X.
    std::thread::sleep(Duration::from_millis(50));
    assert!(!h.eof, "the helper left before the port was closed");
    h.close_control();
    h.until("the helper to close its stdout", SOON, |h| h.eof);
    let fields = h
        .failed
        .clone()
        .unwrap_or_else(|| panic!("no F frame; frames {:?}", h.tags));
    assert_eq!(h.tags, b"F", "F is the only frame");
    assert_eq!(h.exit_code(SOON), exit_code, "helper exit code; {fields:?}");
    fields
}

in_both_modes!(exit_code_is_reported_and_returned);

fn exit_code_is_reported_and_returned(mode: Mode) {
    let bin = testbin("exit_with");
    let (mut h, reason, fields) = run(mode, &[&bin, "3"]);
    assert_eq!(reason, Reason::Exit);
    assert_eq!(int(&fields, key::EXIT_STATUS), 3);
    assert_eq!(int(&fields, key::EXIT_CODE), 3);
    assert_eq!(fields.get_int(key::SIGNAL), None);
    if mode.contains(&"--no-cgroup") {
        assert_eq!(int(&fields, key::CONTAINMENT), 0);
        assert!(h.cgroups.is_empty());
    }
    assert_eq!(h.exit_code(SOON), 3);
}

#[test]
fn death_by_signal_is_reported_and_returned() {
    let bin = testbin("exit_with");
    let (mut h, reason, fields) = run(&[], &[&bin, "signal", "SIGKILL"]);
    assert_eq!(reason, Reason::Signal);
    assert_eq!(int(&fields, key::SIGNAL), 9);
    assert_eq!(text(&fields, key::SIGNAL_NAME), "SIGKILL");
    assert_eq!(int(&fields, key::EXIT_STATUS), 137);
    assert_eq!(fields.get_int(key::EXIT_CODE), None);
    assert_eq!(h.exit_code(SOON), 137);
}

#[test]
fn missing_program_by_name_and_by_path() {
    for program in [
        "corral-no-such-program",
        "/nonexistent/corral-no-such-program",
    ] {
        let f = fails(&[], &[program], 127);
        assert_eq!(text(&f, key::ERRNO_NAME), "enoent", "{program}");
        assert_eq!(int(&f, key::ERRNO), libc::ENOENT as u64, "{program}");
        assert_eq!(text(&f, key::STAGE), "exec", "{program}");
        assert!(!text(&f, key::MESSAGE).is_empty());
    }
}

#[test]
fn non_executable_file_is_eacces() {
    let file = tempfile::NamedTempFile::new().expect("temp file");
    let path = file.path().to_str().expect("UTF-8").to_owned();
    let f = fails(&[], &[&path], 126);
    assert_eq!(text(&f, key::ERRNO_NAME), "eacces");
    assert_eq!(text(&f, key::STAGE), "exec");
}

#[test]
fn a_directory_is_eacces_before_anything_starts() {
    let f = fails(&[], &["/tmp"], 126);
    assert_eq!(text(&f, key::ERRNO_NAME), "eacces");
    assert_eq!(text(&f, key::STAGE), "exec");
}

/// The child sends S just before exec (docs/protocol.md, "Start"); when
/// exec itself fails for a reason no check before the fork can see (a
/// file the kernel cannot execute), F follows S and nothing ran.
#[test]
fn exec_failing_after_s_gives_f_after_s() {
    let mut file = tempfile::NamedTempFile::new().expect("temp file");
    std::io::Write::write_all(&mut file, b"echo no shebang\n").expect("write");
    let path = file.into_temp_path();
    std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o755))
        .expect("chmod");
    let path = path.to_str().expect("UTF-8").to_owned();
    let mut h = Helper::port(&[], &[&path]);
    h.until("F", SOON, |h| h.failed.is_some() || h.eof);
    let f = h.failed.clone().expect("an F frame");
    assert_eq!(h.tags, b"SF", "S from the child, then F");
    assert_eq!(text(&f, key::ERRNO_NAME), "enoexec");
    assert_eq!(text(&f, key::STAGE), "exec");
    h.close_control();
    assert_eq!(h.exit_code(SOON), 126);
}

#[test]
fn bad_working_directory_fails_at_chdir() {
    let f = fails(&["--cd", "/nonexistent/corral-dir"], &["true"], 126);
    assert_eq!(text(&f, key::STAGE), "chdir");
    assert_eq!(text(&f, key::ERRNO_NAME), "enoent");
}

#[test]
fn working_directory_is_set() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().canonicalize().expect("canonical");
    let (h, _, _) = run(&["--cd", path.to_str().expect("UTF-8")], &["pwd"]);
    assert_eq!(h.out_text(), format!("{}\n", path.display()));
}

#[test]
fn unknown_user_fails_at_user() {
    let f = fails(&["--uid", "corral-no-such-user"], &["true"], 126);
    assert_eq!(text(&f, key::STAGE), "user");
}

fn is_root() -> bool {
    // SAFETY: geteuid(2) has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

#[test]
fn uid_drops_to_the_user_and_clears_supplementary_groups() {
    if !is_root() {
        eprintln!("SKIPPED uid_drops_to_the_user...: needs root to switch users");
        return;
    }
    let (mut h, reason, fields) = run(&["--uid", "nobody"], &["sh", "-c", "id -u; id -g; id -G"]);
    assert_eq!((reason, int(&fields, key::EXIT_STATUS)), (Reason::Exit, 0));
    let user = nix::unistd::User::from_name("nobody")
        .expect("passwd")
        .expect("nobody exists");
    let want = format!("{0}\n{1}\n{1}\n", user.uid, user.gid);
    assert_eq!(h.out_text(), want, "id -u, id -g, id -G");
    assert_eq!(h.exit_code(SOON), 0);
}

#[test]
fn numeric_uid_gid_and_groups() {
    if !is_root() {
        eprintln!("SKIPPED numeric_uid_gid_and_groups: needs root to switch users");
        return;
    }
    let (h, _, fields) = run(
        &[
            "--uid", "4321", "--gid", "4322", "--group", "4323", "--group", "4324",
        ],
        &["sh", "-c", "id -u; id -g; id -G"],
    );
    assert_eq!(int(&fields, key::EXIT_STATUS), 0);
    let lines: Vec<&str> = h
        .out
        .split(|&b| b == b'\n')
        .map(|l| std::str::from_utf8(l).expect("UTF-8"))
        .collect();
    assert_eq!(lines[..2], ["4321", "4322"]);
    let mut groups: Vec<&str> = lines[2].split_whitespace().collect();
    groups.sort_unstable();
    assert_eq!(groups, ["4322", "4323", "4324"]);
}

#[test]
fn env_set_and_unset() {
    let (h, _, _) = run(
        &[
            "--env",
            "CORRAL_A=one",
            "--env",
            "CORRAL_B=x=y",
            "--unset",
            "HOME",
        ],
        &[
            "sh",
            "-c",
            "echo \"$CORRAL_A|$CORRAL_B|${HOME-unset}|${PATH:+path}\"",
        ],
    );
    assert_eq!(h.out_text(), "one|x=y|unset|path\n");
}

#[test]
fn env_replaces_an_inherited_value() {
    let (h, _, _) = run(&["--env", "PATH=/corral-path"], &["/usr/bin/env"]);
    let out = h.out_text();
    let paths: Vec<&str> = out.lines().filter(|l| l.starts_with("PATH=")).collect();
    assert_eq!(paths, ["PATH=/corral-path"]);
}

#[test]
fn clear_env_starts_empty() {
    let (h, _, _) = run(&["--clear-env", "--env", "ONLY=1"], &["env"]);
    assert_eq!(h.out_text(), "ONLY=1\n");
}

#[test]
fn arg0_replaces_argv0() {
    let (h, _, _) = run(&["--arg0", "fancy-name"], &["cat", "/proc/self/cmdline"]);
    assert_eq!(h.out, b"fancy-name\0/proc/self/cmdline\0");
    let (h, _, _) = run(&["--arg0", "my-shell"], &["sh", "-c", "echo $0"]);
    assert_eq!(h.out_text(), "my-shell\n");
}

#[test]
fn default_argv0_is_a_path_as_given() {
    // A bare name's argv[0] is the path found (see
    // a_bare_name_is_found_and_named_as_the_beam_would_and_as_a_shell_would).
    let (h, _, _) = run(&[], &["/bin/cat", "/proc/self/cmdline"]);
    assert_eq!(h.out, b"/bin/cat\0/proc/self/cmdline\0");
}

#[test]
fn arguments_pass_through_without_a_shell() {
    let (h, _, _) = run(&[], &["printf", "%s|", "a b", "$HOME", "*", "", "'q'"]);
    assert_eq!(h.out_text(), "a b|$HOME|*||'q'|");
}

/// The scheduling policy of `pid` (field 41 of `/proc/PID/stat`).
fn policy(pid: i32) -> i32 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("stat");
    let after = &stat[stat.rfind(')').expect("comm") + 2..];
    after
        .split(' ')
        .nth(41 - 3)
        .expect("policy")
        .parse()
        .expect("number")
}

/// What `sh -c` reports as its own policy, run by a helper started from
/// this thread; and the helper's own policy while it runs.
fn child_and_helper_policy() -> (String, i32) {
    let mut h = Helper::port(
        &["--stdin", "pipe"],
        &["/bin/sh", "-c", "cut -d' ' -f41 /proc/$$/stat; read x"],
    );
    h.started();
    h.until("the child's policy", SOON, |h| h.out.contains(&b'\n'));
    let helper = policy(h.pid);
    h.send(&Down::CloseStdin);
    assert_eq!(h.finish(SOON).0, Reason::Exit);
    (h.out_text(), helper)
}

#[test]
fn the_helper_relays_as_a_batch_process_and_the_child_runs_as_started() {
    // SCHED_BATCH for the helper, so its wake-ups do not preempt the
    // child or the BEAM; the child gets the default policy back.
    let (child, helper) = child_and_helper_policy();
    assert_eq!(child, format!("{}\n", libc::SCHED_OTHER));
    assert_eq!(helper, libc::SCHED_BATCH);
}

#[test]
fn a_policy_given_from_outside_is_kept_for_helper_and_child() {
    // Started from a SCHED_IDLE thread, as under `chrt -i`, the helper and
    // its child keep SCHED_IDLE. A throwaway thread: it cannot go back.
    let (child, helper) = std::thread::spawn(|| {
        let param = libc::sched_param { sched_priority: 0 };
        // SAFETY: changes this thread's policy only, with a valid param.
        let rc = unsafe { libc::sched_setscheduler(0, libc::SCHED_IDLE, &param) };
        assert_eq!(rc, 0, "sched_setscheduler");
        child_and_helper_policy()
    })
    .join()
    .expect("thread");
    assert_eq!(child, format!("{}\n", libc::SCHED_IDLE));
    assert_eq!(helper, libc::SCHED_IDLE);
}

in_both_modes!(the_child_starts_with_no_signal_ignored_or_blocked);

fn the_child_starts_with_no_signal_ignored_or_blocked(mode: Mode) {
    // The helper ignores SIGPIPE (Rust does) and blocks every signal
    // around the spawn; the program gets neither. With a cgroup the kernel
    // clears the handlers (CLONE_CLEAR_SIGHAND) and the child resets only
    // the ignored signals; without one it resets them all.
    let (h, reason, _) = run(
        mode,
        &["/bin/sh", "-c", "grep -E '^Sig(Ign|Blk)' /proc/self/status"],
    );
    assert_eq!(reason, Reason::Exit);
    assert_eq!(
        h.out_text(),
        "SigBlk:\t0000000000000000\nSigIgn:\t0000000000000000\n"
    );
}

#[test]
fn a_bare_name_is_found_and_named_as_the_beam_would_and_as_a_shell_would() {
    // Port mode: the first PATH entry with a regular file with an execute
    // bit, and argv[0] its path (System.cmd's spawn_executable); for a
    // person, argv[0] stays the name typed.
    let (h, reason, _) = run(&[], &["sh", "-c", "echo $0"]);
    assert_eq!(reason, Reason::Exit);
    let zero = h.out_text();
    let path = std::env::var_os("PATH").expect("PATH");
    let first = std::env::split_paths(&path)
        .map(|d| d.join("sh"))
        .find(|p| p.is_file())
        .expect("sh on PATH");
    assert_eq!(zero, format!("{}\n", first.display()));
    let person = std::process::Command::new(CORRAL)
        .args(["-q", "--", "sh", "-c", "echo $0"])
        .output()
        .expect("corral runs");
    assert_eq!(String::from_utf8_lossy(&person.stdout), "sh\n");
}

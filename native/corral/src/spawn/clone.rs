//! Linux's ways to start the child: `clone(2)` with `CLONE_VM |
//! CLONE_VFORK`, and `clone3(2)` with `CLONE_INTO_CGROUP`. The portable
//! backend forks instead (`super::fork_child`).

use super::ChildSetup;
use std::os::fd::RawFd;

/// Stack size for the child between clone and exec. It runs only
/// `child_after_fork`, a few frames of plain system calls.
const CHILD_STACK: usize = 64 << 10;

/// Starts the child the way `posix_spawn(3)` does in glibc: `clone(2)` with
/// `CLONE_VM | CLONE_VFORK` on a stack of its own. Sharing the address
/// space saves copying page tables and the copy-on-write faults a `fork`
/// costs, which on a virtual machine is a large part of spawning; the
/// helper is suspended until the child execs or exits, so nothing else
/// touches the memory they share. Returns the pid, or -1 with errno set.
pub(super) fn clone_vfork(setup: &ChildSetup) -> libc::pid_t {
    let mut stack: Vec<std::mem::MaybeUninit<u8>> = Vec::with_capacity(CHILD_STACK);
    // SAFETY: the stack grows down from its (16-byte aligned) top; the
    // child runs `entry` on it and the parent waits (CLONE_VFORK) before
    // the stack or `setup` can be dropped.
    unsafe {
        let top = stack.as_mut_ptr().add(CHILD_STACK);
        let top = top.sub(top as usize % 16);
        libc::clone(
            child_entry,
            top.cast(),
            libc::CLONE_VM | libc::CLONE_VFORK | libc::SIGCHLD,
            setup as *const ChildSetup as *mut libc::c_void,
        )
    }
}

/// `struct clone_args` of `clone3(2)`, for `CLONE_INTO_CGROUP`.
#[repr(C)]
#[derive(Default)]
struct CloneArgs {
    flags: u64,
    pidfd: u64,
    child_tid: u64,
    parent_tid: u64,
    exit_signal: u64,
    stack: u64,
    stack_size: u64,
    tls: u64,
    set_tid: u64,
    set_tid_size: u64,
    cgroup: u64,
}

/// `CLONE_INTO_CGROUP` from `linux/sched.h` (Linux 5.7).
const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;
/// `CLONE_CLEAR_SIGHAND` from `linux/sched.h` (Linux 5.5): the child starts
/// with every handler reset to the default, so it need not reset all 64
/// dispositions itself ([`ChildSetup::handlers_cleared`]).
const CLONE_CLEAR_SIGHAND: u64 = 0x1_0000_0000;

/// Starts the child already inside the v2 cgroup `dir` with `clone3(2)`
/// and `CLONE_INTO_CGROUP`. Being born there costs nothing, while moving a
/// running task (a `cgroup.procs` write) waits for an RCU grace period:
/// milliseconds, on every spawn.
///
/// Where the architecture allows (see [`clone3_on_stack`]) the child
/// shares the address space and the helper is suspended until it execs,
/// as with [`clone_vfork`]; elsewhere clone3 behaves as `fork(2)`. Returns
/// the pid, or -1 with errno set (`ENOSYS` before 5.7, `EINVAL` or `E2BIG`
/// on kernels that lack the flag); the caller then falls back to a
/// `cgroup.procs` write.
pub(super) fn clone_into_cgroup(setup: &ChildSetup, dir: RawFd) -> libc::pid_t {
    let args = CloneArgs {
        flags: CLONE_INTO_CGROUP | CLONE_CLEAR_SIGHAND,
        exit_signal: libc::SIGCHLD as u64,
        cgroup: dir as u64,
        ..CloneArgs::default()
    };
    #[cfg(target_arch = "x86_64")]
    {
        // Left uninitialised: the child touches only the pages it uses.
        let mut stack: Vec<std::mem::MaybeUninit<u8>> = Vec::with_capacity(CHILD_STACK);
        let base = stack.as_mut_ptr() as u64;
        // The kernel starts the child at stack + stack_size; keep that
        // 16-byte aligned, as the ABI wants before a call.
        let top = (base + CHILD_STACK as u64) & !15;
        let args = CloneArgs {
            flags: args.flags | (libc::CLONE_VM | libc::CLONE_VFORK) as u64,
            stack: base,
            stack_size: top - base,
            ..args
        };
        // SAFETY: the child runs `child_entry` on `stack`, which outlives
        // it: CLONE_VFORK holds the helper in clone3 until the child has
        // exec'd or exited, and `setup` is borrowed for that long too.
        unsafe { clone3_on_stack(&args, setup) }
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        // SAFETY: clone3 with no stack behaves as fork: the child returns 0
        // on a copy of this stack and runs only `child_after_fork`.
        let pid = unsafe {
            libc::syscall(
                libc::SYS_clone3,
                &args as *const CloneArgs,
                std::mem::size_of::<CloneArgs>(),
            )
        };
        if pid == 0 {
            // SAFETY: we are the child of a fork-like clone3.
            unsafe { super::child_after_fork(setup) }
        }
        pid as libc::pid_t
    }
}

/// The child's first function on its own stack.
extern "C" fn child_entry(arg: *mut libc::c_void) -> libc::c_int {
    // SAFETY: `arg` is the `&ChildSetup` the parent passed, alive until
    // the parent resumes, which CLONE_VFORK holds off until exec or exit.
    unsafe { super::child_after_fork(&*(arg as *const ChildSetup)) }
}

/// `clone3(2)` whose child starts on `args.stack` and calls
/// [`child_entry`]. libc has no clone3 wrapper, and a raw system call
/// cannot do this from Rust: the child returns from the instruction on a
/// stack with no frame to return into, so the first thing it does has to
/// be written in assembly, as glibc writes its own `clone`.
///
/// # Safety
/// `args` must have `CLONE_VM | CLONE_VFORK` and a 16-byte aligned stack
/// that stays valid until this returns in the parent.
#[cfg(target_arch = "x86_64")]
unsafe fn clone3_on_stack(args: &CloneArgs, setup: &ChildSetup) -> libc::pid_t {
    let ret: i64;
    // SAFETY: the caller provides the stack. In the child (rax == 0) rsp is
    // the top of that stack; r12 and r13 survive the system call (only rcx
    // and r11 do not), so it calls child_entry(setup) there. child_entry
    // never returns; ud2 traps if it ever did. The parent only gets rax.
    unsafe {
        std::arch::asm!(
            "syscall",
            "test rax, rax",
            "jnz 2f",
            "xor ebp, ebp",
            "mov rdi, r12",
            "call r13",
            "ud2",
            "2:",
            inlateout("rax") libc::SYS_clone3 => ret,
            in("rdi") args as *const CloneArgs,
            in("rsi") std::mem::size_of::<CloneArgs>(),
            in("r12") setup as *const ChildSetup,
            in("r13") child_entry as extern "C" fn(*mut libc::c_void) -> libc::c_int,
            lateout("rcx") _,
            lateout("r11") _,
            options(nostack),
        );
    }
    if ret < 0 {
        // errno is thread-local; the raw instruction does not set it.
        nix::errno::Errno::set_raw(-ret as i32);
        return -1;
    }
    ret as libc::pid_t
}

//! The only `unsafe` in phx-hook, in one reviewed place: forking the single-threaded
//! child that enters a container's namespaces (what that child does is ordinary safe
//! code in `deliver::lxc`; this module only forks, runs it, and leaves with `_exit`),
//! starting the detached delivery worker in a session of its own, and closing the file
//! descriptors that worker inherited.

use std::os::fd::OwnedFd;

use nix::unistd::{ForkResult, Pid};

/// Fork; in the child run `work` and `_exit` with its return value. Returns the child's
/// pid in the parent.
///
/// The caller must be single-threaded (no delivery path keeps a thread running), so
/// the child inherits no lock held by another thread. `keep` is the pipe end the child
/// writes to; it is moved into `work`.
pub(crate) fn fork_child(keep: OwnedFd, work: impl FnOnce(OwnedFd) -> i32) -> nix::Result<Pid> {
    // SAFETY: phx-hook is single-threaded when it delivers into a container (the only
    // threads it ever starts feed gpg's or git's stdin in `vault` and `scan` commands,
    // which never deliver; `reconcile` looks at guests from threads but repairs in child
    // processes of their own; the walker thread of `deliver::lxc::probe` is joined
    // before the engine delivers, or the engine gives up without delivering), so after
    // fork(2) the child holds no lock another thread could have held, and the allocator
    // and stdio are in a consistent state. The child never returns into the caller: it
    // runs `work` and ends with `_exit`.
    match unsafe { nix::unistd::fork() }? {
        ForkResult::Parent { child } => {
            drop(keep);
            Ok(child)
        }
        ForkResult::Child => {
            let code = work(keep);
            // SAFETY: `_exit` ends the child immediately without running the parent's
            // atexit handlers or flushing stdio buffers it inherited; it takes a plain int
            // and cannot fail.
            unsafe { libc::_exit(code) }
        }
    }
}

/// Spawn `cmd` as the leader of a new session: `setsid()` runs in the child between fork
/// and exec, so the child has left its parent's process group before anything can
/// signal it. Proxmox's CLI tasks (`qm start` in a shell, `qm reboot`'s restart, a
/// migration target's start) send SIGTERM to their whole process group when they end
/// (pve-common `PVE::RESTEnvironment::fork_worker`, `$kill_process_group`); a `setsid()`
/// made after exec, by the child itself, could come too late.
pub(crate) fn spawn_in_new_session(
    cmd: &mut std::process::Command,
) -> std::io::Result<std::process::Child> {
    use std::os::unix::process::CommandExt;
    // SAFETY: the closure runs in the forked child before exec, where only
    // async-signal-safe calls are allowed; setsid(2) is one (POSIX lists it), it
    // allocates nothing and touches no lock, and its error is returned as an io::Error
    // built from errno without allocating (`from_raw_os_error`).
    unsafe {
        cmd.pre_exec(|| {
            if libc::setsid() == -1 {
                return Err(std::io::Error::from_raw_os_error(*libc::__errno_location()));
            }
            Ok(())
        });
    }
    cmd.spawn()
}

/// Close every file descriptor from 3 up. Called first thing in the detached delivery
/// worker, before it opens anything, so that no descriptor inherited from Proxmox's
/// start task (a pipe it waits on, a lock) stays open in a long-running process.
pub(crate) fn close_inherited_fds() {
    // SAFETY: called at the start of the worker, before phx-hook has opened any file or
    // created any object that owns a descriptor >= 3, so no live Rust value refers to a
    // descriptor being closed. close_range(2) takes plain integers and only closes.
    let r = unsafe { libc::syscall(libc::SYS_close_range, 3u32, u32::MAX, 0u32) };
    if r == 0 {
        return;
    }
    // Kernels before 5.9: close what /proc lists.
    let fds: Vec<i32> = std::fs::read_dir("/proc/self/fd")
        .map(|rd| {
            rd.flatten()
                .filter_map(|e| e.file_name().to_str()?.parse().ok())
                .filter(|&fd| fd >= 3)
                .collect()
        })
        .unwrap_or_default();
    for fd in fds {
        // SAFETY: as above; the descriptor of the read_dir iterator is already closed
        // (the iterator was consumed), and closing an fd that is no longer open is harmless.
        unsafe {
            libc::close(fd);
        }
    }
}

/// Interrupt signals ignored while a guard lives (restored on drop), so that a Ctrl-C
/// meant for the editor `vault edit` runs cannot kill phx-hook before it wipes the
/// plaintext file.
pub(crate) struct IgnoreInterrupts {
    prev: Vec<(nix::sys::signal::Signal, nix::sys::signal::SigHandler)>,
}

/// Ignore SIGINT, SIGQUIT, SIGHUP and SIGTERM until the guard is dropped.
pub(crate) fn ignore_interrupts() -> IgnoreInterrupts {
    use nix::sys::signal::{SigHandler, Signal, signal};
    let mut prev = Vec::new();
    for sig in [
        Signal::SIGINT,
        Signal::SIGQUIT,
        Signal::SIGHUP,
        Signal::SIGTERM,
    ] {
        // SAFETY: SIG_IGN installs no handler code, so nothing runs in signal context, and
        // no other thread of phx-hook changes signal dispositions.
        if let Ok(old) = unsafe { signal(sig, SigHandler::SigIgn) } {
            prev.push((sig, old));
        }
    }
    IgnoreInterrupts { prev }
}

impl Drop for IgnoreInterrupts {
    fn drop(&mut self) {
        for (sig, old) in self.prev.drain(..) {
            // SAFETY: puts back the disposition that was installed before (the default,
            // or whatever the process inherited); no handler code is introduced here.
            let _ = unsafe { nix::sys::signal::signal(sig, old) };
        }
    }
}

//! The only `unsafe` in phx-hook: forking the single-threaded child that enters a
//! container's namespaces. Everything the child does after the fork is ordinary safe
//! code in `super`; this module only forks, runs that code, and leaves with `_exit`.

use std::os::fd::OwnedFd;

use nix::unistd::{ForkResult, Pid};

/// Fork; in the child run `work` and `_exit` with its return value. Returns the child's
/// pid in the parent.
///
/// The caller must be single-threaded (phx-hook never starts a thread before this), so
/// the child inherits no lock held by another thread. `keep` is the pipe end the child
/// writes to; it is moved into `work`.
pub(super) fn fork_child(keep: OwnedFd, work: impl FnOnce(OwnedFd) -> i32) -> nix::Result<Pid> {
    // SAFETY: phx-hook is single-threaded when it delivers into a container (no thread is
    // spawned anywhere in the binary), so after fork(2) the child holds no lock another
    // thread could have held, and the allocator and stdio are in a consistent state. The
    // child never returns into the caller: it runs `work` and ends with `_exit`.
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

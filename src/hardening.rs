//! Process hardening done first thing at start: no core dumps and no ptrace by other
//! users' processes (a dump would hold decrypted secrets), and a private umask so that
//! nothing phx-hook creates on the host is readable by others.

use nix::sys::resource::{Resource, getrlimit, setrlimit};

/// Make the process non-dumpable, lower `RLIMIT_CORE` to 0 (a core dump is still
/// written for a non-dumpable process when `fs.suid_dumpable` is 2, and a pipe core
/// handler such as systemd-coredump may keep one), and set umask 077. Failure of any is
/// reported, not ignored: the caller refuses to continue.
pub fn harden() -> Result<(), String> {
    nix::sys::prctl::set_dumpable(false)
        .map_err(|e| format!("failed to make the process non-dumpable: {e}"))?;
    setrlimit(Resource::RLIMIT_CORE, 0, 0)
        .map_err(|e| format!("failed to disable core dumps (RLIMIT_CORE): {e}"))?;
    nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o077));
    Ok(())
}

/// The current core-size limit (soft, hard), for tests and `doctor`.
pub fn core_limit() -> (u64, u64) {
    getrlimit(Resource::RLIMIT_CORE).unwrap_or((u64::MAX, u64::MAX))
}

/// Whether the process is currently dumpable (for tests and `doctor`).
pub fn is_dumpable() -> bool {
    nix::sys::prctl::get_dumpable().unwrap_or(true)
}

#[cfg(test)]
mod tests {
    #[test]
    fn harden_makes_the_process_non_dumpable() {
        super::harden().unwrap();
        assert!(!super::is_dumpable());
        assert_eq!(super::core_limit(), (0, 0));
        // umask is now 077: a file created here is private.
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join("f");
        std::fs::write(&p, b"x").unwrap();
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&p).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
}

//! Process hardening done first thing at start: no core dumps or ptrace by other
//! users' processes (a dump would hold decrypted secrets), and a private umask so that
//! nothing phx-hook creates on the host is readable by others.

/// Make the process non-dumpable and set umask 077. Failure to do either is reported,
/// not ignored: the caller refuses to continue.
pub fn harden() -> Result<(), String> {
    nix::sys::prctl::set_dumpable(false)
        .map_err(|e| format!("failed to make the process non-dumpable: {e}"))?;
    nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o077));
    Ok(())
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

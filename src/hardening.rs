//! Process hardening done first thing at start: no core dumps or ptrace by other
//! users' processes (a dump would hold decrypted secrets), and a private umask so that
//! nothing phx-hook creates on the host is readable by others.

/// Make the process non-dumpable and set umask 077. Failure to do either is reported,
/// not ignored: the caller refuses to continue.
pub fn harden() -> Result<(), String> {
    nix::sys::prctl::set_dumpable(false).map_err(|e| format!("failed to make the process non-dumpable: {e}"))?;
    nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o077));
    Ok(())
}

/// Whether the process is currently dumpable (for tests and `doctor`).
pub fn is_dumpable() -> bool {
    nix::sys::prctl::get_dumpable().unwrap_or(true)
}

//! Files phx-hook writes on the host: written whole under a temporary name of this
//! process beside the target, then renamed over it, so a reader sees the old file or the
//! new one, and two processes writing at once never mix their bytes.
//!
//! On pmxcfs (`/etc/pve`) that is also how Proxmox itself writes (pve-common
//! `PVE::File::file_set_contents`: `<name>.tmp.<pid>` created with `O_EXCL`, then
//! `rename`), and the only way a reader on any node sees the old or the new file and
//! never a mix (every rename is one cluster message). pmxcfs has rules of its own
//! (docs/PROXMOX.md §19): a file holds at most 1 MiB (`MEMDB_MAX_FILE_SIZE`, pve-cluster
//! `src/pmxcfs/memdb.h`; a longer write fails with `EFBIG`); modes are fixed (0640, 0600
//! below `priv/`) and `chmod` to anything else fails with `EPERM`; `fsync` does nothing;
//! and without quorum every write fails with `EACCES`.

use std::fs;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;

use camino::Utf8Path;

/// Replace `path` with `bytes`, readable by root only (0600). With `sync`, the data is on
/// disk before the rename.
pub(crate) fn replace_private(path: &Utf8Path, bytes: &[u8], sync: bool) -> std::io::Result<()> {
    swap_in(path, bytes, 0o600, sync)
}

/// A directory for secrets on the host: root's (mode `mode`), and on tmpfs or ramfs by
/// its filesystem's own type, never by its name.
pub fn ram_dir(path: &Utf8Path, mode: u32) -> Result<(), String> {
    use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
    fs::DirBuilder::new()
        .recursive(true)
        .mode(mode)
        .create(path)
        .map_err(|e| format!("cannot create `{path}`: {e}"))?;
    let m = fs::symlink_metadata(path).map_err(|e| format!("cannot stat `{path}`: {e}"))?;
    if !m.is_dir() {
        return Err(format!("`{path}` is not a directory"));
    }
    if m.mode() & 0o777 != mode {
        fs::set_permissions(path, fs::Permissions::from_mode(mode))
            .map_err(|e| format!("cannot set the mode of `{path}`: {e}"))?;
    }
    let st = nix::sys::statfs::statfs(path.as_std_path())
        .map_err(|e| format!("cannot statfs `{path}`: {e}"))?;
    let t = st.filesystem_type();
    if t == nix::sys::statfs::TMPFS_MAGIC || t.0 == 0x8584_58f6 {
        Ok(())
    } else {
        Err(format!(
            "`{path}` is not on a RAM-backed filesystem (type {:#x}): secrets must never touch the host's disk; set `pve.credentials_dir` to a directory on tmpfs (such as one below /run)",
            t.0
        ))
    }
}

/// The largest file pmxcfs holds (pve-cluster `src/pmxcfs/memdb.h`, `MEMDB_MAX_FILE_SIZE`).
pub const PMXCFS_MAX_FILE: u64 = 1024 * 1024;

/// The pmxcfs mount `path` is on, if any: the nearest directory above it that is pmxcfs
/// (see [`crate::config::is_pmxcfs`]).
pub fn pmxcfs_root(path: &Utf8Path) -> Option<&Utf8Path> {
    path.ancestors()
        .skip(1)
        .find(|d| !d.as_str().is_empty() && crate::config::is_pmxcfs(d))
}

/// Why writing `path` failed, with what to do about it when pmxcfs is the reason.
pub fn explain(path: &Utf8Path, e: &std::io::Error) -> String {
    let Some(root) = pmxcfs_root(path) else {
        return format!("failed to write `{path}`: {e}");
    };
    match e.raw_os_error() {
        Some(libc::EFBIG) => {
            format!("failed to write `{path}`: pmxcfs ({root}) holds at most 1 MiB per file")
        }
        Some(libc::EACCES | libc::EROFS) => format!(
            "failed to write `{path}`: {e}; {root} is read-only while this node has no quorum (`pvecm status`)"
        ),
        _ => format!("failed to write `{path}`: {e}"),
    }
}

/// Replace `path` with `bytes`, mode `mode` (except on pmxcfs, whose modes are fixed and
/// which refuses `chmod`): refused before anything is written when pmxcfs could not hold
/// it. With `sync`, the data and the rename are on disk before this returns.
pub fn replace(path: &Utf8Path, bytes: &[u8], mode: u32, sync: bool) -> Result<(), String> {
    let pmxcfs = pmxcfs_root(path).is_some();
    if pmxcfs && bytes.len() as u64 > PMXCFS_MAX_FILE {
        return Err(format!(
            "`{path}` would be {} bytes, and pmxcfs holds at most {PMXCFS_MAX_FILE} bytes (1 MiB) per file (pve-cluster memdb.h, MEMDB_MAX_FILE_SIZE); nothing was written",
            bytes.len()
        ));
    }
    swap_in(path, bytes, mode, sync).map_err(|e| explain(path, &e))
}

/// Write `<dir>/.<name>.tmp.<pid>` (exclusively; a stale one a dead process of the same
/// pid left is removed first, as pve-common's `file_set_contents` does), then rename it
/// over `path`.
fn swap_in(path: &Utf8Path, bytes: &[u8], mode: u32, sync: bool) -> std::io::Result<()> {
    let pmxcfs = pmxcfs_root(path).is_some();
    let dir = path
        .parent()
        .filter(|d| !d.as_str().is_empty())
        .unwrap_or(Utf8Path::new("."));
    let tmp = dir.join(format!(
        ".{}.tmp.{}",
        path.file_name().unwrap_or("file"),
        std::process::id()
    ));
    let open = || {
        fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&tmp)
    };
    let write = || -> std::io::Result<()> {
        let mut f = match open() {
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                fs::remove_file(&tmp)?;
                open()?
            }
            other => other?,
        };
        if !pmxcfs {
            // The umask may have taken bits away.
            use std::os::unix::fs::PermissionsExt;
            f.set_permissions(fs::Permissions::from_mode(mode))?;
        }
        f.write_all(bytes)?;
        if sync {
            f.sync_all()?;
        }
        fs::rename(&tmp, path)?;
        if sync && let Ok(d) = fs::File::open(dir) {
            let _ = d.sync_all();
        }
        Ok(())
    };
    write().inspect_err(|_| {
        let _ = fs::remove_file(&tmp);
    })
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn replaces_whole_and_private() {
        let d = tempfile::tempdir().unwrap();
        let p = camino::Utf8PathBuf::try_from(d.path().join("state")).unwrap();
        std::fs::write(&p, "old, and longer").unwrap();
        super::replace_private(&p, b"new", true).unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"new");
        assert_eq!(
            std::fs::metadata(&p).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert_eq!(
            std::fs::read_dir(d.path()).unwrap().count(),
            1,
            "a temporary file was left"
        );
        let missing = p.join("no/such/dir");
        assert!(super::replace_private(&missing, b"x", false).is_err());
    }

    #[test]
    fn pmxcfs_rules() {
        let d = tempfile::tempdir().unwrap();
        let root = camino::Utf8Path::from_path(d.path()).unwrap();
        let pve = root.join("pve");
        std::fs::create_dir_all(pve.join("nodes/pve1")).unwrap();
        std::fs::create_dir_all(pve.join("phx-hook")).unwrap();
        let vault = pve.join("phx-hook/secrets.json.gpg");
        // Not pmxcfs yet: any size, the mode set.
        super::replace(&vault, &vec![1u8; 1_100_000], 0o644, false).unwrap();
        assert_eq!(
            std::fs::metadata(&vault).unwrap().permissions().mode() & 0o777,
            0o644
        );
        std::os::unix::fs::symlink("nodes/pve1", pve.join("local")).unwrap();
        assert_eq!(super::pmxcfs_root(&vault), Some(pve.as_path()));
        assert_eq!(super::pmxcfs_root(&root.join("elsewhere")), None);
        // Too large for pmxcfs: refused, the old file left as it was.
        std::fs::write(&vault, b"old").unwrap();
        let e = super::replace(&vault, &vec![1u8; 1_048_577], 0o644, false).unwrap_err();
        assert!(e.contains("1048577 bytes") && e.contains("1 MiB"), "{e}");
        assert_eq!(std::fs::read(&vault).unwrap(), b"old");
        super::replace(&vault, &vec![1u8; 1_048_576], 0o644, true).unwrap();
        assert_eq!(std::fs::metadata(&vault).unwrap().len(), 1_048_576);
        assert_eq!(std::fs::read_dir(pve.join("phx-hook")).unwrap().count(), 1);
    }
}

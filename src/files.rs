//! Small files phx-hook keeps on the host (delivered-state records, the accepted vault
//! version): written whole under a temporary name of this process beside the target, then
//! renamed over it, so a reader sees the old file or the new one, and two processes
//! writing at once never mix their bytes.

use std::fs;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;

use camino::Utf8Path;

/// Replace `path` with `bytes`, readable by root only (0600). With `sync`, the data is on
/// disk before the rename.
pub(crate) fn replace_private(path: &Utf8Path, bytes: &[u8], sync: bool) -> std::io::Result<()> {
    let name = path.file_name().unwrap_or("file");
    let tmp = path.with_file_name(format!(".{name}.tmp.{}", std::process::id()));
    let write = || -> std::io::Result<()> {
        let mut f = fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)?;
        f.write_all(bytes)?;
        if sync {
            f.sync_all()?;
        }
        fs::rename(&tmp, path)
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
}

//! Early delivery for VMs: systemd credentials through QEMU's fw_cfg. systemd (v251 and
//! later) imports every `opt/io.systemd.credentials/NAME` fw_cfg entry at boot, before
//! any unit starts, into `/run/credentials/@system/NAME` (RAM); a service reads it with
//! `LoadCredential=NAME`. No guest agent, no race with the guest's services.
//!
//! `register <vmid> --early` puts `-fw_cfg name=opt/io.systemd.credentials/NAME,file=PATH`
//! into the VM's `args` (qemu-server appends `args` to QEMU's command line,
//! `config_to_command`), PATH below `pve.credentials_dir/<vmid>/`, a root-only directory
//! on the host's RAM. pre-start writes each credential there; QEMU reads the file once,
//! at start-up (qemu `vl.c`, fw_cfg options), so post-start removes it again. No value is
//! ever in the VM config, QEMU's command line or a log.

use std::fs;

use camino::Utf8PathBuf;

use crate::config::Config;
use crate::manifest::CREDENTIALS_FW_CFG;
use crate::plan::Credential;
use crate::types::Vmid;

/// Where the credentials of `vmid` wait for QEMU.
pub fn dir(cfg: &Config, vmid: Vmid) -> Utf8PathBuf {
    cfg.pve.credentials_dir.join(vmid.to_string())
}

/// The QEMU arguments that hand credential `name` of `vmid` to the guest.
pub fn fw_cfg(cfg: &Config, vmid: Vmid, name: &str) -> String {
    format!(
        "-fw_cfg name={CREDENTIALS_FW_CFG}/{name},file={}",
        dir(cfg, vmid).join(name)
    )
}

/// The VM's `args` with phx-hook's fw_cfg entries for `names` (and none of its earlier
/// ones), the administrator's own arguments kept as they are.
pub fn merged_args(cfg: &Config, vmid: Vmid, existing: Option<&str>, names: &[&str]) -> String {
    let ours = format!("file={}/", dir(cfg, vmid));
    let mut words: Vec<&str> = existing
        .unwrap_or("")
        .split(' ')
        .filter(|w| !w.is_empty())
        .collect();
    // Drop `-fw_cfg <value>` pairs whose value is one of ours.
    let mut i = 0;
    while i < words.len() {
        if words[i] == "-fw_cfg" && words.get(i + 1).is_some_and(|v| v.contains(&ours)) {
            words.drain(i..i + 2);
        } else {
            i += 1;
        }
    }
    let mut out: Vec<String> = words.into_iter().map(str::to_string).collect();
    out.extend(names.iter().map(|n| fw_cfg(cfg, vmid, n)));
    out.join(" ")
}

/// The credentials among `names` whose fw_cfg entry `args` lacks.
pub fn missing<'a>(
    cfg: &Config,
    vmid: Vmid,
    args: Option<&str>,
    names: &[&'a str],
) -> Vec<&'a str> {
    let args = args.unwrap_or("");
    names
        .iter()
        .copied()
        .filter(|n| !args.contains(&fw_cfg(cfg, vmid, n)))
        .collect()
}

/// Write the credentials of `vmid` for QEMU to read, and remove any other file there.
pub fn write(cfg: &Config, vmid: Vmid, creds: &[Credential]) -> Result<(), String> {
    let base = &cfg.pve.credentials_dir;
    if base.as_str().contains([',', ' ', '\t', '\n']) {
        return Err(format!(
            "`pve.credentials_dir` ({base}) may not contain a comma or white space (QEMU options)"
        ));
    }
    crate::files::ram_dir(base, 0o711)?;
    let d = dir(cfg, vmid);
    crate::files::ram_dir(&d, 0o700)?;
    for c in creds {
        crate::files::replace_private(&d.join(&c.name), c.content.expose(), false)
            .map_err(|e| format!("cannot write credential `{}` for QEMU: {e}", c.name))?;
    }
    if let Ok(rd) = fs::read_dir(&d) {
        for e in rd.flatten() {
            let name = e.file_name();
            if !creds.iter().any(|c| name.to_str() == Some(c.name.as_str())) {
                let _ = fs::remove_file(e.path());
            }
        }
    }
    Ok(())
}

/// The credentials the VM's `args` hand to QEMU from `dir(cfg, vmid)` (phx-hook's own
/// `-fw_cfg` entries), by name.
pub fn named_in(cfg: &Config, vmid: Vmid, args: &str) -> Vec<String> {
    let prefix = format!("file={}/", dir(cfg, vmid));
    args.split_whitespace()
        .filter_map(|w| w.split(',').find_map(|p| p.strip_prefix(&prefix)))
        .map(str::to_string)
        .collect()
}

/// An empty file for every credential `args` names that pre-start did not write (a
/// migration target's or a backup's start that goes on without the vault, a guest whose
/// manifest is gone): QEMU refuses to start when an `-fw_cfg` file is missing (qemu
/// `softmmu/vl.c` `parse_fw_cfg`: "can't load"), which would break the very starts that
/// were to go on. How many were made.
pub fn placeholders(cfg: &Config, vmid: Vmid, args: &str) -> usize {
    let names = named_in(cfg, vmid, args);
    let d = dir(cfg, vmid);
    let missing: Vec<&String> = names.iter().filter(|n| !d.join(n).exists()).collect();
    if missing.is_empty()
        || crate::files::ram_dir(&cfg.pve.credentials_dir, 0o711).is_err()
        || crate::files::ram_dir(&d, 0o700).is_err()
    {
        return 0;
    }
    missing
        .iter()
        .filter(|n| crate::files::replace_private(&d.join(n), b"", false).is_ok())
        .count()
}

/// Remove the credentials of `vmid` from the host (QEMU holds its own copy once it runs);
/// how many there were.
pub fn remove(cfg: &Config, vmid: Vmid) -> usize {
    let d = dir(cfg, vmid);
    let Ok(rd) = fs::read_dir(&d) else {
        return 0;
    };
    let mut n = 0;
    for e in rd.flatten() {
        if fs::remove_file(e.path()).is_ok() {
            n += 1;
        }
    }
    let _ = fs::remove_dir(&d);
    n
}

/// Remove what starts that never finished left in `pve.credentials_dir` (a start that
/// failed between `pre-start` and QEMU or LXC reading it): every guest's directory last
/// changed more than `age` ago. QEMU reads its fw_cfg files when it starts and a
/// container's mount hook runs seconds after `pre-start`, so nothing older is still
/// needed. How many directories went.
pub fn sweep(cfg: &Config, age: std::time::Duration) -> usize {
    let Ok(rd) = fs::read_dir(&cfg.pve.credentials_dir) else {
        return 0;
    };
    let mut n = 0;
    for e in rd.flatten() {
        let old = e
            .metadata()
            .and_then(|m| m.modified())
            .is_ok_and(|t| t.elapsed().is_ok_and(|d| d > age));
        if let Some(vmid) = e.file_name().to_str().and_then(|s| s.parse::<Vmid>().ok())
            && old
        {
            remove(cfg, vmid);
            n += 1;
        }
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(dir: &str) -> Config {
        let mut c = Config::default();
        c.pve.credentials_dir = dir.into();
        c
    }

    #[test]
    fn args_are_merged_and_checked() {
        let c = cfg("/run/phx-hook/credentials");
        let id: Vmid = "201".parse().unwrap();
        let a = merged_args(
            &c,
            id,
            Some("-cpu host -fw_cfg name=opt/other,file=/etc/x"),
            &["db", "tls.key"],
        );
        assert_eq!(
            a,
            "-cpu host -fw_cfg name=opt/other,file=/etc/x -fw_cfg name=opt/io.systemd.credentials/db,file=/run/phx-hook/credentials/201/db -fw_cfg name=opt/io.systemd.credentials/tls.key,file=/run/phx-hook/credentials/201/tls.key"
        );
        // Registering again replaces phx-hook's entries, keeps the rest.
        let b = merged_args(&c, id, Some(&a), &["db"]);
        assert_eq!(
            b,
            "-cpu host -fw_cfg name=opt/other,file=/etc/x -fw_cfg name=opt/io.systemd.credentials/db,file=/run/phx-hook/credentials/201/db"
        );
        assert_eq!(missing(&c, id, Some(&b), &["db", "tls.key"]), ["tls.key"]);
        assert_eq!(
            merged_args(&c, id, Some(&b), &[]),
            "-cpu host -fw_cfg name=opt/other,file=/etc/x"
        );
    }

    /// A start that goes on without the vault still gets every file its args name
    /// (empty), or QEMU would refuse to start.
    #[test]
    fn placeholders_for_what_pre_start_did_not_write() {
        let t = tempfile::tempdir_in("/dev/shm").unwrap();
        let c = cfg(t.path().to_str().unwrap());
        let id: Vmid = "201".parse().unwrap();
        let args = merged_args(&c, id, Some("-cpu host"), &["db", "tls.key"]);
        assert_eq!(named_in(&c, id, &args), ["db", "tls.key"]);
        assert_eq!(placeholders(&c, id, &args), 2);
        assert_eq!(fs::read(dir(&c, id).join("db")).unwrap(), b"");
        assert_eq!(placeholders(&c, id, &args), 0, "only what is missing");
        assert_eq!(placeholders(&c, id, "-cpu host"), 0);
    }
}

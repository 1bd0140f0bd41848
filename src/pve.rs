//! Reading Proxmox's own files: which kind a guest is, from its config under
//! `pve.config_dir` (`qemu-server/<vmid>.conf`, `lxc/<vmid>.conf`, or the same under
//! `nodes/<node>/`, as pmxcfs lays them out), and the few config lines phx-hook needs.

use std::fs;

use camino::{Utf8Path, Utf8PathBuf};

use crate::types::{GuestKind, Vmid};

/// A guest config found on disk.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GuestConfig {
    /// VM or container.
    pub kind: GuestKind,
    /// The config file.
    pub path: Utf8PathBuf,
}

/// Why the guest's kind could not be told.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum GuestConfigError {
    /// No config for this id.
    #[error(
        "guest {vmid} has no config under `{dir}` (neither qemu-server/{vmid}.conf nor lxc/{vmid}.conf)"
    )]
    Missing {
        /// The guest.
        vmid: Vmid,
        /// The config root.
        dir: Utf8PathBuf,
    },
    /// Both a VM and a container config exist.
    #[error("guest {vmid} is ambiguous: both `{0}` and `{1}` exist", .paths.0, .paths.1)]
    Ambiguous {
        /// The guest.
        vmid: Vmid,
        /// The two configs.
        paths: (Utf8PathBuf, Utf8PathBuf),
    },
}

/// Find the guest's config: first the local-node links, then every `nodes/<node>/`.
pub fn find_guest(config_dir: &Utf8Path, vmid: Vmid) -> Result<GuestConfig, GuestConfigError> {
    let mut roots = vec![config_dir.to_owned()];
    if let Ok(nodes) = fs::read_dir(config_dir.join("nodes")) {
        let mut names: Vec<_> = nodes
            .filter_map(Result::ok)
            .filter_map(|e| e.file_name().into_string().ok())
            .collect();
        names.sort();
        roots.extend(names.into_iter().map(|n| config_dir.join("nodes").join(n)));
    }
    for root in roots {
        let q = root.join(format!("qemu-server/{vmid}.conf"));
        let l = root.join(format!("lxc/{vmid}.conf"));
        match (q.is_file(), l.is_file()) {
            (true, true) => {
                return Err(GuestConfigError::Ambiguous {
                    vmid,
                    paths: (q, l),
                });
            }
            (true, false) => {
                return Ok(GuestConfig {
                    kind: GuestKind::Qemu,
                    path: q,
                });
            }
            (false, true) => {
                return Ok(GuestConfig {
                    kind: GuestKind::Lxc,
                    path: l,
                });
            }
            (false, false) => {}
        }
    }
    Err(GuestConfigError::Missing {
        vmid,
        dir: config_dir.to_owned(),
    })
}

impl GuestConfig {
    /// The value of `key` in the config's main section (snapshots, `[name]`, are not read).
    pub fn get(&self, key: &str) -> Option<String> {
        let text = fs::read_to_string(&self.path).ok()?;
        config_value(&text, key)
    }

    /// Whether a VM's config enables the guest agent (`agent: 1`, `agent: enabled=1,...`).
    pub fn agent_enabled(&self) -> bool {
        self.get("agent").is_some_and(|v| agent_enabled(&v))
    }
}

/// `key: value` from the main section of a guest config.
pub fn config_value(text: &str, key: &str) -> Option<String> {
    for line in text.lines() {
        if line.starts_with('[') {
            break;
        }
        if let Some((k, v)) = line.split_once(':')
            && k.trim() == key
        {
            return Some(v.trim().to_string());
        }
    }
    None
}

/// Proxmox's `agent` property: `[enabled=]<1|0>[,fstrim_cloned_disks=<1|0>][,type=...]`.
pub fn agent_enabled(value: &str) -> bool {
    value
        .split(',')
        .any(|part| match part.trim().split_once('=') {
            Some(("enabled", v)) => v == "1",
            None => part.trim() == "1",
            Some(_) => false,
        })
}

/// A storage from `storage.cfg`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Storage {
    /// Its id (`local`).
    pub id: String,
    /// Its type (`dir`, `nfs`, `cifs`, `cephfs`, ...).
    pub kind: String,
    /// `path` (file-based storages).
    pub path: Option<Utf8PathBuf>,
    /// `content` types.
    pub content: Vec<String>,
}

/// Parse `storage.cfg`: `type: id` headers followed by indented `key value` lines.
pub fn parse_storage_cfg(text: &str) -> Vec<Storage> {
    let mut out: Vec<Storage> = Vec::new();
    for line in text.lines() {
        if line.trim().is_empty() || line.trim_start().starts_with('#') {
            continue;
        }
        if !line.starts_with(char::is_whitespace) {
            if let Some((kind, id)) = line.split_once(':') {
                out.push(Storage {
                    id: id.trim().to_string(),
                    kind: kind.trim().to_string(),
                    path: None,
                    content: Vec::new(),
                });
            }
            continue;
        }
        let Some(st) = out.last_mut() else { continue };
        let mut kv = line.trim().splitn(2, char::is_whitespace);
        match (kv.next(), kv.next().map(str::trim)) {
            (Some("path"), Some(p)) => st.path = Some(p.into()),
            (Some("content"), Some(c)) => {
                st.content = c.split(',').map(|x| x.trim().to_string()).collect()
            }
            _ => {}
        }
    }
    out
}

/// Where a `store:snippets/name` volume lives, from `storage.cfg`.
pub fn snippet_path(storages: &[Storage], volid: &str) -> Option<Utf8PathBuf> {
    let (store, rest) = volid.split_once(':')?;
    let name = rest.strip_prefix("snippets/")?;
    if name.is_empty() || name.contains('/') {
        return None;
    }
    let st = storages.iter().find(|s| s.id == store)?;
    Some(st.path.as_ref()?.join("snippets").join(name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_kinds_and_refuses_ambiguity() {
        let t = tempfile::tempdir().unwrap();
        let d = Utf8Path::from_path(t.path()).unwrap();
        let v = |s: &str| s.parse::<Vmid>().unwrap();
        fs::create_dir_all(d.join("nodes/pve1/qemu-server")).unwrap();
        fs::create_dir_all(d.join("lxc")).unwrap();
        fs::write(d.join("nodes/pve1/qemu-server/200.conf"), "agent: 1\n").unwrap();
        fs::write(d.join("lxc/101.conf"), "arch: amd64\n").unwrap();
        assert_eq!(find_guest(d, v("101")).unwrap().kind, GuestKind::Lxc);
        assert_eq!(find_guest(d, v("200")).unwrap().kind, GuestKind::Qemu);
        assert!(matches!(
            find_guest(d, v("300")),
            Err(GuestConfigError::Missing { .. })
        ));
        fs::create_dir_all(d.join("qemu-server")).unwrap();
        fs::write(d.join("qemu-server/101.conf"), "").unwrap();
        assert!(matches!(
            find_guest(d, v("101")),
            Err(GuestConfigError::Ambiguous { .. })
        ));
    }

    #[test]
    fn config_values_and_agent() {
        let text = "agent: enabled=1,fstrim_cloned_disks=1\nlock: backup\nhookscript: local:snippets/x\n[snap]\nlock: no\n";
        assert_eq!(config_value(text, "lock").as_deref(), Some("backup"));
        assert_eq!(
            config_value(text, "hookscript").as_deref(),
            Some("local:snippets/x")
        );
        assert_eq!(config_value(text, "nope"), None);
        for (v, want) in [
            ("1", true),
            ("0", false),
            ("enabled=1", true),
            ("enabled=0,type=isa", false),
            ("1,type=virtio", true),
        ] {
            assert_eq!(agent_enabled(v), want, "{v}");
        }
    }

    #[test]
    fn storage_cfg_and_snippets() {
        let cfg = "dir: local\n\tpath /var/lib/vz\n\tcontent iso,vztmpl,backup,snippets\n\nlvmthin: local-lvm\n\tthinpool data\n\tcontent rootdir,images\n";
        let st = parse_storage_cfg(cfg);
        assert_eq!(st.len(), 2);
        assert_eq!(st[0].content, vec!["iso", "vztmpl", "backup", "snippets"]);
        assert_eq!(
            snippet_path(&st, "local:snippets/phx-hook").unwrap(),
            "/var/lib/vz/snippets/phx-hook"
        );
        assert_eq!(snippet_path(&st, "local:snippets/a/b"), None);
        assert_eq!(snippet_path(&st, "local-lvm:snippets/x"), None);
    }
}

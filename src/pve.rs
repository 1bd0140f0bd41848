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
}

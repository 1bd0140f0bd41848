//! Reading Proxmox's own files the way Proxmox reads them (docs/PROXMOX.md §6, §16, §17):
//! which kind a guest is and on which node, from its config under `pve.config_dir`
//! (`qemu-server/<vmid>.conf`, `lxc/<vmid>.conf`, or the same under `nodes/<node>/`, as
//! pmxcfs lays them out); the config lines phx-hook needs, parsed like
//! `PVE::QemuServer::parse_vm_config` and `PVE::JSONSchema::parse_property_string`; and
//! `storage.cfg`, parsed like `PVE::Storage::Plugin::parse_config`.

use std::collections::BTreeMap;
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
    /// The cluster node whose directory holds it (`nodes/<node>/...`), when known.
    pub node: Option<String>,
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

/// The containers running on this node: those whose LXC monitor has its command socket
/// bound, `@<lxc_path>/<vmid>/command` in `/proc/net/unix`. This is Proxmox's own test
/// (pve-container src/PVE/LXC.pm, `list_active_containers`, used by `check_running`),
/// and it starts no process. Only this host's sockets are listed (the reader's network
/// namespace), and the read is capped.
pub fn active_containers(lxc_path: &Utf8Path) -> std::io::Result<std::collections::BTreeSet<u32>> {
    use std::io::Read;
    let mut text = Vec::new();
    fs::File::open("/proc/net/unix")?
        .take(MAX_NET_UNIX)
        .read_to_end(&mut text)?;
    Ok(parse_active_containers(
        &String::from_utf8_lossy(&text),
        lxc_path,
    ))
}

/// At most this much of `/proc/net/unix` is read (a line is about 100 bytes).
const MAX_NET_UNIX: u64 = 64 << 20;

fn parse_active_containers(text: &str, lxc_path: &Utf8Path) -> std::collections::BTreeSet<u32> {
    let prefix = format!("@{}/", lxc_path.as_str().trim_end_matches('/'));
    text.lines()
        .filter_map(|l| l.split_whitespace().nth(7))
        .filter_map(|p| p.strip_prefix(prefix.as_str())?.strip_suffix("/command"))
        .filter(|id| !id.is_empty() && id.bytes().all(|b| b.is_ascii_digit()))
        .filter_map(|id| id.parse().ok())
        .collect()
}

/// This node's name: where `<config_dir>/local` points (`nodes/<name>`, as pmxcfs links
/// it), else the host name (`PVE::INotify::nodename`, the short host name).
pub fn local_node(config_dir: &Utf8Path) -> String {
    if let Ok(t) = fs::read_link(config_dir.join("local"))
        && let Some(n) = t.file_name().and_then(|n| n.to_str())
    {
        return n.to_string();
    }
    fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .and_then(|h| h.trim().split('.').next().map(str::to_string))
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".into())
}

/// The cluster's nodes: the directories under `<config_dir>/nodes`, sorted.
pub fn nodes(config_dir: &Utf8Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(config_dir.join("nodes"))
        .map(|rd| {
            rd.filter_map(Result::ok)
                .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
                .filter_map(|e| e.file_name().into_string().ok())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// Find the guest's config: first the local-node links, then every `nodes/<node>/`.
pub fn find_guest(config_dir: &Utf8Path, vmid: Vmid) -> Result<GuestConfig, GuestConfigError> {
    let local = local_node(config_dir);
    let mut roots = vec![(config_dir.to_owned(), None)];
    for n in nodes(config_dir) {
        roots.push((config_dir.join("nodes").join(&n), Some(n)));
    }
    for (root, node) in roots {
        let q = root.join(format!("qemu-server/{vmid}.conf"));
        let l = root.join(format!("lxc/{vmid}.conf"));
        let node = node.or_else(|| Some(local.clone()));
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
                    node,
                });
            }
            (false, true) => {
                return Ok(GuestConfig {
                    kind: GuestKind::Lxc,
                    path: l,
                    node,
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
    /// The value of `key` in the config's main section, as Proxmox reads it.
    pub fn get(&self, key: &str) -> Option<String> {
        config_value(&self.text()?, key)
    }

    /// The whole config.
    pub fn text(&self) -> Option<String> {
        fs::read_to_string(&self.path).ok()
    }

    /// Whether a VM's config enables the guest agent, as `parse_guest_agent` decides.
    pub fn agent_enabled(&self) -> bool {
        self.get("agent").is_some_and(|v| agent_enabled(&v))
    }

    /// Whether this guest lives on `node` (unknown counts as yes: a single node).
    pub fn is_on(&self, node: &str) -> bool {
        self.node.as_deref().is_none_or(|n| n == node)
    }
}

/// `key: value` from the main section of a guest config, as
/// `PVE::QemuServer::parse_vm_config` (qemu-server src/PVE/QemuServer.pm) and
/// `PVE::LXC::Config::parse_pct_config` read it: a line `^([a-z][a-z_\-]*\d*):\s*(.+?)\s*$`
/// at column 0; the main section ends at the first `[section]` (a snapshot, `[PENDING]`,
/// `[special:cloudinit]`); when a key repeats, the last value that passes the key's check
/// wins (`check_type`: an invalid later value is dropped with a warning, keeping the
/// earlier one).
pub fn config_value(text: &str, key: &str) -> Option<String> {
    let mut found = None;
    for line in text.lines() {
        if line.starts_with('[') {
            break;
        }
        let Some((k, v)) = line.split_once(':') else {
            continue;
        };
        let valid_key = k.starts_with(|c: char| c.is_ascii_lowercase())
            && k.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
        if !valid_key || k != key {
            continue;
        }
        let v = v.trim();
        if v.is_empty() || !value_is_valid(key, v) {
            continue;
        }
        found = Some(v.to_string());
    }
    found
}

/// The checks phx-hook repeats from Proxmox's schema for the keys it reads.
fn value_is_valid(key: &str, v: &str) -> bool {
    match key {
        "agent" => parse_agent(v).is_ok(),
        "hookscript" => v
            .split_once(':')
            .is_some_and(|(s, p)| !s.is_empty() && !p.is_empty()),
        _ => true,
    }
}

/// `PVE::JSONSchema::parse_boolean`: `1|on|yes|true` and `0|off|no|false`, any case.
pub fn parse_boolean(s: &str) -> Option<bool> {
    match s.to_ascii_lowercase().as_str() {
        "1" | "on" | "yes" | "true" => Some(true),
        "0" | "off" | "no" | "false" => Some(false),
        _ => None,
    }
}

/// A VM's `agent` option.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AgentOpts {
    /// `enabled` (the default key).
    pub enabled: bool,
    /// `type`: `virtio` (default) or `isa`.
    pub kind: Option<String>,
}

/// `agent:` as `parse_guest_agent` reads it (qemu-server src/PVE/QemuServer/Agent.pm):
/// a property string (`parse_property_string`) whose default key is `enabled`; a
/// duplicate or unknown key, or a bad boolean, is a parse error, which Proxmox treats as
/// "agent disabled".
pub fn parse_agent(value: &str) -> Result<AgentOpts, String> {
    let mut opts = AgentOpts::default();
    let mut seen = std::collections::BTreeSet::new();
    for part in value.split(',') {
        let (k, v) = match part.split_once('=') {
            Some((k, v)) => (k.trim(), v.trim()),
            None => ("enabled", part.trim()),
        };
        let k = match k {
            "freeze-fs-on-backup" | "guest-fsfreeze" => "freeze-fs",
            k => k,
        };
        if !seen.insert(k) {
            return Err(format!("duplicate key `{k}`"));
        }
        match k {
            "enabled" => {
                opts.enabled = parse_boolean(v).ok_or_else(|| format!("`{v}` is not a boolean"))?
            }
            "fstrim_cloned_disks" | "freeze-fs" => {
                parse_boolean(v).ok_or_else(|| format!("`{v}` is not a boolean"))?;
            }
            "type" if v == "virtio" || v == "isa" => opts.kind = Some(v.to_string()),
            other => return Err(format!("unknown key or value `{other}={v}`")),
        }
    }
    Ok(opts)
}

/// Whether a VM's `agent` property enables the guest agent.
pub fn agent_enabled(value: &str) -> bool {
    parse_agent(value).is_ok_and(|a| a.enabled)
}

/// Whether a VM's `ostype` is Windows: every Windows type starts with `w` (`wxp`, `w2k`,
/// `w2k3`, `w2k8`, `wvista`, `win7` ... `win11`) and no other does (qemu-server
/// `$confdesc->{ostype}`, `windows_version` in QemuServer/Helpers.pm).
pub fn is_windows(ostype: &str) -> bool {
    ostype.starts_with('w')
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
    /// `content-dirs`: content type -> directory below `path`.
    pub content_dirs: BTreeMap<String, String>,
    /// Marked shared (the same content on every node), or shared by its type.
    pub shared: bool,
    /// `nodes`: the only nodes that may use it (empty: all).
    pub nodes: Vec<String>,
    /// `disable`.
    pub disabled: bool,
}

/// Storage types Proxmox always treats as shared (`@SHARED_STORAGE`, pve-storage
/// src/PVE/Storage/Plugin.pm).
const SHARED_TYPES: [&str; 9] = [
    "iscsi",
    "nfs",
    "cifs",
    "rbd",
    "cephfs",
    "iscsidirect",
    "zfs",
    "drbd",
    "pbs",
];

impl Storage {
    /// The directory that holds this storage's snippets: `get_subdir` honours
    /// `content-dirs` (pve-storage Plugin.pm `get_subdir`).
    pub fn snippets_dir(&self) -> Option<Utf8PathBuf> {
        let sub = self
            .content_dirs
            .get("snippets")
            .map_or("snippets", String::as_str);
        Some(self.path.as_ref()?.join(sub))
    }

    /// Whether `node` may use this storage.
    pub fn is_on(&self, node: &str) -> bool {
        self.nodes.is_empty() || self.nodes.iter().any(|n| n == node)
    }
}

/// Parse `storage.cfg` as `PVE::Storage::Plugin::parse_config` does: `type: id` headers
/// followed by indented `key value` lines; `content-dirs`, `shared`, `nodes`, `disable`
/// read; the types in [`SHARED_TYPES`] shared; a `dir` storage without `content` holding
/// `images,rootdir`; and `local` synthesised as `dir` on `/var/lib/vz` (with every
/// content type, snippets included) when it is missing, not a `dir`, or on another path.
pub fn parse_storage_cfg(text: &str) -> Vec<Storage> {
    let mut out: Vec<Storage> = Vec::new();
    let mut has_content = Vec::new();
    for line in text.lines() {
        if line.trim().is_empty() || line.trim_start().starts_with('#') {
            continue;
        }
        if !line.starts_with(char::is_whitespace) {
            if let Some((kind, id)) = line.split_once(':') {
                let kind = kind.trim().to_string();
                out.push(Storage {
                    id: id.trim().to_string(),
                    shared: SHARED_TYPES.contains(&kind.as_str()),
                    kind,
                    path: None,
                    content: Vec::new(),
                    content_dirs: BTreeMap::new(),
                    nodes: Vec::new(),
                    disabled: false,
                });
                has_content.push(false);
            }
            continue;
        }
        let Some(st) = out.last_mut() else { continue };
        let mut kv = line.trim().splitn(2, char::is_whitespace);
        let list = |v: &str| -> Vec<String> {
            v.split([',', ';', ' ', '\t'])
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect()
        };
        match (kv.next(), kv.next().map(str::trim)) {
            (Some("path"), Some(p)) => st.path = Some(p.into()),
            (Some("content"), Some(c)) => {
                st.content = list(c);
                if let Some(h) = has_content.last_mut() {
                    *h = true;
                }
            }
            (Some("content-dirs"), Some(c)) => {
                st.content_dirs = list(c)
                    .iter()
                    .filter_map(|d| d.split_once('='))
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect();
            }
            (Some("shared"), v) if !SHARED_TYPES.contains(&st.kind.as_str()) => {
                st.shared = matches!(v, None | Some("1"));
            }
            (Some("nodes"), Some(n)) => st.nodes = list(n),
            (Some("disable"), v) => st.disabled = matches!(v, None | Some("1")),
            _ => {}
        }
    }
    for (st, had) in out.iter_mut().zip(has_content) {
        if st.kind == "dir" && !had {
            st.content = vec!["images".into(), "rootdir".into()];
        }
    }
    let default_path = Utf8Path::new("/var/lib/vz");
    let local_ok = out.iter().any(|s| {
        s.id == "local" && s.kind == "dir" && s.path.as_deref().is_none_or(|p| p == default_path)
    });
    if !local_ok {
        out.retain(|s| s.id != "local");
        out.push(Storage {
            id: "local".into(),
            kind: "dir".into(),
            path: Some(default_path.into()),
            content: ["backup", "images", "iso", "rootdir", "snippets", "vztmpl"]
                .iter()
                .map(|s| s.to_string())
                .collect(),
            content_dirs: BTreeMap::new(),
            shared: false,
            nodes: Vec::new(),
            disabled: false,
        });
    }
    for st in out.iter_mut().filter(|s| s.id == "local") {
        st.path.get_or_insert_with(|| default_path.into());
        st.nodes.clear();
    }
    out
}

/// Where a `store:snippets/name` volume lives (`PVE::Storage::path` →
/// `filesystem_path`, which checks neither `disable` nor `nodes` nor `content`).
pub fn snippet_path(storages: &[Storage], volid: &str) -> Option<Utf8PathBuf> {
    let (store, rest) = volid.split_once(':')?;
    let name = rest.strip_prefix("snippets/")?;
    if name.is_empty() || name.contains('/') {
        return None;
    }
    let st = storages.iter().find(|s| s.id == store)?;
    Some(st.snippets_dir()?.join(name))
}

#[cfg(test)]
mod tests {
    #[test]
    fn running_containers_are_those_with_a_bound_command_socket() {
        let text = "Num       RefCount Protocol Flags    Type St Inode Path
000000003f62cc10: 00000002 00000000 00010000 0001 01 456115 @/var/lib/lxc/101/command
000000003f62cc11: 00000002 00000000 00010000 0001 01 456116 @/var/lib/lxc/102/command.x
000000003f62cc12: 00000002 00000000 00010000 0001 01 456117 @/var/lib/lxcx/103/command
000000003f62cc13: 00000002 00000000 00010000 0001 01 456118 @/var/lib/lxc/abc/command
000000003f62cc14: 00000002 00000000 00010000 0001 01 456119 /run/lxc/104/command
000000003f62cc15: 00000003 00000000 00000000 0001 03 456120
000000003f62cc16: 00000002 00000000 00010000 0001 01 456121 @/var/lib/lxc/105/command
";
        let got: Vec<u32> = super::parse_active_containers(text, "/var/lib/lxc/".into())
            .into_iter()
            .collect();
        assert_eq!(got, [101, 105]);
    }

    use super::*;

    #[test]
    fn finds_kinds_nodes_and_refuses_ambiguity() {
        let t = tempfile::tempdir().unwrap();
        let d = Utf8Path::from_path(t.path()).unwrap();
        let v = |s: &str| s.parse::<Vmid>().unwrap();
        fs::create_dir_all(d.join("nodes/pve1/qemu-server")).unwrap();
        fs::create_dir_all(d.join("nodes/pve2/lxc")).unwrap();
        std::os::unix::fs::symlink("nodes/pve2", d.join("local")).unwrap();
        fs::write(d.join("nodes/pve1/qemu-server/200.conf"), "agent: 1\n").unwrap();
        fs::write(d.join("nodes/pve2/lxc/101.conf"), "arch: amd64\n").unwrap();
        let g = find_guest(d, v("101")).unwrap();
        assert_eq!((g.kind, g.node.as_deref()), (GuestKind::Lxc, Some("pve2")));
        let g = find_guest(d, v("200")).unwrap();
        assert_eq!((g.kind, g.node.as_deref()), (GuestKind::Qemu, Some("pve1")));
        assert!(!g.is_on(&local_node(d)));
        assert_eq!(local_node(d), "pve2");
        assert_eq!(nodes(d), vec!["pve1", "pve2"]);
        assert!(matches!(
            find_guest(d, v("300")),
            Err(GuestConfigError::Missing { .. })
        ));
        fs::create_dir_all(d.join("nodes/pve2/qemu-server")).unwrap();
        fs::write(d.join("nodes/pve2/qemu-server/101.conf"), "").unwrap();
        assert!(matches!(
            find_guest(d, v("101")),
            Err(GuestConfigError::Ambiguous { .. })
        ));
    }

    #[test]
    fn config_values_as_proxmox_reads_them() {
        let text = "agent: enabled=1,fstrim_cloned_disks=1\nlock: backup\nhookscript: local:snippets/x\n  lock: indented\nLock: upper\nlock: migrate\n[snap]\nlock: no\n";
        assert_eq!(config_value(text, "lock").as_deref(), Some("migrate"));
        assert_eq!(
            config_value(text, "hookscript").as_deref(),
            Some("local:snippets/x")
        );
        assert_eq!(config_value(text, "nope"), None);
        // A later invalid value is dropped, the earlier one stays.
        let text = "agent: 1\nagent: enabled=maybe\n";
        assert_eq!(config_value(text, "agent").as_deref(), Some("1"));
        assert_eq!(
            config_value("agent: 0\nagent: on\n", "agent").as_deref(),
            Some("on")
        );
        for (v, want) in [
            ("1", true),
            ("0", false),
            ("on", true),
            ("YES", true),
            ("True", true),
            ("off", false),
            ("enabled=1", true),
            ("enabled=true,freeze-fs-on-backup=0", true),
            ("enabled=0,type=isa", false),
            ("1,type=virtio", true),
            ("1,type=isa,fstrim_cloned_disks=1", true),
            ("1,enabled=1", false),
            ("1,bogus=1", false),
            ("maybe", false),
            ("1,type=pci", false),
        ] {
            assert_eq!(agent_enabled(v), want, "{v}");
        }
        assert!(is_windows("win11") && is_windows("w2k8") && is_windows("wxp"));
        assert!(!is_windows("l26") && !is_windows("other"));
    }

    #[test]
    fn storage_cfg_as_proxmox_reads_it() {
        let cfg = "dir: local\n\tpath /var/lib/vz\n\tcontent iso,vztmpl,backup\n\nlvmthin: local-lvm\n\tthinpool data\n\tcontent rootdir,images\n\ndir: snip\n\tpath /srv/s\n\tcontent snippets\n\tcontent-dirs snippets=hooks,iso=isos\n\tshared 1\n\tnodes pve1,pve2\n\nnfs: net\n\tpath /mnt/pve/net\n\tcontent snippets\n\tdisable\n\ndir: plain\n\tpath /srv/p\n";
        let st = parse_storage_cfg(cfg);
        let get = |id: &str| st.iter().find(|s| s.id == id).unwrap();
        assert_eq!(get("local").content, vec!["iso", "vztmpl", "backup"]);
        assert_eq!(
            snippet_path(&st, "snip:snippets/phx-hook").unwrap(),
            "/srv/s/hooks/phx-hook"
        );
        assert!(get("snip").shared && get("snip").is_on("pve2") && !get("snip").is_on("pve3"));
        assert!(get("net").shared && get("net").disabled);
        assert!(!get("local").shared);
        assert_eq!(get("plain").content, vec!["images", "rootdir"]);
        assert_eq!(snippet_path(&st, "local:snippets/a/b"), None);
        assert_eq!(snippet_path(&st, "local-lvm:snippets/x"), None);
        // No `local`, or a `local` that is not a dir on /var/lib/vz: Proxmox makes one.
        for cfg in [
            "",
            "lvm: local\n\tvgname pve\n",
            "dir: local\n\tpath /elsewhere\n",
        ] {
            let st = parse_storage_cfg(cfg);
            let l = st.iter().find(|s| s.id == "local").unwrap();
            assert_eq!(l.kind, "dir");
            assert!(l.content.iter().any(|c| c == "snippets"));
            assert_eq!(
                snippet_path(&st, "local:snippets/phx-hook").unwrap(),
                "/var/lib/vz/snippets/phx-hook"
            );
        }
    }
}

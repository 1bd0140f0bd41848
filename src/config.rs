//! The host configuration (DESIGN §2.1): where the vault, key and manifests are, the
//! signature policy, and how to reach Proxmox. Every field has a default, so a host with
//! no config file works with the standard paths. Unknown keys are errors that name the
//! key and its line: a typo in a security setting must never be ignored.

use std::time::Duration;

use camino::{Utf8Path, Utf8PathBuf};
use serde::Deserialize;
use serde_saphyr::Spanned;

use crate::input::{self, InputError, Place, Trust};

/// Where the config is looked for when neither `--config` nor `$PHX_HOOK_CONFIG` is set.
pub const SEARCH_PATH: [&str; 2] = [
    "/etc/pve/phx-hook/phx-hook.yaml",
    "/etc/phx-hook/phx-hook.yaml",
];

/// The default of `max_plaintext`: far above any real vault (pmxcfs holds at most 1 MiB
/// per file), far below what would hurt a hypervisor.
pub const DEFAULT_MAX_PLAINTEXT: u64 = 64 * 1024 * 1024;

/// The environment variable naming the config file.
pub const CONFIG_ENV: &str = "PHX_HOOK_CONFIG";

/// The checked host configuration.
#[derive(Clone, Debug)]
pub struct Config {
    /// The file it was read from; `None` when no file exists and defaults apply.
    pub source: Option<Utf8PathBuf>,
    /// The encrypted vault.
    pub vault: Utf8PathBuf,
    /// The host's OpenPGP secret key(s), armored or binary.
    pub key: Utf8PathBuf,
    /// A file holding the host key's passphrase, if it has one.
    pub key_passphrase_file: Option<Utf8PathBuf>,
    /// The directory of `<vmid>.yaml` manifests.
    pub manifests: Utf8PathBuf,
    /// The audit log (JSON lines).
    pub audit_log: Utf8PathBuf,
    /// A node-local log for audit lines when `audit_log` cannot be written (on pmxcfs
    /// without quorum).
    pub audit_fallback: Utf8PathBuf,
    /// Fingerprints (upper-case hex) of the keys allowed to sign the vault; empty means
    /// an unsigned vault is accepted.
    pub signers: Vec<String>,
    /// Public keys (armored or binary; several allowed) to check vault signatures with:
    /// the vault's recipients file. Only keys whose fingerprint is in `signers` count.
    pub recipients: Utf8PathBuf,
    /// Runtime state: per-guest worker locks.
    pub state_dir: Utf8PathBuf,
    /// Where the host remembers the highest vault version it accepted (rollback
    /// protection); root-only.
    pub rollback_state: Utf8PathBuf,
    /// The syslog socket the detached delivery worker logs to when the journal does not
    /// run (or `journal` is off).
    pub syslog: Utf8PathBuf,
    /// Log to the systemd journal (with structured fields) when it runs.
    pub journal: bool,
    /// Accept GnuPG 2.4's OCB-encrypted packets (what gpg 2.4 writes for keys that
    /// advertise AEAD).
    pub gnupg_aead: bool,
    /// The most plaintext a vault may decompress to: a compressed vault of a few KiB can
    /// expand to gigabytes (a compression bomb), and every guest start decrypts it.
    pub max_plaintext: u64,
    /// How to reach Proxmox.
    pub pve: Pve,
    /// Guest agent timing.
    pub agent: Agent,
}

/// The `pve:` section.
#[derive(Clone, Debug)]
pub struct Pve {
    /// Root of the guest configs (`qemu-server/<vmid>.conf`, `lxc/<vmid>.conf`).
    pub config_dir: Utf8PathBuf,
    /// Where QEMU's guest-agent sockets (`<vmid>.qga`) are.
    pub qga_socket_dir: Utf8PathBuf,
    /// Where LXC config locks (`pve-config-<vmid>.lock`) are.
    pub lock_dir_lxc: Utf8PathBuf,
    /// LXC's lxcpath: a container runs while `@<lxc_path>/<vmid>/command` is bound.
    pub lxc_path: Utf8PathBuf,
    /// Where VMs' systemd credentials wait for QEMU between pre-start and post-start
    /// (`<dir>/<vmid>/<name>`): root-only, on tmpfs.
    pub credentials_dir: Utf8PathBuf,
    /// The `pct` command.
    pub pct: String,
    /// The `qm` command (registration).
    pub qm: String,
    /// The `lxc-info` command (to find a container's init pid).
    pub lxc_info: String,
    /// The `lxc-attach` command (the native transport's `after` commands).
    pub lxc_attach: String,
    /// How long the pct transport waits for a container's config lock.
    pub lock_wait: Duration,
    /// How files reach containers.
    pub lxc_transport: LxcTransport,
}

/// How files reach containers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LxcTransport {
    /// `pct push` + `pct exec`.
    Pct,
    /// Enter the container's namespaces from a forked child.
    Native,
}

/// The `agent:` section.
#[derive(Clone, Debug)]
pub struct Agent {
    /// How long delivery waits for a VM's agent after start.
    pub wait: Duration,
    /// The bound on each agent command.
    pub timeout: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            source: None,
            vault: "/etc/phx-hook/secrets.json.gpg".into(),
            key: "/etc/phx-hook/host.key".into(),
            key_passphrase_file: None,
            manifests: "/etc/phx-hook/manifests".into(),
            audit_log: "/var/log/phx-hook/audit.jsonl".into(),
            audit_fallback: "/var/log/phx-hook/audit.jsonl".into(),
            signers: Vec::new(),
            recipients: "/etc/phx-hook/recipients.asc".into(),
            state_dir: "/run/phx-hook".into(),
            rollback_state: "/var/lib/phx-hook/vault-version".into(),
            syslog: "/dev/log".into(),
            journal: true,
            gnupg_aead: true,
            max_plaintext: DEFAULT_MAX_PLAINTEXT,
            pve: Pve {
                config_dir: "/etc/pve".into(),
                qga_socket_dir: "/var/run/qemu-server".into(),
                lock_dir_lxc: "/run/lock/lxc".into(),
                lxc_path: "/var/lib/lxc".into(),
                credentials_dir: "/run/phx-hook/credentials".into(),
                pct: "pct".into(),
                qm: "qm".into(),
                lxc_info: "lxc-info".into(),
                lxc_attach: "lxc-attach".into(),
                lock_wait: Duration::from_secs(60),
                lxc_transport: LxcTransport::Pct,
            },
            agent: Agent {
                wait: Duration::from_secs(300),
                timeout: Duration::from_secs(10),
            },
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    vault: Option<Spanned<String>>,
    key: Option<Spanned<String>>,
    key_passphrase_file: Option<Spanned<String>>,
    manifests: Option<Spanned<String>>,
    audit_log: Option<Spanned<String>>,
    audit_fallback: Option<Spanned<String>>,
    signers: Option<Vec<Spanned<String>>>,
    recipients: Option<Spanned<String>>,
    state_dir: Option<Spanned<String>>,
    rollback_state: Option<Spanned<String>>,
    syslog: Option<Spanned<String>>,
    journal: Option<bool>,
    gnupg_aead: Option<bool>,
    max_plaintext: Option<Spanned<Scalar>>,
    pve: Option<RawPve>,
    agent: Option<RawAgent>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPve {
    config_dir: Option<Spanned<String>>,
    qga_socket_dir: Option<Spanned<String>>,
    lock_dir_lxc: Option<Spanned<String>>,
    lxc_path: Option<Spanned<String>>,
    credentials_dir: Option<Spanned<String>>,
    pct: Option<Spanned<String>>,
    qm: Option<Spanned<String>>,
    lxc_info: Option<Spanned<String>>,
    lxc_attach: Option<Spanned<String>>,
    lock_wait: Option<Spanned<String>>,
    lxc_transport: Option<LxcTransport>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAgent {
    wait: Option<Spanned<String>>,
    timeout: Option<Spanned<String>>,
}

impl Config {
    /// Find and load the config: `explicit` (from `--config`), else `$PHX_HOOK_CONFIG`,
    /// else the first of [`SEARCH_PATH`] that exists, else the defaults. A path that was
    /// named explicitly must exist.
    pub fn discover(explicit: Option<&Utf8Path>, env: Option<&str>) -> Result<Config, InputError> {
        if let Some(path) = explicit {
            return Config::load(path);
        }
        if let Some(path) = env.filter(|p| !p.is_empty()) {
            return Config::load(Utf8Path::new(path));
        }
        for path in SEARCH_PATH {
            let path = Utf8Path::new(path);
            if path.exists() {
                return Config::load(path);
            }
        }
        let mut cfg = Config::default();
        cfg.apply_layout(Given::default());
        Ok(cfg)
    }

    /// Fill in the places the config did not name (`given`): on a Proxmox VE node (see
    /// [`Layout`]) cluster-wide under `<pve.config_dir>`, so that any node can start any
    /// guest (HA recovery, migration); elsewhere node-local under `/etc/phx-hook`.
    fn apply_layout(&mut self, given: Given) {
        let l = Layout::of(&self.pve.config_dir, Utf8Path::new(LEGACY_DIR));
        if !given.vault {
            self.vault = l.vault;
        }
        if !given.recipients {
            self.recipients = self
                .vault
                .parent()
                .unwrap_or(Utf8Path::new("/"))
                .join("recipients.asc");
        }
        if !given.key {
            self.key = l.key;
        }
        if !given.manifests {
            self.manifests = l.manifests;
        }
    }

    /// Load and check one config file.
    pub fn load(path: &Utf8Path) -> Result<Config, InputError> {
        let text = input::read_text(path, Trust::RootWritable)?;
        Config::parse(path, &text)
    }

    /// Check config text; `path` is used in messages and to resolve relative paths
    /// (relative to the config file's directory).
    pub fn parse(path: &Utf8Path, text: &str) -> Result<Config, InputError> {
        // An empty file (or one holding only comments) means "all defaults".
        let raw: Option<RawConfig> =
            if text.trim().is_empty() || text.lines().all(is_comment_or_blank) {
                None
            } else {
                Some(input::parse_yaml(path, text)?)
            };
        let mut cfg = Config {
            source: Some(path.to_owned()),
            ..Config::default()
        };
        let Some(raw) = raw else {
            cfg.apply_layout(Given::default());
            return Ok(cfg);
        };
        let given = Given {
            vault: raw.vault.is_some(),
            key: raw.key.is_some(),
            manifests: raw.manifests.is_some(),
            recipients: raw.recipients.is_some(),
        };
        let base = path.parent().unwrap_or(Utf8Path::new("/"));
        let p = |s: Spanned<String>| abs_path(path, base, s);

        if let Some(v) = raw.vault {
            cfg.vault = p(v)?;
        }
        if let Some(v) = raw.key {
            cfg.key = p(v)?;
        }
        if let Some(v) = raw.key_passphrase_file {
            cfg.key_passphrase_file = Some(p(v)?);
        }
        if let Some(v) = raw.manifests {
            cfg.manifests = p(v)?;
        }
        if let Some(v) = raw.audit_log {
            cfg.audit_log = p(v)?;
        }
        if let Some(v) = raw.audit_fallback {
            cfg.audit_fallback = p(v)?;
        }
        if let Some(v) = raw.recipients {
            cfg.recipients = p(v)?;
        }
        for s in raw.signers.unwrap_or_default() {
            let place = Place::of(&s.referenced);
            let fpr = parse_fingerprint(&s.value)
                .map_err(|m| place.error(path, format!("signers: {m}")))?;
            if !cfg.signers.contains(&fpr) {
                cfg.signers.push(fpr);
            }
        }
        if let Some(v) = raw.state_dir {
            cfg.state_dir = p(v)?;
        }
        if let Some(v) = raw.rollback_state {
            cfg.rollback_state = p(v)?;
        }
        if let Some(v) = raw.syslog {
            cfg.syslog = p(v)?;
        }
        if let Some(v) = raw.journal {
            cfg.journal = v;
        }
        if let Some(v) = raw.gnupg_aead {
            cfg.gnupg_aead = v;
        }
        if let Some(v) = raw.max_plaintext {
            cfg.max_plaintext = parse_size(&v.value.0)
                .map_err(|m| Place::of(&v.referenced).error(path, format!("max_plaintext: {m}")))?;
        }
        if let Some(pve) = raw.pve {
            if let Some(v) = pve.config_dir {
                cfg.pve.config_dir = p(v)?;
            }
            if let Some(v) = pve.qga_socket_dir {
                cfg.pve.qga_socket_dir = p(v)?;
            }
            if let Some(v) = pve.lock_dir_lxc {
                cfg.pve.lock_dir_lxc = p(v)?;
            }
            if let Some(v) = pve.lxc_path {
                cfg.pve.lxc_path = p(v)?;
            }
            if let Some(v) = pve.credentials_dir {
                cfg.pve.credentials_dir = p(v)?;
            }
            if let Some(v) = pve.pct {
                cfg.pve.pct = command(path, v)?;
            }
            if let Some(v) = pve.qm {
                cfg.pve.qm = command(path, v)?;
            }
            if let Some(v) = pve.lxc_info {
                cfg.pve.lxc_info = command(path, v)?;
            }
            if let Some(v) = pve.lxc_attach {
                cfg.pve.lxc_attach = command(path, v)?;
            }
            if let Some(v) = pve.lock_wait {
                cfg.pve.lock_wait = duration(path, "pve.lock_wait", v)?;
            }
            if let Some(v) = pve.lxc_transport {
                cfg.pve.lxc_transport = v;
            }
        }
        if let Some(agent) = raw.agent {
            if let Some(v) = agent.wait {
                cfg.agent.wait = duration(path, "agent.wait", v)?;
            }
            if let Some(v) = agent.timeout {
                cfg.agent.timeout = duration(path, "agent.timeout", v)?;
                if cfg.agent.timeout.is_zero() {
                    return Err(InputError::Invalid {
                        path: path.to_owned(),
                        line: 0,
                        column: 0,
                        message: "agent.timeout must be greater than 0".into(),
                    });
                }
            }
        }
        cfg.apply_layout(given);
        Ok(cfg)
    }
}

/// Which of the places [`Layout`] fills in the config file named itself.
#[derive(Default)]
struct Given {
    vault: bool,
    key: bool,
    manifests: bool,
    recipients: bool,
}

/// Where phx-hook keeps its own files off a Proxmox VE cluster (and did before it was
/// cluster-aware).
pub const LEGACY_DIR: &str = "/etc/phx-hook";

/// Where the vault, the host key and the manifests are when the config does not say.
///
/// On a Proxmox VE node, pmxcfs is mounted at `pve.config_dir` (`/etc/pve`), which
/// pve-cluster's `PVE::Cluster::check_cfs_is_mounted` recognises by its `local` link:
/// then the vault and manifests go under `<config_dir>/phx-hook/` and the host key under
/// `<config_dir>/priv/phx-hook/` (root-only, where Proxmox keeps its own cluster
/// secrets), replicated to every node, so a guest that HA or a migration moves gets its
/// secrets there too. A node that already keeps one of them at the node-local place, and
/// not at the cluster one, keeps using it (`doctor` says how to move it). Off Proxmox,
/// everything is under `/etc/phx-hook`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Layout {
    /// The vault.
    pub vault: Utf8PathBuf,
    /// The host key.
    pub key: Utf8PathBuf,
    /// The manifests directory.
    pub manifests: Utf8PathBuf,
    /// Whether `pve_dir` is a mounted pmxcfs.
    pub cluster: bool,
}

impl Layout {
    /// The layout for a node whose Proxmox config is `pve_dir`, with `legacy` the
    /// node-local directory.
    pub fn of(pve_dir: &Utf8Path, legacy: &Utf8Path) -> Layout {
        let local = (
            legacy.join("secrets.json.gpg"),
            legacy.join("host.key"),
            legacy.join("manifests"),
        );
        if !is_pmxcfs(pve_dir) {
            return Layout {
                vault: local.0,
                key: local.1,
                manifests: local.2,
                cluster: false,
            };
        }
        let pick = |cluster: Utf8PathBuf, node: Utf8PathBuf| {
            if !cluster.exists() && node.exists() {
                node
            } else {
                cluster
            }
        };
        Layout {
            vault: pick(pve_dir.join("phx-hook/secrets.json.gpg"), local.0),
            key: pick(pve_dir.join("priv/phx-hook/host.key"), local.1),
            manifests: pick(pve_dir.join("phx-hook/manifests"), local.2),
            cluster: true,
        }
    }
}

/// Whether `dir` is pmxcfs: its `local` entry is a link (to `nodes/<this node>`), as
/// pve-cluster's `check_cfs_is_mounted` tests (`-l "/etc/pve/local"`). A plain
/// `/etc/pve` directory on a host that is not (or not yet) a Proxmox node is not.
pub fn is_pmxcfs(dir: &Utf8Path) -> bool {
    dir.join("local")
        .symlink_metadata()
        .is_ok_and(|m| m.file_type().is_symlink())
}

fn is_comment_or_blank(line: &str) -> bool {
    let l = line.trim();
    l.is_empty() || l.starts_with('#') || l == "---"
}

fn abs_path(
    file: &Utf8Path,
    base: &Utf8Path,
    s: Spanned<String>,
) -> Result<Utf8PathBuf, InputError> {
    let place = Place::of(&s.referenced);
    let v = s.value;
    if v.is_empty() {
        return Err(place.error(file, "a path must not be empty"));
    }
    if v.contains('\0') || v.contains('\n') {
        return Err(place.error(
            file,
            format!("path `{}` contains a NUL or line break", v.escape_debug()),
        ));
    }
    let p = Utf8PathBuf::from(v);
    Ok(if p.is_absolute() { p } else { base.join(p) })
}

fn command(file: &Utf8Path, s: Spanned<String>) -> Result<String, InputError> {
    if s.value.trim().is_empty() || s.value.contains('\0') {
        return Err(Place::of(&s.referenced).error(file, "a command must not be empty"));
    }
    Ok(s.value)
}

fn duration(file: &Utf8Path, name: &str, s: Spanned<String>) -> Result<Duration, InputError> {
    parse_duration(&s.value)
        .map_err(|m| Place::of(&s.referenced).error(file, format!("{name}: {m}")))
}

/// Parse a duration such as `300s`, `5m`, `1h`, `500ms` or a bare number of seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let bad = || format!("`{s}` is not a duration (write e.g. `300s`, `5m`, `1h` or `500ms`)");
    let n: u64 = num.parse().map_err(|_| bad())?;
    let d = match unit.trim() {
        "" | "s" => Duration::from_secs(n),
        "ms" => Duration::from_millis(n),
        "m" | "min" => Duration::from_secs(n.checked_mul(60).ok_or_else(bad)?),
        "h" => Duration::from_secs(n.checked_mul(3600).ok_or_else(bad)?),
        _ => return Err(bad()),
    };
    if d > Duration::from_secs(24 * 3600) {
        return Err(format!(
            "`{s}` is longer than a day; a hook must never wait that long"
        ));
    }
    Ok(d)
}

/// A YAML scalar kept as text, whether written as a string or a number.
struct Scalar(String);

impl<'de> Deserialize<'de> for Scalar {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = Scalar;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a size such as `64MiB`")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
        }
        d.deserialize_any(V)
    }
}

/// Parse a size such as `64MiB`, `512KiB`, `1GiB`, `4096` (bytes). Decimal units (`MB`)
/// mean the same powers of 1024: nobody means 10^6 for a memory bound.
pub fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let bad = || format!("`{s}` is not a size (write e.g. `64MiB`, `512KiB` or a number of bytes)");
    let n: u64 = num.parse().map_err(|_| bad())?;
    let mul: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        _ => return Err(bad()),
    };
    let v = n.checked_mul(mul).ok_or_else(bad)?;
    if v == 0 {
        return Err(format!("`{s}` is zero; a vault needs room"));
    }
    Ok(v)
}

/// Normalise an OpenPGP v4 (40 hex digits) or v6 (64 hex digits) fingerprint: spaces
/// allowed, `0x` prefix allowed, result upper-case. Short key ids are refused: they can
/// be forged.
pub fn parse_fingerprint(s: &str) -> Result<String, String> {
    let t: String = s
        .trim()
        .trim_start_matches("0x")
        .chars()
        .filter(|c| *c != ' ')
        .collect();
    if !t.chars().all(|c| c.is_ascii_hexdigit()) || !(t.len() == 40 || t.len() == 64) {
        return Err(format!(
            "`{s}` is not a full OpenPGP fingerprint (40 or 64 hex digits; key ids are not accepted)"
        ));
    }
    Ok(t.to_ascii_uppercase())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    fn parse(text: &str) -> Result<Config, InputError> {
        Config::parse(Utf8Path::new("/etc/phx-hook/phx-hook.yaml"), text)
    }

    #[test]
    fn defaults_and_overrides() {
        let c = parse("# nothing\n").unwrap();
        assert_eq!(c.vault, "/etc/phx-hook/secrets.json.gpg");
        assert_eq!(c.agent.wait, Duration::from_secs(300));
        let c = parse("vault: v/secrets.json.gpg\nagent:\n  wait: 5m\n  timeout: 500ms\npve:\n  lxc_transport: native\n")
            .unwrap();
        assert_eq!(c.vault, "/etc/phx-hook/v/secrets.json.gpg");
        assert_eq!(c.recipients, "/etc/phx-hook/v/recipients.asc");
        assert_eq!(c.agent.wait, Duration::from_secs(300));
        assert_eq!(c.agent.timeout, Duration::from_millis(500));
        assert_eq!(c.pve.lxc_transport, LxcTransport::Native);
    }

    #[test]
    fn on_a_proxmox_node_the_defaults_are_cluster_wide() {
        let d = tempfile::tempdir().unwrap();
        let root = Utf8Path::from_path(d.path()).unwrap();
        let (pve, legacy) = (root.join("pve"), root.join("etc-phx-hook"));
        fs::create_dir_all(pve.join("nodes/pve1")).unwrap();
        // Not pmxcfs (no `local` link): node-local.
        let l = Layout::of(&pve, &legacy);
        assert!(!l.cluster);
        assert_eq!(l.vault, legacy.join("secrets.json.gpg"));
        std::os::unix::fs::symlink("nodes/pve1", pve.join("local")).unwrap();
        let l = Layout::of(&pve, &legacy);
        assert!(l.cluster);
        assert_eq!(l.vault, pve.join("phx-hook/secrets.json.gpg"));
        assert_eq!(l.key, pve.join("priv/phx-hook/host.key"));
        assert_eq!(l.manifests, pve.join("phx-hook/manifests"));
        // An existing node-local vault (and only it) keeps being used.
        fs::create_dir_all(&legacy).unwrap();
        fs::write(legacy.join("secrets.json.gpg"), "x").unwrap();
        let l = Layout::of(&pve, &legacy);
        assert_eq!(l.vault, legacy.join("secrets.json.gpg"));
        assert_eq!(l.key, pve.join("priv/phx-hook/host.key"));
        fs::create_dir_all(pve.join("phx-hook")).unwrap();
        fs::write(pve.join("phx-hook/secrets.json.gpg"), "x").unwrap();
        assert_eq!(
            Layout::of(&pve, &legacy).vault,
            pve.join("phx-hook/secrets.json.gpg")
        );
        // Through a config file that names only pve.config_dir.
        let c = Config::parse(
            &root.join("phx-hook.yaml"),
            &format!("pve:\n  config_dir: {pve}\n"),
        )
        .unwrap();
        assert_eq!(c.manifests, pve.join("phx-hook/manifests"));
        assert_eq!(c.recipients, pve.join("phx-hook/recipients.asc"));
        let c = Config::parse(
            &root.join("phx-hook.yaml"),
            &format!("vault: /v/s.gpg\npve:\n  config_dir: {pve}\n"),
        )
        .unwrap();
        assert_eq!(
            (c.vault.as_str(), c.recipients.as_str()),
            ("/v/s.gpg", "/v/recipients.asc")
        );
    }

    #[test]
    fn unknown_key_names_key_and_line() {
        let e = parse("vault: /x\nvalut: /y\n").unwrap_err().to_string();
        assert!(e.contains("valut"), "{e}");
        assert!(e.contains(":2:"), "{e}");
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("300s").unwrap(), Duration::from_secs(300));
        assert_eq!(parse_duration("2h").unwrap(), Duration::from_secs(7200));
        assert_eq!(parse_duration("10").unwrap(), Duration::from_secs(10));
        for bad in ["", "s", "10x", "-1s", "1.5s", "999999h"] {
            assert!(parse_duration(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("64MiB").unwrap(), 64 << 20);
        assert_eq!(parse_size("512 KiB").unwrap(), 512 << 10);
        assert_eq!(parse_size("4096").unwrap(), 4096);
        for bad in ["", "0", "1x", "-1", "99999999999GiB"] {
            assert!(parse_size(bad).is_err(), "{bad:?}");
        }
        assert_eq!(
            parse("max_plaintext: 1MiB\n").unwrap().max_plaintext,
            1 << 20
        );
        assert_eq!(parse("max_plaintext: 2048\n").unwrap().max_plaintext, 2048);
        let e = parse("\nmax_plaintext: lots\n").unwrap_err().to_string();
        assert!(e.contains(":2:") && e.contains("max_plaintext"), "{e}");
    }

    #[test]
    fn fingerprints() {
        let f = parse_fingerprint("0xabcd ef01 2345 6789 ABCD EF01 2345 6789 abcd ef01").unwrap();
        assert_eq!(f, "ABCDEF0123456789ABCDEF0123456789ABCDEF01");
        assert!(parse_fingerprint("ABCDEF0123456789").is_err());
        let e = parse("signers: [\"1234\"]\n").unwrap_err().to_string();
        assert!(e.contains(":1:") && e.contains("signers"), "{e}");
    }
}

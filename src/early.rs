//! Early delivery for containers: the files exist before the container's first process.
//!
//! Proxmox runs the hookscript's `post-start` once the container's init runs, so a
//! service that reads its secret at boot can start first. A raw `lxc.hook.mount` key in
//! the container's config (allowed by pve-container's `$valid_lxc_conf_keys`, appended to
//! the LXC config by `update_lxc_config`) runs after the rootfs and its mount entries are
//! mounted and before init starts, in the container's namespaces, as the container's
//! root (host uid 100000 for an unprivileged one) (lxc `conf.c`, `lxc_setup`).
//!
//! That process cannot read the vault or the host key. So `pre-start` (host root, before
//! `lxc-start`: pve-container `vm_start`) renders the container's plan and stages it, in
//! host RAM, in a directory only the container's root can read
//! (`<pve.credentials_dir>/<vmid>/`, 0700, owned by its mapped root; the bundle 0600). The
//! mount hook (`phx-hook __lxc-early DIR`) reads and deletes the bundle, enters the
//! container's rootfs (`chroot` to `$LXC_ROOTFS_MOUNT`), gives `/run` a tmpfs of its own
//! if it has none (systemd keeps an existing mount on `/run`), writes every file as the
//! native transport does, RAM-only ones into `/run/phx-hook` with the destination a link,
//! and leaves a report (no value) for `post-start` to audit. Staged secrets never touch a
//! disk, and no other container can reach them: the hook sees the host's `/run` only
//! because `pivot_root` has not happened yet.

use std::fs;
use std::io::{Read, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};

use camino::{Utf8Path, Utf8PathBuf};
use serde::{Deserialize, Serialize};
use zeroize::Zeroize;

use crate::config::Config;
use crate::deliver::lxc::Written;
use crate::manifest::Owner;
use crate::plan::Delivery;
use crate::pve::GuestConfig;
use crate::types::Vmid;

/// The hidden command the mount hook runs.
pub const HOOK_COMMAND: &str = "__lxc-early";

/// The most a staged bundle may hold.
const MAX_BUNDLE: u64 = 256 << 20;

/// Values of raw LXC key `key` in the main section of a container config, in order, as
/// pve-container reads them (`PVE/LXC/Config.pm`, `parse_pct_config`: the key, then `:`
/// or `=`).
pub fn raw_values(text: &str, key: &str) -> Vec<String> {
    let mut out = Vec::new();
    for line in text.lines() {
        if line.starts_with('[') {
            break;
        }
        let Some(rest) = line.strip_prefix(key) else {
            continue;
        };
        // `^(lxc\.[a-z0-9_\-\.]+)(:|\s*=)\s*(.*?)\s*$`
        let value = rest
            .strip_prefix(':')
            .or_else(|| rest.trim_start().strip_prefix('='));
        if let Some(v) = value {
            out.push(v.trim().to_string());
        }
    }
    out
}

/// Whether container config `text` runs phx-hook's mount hook for the staging
/// directory `staging` (this container's: a line copied from another container, by
/// `pct clone` or a restore, names that one's).
pub fn is_early(text: &str, staging: &Utf8Path) -> bool {
    hook_stagings(text).iter().any(|s| s == staging.as_str())
}

/// The staging directories phx-hook mount-hook lines in `text` name.
pub fn hook_stagings(text: &str) -> Vec<String> {
    raw_values(text, "lxc.hook.mount")
        .iter()
        .filter_map(|v| {
            let w: Vec<&str> = v.split_whitespace().collect();
            match w.as_slice() {
                [_, cmd, staging] if *cmd == HOOK_COMMAND => Some((*staging).to_string()),
                _ => None,
            }
        })
        .collect()
}

/// The mount hook's command line. LXC runs `sh -c "exec VALUE <name> lxc mount"`, and its
/// config parser strips a quote at both ends of a value (lxc `confile.c`), so the paths
/// are written bare and must need no quoting.
pub fn hook_command(exe: &Utf8Path, staging: &Utf8Path) -> Result<String, String> {
    for p in [exe, staging] {
        let plain = p
            .as_str()
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"/._+-".contains(&b));
        if !plain || !p.is_absolute() {
            return Err(format!(
                "`{p}` cannot be written into an LXC hook line as it is (LXC hands the line to sh): use a path of letters, digits and / . _ + - only"
            ));
        }
    }
    Ok(format!("{exe} {HOOK_COMMAND} {staging}"))
}

/// Where container `vmid`'s files wait for its mount hook.
pub fn staging(cfg: &Config, vmid: Vmid) -> Utf8PathBuf {
    crate::credentials::dir(cfg, vmid)
}

/// The host uid and gid of the container's root: 0 for a privileged container; for an
/// unprivileged one its `lxc.idmap` for id 0, else Proxmox's default 100000.
pub fn mapped_root(text: &str) -> (u32, u32) {
    // A custom `lxc.idmap` makes a container unprivileged whatever `unprivileged` says
    // (pve-container `update_lxc_config`: Proxmox adds its default map only when there
    // is none).
    let maps = raw_values(text, "lxc.idmap");
    // `unprivileged` is a boolean as pve-container parses one (1, yes, on, true).
    let unprivileged = crate::pve::config_value(text, "unprivileged")
        .and_then(|v| crate::pve::parse_boolean(&v))
        == Some(true);
    if !unprivileged && maps.is_empty() {
        return (0, 0);
    }
    let mut ids = (100_000, 100_000);
    for m in maps {
        let w: Vec<&str> = m.split_whitespace().collect();
        if let [kind, "0", host, _] = w.as_slice()
            && let Ok(h) = host.parse::<u32>()
        {
            match *kind {
                "u" => ids.0 = h,
                "g" => ids.1 = h,
                _ => {}
            }
        }
    }
    ids
}

#[derive(Serialize, Deserialize)]
struct Bundle {
    /// The container it is for.
    vmid: u32,
    files: Vec<StagedFile>,
    required: bool,
}

#[derive(Serialize, Deserialize)]
struct StagedFile {
    dest: String,
    store: Option<String>,
    mode: u32,
    owner: String,
    group: String,
    keys: Vec<String>,
    /// Base64 of the bytes.
    content: String,
}

impl Drop for StagedFile {
    fn drop(&mut self) {
        self.content.zeroize();
    }
}

fn owner_text(o: &Owner) -> String {
    match o {
        Owner::Name(n) => n.clone(),
        Owner::Id(i) => format!("#{i}"),
    }
}

fn owner_of(s: &str) -> Owner {
    match s.strip_prefix('#').and_then(|n| n.parse().ok()) {
        Some(i) => Owner::Id(i),
        None => Owner::Name(s.to_string()),
    }
}

/// pre-start: stage `deliveries` for the mount hook of container `vmid`.
pub fn stage(
    cfg: &Config,
    vmid: Vmid,
    guest: &GuestConfig,
    deliveries: &[Delivery],
    required: bool,
) -> Result<(), String> {
    let digester = crate::engine::Digester::new(cfg).map_err(|e| e.to_string())?;
    let pending: Vec<Pending> = deliveries
        .iter()
        .map(|d| Pending {
            dest: d.dest.to_string(),
            digest: digester.digest(d),
            written: None,
        })
        .collect();
    write_pending(cfg, vmid, &pending)?;
    use base64::Engine;
    let text = guest
        .text()
        .ok_or_else(|| format!("cannot read `{}`", guest.path))?;
    let (uid, gid) = mapped_root(&text);
    let dir = staging(cfg, vmid);
    crate::files::ram_dir(&cfg.pve.credentials_dir, 0o711)?;
    crate::files::ram_dir(&dir, 0o700)?;
    std::os::unix::fs::chown(&dir, Some(uid), Some(gid))
        .map_err(|e| format!("cannot hand `{dir}` to the container's root: {e}"))?;
    let bundle = Bundle {
        vmid: vmid.get(),
        required,
        files: deliveries
            .iter()
            .map(|d| StagedFile {
                dest: d.dest.to_string(),
                store: d.store.as_ref().map(ToString::to_string),
                mode: d.mode,
                owner: owner_text(&d.owner),
                group: owner_text(&d.group),
                keys: d.keys.iter().map(ToString::to_string).collect(),
                content: base64::engine::general_purpose::STANDARD.encode(d.content.expose()),
            })
            .collect(),
    };
    let mut json = zeroize::Zeroizing::new(serde_json::to_vec(&bundle).map_err(|e| e.to_string())?);
    drop(bundle);
    let _ = fs::remove_file(dir.join("report.json"));
    let path = dir.join("bundle.json");
    let tmp = dir.join(format!(".bundle.json.{}", std::process::id()));
    let write = || -> std::io::Result<()> {
        let mut f = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)?;
        f.write_all(&json)?;
        std::os::unix::fs::fchown(&f, Some(uid), Some(gid))?;
        fs::rename(&tmp, &path)
    };
    let r = write().map_err(|e| {
        let _ = fs::remove_file(&tmp);
        format!("cannot stage the container's files in `{dir}`: {e}")
    });
    json.zeroize();
    r
}

/// What the mount hook did, per file (no value).
#[derive(Serialize, Deserialize, Debug, Clone)]
pub struct HookReport {
    /// Per file: destination, keys, size, and `None` or why it failed.
    pub files: Vec<(String, Vec<String>, usize, Option<String>)>,
    /// Per file written: how it looked right after (for the worker).
    #[serde(default)]
    pub written: Vec<Option<Written>>,
}

/// post-start: the mount hook's report, if it ran for this start; the staging directory
/// is removed either way (with a bundle the hook never read). The files it wrote are
/// kept, with the digests `pre-start` staged them with, for the worker to record
/// ([`take_delivered`]).
pub fn collect(cfg: &Config, vmid: Vmid) -> Option<HookReport> {
    let dir = staging(cfg, vmid);
    let report: Option<HookReport> = fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(dir.join("report.json"))
        .ok()
        .and_then(|f| {
            let mut buf = Vec::new();
            f.take(MAX_REPORT).read_to_end(&mut buf).ok()?;
            serde_json::from_slice(&buf).ok()
        });
    if report.is_some() {
        crate::credentials::remove(cfg, vmid);
    }
    let pending = read_pending(cfg, vmid);
    let delivered: Vec<Pending> = match &report {
        Some(r) => pending
            .into_iter()
            .filter_map(|mut p| {
                let i = r
                    .files
                    .iter()
                    .position(|f| f.0 == p.dest && f.3.is_none())?;
                p.written = *r.written.get(i)?;
                p.written.is_some().then_some(p)
            })
            .collect(),
        None => Vec::new(),
    };
    if delivered.is_empty() {
        let _ = fs::remove_file(pending_path(cfg, vmid));
    } else if let Err(e) = write_pending(cfg, vmid, &delivered) {
        log::warn!("guest {vmid}: {e}");
    }
    report
}

/// A file staged for the mount hook: its digest (by `pre-start`) and, once the hook
/// wrote it, how it looked then.
#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct Pending {
    /// Destination.
    pub dest: String,
    /// Keyed digest (see `engine::Digester`).
    pub digest: String,
    /// As written by the hook.
    pub written: Option<Written>,
}

/// The worker: what the mount hook delivered at this start, once.
pub fn take_delivered(cfg: &Config, vmid: Vmid) -> Vec<Pending> {
    let out = read_pending(cfg, vmid);
    let _ = fs::remove_file(pending_path(cfg, vmid));
    out
}

/// The most a report may hold (host side: the container's root could write it).
const MAX_REPORT: u64 = 16 << 20;

fn pending_path(cfg: &Config, vmid: Vmid) -> Utf8PathBuf {
    cfg.state_dir.join("early").join(format!("{vmid}.json"))
}

fn read_pending(cfg: &Config, vmid: Vmid) -> Vec<Pending> {
    fs::read(pending_path(cfg, vmid))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default()
}

fn write_pending(cfg: &Config, vmid: Vmid, pending: &[Pending]) -> Result<(), String> {
    let path = pending_path(cfg, vmid);
    let dir = cfg.state_dir.join("early");
    fs::create_dir_all(&dir).map_err(|e| format!("cannot create `{dir}`: {e}"))?;
    let bytes = serde_json::to_vec(pending).map_err(|e| e.to_string())?;
    crate::files::replace_private(&path, &bytes, false)
        .map_err(|e| format!("cannot write `{path}`: {e}"))
}

/// The mount hook itself: `phx-hook __lxc-early STAGING <name> lxc mount`, with
/// `$LXC_ROOTFS_MOUNT`. Exit 0, or 1 when a file of a `required` plan failed (LXC then
/// aborts the start: fail closed, as pre-start does).
pub fn hook_main(staging: &Utf8Path, name: Option<&str>) -> i32 {
    // LXC waits for a hook without a time limit, holding Proxmox's start task and the
    // container's config lock: a container that makes this hang (a stalled filesystem
    // in its rootfs) fails its start instead.
    let _ = nix::unistd::alarm::set(HOOK_TIMEOUT_SECS);
    let Ok(rootfs) = std::env::var("LXC_ROOTFS_MOUNT") else {
        eprintln!("phx-hook: {HOOK_COMMAND}: not run by LXC as a mount hook (no LXC_ROOTFS_MOUNT)");
        return 1;
    };
    // The line names this container's staging directory: one copied with the config of
    // another container (`pct clone`, a restore) names that one's, and must not take its
    // files.
    let lxc_name = std::env::var("LXC_NAME").ok();
    let this = name.or(lxc_name.as_deref()).unwrap_or_default();
    if staging.file_name() != Some(this) {
        eprintln!(
            "phx-hook: {HOOK_COMMAND}: this line is container {}'s, not {}'s (copied by a clone or restore?); nothing delivered: run `phx-hook register {} --early`",
            crate::text::name(staging.file_name().unwrap_or_default()),
            crate::text::name(this),
            crate::text::name(this),
        );
        return 0;
    }
    // The staging directory, before the chroot hides it.
    let dir = match fs::File::open(staging) {
        Ok(d) => d,
        // No bundle for this start (a reboot from inside: `reconcile` repairs it).
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return 0,
        Err(e) => {
            eprintln!("phx-hook: {HOOK_COMMAND}: cannot open `{staging}`: {e}");
            return 1;
        }
    };
    let bundle = match read_bundle(staging) {
        Ok(Some(b)) => b,
        Ok(None) => return 0,
        Err(e) => {
            eprintln!(
                "phx-hook: {HOOK_COMMAND}: {}",
                crate::text::guest(e.as_bytes())
            );
            return 1;
        }
    };
    if bundle.vmid.to_string() != this {
        eprintln!(
            "phx-hook: {HOOK_COMMAND}: the staged files are not container {}'s",
            crate::text::name(this)
        );
        return 1;
    }
    let deliveries: Vec<Delivery> = match bundle.files.iter().map(to_delivery).collect() {
        Ok(d) => d,
        Err(e) => {
            eprintln!(
                "phx-hook: {HOOK_COMMAND}: a staged file is malformed: {}",
                crate::text::guest(e.as_bytes())
            );
            return 1;
        }
    };
    let ram = deliveries.iter().any(|d| d.store.is_some());
    let results = match enter_rootfs(&rootfs, ram) {
        Ok(()) => crate::deliver::lxc::write_here(&deliveries),
        Err(e) => deliveries.iter().map(|_| Err(e.clone())).collect(),
    };
    let report = HookReport {
        files: deliveries
            .iter()
            .zip(&results)
            .map(|(d, r)| {
                (
                    d.dest.to_string(),
                    d.keys.iter().map(ToString::to_string).collect(),
                    d.content.len(),
                    r.as_ref().err().map(|e| crate::text::guest(e.as_bytes())),
                )
            })
            .collect(),
        written: results.iter().map(|r| r.as_ref().ok().copied()).collect(),
    };
    write_report(&dir, &report);
    // One short line: LXC reads a hook's output only up to about 40 KiB before it waits
    // for it, so more would deadlock the start. The details are in the report.
    let failed: Vec<&Delivery> = deliveries
        .iter()
        .zip(&results)
        .filter(|(_, r)| r.is_err())
        .map(|(d, _)| d)
        .collect();
    if let (Some(first), Some(Err(why))) = (failed.first(), results.iter().find(|r| r.is_err())) {
        eprintln!(
            "phx-hook: {} of {} file(s) not delivered, first {}: {}",
            failed.len(),
            deliveries.len(),
            crate::text::shown(first.dest.as_str().as_bytes(), 120),
            crate::text::shown(why.as_bytes(), 200)
        );
    }
    if !failed.is_empty() && bundle.required {
        1
    } else {
        0
    }
}

/// The most the mount hook may take.
const HOOK_TIMEOUT_SECS: u32 = 60;

fn read_bundle(staging: &Utf8Path) -> Result<Option<Bundle>, String> {
    let path = staging.join("bundle.json");
    let f = match fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(&path)
    {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("cannot open `{path}`: {e}")),
    };
    let m = f
        .metadata()
        .map_err(|e| format!("cannot stat `{path}`: {e}"))?;
    // Ours (the staging directory belongs to this container's root) and private.
    if !m.is_file() || m.uid() != nix::unistd::geteuid().as_raw() || m.mode() & 0o077 != 0 {
        return Err(format!(
            "`{path}` is not a private file of this container's root"
        ));
    }
    let mut buf = zeroize::Zeroizing::new(Vec::new());
    f.take(MAX_BUNDLE + 1)
        .read_to_end(&mut buf)
        .map_err(|e| format!("cannot read `{path}`: {e}"))?;
    // Read once: gone before anything else happens.
    let _ = fs::remove_file(&path);
    if buf.len() as u64 > MAX_BUNDLE {
        return Err(format!("`{path}` is larger than {MAX_BUNDLE} bytes"));
    }
    serde_json::from_slice(&buf)
        .map(Some)
        // serde_json's message can quote the text it met, which may be a value: only
        // where and what kind of error.
        .map_err(|e| {
            format!(
                "`{path}` is not a bundle phx-hook wrote ({:?} error at line {}, column {})",
                e.classify(),
                e.line(),
                e.column()
            )
        })
}

fn to_delivery(f: &StagedFile) -> Result<Delivery, String> {
    use base64::Engine;
    let content = zeroize::Zeroizing::new(
        base64::engine::general_purpose::STANDARD
            .decode(&f.content)
            .map_err(|_| "its content is not base64".to_string())?,
    );
    Ok(Delivery {
        dest: f.dest.parse()?,
        format: "staged",
        keys: f.keys.iter().filter_map(|k| k.parse().ok()).collect(),
        mode: f.mode & 0o7777,
        owner: owner_of(&f.owner),
        group: owner_of(&f.group),
        content: crate::vault::Secret::copy_from(&content),
        store: f.store.as_deref().map(str::parse).transpose()?,
    })
}

/// `chroot` into the container's rootfs, and when a file is to live in RAM (`ram`), give
/// its `/run` a tmpfs of its own unless it is on one already (systemd then keeps it:
/// `mount_setup` skips a mounted `/run`). `/run`
/// is opened without following a link and mounted on through that descriptor: a link the
/// container planted (say to `/proc/1/root/run`, which still leads to the host's root
/// before `pivot_root`) is refused, never followed.
fn enter_rootfs(rootfs: &str, ram: bool) -> Result<(), String> {
    use nix::fcntl::{OFlag, open};
    use nix::sys::stat::Mode;
    let enter = |e: nix::Error| format!("cannot enter the container's rootfs: {}", e.desc());
    nix::unistd::chroot(rootfs).map_err(enter)?;
    nix::unistd::chdir("/").map_err(enter)?;
    // Directories created on the way to a file must be enterable by its owner.
    nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o022));
    if !ram {
        return Ok(());
    }
    let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    let run = match open("/run", flags, Mode::empty()) {
        Err(nix::Error::ENOENT) => {
            nix::unistd::mkdir("/run", Mode::from_bits_truncate(0o755))
                .map_err(|e| format!("cannot create the container's /run: {}", e.desc()))?;
            open("/run", flags, Mode::empty())
        }
        r => r,
    }
    .map_err(|e| match e {
        nix::Error::ELOOP | nix::Error::ENOTDIR => {
            "the container's /run is a symbolic link or not a directory; phx-hook does not follow it (make /run a directory)".to_string()
        }
        e => format!("cannot open the container's /run: {}", e.desc()),
    })?;
    let on_tmpfs = nix::sys::statfs::fstatfs(&run)
        .is_ok_and(|s| s.filesystem_type() == nix::sys::statfs::TMPFS_MAGIC);
    if !on_tmpfs {
        use nix::mount::{MsFlags, mount};
        nix::unistd::fchdir(&run)
            .map_err(|e| format!("cannot enter the container's /run: {}", e.desc()))?;
        mount(
            Some("tmpfs"),
            ".",
            Some("tmpfs"),
            MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
            Some("mode=0755"),
        )
        .map_err(|e| format!("cannot mount a tmpfs on the container's /run: {}", e.desc()))?;
        nix::unistd::chdir("/").map_err(enter)?;
    }
    Ok(())
}

fn write_report(dir: &fs::File, report: &HookReport) {
    use std::os::fd::AsFd;
    let Ok(json) = serde_json::to_vec(report) else {
        return;
    };
    if let Ok(fd) = nix::fcntl::openat(
        dir.as_fd(),
        "report.json",
        nix::fcntl::OFlag::O_WRONLY
            | nix::fcntl::OFlag::O_CREAT
            | nix::fcntl::OFlag::O_TRUNC
            | nix::fcntl::OFlag::O_NOFOLLOW
            | nix::fcntl::OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::from_bits_truncate(0o600),
    ) {
        let _ = fs::File::from(fd).write_all(&json);
    }
}

/// `register --early` for a container: its config gets the mount hook (a raw
/// `lxc.hook.mount` line in the main section, written under Proxmox's config lock, as
/// pve-container writes configs). Whether it was added.
pub fn register(cfg: &Config, vmid: Vmid, exe: &Utf8Path) -> Result<bool, String> {
    let staging_dir = staging(cfg, vmid);
    let command = hook_command(exe, &staging_dir)?;
    edit(cfg, vmid, |text| {
        let line = format!("lxc.hook.mount: {command}");
        if raw_values(text, "lxc.hook.mount").contains(&command) {
            return None;
        }
        // Another phx-hook line (a clone's copy, or an older binary path) goes.
        let kept = without_ours(text);
        Some(insert_main(&kept, &line))
    })
}

/// `text` without phx-hook's mount-hook lines in its main section.
fn without_ours(text: &str) -> String {
    let mut main_done = false;
    let kept: Vec<&str> = text
        .lines()
        .filter(|l| {
            if l.starts_with('[') {
                main_done = true;
            }
            main_done || !(l.starts_with("lxc.hook.mount") && l.contains(HOOK_COMMAND))
        })
        .collect();
    kept.join("\n") + "\n"
}

/// Take the mount hook out again. Whether there was one.
pub fn unregister(cfg: &Config, vmid: Vmid) -> Result<bool, String> {
    edit(cfg, vmid, |text| {
        if hook_stagings(text).is_empty() {
            return None;
        }
        Some(without_ours(text))
    })
}

fn insert_main(text: &str, line: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let end = lines
        .iter()
        .position(|l| l.starts_with('['))
        .unwrap_or(lines.len());
    let mut out: Vec<&str> = lines[..end].to_vec();
    out.push(line);
    out.extend_from_slice(&lines[end..]);
    out.join("\n") + "\n"
}

/// Change a container's Proxmox config under its config lock (`pve-config-<vmid>.lock`
/// in `pve.lock_dir_lxc`, flock, waiting up to `pve.lock_wait`), replaced as pmxcfs
/// allows (files::replace).
fn edit(cfg: &Config, vmid: Vmid, f: impl FnOnce(&str) -> Option<String>) -> Result<bool, String> {
    let guest = crate::pve::find_guest(&cfg.pve.config_dir, vmid).map_err(|e| e.to_string())?;
    if guest.kind != crate::types::GuestKind::Lxc {
        return Err(format!("guest {vmid} is not a container"));
    }
    fs::create_dir_all(&cfg.pve.lock_dir_lxc)
        .map_err(|e| format!("cannot create `{}`: {e}", cfg.pve.lock_dir_lxc))?;
    let lock_path = cfg.pve.lock_dir_lxc.join(format!("pve-config-{vmid}.lock"));
    let lock = fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(|e| format!("cannot open `{lock_path}`: {e}"))?;
    let start = std::time::Instant::now();
    loop {
        match lock.try_lock() {
            Ok(()) => break,
            Err(fs::TryLockError::WouldBlock) if start.elapsed() < cfg.pve.lock_wait => {
                std::thread::sleep(std::time::Duration::from_millis(100));
            }
            Err(fs::TryLockError::WouldBlock) => {
                return Err(format!(
                    "container {vmid}'s config is locked (a start, a backup?); try again"
                ));
            }
            Err(fs::TryLockError::Error(e)) => {
                return Err(format!("cannot lock `{lock_path}`: {e}"));
            }
        }
    }
    let text = fs::read_to_string(&guest.path)
        .map_err(|e| format!("cannot read `{}`: {e}", guest.path))?;
    let Some(new) = f(&text) else {
        return Ok(false);
    };
    let mode = fs::metadata(&guest.path)
        .map(|m| m.permissions().mode() & 0o777)
        .unwrap_or(0o640);
    crate::files::replace(&guest.path, new.as_bytes(), mode, false)?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hook_lines_and_idmaps() {
        let text = "arch: amd64\nunprivileged: 1\nlxc.idmap: u 0 200000 65536\nlxc.idmap = g 0 300000 65536\nlxc.hook.mount: /usr/sbin/phx-hook __lxc-early /run/x/101\n[snap]\nlxc.hook.mount: other\n";
        assert!(is_early(text, "/run/x/101".into()));
        assert!(
            !is_early(text, "/run/x/102".into()),
            "a clone's copied line is not its own"
        );
        assert_eq!(mapped_root(text), (200_000, 300_000));
        assert_eq!(mapped_root("unprivileged: 1\n"), (100_000, 100_000));
        assert_eq!(mapped_root("arch: amd64\n"), (0, 0));
        assert_eq!(
            mapped_root("lxc.idmap: u 0 300000 65536\nlxc.idmap: g 0 300000 65536\n"),
            (300_000, 300_000)
        );
        assert!(!is_early(
            "arch: amd64\n[snap]\nlxc.hook.mount: x __lxc-early /run/x/101\n",
            "/run/x/101".into()
        ));
        let added = insert_main("arch: amd64\n[snap]\nfoo: 1\n", "lxc.hook.mount: x");
        assert_eq!(added, "arch: amd64\nlxc.hook.mount: x\n[snap]\nfoo: 1\n");
        assert_eq!(
            hook_command(
                "/usr/sbin/phx-hook".into(),
                "/run/phx-hook/credentials/101".into()
            )
            .unwrap(),
            "/usr/sbin/phx-hook __lxc-early /run/phx-hook/credentials/101"
        );
        assert!(hook_command("/opt/my bin/phx-hook".into(), "/run/x".into()).is_err());
        assert!(hook_command("/usr/sbin/phx-hook".into(), "/run/$(id)".into()).is_err());
        assert!(hook_command("phx-hook".into(), "/run/x".into()).is_err());
    }
}

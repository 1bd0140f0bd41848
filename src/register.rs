//! Registration (DESIGN §1, PROXMOX.md §2): install the `hooks/phx-hook` snippet into a
//! storage's `snippets` directory and point a guest's `hookscript` at it with
//! `qm set` / `pct set`. A guest can have only one hookscript, so one that already has
//! another is refused, or, with `--chain`, keeps it: phx-hook runs it after itself for
//! every phase. The previous value is recorded under `<pve.config_dir>/phx-hook/
//! registrations/<vmid>.json` (cluster-wide on a real node, like the guest config), so
//! `unregister` can put it back. Registering twice changes nothing.

use std::fs;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::process::Command;

use camino::{Utf8Path, Utf8PathBuf};
use serde::{Deserialize, Serialize};

use crate::config::Config;
use crate::pve::{self, Storage};
use crate::types::{GuestKind, Vmid};

/// The snippet's file name in the storage.
pub const SNIPPET: &str = "phx-hook";

/// The snippet shipped in `hooks/`; its `exec` line is pointed at the running binary.
const SNIPPET_TEMPLATE: &str = include_str!("../hooks/phx-hook");

/// Whether a `hookscript` value is phx-hook's snippet (on any storage).
pub fn is_ours(volid: &str) -> bool {
    volid.ends_with(&format!(":snippets/{SNIPPET}"))
}

/// What phx-hook remembers about a registration.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Record {
    /// The guest.
    pub vmid: u32,
    /// Its kind.
    pub kind: GuestKind,
    /// phx-hook's volume id (`local:snippets/phx-hook`).
    pub hookscript: String,
    /// The hookscript it replaced, run after phx-hook (`--chain`).
    pub previous: Option<String>,
}

/// What `register` did for one guest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Registered {
    /// Newly registered (and what it chains to).
    New {
        /// The chained previous hookscript.
        chained: Option<String>,
    },
    /// It already was.
    Already,
}

/// A registration failure, phrased for the administrator.
pub type RegError = String;

fn registry_dir(cfg: &Config) -> Utf8PathBuf {
    cfg.pve.config_dir.join("phx-hook/registrations")
}

fn record_path(cfg: &Config, vmid: Vmid) -> Utf8PathBuf {
    registry_dir(cfg).join(format!("{vmid}.json"))
}

/// Whether `vmid` was registered with `phx-hook register` (it has a record).
pub fn is_registered(cfg: &Config, vmid: Vmid) -> bool {
    record_path(cfg, vmid).is_file()
}

/// Every guest with a registration record.
pub fn recorded(cfg: &Config) -> Vec<Vmid> {
    let mut out: Vec<Vmid> = fs::read_dir(registry_dir(cfg))
        .map(|rd| {
            rd.flatten()
                .filter_map(|e| e.file_name().to_str()?.strip_suffix(".json")?.parse().ok())
                .collect()
        })
        .unwrap_or_default();
    out.sort();
    out
}

/// The recorded registration of `vmid`, if any.
pub fn record(cfg: &Config, vmid: Vmid) -> Option<Record> {
    let text = fs::read_to_string(record_path(cfg, vmid)).ok()?;
    serde_json::from_str(&text).ok()
}

/// The storages in `<pve.config_dir>/storage.cfg`.
pub fn storages(cfg: &Config) -> Result<Vec<Storage>, RegError> {
    let path = cfg.pve.config_dir.join("storage.cfg");
    let text = fs::read_to_string(&path).map_err(|e| format!("failed to read `{path}`: {e}"))?;
    Ok(pve::parse_storage_cfg(&text))
}

/// The path of the hookscript phx-hook chains to for `vmid`: `Ok(None)` when there is
/// none, an error when there is one that cannot be run (its storage is unknown, the file
/// is missing or not executable: what Proxmox's `check_hookscript` refuses).
pub fn chained_hook(cfg: &Config, vmid: Vmid) -> Result<Option<Utf8PathBuf>, RegError> {
    let Some(prev) = record(cfg, vmid).and_then(|r| r.previous) else {
        return Ok(None);
    };
    let path = pve::snippet_path(&storages(cfg)?, &prev).ok_or_else(|| {
        format!(
            "`{prev}` is not a snippet on a storage in {}/storage.cfg",
            cfg.pve.config_dir
        )
    })?;
    match fs::metadata(&path) {
        Ok(m) if m.is_file() && m.permissions().mode() & 0o111 != 0 => Ok(Some(path)),
        Ok(_) => Err(format!("`{prev}` ({path}) is not an executable file")),
        Err(e) => Err(format!("`{prev}` ({path}): {e}")),
    }
}

/// The storage `register` uses when none is named: one every node can read (shared, with
/// snippets content, enabled, available on this node), else `local` when it allows
/// snippets, else any other that does. Proxmox runs `check_hookscript` on the node that
/// starts the guest, so a node-local snippet must exist on every node that can run it.
pub fn default_storage(cfg: &Config) -> Result<String, RegError> {
    let all = storages(cfg)?;
    let local = pve::local_node(&cfg.pve.config_dir);
    let usable: Vec<&Storage> = all
        .iter()
        .filter(|s| {
            !s.disabled
                && s.is_on(&local)
                && s.path.is_some()
                && s.content.iter().any(|c| c == "snippets")
        })
        .collect();
    if let Some(s) = usable.iter().find(|s| s.shared) {
        return Ok(s.id.clone());
    }
    if let Some(s) = usable.iter().find(|s| s.id == "local") {
        return Ok(s.id.clone());
    }
    if let Some(s) = usable.first() {
        return Ok(s.id.clone());
    }
    let content = all
        .iter()
        .find(|s| s.id == "local")
        .map(|s| s.content.join(","))
        .unwrap_or_default();
    Err(format!(
        "no storage in {}/storage.cfg allows snippets; enable them on one, e.g. `pvesm set local --content {}snippets` (a shared one serves every node)",
        cfg.pve.config_dir,
        if content.is_empty() {
            String::new()
        } else {
            format!("{content},")
        }
    ))
}

/// For a cluster, when `store` is not shared: which other nodes also need the snippet.
pub fn unshared_note(cfg: &Config, store: &str) -> Option<String> {
    let all = storages(cfg).ok()?;
    let st = all.iter().find(|s| s.id == store)?;
    if st.shared {
        return None;
    }
    let local = pve::local_node(&cfg.pve.config_dir);
    let others: Vec<String> = pve::nodes(&cfg.pve.config_dir)
        .into_iter()
        .filter(|n| *n != local && st.is_on(n))
        .collect();
    if others.is_empty() {
        return None;
    }
    Some(format!(
        "storage `{store}` is not shared: node(s) {} also need {} to start these guests (run `phx-hook register` there too, or use a shared storage with snippets content)",
        others.join(", "),
        st.snippets_dir()
            .map_or_else(String::new, |d| d.join(SNIPPET).to_string())
    ))
}

/// The snippets directory of `store`, refusing a storage without `snippets` content.
pub fn snippets_dir(cfg: &Config, store: &str) -> Result<Utf8PathBuf, RegError> {
    let all = storages(cfg)?;
    let Some(st) = all.iter().find(|s| s.id == store) else {
        let ids: Vec<&str> = all.iter().map(|s| s.id.as_str()).collect();
        return Err(format!(
            "storage `{store}` is not in {}/storage.cfg (there are: {})",
            cfg.pve.config_dir,
            ids.join(", ")
        ));
    };
    let Some(dir) = st.snippets_dir() else {
        return Err(format!(
            "storage `{store}` ({}) has no directory path, so it cannot hold snippets; use a directory storage such as `local`",
            st.kind
        ));
    };
    if !st.content.iter().any(|c| c == "snippets") {
        let mut content = st.content.clone();
        content.push("snippets".into());
        return Err(format!(
            "storage `{store}` does not allow snippets; enable them with `pvesm set {store} --content {}`",
            content.join(",")
        ));
    }
    Ok(dir)
}

/// `s` as one word for `sh`: single-quoted, with `'` written as `'\''`.
pub fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

/// The binary a snippet runs: the first word of its `exec` line, unquoted (the inverse
/// of how [`install_snippet`] writes it; an older unquoted line reads the same).
pub fn snippet_target(text: &str) -> Option<String> {
    let line = text.lines().find_map(|l| l.strip_prefix("exec "))?;
    let mut out = String::new();
    let mut chars = line.chars().peekable();
    let mut quoted = false;
    while let Some(c) = chars.next() {
        match c {
            '\'' => quoted = !quoted,
            '\\' if !quoted => out.extend(chars.next()),
            c if c.is_whitespace() && !quoted => break,
            c => out.push(c),
        }
    }
    (!out.is_empty()).then_some(out)
}

/// Install (or refresh) the snippet in `dir`; it runs `exe`. The path is quoted, so a
/// space or `$(...)` in it is a name, never shell syntax; a line break is refused.
pub fn install_snippet(dir: &Utf8Path, exe: &Utf8Path) -> Result<Utf8PathBuf, RegError> {
    if exe.as_str().contains(['\n', '\r', '\0']) {
        return Err(format!(
            "the phx-hook binary's path `{}` contains a line break; install it under a plain path",
            exe.as_str().escape_debug()
        ));
    }
    let text = SNIPPET_TEMPLATE.replace(
        "exec /usr/local/sbin/phx-hook",
        &format!("exec {}", shell_quote(exe.as_str())),
    );
    let dest = dir.join(SNIPPET);
    if fs::read_to_string(&dest).is_ok_and(|t| t == text)
        && fs::metadata(&dest).is_ok_and(|m| m.permissions().mode() & 0o111 != 0)
    {
        return Ok(dest);
    }
    fs::create_dir_all(dir).map_err(|e| format!("failed to create `{dir}`: {e}"))?;
    let tmp = dir.join(format!(".{SNIPPET}.tmp-{}", std::process::id()));
    let write = || -> std::io::Result<()> {
        let mut f = fs::File::create(&tmp)?;
        f.write_all(text.as_bytes())?;
        f.set_permissions(fs::Permissions::from_mode(0o755))?;
        f.sync_all()?;
        fs::rename(&tmp, &dest)
    };
    write().map_err(|e| {
        let _ = fs::remove_file(&tmp);
        format!("failed to install `{dest}`: {e}")
    })?;
    Ok(dest)
}

/// `qm set` / `pct set` with `args`; errors carry the tool's stderr.
fn set(cfg: &Config, kind: GuestKind, vmid: Vmid, args: &[&str]) -> Result<(), RegError> {
    let tool = match kind {
        GuestKind::Qemu => &cfg.pve.qm,
        GuestKind::Lxc => &cfg.pve.pct,
    };
    let mut words = tool.split_whitespace();
    let prog = words.next().unwrap_or("qm");
    let out = Command::new(prog)
        .args(words)
        .arg("set")
        .arg(vmid.to_string())
        .args(args)
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|e| format!("failed to run `{prog}`: {e}"))?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        return Err(format!(
            "`{prog} set {vmid} {}` failed: {}",
            args.join(" "),
            err.trim()
        ));
    }
    Ok(())
}

/// Register one guest.
pub fn register(
    cfg: &Config,
    vmid: Vmid,
    store: &str,
    chain: bool,
    exe: &Utf8Path,
) -> Result<Registered, RegError> {
    let guest = pve::find_guest(&cfg.pve.config_dir, vmid).map_err(|e| e.to_string())?;
    // `qm set`/`pct set` act on the local node's guests only (they load
    // `nodes/<local>/...`: qemu-server `update_vm_api` → `load_config`).
    let local = pve::local_node(&cfg.pve.config_dir);
    if !guest.is_on(&local)
        && let Some(node) = &guest.node
    {
        return Err(format!(
            "guest {vmid} lives on node `{node}`, not on this node (`{local}`): run `phx-hook register {vmid}` on `{node}`"
        ));
    }
    let dir = snippets_dir(cfg, store)?;
    install_snippet(&dir, exe)?;
    let ours = format!("{store}:snippets/{SNIPPET}");
    let record_of = |previous: Option<String>| Record {
        vmid: vmid.get(),
        kind: guest.kind,
        hookscript: ours.clone(),
        previous,
    };
    let current = guest.get("hookscript");
    let previous = match current.as_deref() {
        Some(c) if c == ours => {
            // Already ours: keep whatever was recorded.
            if record(cfg, vmid).is_none() {
                write_record(cfg, &record_of(None))?;
            }
            return Ok(Registered::Already);
        }
        Some(other) if !chain => {
            return Err(format!(
                "guest {vmid} already has the hookscript `{other}`; phx-hook does not replace it silently. \
                 Run it after phx-hook with `phx-hook register {vmid} --chain`"
            ));
        }
        Some(other) => Some(other.to_string()),
        None => None,
    };
    set(cfg, guest.kind, vmid, &["--hookscript", &ours])?;
    write_record(cfg, &record_of(previous.clone()))?;
    Ok(Registered::New { chained: previous })
}

fn write_record(cfg: &Config, r: &Record) -> Result<(), RegError> {
    let dir = registry_dir(cfg);
    fs::create_dir_all(&dir).map_err(|e| format!("failed to create `{dir}`: {e}"))?;
    let path = dir.join(format!("{}.json", r.vmid));
    let text = serde_json::to_string_pretty(r).map_err(|e| e.to_string())?;
    crate::files::replace(&path, (text + "\n").as_bytes(), 0o640, false)
}

/// What `unregister` did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Unregistered {
    /// The hookscript was removed.
    Removed,
    /// The previous hookscript was put back.
    Restored(String),
    /// phx-hook was not this guest's hookscript.
    NotRegistered,
}

/// Unregister one guest, restoring what `register --chain` replaced.
pub fn unregister(cfg: &Config, vmid: Vmid) -> Result<Unregistered, RegError> {
    unearly(cfg, vmid)?;
    let guest = pve::find_guest(&cfg.pve.config_dir, vmid).map_err(|e| e.to_string())?;
    let rec = record(cfg, vmid);
    let current = guest.get("hookscript");
    let ours = current.as_deref().is_some_and(is_ours);
    if !ours {
        let _ = fs::remove_file(record_path(cfg, vmid));
        return Ok(Unregistered::NotRegistered);
    }
    let result = match rec.and_then(|r| r.previous) {
        Some(prev) => {
            set(cfg, guest.kind, vmid, &["--hookscript", &prev])?;
            Unregistered::Restored(prev)
        }
        None => {
            set(cfg, guest.kind, vmid, &["--delete", "hookscript"])?;
            Unregistered::Removed
        }
    };
    let _ = fs::remove_file(record_path(cfg, vmid));
    Ok(result)
}

/// What `register --early` set up.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Early {
    /// A VM: these credentials reach it through fw_cfg.
    Credentials(Vec<String>),
    /// A container: its config runs phx-hook's mount hook (`false`: it already did).
    MountHook(bool),
}

/// `register --early`. A VM's `args` pass each credential its manifest names to QEMU
/// through fw_cfg (see [`crate::credentials`]), its own arguments kept. A container's
/// config gets phx-hook's mount hook (see [`crate::early`]), which runs `exe`.
pub fn early(cfg: &Config, vmid: Vmid, exe: &Utf8Path) -> Result<Early, RegError> {
    let guest = pve::find_guest(&cfg.pve.config_dir, vmid).map_err(|e| e.to_string())?;
    let m = crate::manifest::load(&cfg.manifests, vmid)
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("guest {vmid} has no manifest"))?;
    if guest.kind == GuestKind::Lxc {
        if m.files.iter().any(|f| f.credential.is_some()) {
            return Err(format!(
                "the manifest of container {vmid} names a `credential`: those are for VMs (QEMU's fw_cfg); a container gets files"
            ));
        }
        return crate::early::register(cfg, vmid, exe).map(Early::MountHook);
    }
    let names: Vec<String> = m
        .files
        .iter()
        .filter_map(|f| f.credential.clone())
        .collect();
    if names.is_empty() {
        return Err(format!(
            "the manifest of guest {vmid} names no `credential`: there is nothing to deliver early"
        ));
    }
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let current = guest.get("args");
    let merged = crate::credentials::merged_args(cfg, vmid, current.as_deref(), &refs);
    if current.as_deref() != Some(merged.as_str()) {
        set(cfg, guest.kind, vmid, &["--args", &merged])?;
    }
    Ok(Early::Credentials(names))
}

/// Take phx-hook's fw_cfg entries out of a VM's `args` (the rest kept), or its mount
/// hook out of a container's config; whether there were any.
pub fn unearly(cfg: &Config, vmid: Vmid) -> Result<bool, RegError> {
    let guest = pve::find_guest(&cfg.pve.config_dir, vmid).map_err(|e| e.to_string())?;
    if guest.kind == GuestKind::Lxc {
        return crate::early::unregister(cfg, vmid);
    }
    let Some(current) = guest.get("args") else {
        return Ok(false);
    };
    let left = crate::credentials::merged_args(cfg, vmid, Some(&current), &[]);
    if left == current {
        return Ok(false);
    }
    if left.is_empty() {
        set(cfg, guest.kind, vmid, &["--delete", "args"])?;
    } else {
        set(cfg, guest.kind, vmid, &["--args", &left])?;
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Regression (issue 12, point 9): a binary path with a space or `$(...)` must be one
    /// word for `sh`, and doctor must read the same path back.
    #[test]
    fn the_snippet_quotes_the_binary_path() {
        let t = tempfile::tempdir().unwrap();
        let d = Utf8Path::from_path(t.path()).unwrap();
        let marker = d.join("ran");
        let exe = d.join("my bin $(touch ran) `touch ran` it's");
        fs::write(&exe, "#!/bin/sh\necho \"args:$*\"\n").unwrap();
        fs::set_permissions(&exe, fs::Permissions::from_mode(0o755)).unwrap();
        let snippet = install_snippet(&d.join("snippets"), &exe).unwrap();
        let text = fs::read_to_string(&snippet).unwrap();
        assert_eq!(snippet_target(&text).as_deref(), Some(exe.as_str()));
        let out = Command::new(snippet.as_str())
            .args(["101", "pre-start"])
            .current_dir(d)
            .output()
            .unwrap();
        assert_eq!(String::from_utf8_lossy(&out.stdout), "args:101 pre-start\n");
        assert!(!marker.exists(), "the path was run as shell code");
        assert_eq!(
            snippet_target("exec /usr/local/sbin/phx-hook \"$@\"\n").as_deref(),
            Some("/usr/local/sbin/phx-hook")
        );
        assert!(install_snippet(&d.join("s2"), Utf8Path::new("/a\nb")).is_err());
    }
}

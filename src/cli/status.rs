//! `phx-hook status [--json]` (what is registered, what was last delivered) and
//! `phx-hook doctor` (is this node's install sound, and how to fix what is not).

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;

use serde::Serialize;
use serde_json::Value;

use super::{Context, Exit};
use crate::audit;
use crate::error::Error;
use crate::hook::{self, Check};
use crate::manifest;
use crate::pve;
use crate::register;
use crate::types::{GuestKind, Vmid};

/// Arguments of `status`.
#[derive(clap::Args, Debug)]
#[command(after_help = "Examples:\n  phx-hook status\n  phx-hook status --json")]
pub(crate) struct StatusArgs {
    /// Print as JSON.
    #[arg(long)]
    json: bool,
}

/// Arguments of `doctor`.
#[derive(clap::Args, Debug)]
#[command(after_help = "Example:\n  phx-hook doctor")]
pub(crate) struct DoctorArgs {}

#[derive(Serialize)]
struct GuestStatus {
    vmid: Vmid,
    kind: Option<GuestKind>,
    node: Option<String>,
    manifest: bool,
    registered: bool,
    hookscript: Option<String>,
    chained: Option<String>,
    last_delivery: Option<LastDelivery>,
    /// What the last delivery or reconcile pass found: `in sync`, `repaired`, `failed`,
    /// `unreachable`, or `never delivered`.
    sync: String,
    /// When that was.
    checked: Option<String>,
    /// Since when it has been out of sync without being repaired.
    stale_since: Option<String>,
    problems: Vec<String>,
}

#[derive(Serialize, Clone)]
struct LastDelivery {
    time: String,
    outcome: String,
    files: usize,
}

/// Every guest id with a config under `dir` (and `dir/nodes/*`), with its kind.
fn guests(dir: &camino::Utf8Path) -> BTreeMap<Vmid, GuestKind> {
    let mut roots = vec![dir.to_owned()];
    if let Ok(nodes) = fs::read_dir(dir.join("nodes")) {
        roots.extend(
            nodes
                .flatten()
                .filter_map(|e| e.file_name().into_string().ok())
                .map(|n| dir.join("nodes").join(n)),
        );
    }
    let mut out = BTreeMap::new();
    for root in roots {
        for (sub, kind) in [("qemu-server", GuestKind::Qemu), ("lxc", GuestKind::Lxc)] {
            let Ok(rd) = fs::read_dir(root.join(sub)) else {
                continue;
            };
            for e in rd.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                if let Some(id) = name
                    .strip_suffix(".conf")
                    .and_then(|s| s.parse::<Vmid>().ok())
                {
                    out.insert(id, kind);
                }
            }
        }
    }
    out
}

/// The last delivery of each guest, from the audit log.
fn last_deliveries(text: &str) -> BTreeMap<u64, LastDelivery> {
    let mut out: BTreeMap<u64, LastDelivery> = BTreeMap::new();
    for line in text.lines() {
        let Ok(v) = serde_json::from_str::<Value>(line) else {
            continue;
        };
        if v.get("action").and_then(Value::as_str) != Some("deliver") {
            continue;
        }
        let (Some(id), Some(time)) = (
            v.get("vmid").and_then(Value::as_u64),
            v.get("time").and_then(Value::as_str),
        ) else {
            continue;
        };
        let ok = v.get("outcome").and_then(Value::as_str) == Some("ok");
        let e = out.entry(id).or_insert(LastDelivery {
            time: String::new(),
            outcome: "ok".into(),
            files: 0,
        });
        if e.time != time {
            *e = LastDelivery {
                time: time.to_string(),
                outcome: "ok".into(),
                files: 0,
            };
        }
        e.files += 1;
        if !ok {
            e.outcome = "failed".into();
        }
    }
    out
}

pub(crate) fn status(args: StatusArgs, ctx: &Context) -> Result<Exit, Error> {
    let cfg = &ctx.config;
    let all = guests(&cfg.pve.config_dir);
    let (manifests, _) = manifest::list(&cfg.manifests)?;
    let last = last_deliveries(&fs::read_to_string(&cfg.audit_log).unwrap_or_default());
    let mut ids: Vec<Vmid> = manifests.clone();
    ids.extend(register::recorded(cfg));
    for id in all.keys() {
        if let Ok(g) = pve::find_guest(&cfg.pve.config_dir, *id)
            && g.get("hookscript").is_some_and(|h| register::is_ours(&h))
        {
            ids.push(*id);
        }
    }
    ids.sort();
    ids.dedup();
    let mut rows = Vec::new();
    for id in ids {
        let guest = pve::find_guest(&cfg.pve.config_dir, id).ok();
        let hookscript = guest.as_ref().and_then(|g| g.get("hookscript"));
        let registered = hookscript.as_deref().is_some_and(register::is_ours);
        let has_manifest = manifests.contains(&id);
        let mut problems = Vec::new();
        if guest.is_none() {
            problems.push("no guest config on this node".into());
        }
        if has_manifest && !registered {
            problems.push(match &hookscript {
                Some(h) => {
                    format!("has another hookscript (`{h}`): `phx-hook register {id} --chain`")
                }
                None => format!("not registered: `phx-hook register {id}`"),
            });
        }
        if registered && !has_manifest {
            problems.push(format!(
                "registered but has no manifest ({})",
                manifest::path_for(&cfg.manifests, id)
            ));
        }
        // The hookscript option travels without phx-hook: `qm clone` copies it and a
        // snapshot rollback restores the snapshot's (docs/PROXMOX.md §18).
        let record = register::record(cfg, id);
        if registered && record.is_none() {
            problems.push(format!(
                "has phx-hook's hookscript but no registration record (a clone or a restore?): `phx-hook register {id}` adopts it"
            ));
        }
        if !registered && record.is_some() {
            problems.push(format!(
                "recorded as registered, but its hookscript is {} (a snapshot rollback?): `phx-hook register {id}` again, or `phx-hook unregister {id}` to forget it",
                hookscript.as_deref().map_or("unset".to_string(), |h| format!("`{h}`"))
            ));
        }
        if has_manifest && let Err(e) = manifest::load(&cfg.manifests, id) {
            problems.extend(e.problems.iter().map(ToString::to_string));
        }
        // Credentials-only manifests need no agent (QEMU's fw_cfg carries them).
        let needs_agent = has_manifest
            && manifest::load(&cfg.manifests, id)
                .ok()
                .flatten()
                .is_none_or(|m| m.files.iter().any(|f| f.to_guest));
        if let Some(g) = &guest
            && g.kind == GuestKind::Qemu
            && needs_agent
            && !g.agent_enabled()
        {
            problems.push(format!(
                "guest agent not enabled: `qm set {id} --agent enabled=1`"
            ));
        }
        let rec = crate::engine::load_record(cfg, id);
        rows.push(GuestStatus {
            sync: rec
                .as_ref()
                .map_or("never delivered".to_string(), sync_word),
            checked: rec.as_ref().map(|r| r.checked.clone()),
            stale_since: rec.as_ref().and_then(|r| r.stale_since.clone()),
            vmid: id,
            kind: guest.as_ref().map(|g| g.kind),
            node: guest.as_ref().and_then(|g| g.node.clone()),
            manifest: has_manifest,
            registered,
            hookscript: if registered { None } else { hookscript },
            chained: record.and_then(|r| r.previous),
            last_delivery: last.get(&u64::from(id.get())).cloned(),
            problems,
        });
    }
    let mut out = std::io::stdout().lock();
    if args.json {
        let _ = serde_json::to_writer_pretty(&mut out, &rows);
        let _ = writeln!(out);
    } else {
        let _ = writeln!(
            out,
            "{:>6}  {:<5}  {:<10}  {:<10}  {:<8}  {:<35}  {:<16}  problems",
            "vmid", "kind", "node", "registered", "manifest", "last delivery", "sync"
        );
        for r in &rows {
            let kind = r.kind.map_or("?".into(), |k| k.to_string());
            let reg = if r.registered {
                if r.chained.is_some() {
                    "yes+chain"
                } else {
                    "yes"
                }
            } else {
                "no"
            };
            let last = r.last_delivery.as_ref().map_or("never".to_string(), |l| {
                format!("{} {} ({} files)", l.time, l.outcome, l.files)
            });
            let probs = if r.problems.is_empty() {
                "-".to_string()
            } else {
                r.problems.join("; ")
            };
            let _ = writeln!(
                out,
                "{:>6}  {kind:<5}  {:<10}  {reg:<10}  {:<8}  {last:<35}  {:<16}  {probs}",
                r.vmid,
                r.node.as_deref().unwrap_or("?"),
                if r.manifest { "yes" } else { "no" },
                r.sync
            );
        }
    }
    Ok(if rows.iter().all(|r| r.problems.is_empty()) {
        Exit::Ok
    } else {
        Exit::Failed
    })
}

struct Doctor {
    failed: usize,
    warned: usize,
}

impl Doctor {
    fn check(&mut self, ok: bool, what: &str, fix: &str) {
        if ok {
            println!("ok    {what}");
        } else {
            self.failed += 1;
            println!("FAIL  {what}");
            if !fix.is_empty() {
                println!("      fix: {fix}");
            }
        }
    }

    fn warn(&mut self, what: &str, fix: &str) {
        self.warned += 1;
        println!("warn  {what}");
        println!("      fix: {fix}");
    }
}

/// On a Proxmox VE cluster: where phx-hook's files are (cluster-wide, so every node can
/// start every guest, or node-local, with the move to make), the cluster's nodes, quorum,
/// and whether the snippets storage is shared.
fn cluster_checks(d: &mut Doctor, cfg: &crate::config::Config) {
    let pve_dir = &cfg.pve.config_dir;
    if !crate::config::is_pmxcfs(pve_dir) {
        println!(
            "info  not a Proxmox VE cluster node ({pve_dir} is not pmxcfs): files are node-local"
        );
        return;
    }
    let nodes = pve::nodes(pve_dir);
    println!(
        "info  cluster nodes: {} (this node: {})",
        if nodes.is_empty() {
            "-".to_string()
        } else {
            nodes.join(", ")
        },
        pve::local_node(pve_dir)
    );
    let quorate = pve_dir
        .join("local")
        .symlink_metadata()
        .is_ok_and(|m| m.permissions().mode() & 0o200 != 0);
    if !quorate {
        d.warn(
            &format!("no quorum: {pve_dir} is read-only; guests keep running, but none starts and the vault cannot change"),
            "`pvecm status`; restore the cluster network",
        );
    }
    for (what, path, fix_dir) in [
        ("vault", &cfg.vault, pve_dir.join("phx-hook")),
        ("manifests", &cfg.manifests, pve_dir.join("phx-hook")),
        ("host key", &cfg.key, pve_dir.join("priv/phx-hook")),
    ] {
        if crate::files::pmxcfs_root(path).is_some() {
            d.check(
                true,
                &format!("{what}: {path} (cluster-wide: every node sees it)"),
                "",
            );
        } else {
            d.warn(
                &format!("{what}: {path} is node-local: a guest that HA or a migration moves to another node finds no {what} there"),
                &format!("mkdir -p {fix_dir} && mv {path} {fix_dir}/ (and drop `{}:` from the config if it names it)", match what { "host key" => "key", "manifests" => "manifests", _ => "vault" }),
            );
        }
    }
    if crate::files::pmxcfs_root(&cfg.audit_log).is_some() {
        d.warn(
            &format!("audit log {} is on pmxcfs, which holds 1 MiB per file and is read-only without quorum", cfg.audit_log),
            "keep it node-local (`audit_log: /var/log/phx-hook/audit.jsonl`)",
        );
    }
}

pub(crate) fn doctor(_args: DoctorArgs, ctx: &Context) -> Result<Exit, Error> {
    let cfg = &ctx.config;
    let mut d = Doctor {
        failed: 0,
        warned: 0,
    };
    let src = cfg.source.as_ref().map_or(
        "none found; the defaults apply".to_string(),
        ToString::to_string,
    );
    d.check(true, &format!("config: {src}"), "");
    let exe = std::env::current_exe().ok();
    let exe_ok = exe
        .as_ref()
        .is_some_and(|e| fs::metadata(e).is_ok_and(|m| m.permissions().mode() & 0o111 != 0));
    d.check(
        exe_ok,
        &format!(
            "binary: {}",
            exe.as_ref().map_or("?".into(), |e| e.display().to_string())
        ),
        "reinstall phx-hook",
    );

    cluster_checks(&mut d, cfg);

    // Snippets storage and the snippet of every registered guest.
    match register::storages(cfg) {
        Ok(st) => {
            let snip: Vec<&pve::Storage> = st
                .iter()
                .filter(|s| s.content.iter().any(|c| c == "snippets"))
                .collect();
            d.check(
                !snip.is_empty(),
                &format!(
                    "snippets storage: {}",
                    snip.iter()
                        .map(|s| format!("{} ({})", s.id, if s.shared { "shared" } else { "this node only" }))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
                "enable snippets on a directory storage: `pvesm set local --content <current>,snippets`",
            );
            if crate::config::is_pmxcfs(&cfg.pve.config_dir)
                && pve::nodes(&cfg.pve.config_dir).len() > 1
                && !snip.is_empty()
                && !snip.iter().any(|s| s.shared)
            {
                d.warn(
                    "no shared storage holds snippets: every node that may run a registered guest needs the snippet",
                    "`phx-hook register <vmid>` on every node, or enable snippets on a shared storage and `phx-hook register <vmid> --storage <it>`",
                );
            }
            let mut volids: Vec<String> = guests(&cfg.pve.config_dir)
                .keys()
                .filter_map(|id| {
                    pve::find_guest(&cfg.pve.config_dir, *id)
                        .ok()?
                        .get("hookscript")
                })
                .filter(|h| register::is_ours(h))
                .collect();
            volids.sort();
            volids.dedup();
            for v in volids {
                let path = pve::snippet_path(&st, &v);
                let ok = path.as_ref().is_some_and(|p| {
                    fs::metadata(p).is_ok_and(|m| m.permissions().mode() & 0o111 != 0)
                });
                let target_ok = path
                    .as_ref()
                    .and_then(|p| fs::read_to_string(p).ok())
                    .and_then(|t| register::snippet_target(&t))
                    .is_some_and(|bin| std::path::Path::new(&bin).exists());
                d.check(
                    ok && target_ok,
                    &format!("snippet {v} present, executable, and its binary exists on this node"),
                    "run `phx-hook register <vmid>` again on this node (snippets are not replicated unless on shared storage)",
                );
            }
        }
        Err(e) => d.check(
            false,
            &format!("storage.cfg: {e}"),
            "check pve.config_dir in the config",
        ),
    }

    // Registrations that drifted: `qm clone` copies the hookscript option, a snapshot
    // rollback restores the snapshot's (docs/PROXMOX.md §18).
    for (id, _) in guests(&cfg.pve.config_dir) {
        let Ok(g) = pve::find_guest(&cfg.pve.config_dir, id) else {
            continue;
        };
        let ours = g.get("hookscript").is_some_and(|h| register::is_ours(&h));
        match (ours, register::record(cfg, id).is_some()) {
            (true, false) => d.warn(
                &format!("guest {id} has phx-hook's hookscript but no registration record (a clone or a restore?)"),
                &format!("`phx-hook register {id}` adopts it (and give it a manifest, or `phx-hook unregister {id}`)"),
            ),
            (false, true) => d.warn(
                &format!("guest {id} is recorded as registered, but its hookscript is no longer phx-hook's (a snapshot rollback?)"),
                &format!("`phx-hook register {id}` again, or `phx-hook unregister {id}` to forget it"),
            ),
            _ => {}
        }
    }
    for id in register::recorded(cfg) {
        if pve::find_guest(&cfg.pve.config_dir, id).is_err() {
            d.warn(
                &format!("guest {id} has a registration record but no config (destroyed?)"),
                &format!(
                    "`rm {}/phx-hook/registrations/{id}.json`",
                    cfg.pve.config_dir
                ),
            );
        }
    }

    // The host key and the vault.
    let key_meta = fs::metadata(&cfg.key);
    let key_private = key_meta.as_ref().is_ok_and(|m| {
        use std::os::unix::fs::MetadataExt;
        m.uid() == 0 && m.mode() & 0o077 == 0
    });
    d.check(
        key_private,
        &format!("host key {} is root-only", cfg.key),
        &format!("chown root:root {k} && chmod 600 {k}", k = cfg.key),
    );
    let vault = crate::vault::Vault::open(cfg);
    match &vault {
        Ok(v) => {
            d.check(
                true,
                &format!(
                    "vault {} decrypts ({} secrets, version {:?})",
                    cfg.vault, v.info.secrets, v.info.version
                ),
                "",
            );
            if cfg.signers.is_empty() {
                d.warn(
                    "signature policy: `signers` is empty, so anyone with the recipients' public keys can write a vault this host accepts",
                    "list the fingerprints allowed to sign the vault under `signers`",
                );
            } else {
                d.check(
                    true,
                    &format!(
                        "vault signed by {}",
                        v.info.signer.as_deref().unwrap_or("?")
                    ),
                    "",
                );
            }
        }
        Err(e) => d.check(false, &format!("vault: {e}"), &e.hint().unwrap_or_default()),
    }

    // Manifests.
    let (ids, odd) = manifest::list(&cfg.manifests)?;
    for o in odd {
        d.warn(
            &format!("{}/{o} is ignored", cfg.manifests),
            "name manifests <vmid>.yaml",
        );
    }
    for id in ids {
        // One decryption for every guest; when the whole vault does not open, each guest
        // is still checked as its hook would be (indexing only its own keys).
        let valid = match &vault {
            Ok(v) => hook::validate_with(cfg, id, v),
            Err(_) => match hook::prepare(cfg, id) {
                Check::Failed { line, .. } => Err(line),
                Check::Ready(_) | Check::NoManifest => Ok(()),
            },
        };
        match valid {
            Ok(()) => d.check(
                true,
                &format!("manifest {id} valid, every key resolves"),
                "",
            ),
            Err(line) => d.check(
                false,
                &format!("manifest {id}: {line}"),
                &format!("`phx-hook check {id}` lists every problem"),
            ),
        }
    }

    // The audit log.
    let writable = fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&cfg.audit_log)
        .is_ok()
        || cfg.audit_log.parent().is_some_and(|p| {
            fs::create_dir_all(p).is_ok()
                && fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&cfg.audit_log)
                    .is_ok()
        });
    d.check(
        writable,
        &format!("audit log {} writable", cfg.audit_log),
        "create its directory as root",
    );
    let (n, breaks) = audit::verify(&fs::read_to_string(&cfg.audit_log).unwrap_or_default());
    d.check(
        breaks.is_empty(),
        &format!("audit log hash chain intact ({n} lines)"),
        &breaks.first().map_or(String::new(), |b| {
            format!("line {} {}; `phx-hook audit --verify`", b.line, b.reason)
        }),
    );
    println!("{} check(s) failed, {} warning(s)", d.failed, d.warned);
    Ok(if d.failed == 0 {
        Exit::Ok
    } else {
        Exit::Failed
    })
}

/// The sync column: `in sync`, `missing since T` (a file is not in the guest and could
/// not be put back), `stale since T` (a file differs and could not be repaired),
/// `unreachable`, or `never delivered` (no record).
fn sync_word(r: &crate::engine::Record) -> String {
    match (r.state.as_str(), &r.stale_since) {
        ("in sync" | "repaired", _) => "in sync".to_string(),
        ("unreachable", _) => "unreachable".to_string(),
        (_, Some(t))
            if r.files
                .iter()
                .any(|f| f.seen == crate::deliver::Seen::Missing) =>
        {
            format!("missing since {t}")
        }
        (_, Some(t)) => format!("stale since {t}"),
        (other, None) => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::sync_word;
    use crate::deliver::Seen;
    use crate::engine::{FileRecord, Record};

    #[test]
    fn the_sync_column_says_what_the_last_pass_found() {
        let mut r = Record {
            state: "repaired".into(),
            ..Record::default()
        };
        assert_eq!(sync_word(&r), "in sync");
        r.state = "failed".into();
        r.stale_since = Some("T".into());
        r.files.push(FileRecord {
            dest: "/a".into(),
            digest: String::new(),
            seen: Seen::Unknown,
        });
        assert_eq!(sync_word(&r), "stale since T");
        r.files[0].seen = Seen::Missing;
        assert_eq!(sync_word(&r), "missing since T");
        r.state = "unreachable".into();
        assert_eq!(sync_word(&r), "unreachable");
    }
}

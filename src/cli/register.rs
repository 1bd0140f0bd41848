//! `phx-hook register <vmid>... [--storage STORE] [--chain]` and
//! `phx-hook unregister <vmid>...`: make phx-hook the guests' hookscript, and undo it.

use camino::Utf8PathBuf;

use super::{Context, Exit};
use crate::audit::write as write_audit;
use crate::audit::{Audit, Event};
use crate::error::Error;
use crate::register::{self, Registered, Unregistered};
use crate::types::Vmid;

/// Arguments of `register`.
#[derive(clap::Args, Debug)]
#[command(
    after_help = "Examples:\n  phx-hook register 101 102 201\n  phx-hook register 105 --chain          # keep its existing hookscript, run after phx-hook\n  phx-hook register 101 --storage cephfs  # snippets on shared storage, for a cluster"
)]
pub(crate) struct RegisterArgs {
    /// Guests to register.
    #[arg(value_name = "VMID", required_unless_present = "node")]
    vmids: Vec<Vmid>,

    /// Set this node up for every registered guest instead: install the snippet each one
    /// names (a node that joined the cluster, or was reinstalled). Changes no guest.
    #[arg(long, conflicts_with_all = ["vmids", "storage", "chain", "early"])]
    node: bool,

    /// The storage whose `snippets` directory gets the hookscript (default: a shared
    /// storage with snippets content, else `local`, else another with snippets content).
    #[arg(long, value_name = "STORE")]
    storage: Option<String>,

    /// If a guest already has another hookscript, keep it and run it after phx-hook.
    #[arg(long)]
    chain: bool,

    /// Also deliver before the guest's first process: a VM's `credential` entries go to
    /// systemd through QEMU's fw_cfg (sets the VM's `args`); a container's files are
    /// written by an LXC mount hook before its init starts (adds `lxc.hook.mount`).
    #[arg(long)]
    early: bool,
}

/// Arguments of `unregister`.
#[derive(clap::Args, Debug)]
#[command(after_help = "Example:\n  phx-hook unregister 101 102")]
pub(crate) struct UnregisterArgs {
    /// Guests to unregister.
    #[arg(value_name = "VMID", required = true)]
    vmids: Vec<Vmid>,
}

fn exe() -> Result<Utf8PathBuf, Error> {
    let p = std::env::current_exe()
        .map_err(|e| Error::Other(format!("cannot find the phx-hook binary: {e}")))?;
    Utf8PathBuf::from_path_buf(p)
        .map_err(|p| Error::Other(format!("the binary's path is not UTF-8: {}", p.display())))
}

pub(crate) fn run(args: RegisterArgs, ctx: &Context) -> Result<Exit, Error> {
    let cfg = &ctx.config;
    let exe = exe()?;
    if args.node {
        return node_setup(cfg, &exe);
    }
    let audit = Audit::of(cfg);
    let storage = match args.storage {
        Some(s) => s,
        None => register::default_storage(cfg).map_err(Error::Other)?,
    };
    if let Some(note) = register::unshared_note(cfg, &storage) {
        eprintln!("note: {note}");
    }
    let mut failed = 0;
    for vmid in args.vmids {
        if args.early {
            match register::early(cfg, vmid, &exe) {
                Ok(register::Early::Credentials(names)) => {
                    println!(
                        "{vmid}: credential(s) {} reach the VM through fw_cfg from its next start",
                        names.join(", ")
                    );
                    write_audit(
                        &audit,
                        &[Event::new(Some(vmid), "register", "early", "ok")
                            .with("credentials", names)],
                    );
                }
                Ok(register::Early::MountHook(added)) => {
                    println!(
                        "{vmid}: {} (its files are in place before its init starts, from its next start)",
                        if added {
                            "the container runs phx-hook's mount hook"
                        } else {
                            "the container already runs phx-hook's mount hook"
                        }
                    );
                    if added {
                        write_audit(
                            &audit,
                            &[Event::new(Some(vmid), "register", "early", "ok")
                                .with("mount_hook", true)],
                        );
                    }
                }
                Err(e) => {
                    failed += 1;
                    eprintln!("error: {vmid}: {e}");
                    continue;
                }
            }
        }
        match register::register(cfg, vmid, &storage, args.chain, &exe) {
            Ok(Registered::Already) => println!("{vmid}: already registered"),
            Ok(Registered::New { chained }) => {
                match &chained {
                    Some(prev) => println!(
                        "{vmid}: registered (hookscript {storage}:snippets/phx-hook; runs `{prev}` after phx-hook)"
                    ),
                    None => println!("{vmid}: registered (hookscript {storage}:snippets/phx-hook)"),
                }
                write_audit(
                    &audit,
                    &[Event::new(Some(vmid), "register", "register", "ok")
                        .with("chained", chained)],
                );
            }
            Err(e) => {
                failed += 1;
                eprintln!("error: {vmid}: {e}");
                write_audit(
                    &audit,
                    &[Event::new(Some(vmid), "register", "register", "failed").with("error", e)],
                );
            }
        }
    }
    Ok(if failed == 0 { Exit::Ok } else { Exit::Failed })
}

/// `register --node`: the snippet of every registered guest's hookscript, on this node.
fn node_setup(cfg: &crate::config::Config, exe: &camino::Utf8Path) -> Result<Exit, Error> {
    let mut stores: Vec<String> = register::recorded(cfg)
        .into_iter()
        .filter_map(|vmid| register::record(cfg, vmid))
        .filter_map(|r| r.hookscript.split_once(':').map(|(s, _)| s.to_string()))
        .collect();
    stores.sort();
    stores.dedup();
    if stores.is_empty() {
        println!("no guest is registered: nothing to set up on this node");
        return Ok(Exit::Ok);
    }
    let mut failed = 0;
    for store in stores {
        match register::snippets_dir(cfg, &store).and_then(|d| register::install_snippet(&d, exe)) {
            Ok(path) => println!("{store}: snippet {path} runs {exe}"),
            Err(e) => {
                failed += 1;
                eprintln!("error: {store}: {e}");
            }
        }
    }
    Ok(if failed == 0 { Exit::Ok } else { Exit::Failed })
}

pub(crate) fn run_unregister(args: UnregisterArgs, ctx: &Context) -> Result<Exit, Error> {
    let cfg = &ctx.config;
    let audit = Audit::of(cfg);
    let mut failed = 0;
    for vmid in args.vmids {
        match register::unregister(cfg, vmid) {
            Ok(Unregistered::NotRegistered) => {
                println!("{vmid}: phx-hook is not its hookscript; nothing to do")
            }
            Ok(r) => {
                let restored = match &r {
                    Unregistered::Restored(prev) => {
                        println!("{vmid}: unregistered; its previous hookscript `{prev}` is back");
                        Some(prev.clone())
                    }
                    _ => {
                        println!("{vmid}: unregistered (no hookscript)");
                        None
                    }
                };
                write_audit(
                    &audit,
                    &[Event::new(Some(vmid), "unregister", "unregister", "ok")
                        .with("restored", restored)],
                );
            }
            Err(e) => {
                failed += 1;
                eprintln!("error: {vmid}: {e}");
            }
        }
    }
    Ok(if failed == 0 { Exit::Ok } else { Exit::Failed })
}

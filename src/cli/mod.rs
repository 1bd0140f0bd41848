//! The command line (DESIGN §1): clap definitions, the global options, logging set-up,
//! and the one place errors are printed and mapped to exit codes. Each subcommand lives
//! in its own file with its `Args` struct and `run`.

mod audit;
mod check;
mod hook;
mod inject;
mod reconcile;
mod register;
mod run;
mod scan;
mod status;
mod vault;

use std::ffi::OsString;
use std::io::Write;
use std::process::ExitCode;

use camino::{Utf8Path, Utf8PathBuf};
use clap::{Parser, Subcommand};

use crate::config::{CONFIG_ENV, Config};
use crate::error::Error;
use crate::types::Vmid;

/// Exit statuses (DESIGN §1), documented in `--help` and the README.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exit {
    /// Success.
    Ok = 0,
    /// The job failed, or problems were found.
    Failed = 1,
    /// Usage error.
    Usage = 2,
}

impl From<Exit> for ExitCode {
    fn from(e: Exit) -> ExitCode {
        ExitCode::from(e as u8)
    }
}

const AFTER_HELP: &str = "\
Hook mode: `phx-hook <vmid> <phase>` is how Proxmox VE runs the hookscript
(register it with `qm set <vmid> --hookscript local:snippets/phx-hook`).

Examples:
  phx-hook check                 validate the config, the vault and every manifest
  phx-hook inject 101 --dry-run  show what guest 101 would receive (no values)
  phx-hook register 101 201      make phx-hook the hookscript of guests 101 and 201
  phx-hook audit --verify        check the audit log's hash chain

Exit status: 0 success, 1 the job failed or problems were found, 2 usage error.";

/// Deliver secrets from an OpenPGP-encrypted vault into Proxmox VE guests.
#[derive(Parser, Debug)]
#[command(name = "phx-hook", version, about, after_help = AFTER_HELP, subcommand_required = true)]
struct Cli {
    #[command(flatten)]
    global: Global,

    #[command(subcommand)]
    command: Command,
}

/// Hook mode, as Proxmox VE runs the hookscript: `phx-hook <vmid> <phase>`.
#[derive(Parser, Debug)]
#[command(name = "phx-hook", version)]
struct HookCli {
    #[command(flatten)]
    global: Global,

    /// The guest id Proxmox passes.
    vmid: Vmid,

    /// The phase Proxmox passes (pre-start, post-start, pre-stop, post-stop).
    phase: String,
}

/// Options every command takes.
#[derive(clap::Args, Debug)]
struct Global {
    /// Config file (default: $PHX_HOOK_CONFIG, /etc/pve/phx-hook/phx-hook.yaml, /etc/phx-hook/phx-hook.yaml).
    #[arg(long, global = true, value_name = "PATH")]
    config: Option<Utf8PathBuf>,

    /// More log output (repeat for more); RUST_LOG also works.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,

    /// Only errors.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    quiet: bool,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Validate the config, the vault and manifests; exit 1 if anything is wrong.
    Check(check::CheckArgs),
    /// Deliver a guest's secrets now (with --dry-run: show the plan only).
    Inject(inject::InjectArgs),
    /// Make phx-hook the hookscript of guests (installs the snippet, runs qm/pct set).
    Register(register::RegisterArgs),
    /// Undo `register`, restoring a chained hookscript.
    Unregister(register::UnregisterArgs),
    /// Show the audit log and verify its hash chain.
    Audit(audit::AuditArgs),
    /// Make every running guest of this node hold what its manifest says (reboots from inside, rotation, drift).
    Reconcile(reconcile::ReconcileArgs),
    /// Every guest with a manifest or phx-hook's hookscript: registration, last delivery, problems.
    Status(status::StatusArgs),
    /// Check this node's install (binary, snippet, storage, key, vault, manifests, audit log).
    Doctor(status::DoctorArgs),
    /// Create, edit and inspect the vault (with your gpg, or a key file).
    Vault(vault::VaultArgs),
    /// Run a host command with secrets from the vault in its environment (never argv).
    Run(run::RunArgs),
    /// Find hardcoded secrets in scripts and configs (and their git history); migrate them.
    Scan(scan::ScanArgs),
    /// Write the man page or a shell's completions to stdout (for packagers).
    #[command(hide = true)]
    Generate {
        /// `man`, or a shell: `bash`, `zsh`, `fish`.
        #[arg(value_parser = ["man", "bash", "zsh", "fish"])]
        what: String,
    },
    /// The detached delivery worker (started by the post-start hook).
    #[command(name = "__worker", hide = true)]
    Worker {
        /// The guest.
        vmid: Vmid,
        /// Second stage (already detached).
        #[arg(long)]
        stage2: bool,
        /// The container's mount hook delivered at this start: record that, deliver
        /// only what it missed.
        #[arg(long)]
        early: bool,
    },
}

/// What every command gets.
pub(crate) struct Context {
    pub(crate) config: Config,
}

/// Run phx-hook with `args` (including argv[0]) and return the exit status.
pub fn run<I: IntoIterator<Item = OsString>>(args: I) -> ExitCode {
    let args: Vec<OsString> = args.into_iter().collect();
    // LXC's mount hook: `phx-hook __lxc-early STAGING <name> lxc mount`, run by LXC in
    // the container's namespaces with the arguments LXC appends (see `crate::early`).
    if args.get(1).is_some_and(|a| a == crate::early::HOOK_COMMAND) {
        let _ = crate::hardening::harden();
        return match args.get(2).and_then(|a| a.to_str()) {
            Some(staging) => {
                let name = args.get(3).and_then(|a| a.to_str());
                ExitCode::from(crate::early::hook_main(Utf8Path::new(staging), name) as u8)
            }
            None => {
                eprintln!(
                    "phx-hook: {}: no staging directory",
                    crate::early::HOOK_COMMAND
                );
                Exit::Usage.into()
            }
        };
    }
    let parsed = if let Some((vmid, phase)) = proxmox_call(&args) {
        // Exactly what Proxmox passes, at every guest start: no parser needed.
        Ok((
            Global {
                config: None,
                verbose: 0,
                quiet: false,
            },
            Mode::Hook(vmid, phase),
        ))
    } else if is_hook_mode(&args) {
        HookCli::try_parse_from(&args).map(|h| (h.global, Mode::Hook(h.vmid, h.phase)))
    } else {
        Cli::try_parse_from(&args).map(|c| (c.global, Mode::Command(c.command)))
    };
    let (global, mode) = match parsed {
        Ok(p) => p,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                Exit::Usage.into()
            } else {
                Exit::Ok.into()
            };
        }
    };
    init_logging(&global);
    if let Err(e) = crate::hardening::harden() {
        print_error(&Error::Other(e));
        return Exit::Failed.into();
    }
    match dispatch(&global, mode) {
        Ok(code) => code.into(),
        Err(e) => {
            print_error(&e);
            Exit::Failed.into()
        }
    }
}

enum Mode {
    Hook(Vmid, String),
    Command(Command),
}

/// `<path> <vmid> <phase>` with a valid guest id and a plain phase name: the call Proxmox
/// makes.
fn proxmox_call(args: &[OsString]) -> Option<(Vmid, String)> {
    let [_, vmid, phase] = args else { return None };
    let vmid = vmid.to_str()?.parse::<Vmid>().ok()?;
    let phase = phase.to_str()?;
    if !phase.starts_with(|c: char| c.is_ascii_lowercase())
        || !phase.bytes().all(|b| b.is_ascii_lowercase() || b == b'-')
    {
        return None;
    }
    Some((vmid, phase.to_string()))
}

/// Hook mode is chosen by a numeric first argument (after global options), as DESIGN §1
/// says; Proxmox passes exactly `<path> <vmid> <phase>`.
fn is_hook_mode(args: &[OsString]) -> bool {
    let mut it = args.iter().skip(1);
    while let Some(a) = it.next() {
        let Some(a) = a.to_str() else { return false };
        if a == "--config" {
            it.next();
        } else if !a.starts_with('-') {
            return !a.is_empty() && a.bytes().all(|b| b.is_ascii_digit());
        }
    }
    false
}

/// The man page (clap_mangen) or completions (clap_complete), from the same definitions
/// the parser uses, so they never drift from the command line.
fn generate(what: &str) -> Result<Exit, Error> {
    use clap::CommandFactory;
    let mut cmd = Cli::command();
    let mut out = Vec::new();
    let shell = match what {
        "man" => {
            clap_mangen::Man::new(cmd.clone())
                .render(&mut out)
                .map_err(|e| Error::Other(format!("cannot render the man page: {e}")))?;
            None
        }
        "bash" => Some(clap_complete::Shell::Bash),
        "zsh" => Some(clap_complete::Shell::Zsh),
        _ => Some(clap_complete::Shell::Fish),
    };
    if let Some(shell) = shell {
        clap_complete::generate(shell, &mut cmd, "phx-hook", &mut out);
    }
    std::io::Write::write_all(&mut std::io::stdout(), &out)
        .map_err(|e| Error::Other(format!("cannot write: {e}")))?;
    Ok(Exit::Ok)
}

fn dispatch(global: &Global, mode: Mode) -> Result<Exit, Error> {
    let env = std::env::var(CONFIG_ENV).ok();
    let load = || Config::discover(global.config.as_deref(), env.as_deref());
    match mode {
        Mode::Hook(vmid, phase) => Ok(hook::run(vmid, &phase, global.config.as_deref())),
        Mode::Command(Command::Worker {
            vmid,
            stage2,
            early,
        }) => Ok(hook::worker(vmid, stage2, early, global.config.as_deref())),
        // Needs no config: packagers run it at build time.
        Mode::Command(Command::Generate { what }) => generate(&what),
        Mode::Command(command) => {
            let ctx = Context { config: load()? };
            match command {
                Command::Check(args) => check::run(args, &ctx),
                Command::Inject(args) => inject::run(args, &ctx),
                Command::Reconcile(args) => reconcile::run(args, &ctx, global.config.as_deref()),
                Command::Register(args) => register::run(args, &ctx),
                Command::Unregister(args) => register::run_unregister(args, &ctx),
                Command::Audit(args) => audit::run(args, &ctx),
                Command::Status(args) => status::status(args, &ctx),
                Command::Doctor(args) => status::doctor(args, &ctx),
                Command::Vault(args) => vault::run(args, &ctx),
                Command::Run(args) => run::run(args, &ctx),
                Command::Scan(args) => scan::run(args, &ctx),
                Command::Worker { .. } | Command::Generate { .. } => Ok(Exit::Usage),
            }
        }
    }
}

fn init_logging(g: &Global) {
    if g.verbose == 0 && !g.quiet && std::env::var_os("RUST_LOG").is_none() {
        // The defaults (warnings and errors, `phx-hook: level: message`) need no filter
        // parsing: a plain logger, set up in microseconds, for the hook's hot path.
        static PLAIN: PlainLogger = PlainLogger;
        if log::set_logger(&PLAIN).is_ok() {
            log::set_max_level(log::LevelFilter::Warn);
        }
        return;
    }
    let level = match (g.quiet, g.verbose) {
        (true, _) => log::LevelFilter::Error,
        (_, 0) => log::LevelFilter::Warn,
        (_, 1) => log::LevelFilter::Info,
        (_, 2) => log::LevelFilter::Debug,
        _ => log::LevelFilter::Trace,
    };
    let mut b = env_logger::Builder::new();
    b.filter_level(level);
    if let Ok(spec) = std::env::var("RUST_LOG") {
        b.parse_filters(&spec);
    }
    // rPGP's debug output describes packets and keys; nothing below warn is useful to an
    // administrator, and a log must never be a place key material could reach.
    b.filter_module("pgp", log::LevelFilter::Warn);
    b.format(|buf, rec| {
        writeln!(
            buf,
            "phx-hook: {}: {}",
            rec.level().as_str().to_lowercase(),
            rec.args()
        )
    });
    let _ = b.try_init();
}

/// phx-hook's own warnings and errors on stderr (never rPGP's chatter).
struct PlainLogger;

impl log::Log for PlainLogger {
    fn enabled(&self, m: &log::Metadata<'_>) -> bool {
        m.level() <= log::Level::Warn && m.target().starts_with("phx_hook")
    }

    fn log(&self, r: &log::Record<'_>) {
        if self.enabled(r.metadata()) {
            eprintln!(
                "phx-hook: {}: {}",
                r.level().as_str().to_lowercase(),
                r.args()
            );
        }
    }

    fn flush(&self) {}
}

/// Print an error (and its hint) on stderr, one `error:` line per problem.
pub(crate) fn print_error(e: &Error) {
    let mut err = std::io::stderr().lock();
    for line in e.to_string().lines() {
        let _ = writeln!(err, "error: {line}");
    }
    if let Some(h) = e.hint() {
        let _ = writeln!(err, "hint: {h}");
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    #[test]
    fn the_proxmox_call_takes_the_fast_path() {
        let a = |v: &[&str]| v.iter().map(std::ffi::OsString::from).collect::<Vec<_>>();
        let (vmid, phase) =
            super::proxmox_call(&a(&["/var/lib/vz/snippets/phx-hook", "101", "pre-start"]))
                .unwrap();
        assert_eq!((vmid.get(), phase.as_str()), (101, "pre-start"));
        assert!(super::proxmox_call(&a(&["x", "101", "--help"])).is_none());
        assert!(super::proxmox_call(&a(&["x", "abc", "pre-start"])).is_none());
        assert!(super::proxmox_call(&a(&["x", "101"])).is_none());
        assert!(super::proxmox_call(&a(&["x", "--config", "c", "101", "pre-start"])).is_none());
    }

    #[test]
    fn the_command_lines_are_consistent() {
        super::Cli::command().debug_assert();
        super::HookCli::command().debug_assert();
    }
}

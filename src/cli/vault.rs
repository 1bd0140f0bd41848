//! `phx-hook vault ...`: create and edit the vault with the GnuPG people already use (or
//! a key file), manage its recipients, verify it, and show it to `git diff` redacted.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::{IsTerminal, Read, Write};
use std::process::Command;

use camino::{Utf8Path, Utf8PathBuf};
use clap::{Args, Subcommand};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use zeroize::Zeroizing;

use super::{Context, Exit};
use crate::audit::write as write_audit;
use crate::audit::{Audit, Event};
use crate::config::Config;
use crate::error::Error;
use crate::manifest;
use crate::types::KeyPath;
use crate::vault::author::{self, Author, AuthorError};
use crate::vault::doc::{Doc, Node};
use crate::vault::{Rollback, Secret, Vault};

/// Arguments of `vault`.
#[derive(Args, Debug)]
pub(crate) struct VaultArgs {
    /// The vault file (default: `vault` from the config).
    #[arg(long, global = true, value_name = "PATH")]
    vault: Option<Utf8PathBuf>,

    /// The recipients file (default: `recipients` from the config, or recipients.asc beside --vault).
    #[arg(long, global = true, value_name = "PATH")]
    recipients: Option<Utf8PathBuf>,

    #[command(subcommand)]
    cmd: VaultCmd,
}

/// Which keys decrypt and sign.
#[derive(Args, Debug, Clone, Default)]
pub(crate) struct KeyArgs {
    /// Decrypt and sign with this secret key file (rPGP) instead of your gpg.
    #[arg(long, value_name = "FILE")]
    pub(crate) key: Option<Utf8PathBuf>,

    /// The passphrase of --key, from this file.
    #[arg(long, value_name = "FILE", requires = "key")]
    pub(crate) key_passphrase_file: Option<Utf8PathBuf>,

    /// Use the host key from the config (on the hypervisor itself).
    #[arg(long, conflicts_with = "key")]
    pub(crate) host: bool,

    /// gpg: the key to sign with (`--local-user`); default: gpg's default key.
    #[arg(long, value_name = "KEYID")]
    pub(crate) signer: Option<String>,
}

#[derive(Subcommand, Debug)]
enum VaultCmd {
    /// Create the host key (or adopt one), the recipients file and an empty vault.
    #[command(
        after_help = "Examples:\n  phx-hook vault init\n  phx-hook vault init --recipient alice@example.org --recipient ./bob.asc\n  phx-hook vault init --host-key /root/existing.key"
    )]
    Init {
        /// Adopt this secret key file as the host key instead of generating one.
        #[arg(long, value_name = "FILE")]
        host_key: Option<Utf8PathBuf>,
        /// A developer who may edit the vault: a key id known to your gpg, or a public key file.
        #[arg(long = "recipient", value_name = "FPR|FILE")]
        developers: Vec<String>,
        /// The new host key's user id.
        #[arg(long, value_name = "UID")]
        uid: Option<String>,
        /// Overwrite an existing key, recipients file and vault.
        #[arg(long)]
        force: bool,
    },
    /// Edit the vault in $VISUAL/$EDITOR, with the plaintext only on a RAM-backed filesystem.
    #[command(after_help = "Example:\n  EDITOR=nano phx-hook vault edit")]
    Edit {
        #[command(flatten)]
        keys: KeyArgs,
        /// Allow a disk-backed temporary directory when no RAM-backed one exists.
        #[arg(long)]
        insecure_tmp: bool,
    },
    /// Print one value (refuses a terminal without --reveal).
    #[command(
        after_help = "Example:\n  phx-hook vault get samba/password | smbpasswd -s -a phoenix"
    )]
    Get {
        /// The key, e.g. samba/password.
        #[arg(value_name = "KEY")]
        name: KeyPath,
        /// Print to a terminal anyway.
        #[arg(long)]
        reveal: bool,
        #[command(flatten)]
        keys: KeyArgs,
    },
    /// Set one value, read from stdin (one trailing newline dropped) or a no-echo prompt.
    #[command(
        after_help = "Examples:\n  phx-hook vault set samba/password            (prompts twice, no echo)\n  printf %s \"$PW\" | phx-hook vault set app/db_password --host"
    )]
    Set {
        /// The key, e.g. samba/password.
        #[arg(value_name = "KEY")]
        name: KeyPath,
        #[command(flatten)]
        keys: KeyArgs,
    },
    /// Remove one value.
    Rm {
        /// The key.
        #[arg(value_name = "KEY")]
        name: KeyPath,
        #[command(flatten)]
        keys: KeyArgs,
    },
    /// List key names (never values), which guests use each, and what is missing or unused.
    List {
        #[command(flatten)]
        keys: KeyArgs,
    },
    /// Show, add or remove the recipients every write encrypts to.
    Recipients {
        #[command(subcommand)]
        cmd: RecipientsCmd,
    },
    /// Re-encrypt to the current recipients with a fresh session key.
    Rekey {
        #[command(flatten)]
        keys: KeyArgs,
    },
    /// Print recipients, signer and version, and whether this host would accept the vault.
    Verify,
    /// Accept the current vault although it is older than one accepted before.
    AcceptRollback,
    /// A stable, redacted view for `git diff` (a textconv driver): key names and value tags.
    #[command(
        after_help = "git config diff.phx-hook.textconv 'phx-hook vault textconv'\necho 'secrets.json.gpg diff=phx-hook' >> .gitattributes"
    )]
    Textconv {
        /// The encrypted file (git passes a temporary copy).
        file: Utf8PathBuf,
        #[command(flatten)]
        keys: KeyArgs,
    },
}

#[derive(Subcommand, Debug)]
enum RecipientsCmd {
    /// List the recipients.
    List,
    /// Add a recipient (a key id known to your gpg, or a public key file) and re-encrypt.
    Add {
        /// FPR or FILE.
        #[arg(value_name = "FPR|FILE")]
        who: String,
        #[command(flatten)]
        keys: KeyArgs,
    },
    /// Remove a recipient, re-encrypt, and list the secrets to rotate.
    Remove {
        /// The recipient's fingerprint (or key id).
        fingerprint: String,
        /// Also list what it could read in every committed version of the vault (git).
        #[arg(long)]
        history: bool,
        #[command(flatten)]
        keys: KeyArgs,
    },
}

fn fail(e: impl std::fmt::Display) -> Error {
    Error::Other(e.to_string())
}

struct Paths {
    vault: Utf8PathBuf,
    recipients: Utf8PathBuf,
}

fn paths(args: &VaultArgs, cfg: &Config) -> Paths {
    let (vault, recipients) = vault_paths(args.vault.as_deref(), args.recipients.as_deref(), cfg);
    Paths { vault, recipients }
}

/// The vault and recipients file: the ones given, else the config's; a vault given
/// without a recipients file has `recipients.asc` beside it.
pub(crate) fn vault_paths(
    vault: Option<&Utf8Path>,
    recipients: Option<&Utf8Path>,
    cfg: &Config,
) -> (Utf8PathBuf, Utf8PathBuf) {
    let v = vault.map_or_else(|| cfg.vault.clone(), Utf8Path::to_owned);
    let r = match (recipients, vault) {
        (Some(r), _) => r.to_owned(),
        (None, Some(_)) => v
            .parent()
            .unwrap_or(Utf8Path::new("."))
            .join("recipients.asc"),
        (None, None) => cfg.recipients.clone(),
    };
    (v, r)
}

/// The author for `vault` at `recipients`, with the keys `k` names.
pub(crate) fn author_for(
    vault: &Utf8Path,
    recipients: &Utf8Path,
    k: &KeyArgs,
    cfg: &Config,
) -> Result<Author, Error> {
    author(
        &Paths {
            vault: vault.to_owned(),
            recipients: recipients.to_owned(),
        },
        k,
        cfg,
    )
}

fn author(p: &Paths, k: &KeyArgs, cfg: &Config) -> Result<Author, Error> {
    let a = if k.host {
        Author::with_key(
            &p.vault,
            &p.recipients,
            &cfg.key,
            cfg.key_passphrase_file.as_deref(),
        )
        .map_err(fail)?
    } else {
        match &k.key {
            Some(key) => Author::with_key(
                &p.vault,
                &p.recipients,
                key,
                k.key_passphrase_file.as_deref(),
            )
            .map_err(fail)?,
            None => Author::gpg(&p.vault, &p.recipients, k.signer.clone()),
        }
    };
    Ok(a.with_limit(cfg.max_plaintext))
}

pub(crate) fn run(args: VaultArgs, ctx: &Context) -> Result<Exit, Error> {
    let cfg = &ctx.config;
    let p = paths(&args, cfg);
    let audit = Audit::of(cfg);
    match args.cmd {
        VaultCmd::Init {
            host_key,
            developers,
            uid,
            force,
        } => init(cfg, &p, host_key.as_deref(), &developers, uid, force),
        VaultCmd::Edit { keys, insecure_tmp } => {
            edit(&author(&p, &keys, cfg)?, insecure_tmp, &audit)
        }
        VaultCmd::Get {
            name: key,
            reveal,
            keys,
        } => {
            let out = std::io::stdout();
            if out.is_terminal() && !reveal {
                return Err(fail(
                    "refusing to print a secret to a terminal; pipe it, or add --reveal",
                ));
            }
            let doc = author(&p, &keys, cfg)?.read().map_err(fail)?;
            let v = doc
                .get(&key)
                .ok_or_else(|| fail(format!("vault key `{key}` does not exist")))?;
            let mut out = out.lock();
            let _ = out.write_all(v.expose());
            if out.is_terminal() {
                let _ = out.write_all(b"\n");
            }
            Ok(Exit::Ok)
        }
        VaultCmd::Set { name: key, keys } => {
            let a = author(&p, &keys, cfg)?;
            let value = read_value(&key)?;
            let mut doc = a.read().map_err(fail)?;
            doc.set(&key, value).map_err(fail)?;
            let v = a.write(&mut doc).map_err(fail)?;
            eprintln!("set `{key}`; {} is now version {v}", p.vault);
            write_audit(
                &audit,
                &[Event::new(None, "vault", "set", "ok")
                    .with("keys", vec![key.to_string()])
                    .with("vault_version", v)],
            );
            Ok(Exit::Ok)
        }
        VaultCmd::Rm { name: key, keys } => {
            let a = author(&p, &keys, cfg)?;
            let mut doc = a.read().map_err(fail)?;
            if !doc.remove(&key) {
                return Err(fail(format!("vault key `{key}` does not exist")));
            }
            let v = a.write(&mut doc).map_err(fail)?;
            eprintln!("removed `{key}`; {} is now version {v}", p.vault);
            write_audit(
                &audit,
                &[Event::new(None, "vault", "rm", "ok")
                    .with("keys", vec![key.to_string()])
                    .with("vault_version", v)],
            );
            Ok(Exit::Ok)
        }
        VaultCmd::List { keys } => list(cfg, &author(&p, &keys, cfg)?.read().map_err(fail)?),
        VaultCmd::Recipients { cmd } => recipients(cfg, &p, cmd, &audit),
        VaultCmd::Rekey { keys } => {
            let a = author(&p, &keys, cfg)?;
            let mut doc = a.read().map_err(fail)?;
            let v = a.write(&mut doc).map_err(fail)?;
            eprintln!(
                "re-encrypted {} to {} recipient(s) with a new session key (version {v})",
                p.vault,
                a.recipients().map_err(fail)?.len()
            );
            Ok(Exit::Ok)
        }
        VaultCmd::Verify => verify(cfg),
        VaultCmd::AcceptRollback => {
            let before = crate::vault::accepted_version(&cfg.rollback_state)?;
            let v = Vault::open_with(cfg, Rollback::Accept)?;
            println!(
                "accepted {} version {} (the highest accepted version was {before})",
                cfg.vault,
                v.info.version.unwrap_or(0)
            );
            write_audit(
                &audit,
                &[Event::new(None, "vault", "accept-rollback", "ok")
                    .with("from", before)
                    .with("to", v.info.version)],
            );
            Ok(Exit::Ok)
        }
        VaultCmd::Textconv { file, keys } => textconv(&author(&p, &keys, cfg)?, &file),
    }
}

/// The value for `vault set`: stdin when it is not a terminal, else a no-echo prompt
/// (twice). Never argv.
fn read_value(key: &KeyPath) -> Result<Secret, Error> {
    let stdin = std::io::stdin();
    if !stdin.is_terminal() {
        let mut buf = Zeroizing::new(Vec::new());
        stdin.lock().read_to_end(&mut buf).map_err(fail)?;
        if buf.last() == Some(&b'\n') {
            buf.pop();
        }
        if std::str::from_utf8(&buf).is_err() {
            return Err(fail(
                "the value is not UTF-8 text (store binary data base64-encoded and use `decode: base64`)",
            ));
        }
        return Ok(Secret::new(buf));
    }
    let a = prompt(&format!("value for {key}: "))?;
    let b = prompt("again: ")?;
    if a.expose() != b.expose() {
        return Err(fail("the two entries differ; nothing changed"));
    }
    Ok(a)
}

fn prompt(text: &str) -> Result<Secret, Error> {
    use nix::sys::termios::{LocalFlags, SetArg, tcgetattr, tcsetattr};
    let tty = fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/tty")
        .map_err(fail)?;
    let old = tcgetattr(&tty).map_err(fail)?;
    let mut noecho = old.clone();
    noecho.local_flags.remove(LocalFlags::ECHO);
    let mut w = &tty;
    let _ = w.write_all(text.as_bytes());
    tcsetattr(&tty, SetArg::TCSANOW, &noecho).map_err(fail)?;
    let mut line = Zeroizing::new(Vec::new());
    let mut byte = [0u8; 1];
    let mut r = &tty;
    while r.read(&mut byte).map_err(fail)? == 1 && byte[0] != b'\n' {
        line.push(byte[0]);
    }
    let _ = tcsetattr(&tty, SetArg::TCSANOW, &old);
    let _ = w.write_all(b"\n");
    Ok(Secret::new(line))
}

fn gpg_export(id: &str) -> Result<Vec<u8>, Error> {
    let out = Command::new("gpg")
        .args(["--batch", "--armor", "--export", id])
        .output()
        .map_err(|e| fail(format!("failed to run gpg: {e}")))?;
    if !out.status.success() || out.stdout.is_empty() {
        return Err(fail(format!(
            "`{id}` is neither a file nor a key your gpg knows (gpg --export found nothing)"
        )));
    }
    Ok(out.stdout)
}

fn key_source(spec: &str) -> Result<Vec<u8>, Error> {
    if Utf8Path::new(spec).is_file() {
        fs::read(spec).map_err(|e| fail(format!("failed to read `{spec}`: {e}")))
    } else {
        gpg_export(spec)
    }
}

fn init(
    cfg: &Config,
    p: &Paths,
    adopt: Option<&Utf8Path>,
    extra: &[String],
    uid: Option<String>,
    force: bool,
) -> Result<Exit, Error> {
    for (what, path) in [("vault", &p.vault), ("recipients file", &p.recipients)] {
        if path.exists() && !force {
            return Err(fail(format!(
                "the {what} `{path}` exists; use --force to replace it"
            )));
        }
    }
    let key_path = &cfg.key;
    let host_public: Vec<String> = match adopt {
        Some(src) => {
            let bytes = fs::read(src).map_err(|e| fail(format!("failed to read `{src}`: {e}")))?;
            let bytes = Zeroizing::new(bytes);
            let public = author::public_of_secret(&bytes).map_err(fail)?;
            if src != key_path {
                if key_path.exists() && !force {
                    return Err(fail(format!(
                        "the host key `{key_path}` exists; use --force to replace it"
                    )));
                }
                write_private(key_path, &bytes)?;
            }
            println!("adopted the host key from {src} -> {key_path}");
            public
        }
        None => {
            if key_path.exists() && !force {
                return Err(fail(format!(
                    "the host key `{key_path}` exists; adopt it with --host-key {key_path}, or use --force"
                )));
            }
            let node = fs::read_to_string("/proc/sys/kernel/hostname")
                .map(|s| s.trim().to_string())
                .unwrap_or_else(|_| "pve".into());
            let uid = uid.unwrap_or_else(|| format!("phx-hook host key <root@{node}>"));
            let (secret, public, fpr) = author::generate_host_key(&uid).map_err(fail)?;
            write_private(key_path, secret.as_bytes())?;
            let pub_path = Utf8PathBuf::from(format!("{key_path}.pub.asc"));
            fs::write(&pub_path, &public)
                .map_err(|e| fail(format!("failed to write `{pub_path}`: {e}")))?;
            println!(
                "generated the host key {fpr} ({uid})\n  secret: {key_path} (0600)\n  public: {pub_path}"
            );
            vec![public]
        }
    };
    let mut all = Vec::new();
    for pubkey in &host_public {
        all.extend(Author::parse_recipients(pubkey.as_bytes()).map_err(fail)?);
    }
    for spec in extra {
        all.extend(Author::parse_recipients(&key_source(spec)?).map_err(fail)?);
    }
    let mut seen = BTreeSet::new();
    all.retain(|r| seen.insert(r.fingerprint.clone()));
    if let Some(dir) = p.vault.parent() {
        fs::create_dir_all(dir).map_err(fail)?;
    }
    let a = Author::with_key(
        &p.vault,
        &p.recipients,
        key_path,
        cfg.key_passphrase_file.as_deref(),
    )
    .map_err(fail)?;
    a.write_recipients(&all).map_err(fail)?;
    let mut diff_key = [0u8; 32];
    rand::RngCore::fill_bytes(&mut rand::thread_rng(), &mut diff_key);
    let mut doc = Doc::parse(
        format!(
            "{{\"_phx\": {{\"version\": 0, \"diff_key\": \"{}\"}}}}",
            crate::types::hex(&diff_key)
        )
        .as_bytes(),
    )
    .map_err(fail)?;
    let v = a.write(&mut doc).map_err(fail)?;
    println!(
        "recipients: {} ({})",
        p.recipients,
        all.iter()
            .map(|r| r.user_id.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    );
    println!("vault: {} (version {v}, empty)", p.vault);
    println!("next: printf %s \"$PASSWORD\" | phx-hook vault set samba/password --host");
    Ok(Exit::Ok)
}

fn write_private(path: &Utf8Path, bytes: &[u8]) -> Result<(), Error> {
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir).map_err(fail)?;
    }
    author::atomic_write(path, bytes, 0o600).map_err(fail)
}

fn edit(a: &Author, insecure_tmp: bool, audit: &Audit) -> Result<Exit, Error> {
    let mut doc = a.read().map_err(fail)?;
    let original = doc.to_json();
    let dir = author::private_dir(insecure_tmp).map_err(fail)?;
    let file = Utf8PathBuf::from_path_buf(dir.path().join("vault.json"))
        .map_err(|_| fail("temporary path is not UTF-8"))?;
    let _quiet = crate::sys::ignore_interrupts();
    let result = (|| -> Result<Option<Doc>, Error> {
        write_new_private(&file, &original)?;
        let editor = std::env::var("VISUAL")
            .or_else(|_| std::env::var("EDITOR"))
            .unwrap_or_else(|_| "vi".into());
        let mut last: Option<Zeroizing<Vec<u8>>> = None;
        loop {
            let status = Command::new("/bin/sh")
                .args(["-c", "exec $PHX_EDITOR \"$1\"", "sh", file.as_str()])
                .env("PHX_EDITOR", &editor)
                .status()
                .map_err(|e| fail(format!("failed to start the editor `{editor}`: {e}")))?;
            if !status.success() {
                eprintln!("the editor `{editor}` failed ({status}); the vault is unchanged");
                return Ok(None);
            }
            let mut now = Zeroizing::new(Vec::new());
            fs::File::open(&file)
                .and_then(|mut f| f.read_to_end(&mut now))
                .map_err(fail)?;
            if now.as_slice() == original.as_slice() {
                eprintln!("no change; the vault is unchanged");
                return Ok(None);
            }
            match Doc::parse(&now) {
                Ok(d) => return Ok(Some(d)),
                Err(e) => {
                    if last.as_deref() == Some(&now) {
                        eprintln!("still not valid ({e}); giving up, the vault is unchanged");
                        return Ok(None);
                    }
                    eprintln!(
                        "the vault is not valid JSON: {e}\nreopening the editor (save it unchanged to give up)"
                    );
                    last = Some(now);
                }
            }
        }
    })();
    wipe(&file);
    drop(dir);
    let Some(mut new) = result? else {
        return Ok(Exit::Ok);
    };
    // The version is phx-hook's to count, whatever the editor left there.
    new.set_version(doc.version());
    if new.to_json().as_slice() == doc.to_json().as_slice() {
        eprintln!("no change; the vault is unchanged");
        return Ok(Exit::Ok);
    }
    let changed: Vec<String> = changed_keys(&doc, &new);
    doc = new;
    let v = a.write(&mut doc).map_err(fail)?;
    eprintln!(
        "{} is now version {v} ({} key(s) added, changed or removed)",
        a.vault,
        changed.len()
    );
    write_audit(
        audit,
        &[Event::new(None, "vault", "edit", "ok")
            .with("keys", changed)
            .with("vault_version", v)],
    );
    Ok(Exit::Ok)
}

fn write_new_private(path: &Utf8Path, bytes: &[u8]) -> Result<(), Error> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(fail)?;
    f.write_all(bytes).map_err(fail)
}

/// Overwrite with zeros, then remove.
fn wipe(path: &Utf8Path) {
    if let Ok(m) = fs::metadata(path)
        && let Ok(mut f) = fs::OpenOptions::new().write(true).open(path)
    {
        let _ = f.write_all(&vec![0u8; m.len() as usize]);
        let _ = f.sync_all();
    }
    let _ = fs::remove_file(path);
}

/// A leaf's bytes for comparing and tagging: the value of a string, the JSON text of
/// anything else. A copy of a secret, so zeroized on drop.
fn leaf_bytes(node: &Node) -> Zeroizing<Vec<u8>> {
    Zeroizing::new(match node {
        Node::Str(s) => s.expose().to_vec(),
        Node::Other(o) => o.to_string().into_bytes(),
        Node::Obj(_) => b"{}".to_vec(),
    })
}

/// Key names added, removed or changed between two documents.
fn changed_keys(a: &Doc, b: &Doc) -> Vec<String> {
    let tag = |d: &Doc| -> BTreeMap<String, Vec<u8>> {
        d.leaves()
            .into_iter()
            .map(|(p, n)| (p, <Sha256 as sha2::Digest>::digest(leaf_bytes(n)).to_vec()))
            .collect()
    };
    let (ta, tb) = (tag(a), tag(b));
    let keys: BTreeSet<&String> = ta.keys().chain(tb.keys()).collect();
    keys.into_iter()
        .filter(|k| ta.get(*k) != tb.get(*k))
        .cloned()
        .collect()
}

fn list(cfg: &Config, doc: &Doc) -> Result<Exit, Error> {
    let present: BTreeSet<String> = doc
        .leaves()
        .into_iter()
        .filter(|(_, n)| matches!(n, Node::Str(_)))
        .map(|(p, _)| p)
        .collect();
    let mut used: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let (ids, _) = manifest::list(&cfg.manifests).unwrap_or_default();
    for id in ids {
        if let Ok(Some(m)) = manifest::load(&cfg.manifests, id) {
            for f in &m.files {
                for k in f.content.keys() {
                    used.entry(k.to_string()).or_default().push(id.to_string());
                }
            }
        }
    }
    for k in &present {
        match used.get(k) {
            Some(g) => {
                let mut g = g.clone();
                g.dedup();
                println!("{k}  (used by {})", g.join(", "));
            }
            None => println!("{k}  (unused)"),
        }
    }
    let missing: Vec<&String> = used.keys().filter(|k| !present.contains(*k)).collect();
    for k in &missing {
        println!("{k}  MISSING (used by {})", used[*k].join(", "));
    }
    Ok(if missing.is_empty() {
        Exit::Ok
    } else {
        Exit::Failed
    })
}

fn recipients(cfg: &Config, p: &Paths, cmd: RecipientsCmd, audit: &Audit) -> Result<Exit, Error> {
    match cmd {
        RecipientsCmd::List => {
            let a = Author::gpg(&p.vault, &p.recipients, None);
            for r in a.recipients().map_err(fail)? {
                println!("{}  {}", r.fingerprint, r.user_id);
            }
            Ok(Exit::Ok)
        }
        RecipientsCmd::Add { who: key, keys } => {
            let a = author(p, &keys, cfg)?;
            let mut list = a.recipients().map_err(fail)?;
            let new = Author::parse_recipients(&key_source(&key)?).map_err(fail)?;
            let mut added = Vec::new();
            for r in new {
                if !list.iter().any(|x| x.fingerprint == r.fingerprint) {
                    added.push(format!("{} {}", r.fingerprint, r.user_id));
                    list.push(r);
                }
            }
            if added.is_empty() {
                println!("already a recipient; nothing changed");
                return Ok(Exit::Ok);
            }
            let mut doc = a.read().map_err(fail)?;
            a.write_recipients(&list).map_err(fail)?;
            let v = a.write(&mut doc).map_err(fail)?;
            println!(
                "added {}; re-encrypted to {} recipients (version {v})",
                added.join(", "),
                list.len()
            );
            write_audit(
                audit,
                &[Event::new(None, "vault", "recipient-add", "ok")
                    .with("recipients", added)
                    .with("vault_version", v)],
            );
            Ok(Exit::Ok)
        }
        RecipientsCmd::Remove {
            fingerprint,
            history,
            keys,
        } => {
            let a = author(p, &keys, cfg)?;
            let mut list = a.recipients().map_err(fail)?;
            let want = fingerprint.replace(' ', "").to_ascii_uppercase();
            let Some(pos) = list
                .iter()
                .position(|r| r.fingerprint == want || r.fingerprint.ends_with(&want))
            else {
                return Err(fail(format!(
                    "`{fingerprint}` is not a recipient of {}",
                    p.recipients
                )));
            };
            let gone = list.remove(pos);
            if list.is_empty() {
                return Err(fail("refusing to remove the last recipient"));
            }
            let mut doc = a.read().map_err(fail)?;
            let readable: BTreeSet<String> = doc.leaves().into_iter().map(|(k, _)| k).collect();
            a.write_recipients(&list).map_err(fail)?;
            let v = a.write(&mut doc).map_err(fail)?;
            println!(
                "removed {} {}; re-encrypted to {} recipients (version {v})",
                gone.fingerprint,
                gone.user_id,
                list.len()
            );
            let mut rotate = readable;
            if history {
                rotate.extend(history_keys(&a, &gone.key_ids)?);
            }
            println!("it could read these secrets; rotate them:");
            for k in &rotate {
                println!("  {k}");
            }
            write_audit(
                audit,
                &[Event::new(None, "vault", "recipient-remove", "ok")
                    .with("recipient", gone.fingerprint.clone())
                    .with("rotate", rotate.into_iter().collect::<Vec<_>>())
                    .with("vault_version", v)],
            );
            Ok(Exit::Ok)
        }
    }
}

/// Every key in every committed version of the vault that `ids` could decrypt.
fn history_keys(a: &Author, ids: &[String]) -> Result<BTreeSet<String>, Error> {
    let dir = a.vault.parent().unwrap_or(Utf8Path::new("."));
    let dir = if dir.as_str().is_empty() {
        Utf8Path::new(".")
    } else {
        dir
    };
    let name = a.vault.file_name().unwrap_or("");
    let log = Command::new("git")
        .args(["-C", dir.as_str(), "log", "--format=%H", "--", name])
        .output()
        .map_err(|e| fail(format!("git: {e}")))?;
    if !log.status.success() {
        return Err(fail(format!(
            "--history needs the vault in a git repository: {}",
            String::from_utf8_lossy(&log.stderr).trim()
        )));
    }
    let mut out = BTreeSet::new();
    for commit in String::from_utf8_lossy(&log.stdout).lines() {
        let show = Command::new("git")
            .args(["-C", dir.as_str(), "show", &format!("{commit}:./{name}")])
            .output()
            .map_err(|e| fail(format!("git: {e}")))?;
        if !show.status.success() {
            continue;
        }
        let to = author::encrypted_to(&show.stdout).unwrap_or_default();
        if !to.iter().any(|r| ids.contains(r)) {
            continue;
        }
        let tmp = author::private_dir(true).map_err(fail)?;
        let path =
            Utf8PathBuf::from_path_buf(tmp.path().join("v.gpg")).map_err(|_| fail("path"))?;
        fs::write(&path, &show.stdout).map_err(fail)?;
        match a
            .decrypt_file(&path)
            .ok()
            .and_then(|pt| Doc::parse(&pt).ok())
        {
            Some(d) => out.extend(d.leaves().into_iter().map(|(k, _)| k)),
            None => eprintln!(
                "warning: commit {commit}: cannot decrypt it with your key; its keys are not listed"
            ),
        }
    }
    Ok(out)
}

fn verify(cfg: &Config) -> Result<Exit, Error> {
    let ct =
        fs::read(&cfg.vault).map_err(|e| fail(format!("failed to read `{}`: {e}", cfg.vault)))?;
    let to = author::encrypted_to(&ct).map_err(fail)?;
    let names: BTreeMap<String, String> = Author::gpg(&cfg.vault, &cfg.recipients, None)
        .recipients()
        .map(|l| {
            l.into_iter()
                .flat_map(|r| {
                    r.key_ids
                        .clone()
                        .into_iter()
                        .map(move |id| (id, format!("{} {}", r.fingerprint, r.user_id)))
                })
                .collect()
        })
        .unwrap_or_default();
    println!("vault: {}", cfg.vault);
    println!("encrypted to:");
    for id in &to {
        println!(
            "  {id}  {}",
            names
                .get(id)
                .map_or("(not in the recipients file)", String::as_str)
        );
    }
    let accepted = crate::vault::accepted_version(&cfg.rollback_state).unwrap_or(0);
    match Vault::open_with(cfg, Rollback::Ignore) {
        Ok(v) => {
            println!(
                "signer: {}",
                v.info
                    .signer
                    .as_deref()
                    .unwrap_or(if cfg.signers.is_empty() {
                        "unsigned or not checked (no `signers`)"
                    } else {
                        "-"
                    })
            );
            let version = v.info.version.unwrap_or(0);
            println!("version: {version} (this host accepted up to {accepted})");
            if version < accepted {
                println!(
                    "this host would REFUSE it: version {version} is older than {accepted} (`phx-hook vault accept-rollback` accepts it once)"
                );
                return Ok(Exit::Failed);
            }
            println!("this host would accept it");
            Ok(Exit::Ok)
        }
        Err(e) => {
            println!("this host would REFUSE it: {e}");
            Ok(Exit::Failed)
        }
    }
}

fn textconv(a: &Author, file: &Utf8Path) -> Result<Exit, Error> {
    let ct = fs::read(file).map_err(|e| fail(format!("failed to read `{file}`: {e}")))?;
    let pt = a.decrypt_file(file).map_err(fail)?;
    let doc = Doc::parse(&pt).map_err(fail)?;
    let mut out = std::io::stdout().lock();
    let _ = writeln!(
        out,
        "# phx-hook vault (redacted: key names and value tags only)"
    );
    let _ = writeln!(out, "_phx/version = {}", doc.version());
    let mut to = author::encrypted_to(&ct).unwrap_or_default();
    to.sort();
    let _ = writeln!(out, "_phx/encrypted-to = {}", to.join(" "));
    let key = doc.diff_key().map(|k| k.as_bytes().to_vec());
    for (path, node) in doc.leaves() {
        let bytes = leaf_bytes(node);
        let tag = match &key {
            Some(k) => {
                let mut m = <Hmac<Sha256> as Mac>::new_from_slice(k).map_err(fail)?;
                m.update(path.as_bytes());
                m.update(&[0]);
                m.update(&bytes);
                let t = m.finalize().into_bytes();
                format!("hmac:{}", crate::types::hex(&t[..8]))
            }
            None => "(no _phx.diff_key: value tags unavailable)".into(),
        };
        let _ = writeln!(out, "{path} = {tag}");
    }
    Ok(Exit::Ok)
}

impl From<AuthorError> for Error {
    fn from(e: AuthorError) -> Error {
        Error::Other(e.to_string())
    }
}

//! `phx-hook run [--env NAME=KEY]... [--file NAME=KEY]... [--manifest FILE] -- CMD [ARGS]`:
//! run a host script with secrets from the vault instead of hardcoded ones. Values go
//! into the child's environment, or (`--file`) into a memfd whose `/dev/fd/N` path is
//! put in the environment, for tools that read a password file. Nothing goes in argv or
//! on disk; phx-hook execs the command, so the exit status is the command's.

use std::collections::BTreeMap;
use std::io::Write;
use std::os::unix::process::CommandExt;
use std::process::Command;

use camino::Utf8PathBuf;
use serde::Deserialize;

use super::{Context, Exit};
use crate::audit::write as write_audit;
use crate::audit::{Audit, Event};
use crate::error::Error;
use crate::types::KeyPath;
use crate::vault::Vault;

/// Arguments of `run`.
#[derive(clap::Args, Debug)]
#[command(
    after_help = "Examples:\n  phx-hook run --env SMB_PASSWORD=samba/password -- /usr/local/sbin/setup-samba.sh\n  phx-hook run --file PGPASSFILE=db/pgpass -- pg_dump app\n  phx-hook run --manifest /etc/phx-hook/run/backup.yaml -- /usr/local/sbin/backup.sh\n\nA --manifest file maps names to keys:\n  env:   { SMB_PASSWORD: samba/password }\n  files: { PGPASSFILE: db/pgpass }"
)]
pub(crate) struct RunArgs {
    /// Put the value of vault KEY into environment variable NAME.
    #[arg(long = "env", value_name = "NAME=KEY")]
    env: Vec<String>,

    /// Put the value of vault KEY into a memory file and its path (/dev/fd/N) into NAME.
    #[arg(long = "file", value_name = "NAME=KEY")]
    file: Vec<String>,

    /// A YAML file with `env:` and `files:` maps (NAME: KEY).
    #[arg(long, value_name = "FILE")]
    manifest: Option<Utf8PathBuf>,

    /// The command and its arguments.
    #[arg(last = true, required = true, value_name = "CMD")]
    command: Vec<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RunManifest {
    #[serde(default)]
    env: BTreeMap<String, String>,
    #[serde(default)]
    files: BTreeMap<String, String>,
}

fn pair(s: &str) -> Result<(String, KeyPath), Error> {
    let (name, key) = s
        .split_once('=')
        .ok_or_else(|| Error::Other(format!("`{s}` is not NAME=KEY")))?;
    let valid = name
        .chars()
        .next()
        .is_some_and(|c| c == '_' || c.is_ascii_alphabetic())
        && name.chars().all(|c| c == '_' || c.is_ascii_alphanumeric());
    if !valid {
        return Err(Error::Other(format!(
            "`{name}` is not a valid environment variable name"
        )));
    }
    let key = key.parse::<KeyPath>().map_err(Error::Other)?;
    Ok((name.to_string(), key))
}

pub(crate) fn run(args: RunArgs, ctx: &Context) -> Result<Exit, Error> {
    let cfg = &ctx.config;
    let mut env: Vec<(String, KeyPath)> =
        args.env.iter().map(|s| pair(s)).collect::<Result<_, _>>()?;
    let mut files: Vec<(String, KeyPath)> = args
        .file
        .iter()
        .map(|s| pair(s))
        .collect::<Result<_, _>>()?;
    if let Some(m) = &args.manifest {
        let text = crate::input::read_text(m, crate::input::Trust::RootWritable)?;
        let rm: RunManifest = crate::input::parse_yaml(m, &text)?;
        for (n, k) in rm.env {
            env.push(pair(&format!("{n}={k}"))?);
        }
        for (n, k) in rm.files {
            files.push(pair(&format!("{n}={k}"))?);
        }
    }
    if env.is_empty() && files.is_empty() {
        return Err(Error::Other(
            "nothing to provide: give --env NAME=KEY, --file NAME=KEY or --manifest FILE".into(),
        ));
    }
    let vault = Vault::open(cfg)?;
    // Resolve everything before anything runs: a missing key fails here.
    let mut problems = Vec::new();
    for (_, k) in env.iter().chain(files.iter()) {
        if let Err(e) = vault.get(k) {
            problems.push(e.to_string());
        }
    }
    for (n, k) in &env {
        if vault.get(k).is_ok_and(|v| v.expose().contains(&0)) {
            problems.push(format!(
                "vault key `{k}` holds a NUL byte, which the environment variable {n} cannot carry"
            ));
        }
    }
    if !problems.is_empty() {
        return Err(Error::Other(problems.join("\n")));
    }
    let mut cmd = Command::new(&args.command[0]);
    cmd.args(&args.command[1..]);
    let mut memfds = Vec::new();
    for (n, k) in &env {
        let v = vault.get(k).map_err(|e| Error::Other(e.to_string()))?;
        let s = std::str::from_utf8(v.expose())
            .map_err(|_| Error::Other(format!("vault key `{k}` is not text")))?;
        cmd.env(n, s);
    }
    for (n, k) in &files {
        let v = vault.get(k).map_err(|e| Error::Other(e.to_string()))?;
        // No close-on-exec: the command inherits it and reads /dev/fd/N.
        let fd = nix::sys::memfd::memfd_create(c"phx-hook", nix::sys::memfd::MFdFlags::empty())
            .map_err(|e| Error::Other(format!("memfd_create: {e}")))?;
        let mut f = std::fs::File::from(fd);
        f.write_all(v.expose())
            .map_err(|e| Error::Other(format!("memfd: {e}")))?;
        use std::os::fd::AsRawFd;
        cmd.env(n, format!("/dev/fd/{}", f.as_raw_fd()));
        memfds.push(f);
    }
    let keys: Vec<String> = env
        .iter()
        .chain(files.iter())
        .map(|(_, k)| k.to_string())
        .collect();
    write_audit(
        &Audit::of(cfg),
        &[
            crate::hook::decrypt_event_nohost("run", &vault.info),
            Event::new(None, "run", "run", "ok")
                .with("keys", keys)
                .with("command", args.command[0].clone()),
        ],
    );
    // exec replaces phx-hook: the exit status is the command's. It only returns on error.
    let err = cmd.exec();
    drop(memfds);
    Err(Error::Other(format!(
        "failed to run `{}`: {err}",
        args.command[0]
    )))
}

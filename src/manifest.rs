//! Per-guest manifests (DESIGN §2.2): `<manifests>/<vmid>.yaml` says which vault keys go
//! to which files in the guest, in what format, with what owner and mode, and what runs
//! afterwards. Loading checks everything that can be checked without the vault, and
//! reports every problem with its file, line and column, not just the first.
//!
//! This module reads templates (text with placeholders) but never a secret.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::fs;

use camino::{Utf8Path, Utf8PathBuf};
use serde::Deserialize;
use serde::de::{self, Deserializer, Visitor};
use serde_saphyr::Spanned;

use crate::input::{self, InputError, Place, Trust};
use crate::types::{GuestKind, GuestPath, KeyPath, Vmid};

/// Where RAM-only files live in a guest (`storage: ram`): a directory on the tmpfs that
/// `/run` is on every systemd guest.
pub const RAM_DIR: &str = "/run/phx-hook";

/// A checked manifest.
#[derive(Clone, Debug)]
pub struct Manifest {
    /// The file it came from.
    pub path: Utf8PathBuf,
    /// The guest it is for (from the file name).
    pub vmid: Vmid,
    /// The guest kind, when the manifest says it.
    pub guest: Option<GuestKind>,
    /// Whether a problem aborts the guest's start.
    pub required: bool,
    /// The files to deliver, in manifest order.
    pub files: Vec<FileSpec>,
    /// Commands (argv) to run in the guest once every file is in place.
    pub after: Vec<Vec<String>>,
}

/// One file to deliver.
#[derive(Clone, Debug)]
pub struct FileSpec {
    /// Where it goes in the guest.
    pub dest: GuestPath,
    /// What it holds.
    pub content: Content,
    /// Permission bits (≤ 0o7777).
    pub mode: u32,
    /// Owner, resolved inside the guest.
    pub owner: Owner,
    /// Group, resolved inside the guest.
    pub group: Owner,
    /// Where its bytes are kept in the guest.
    pub storage: Storage,
    /// A systemd credential of this name that the VM gets at boot through QEMU's fw_cfg
    /// (`credential:`; see [`CREDENTIALS_FW_CFG`]).
    pub credential: Option<String>,
    /// Whether the file is also written into the guest at `dest` (an entry with only
    /// `credential` is not: its `dest` is where systemd shows it in the guest).
    pub to_guest: bool,
    /// Where the entry is in the manifest.
    pub place: Place,
}

/// The fw_cfg directory systemd imports credentials from (systemd v251 and later,
/// `import-creds.c`); QEMU allows 55 characters for an fw_cfg name, so a credential
/// name has at most [`CREDENTIAL_NAME_MAX`].
pub const CREDENTIALS_FW_CFG: &str = "opt/io.systemd.credentials";

/// The longest credential name that fits an fw_cfg name.
pub const CREDENTIAL_NAME_MAX: usize = 55 - CREDENTIALS_FW_CFG.len() - 1;

/// Where systemd shows an imported system credential in the guest.
pub const CREDENTIALS_IN_GUEST: &str = "/run/credentials/@system";

fn credential_name(s: &str) -> Result<String, String> {
    if s.is_empty()
        || s.len() > CREDENTIAL_NAME_MAX
        || s.starts_with('.')
        || !s
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
    {
        return Err(format!(
            "credential `{}` must be 1 to {CREDENTIAL_NAME_MAX} letters, digits, `.`, `_` or `-`, not starting with `.` (QEMU's fw_cfg names are at most 55 characters)",
            crate::text::name(s)
        ));
    }
    Ok(s.to_string())
}

/// Where a file's bytes are kept in the guest (`storage:`, for the manifest or a file).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Storage {
    /// At the destination, on whatever filesystem holds it: a guest's disk goes into its
    /// backups, snapshots, replicas and clones.
    #[default]
    Disk,
    /// On a RAM-backed filesystem in the guest (`/run/phx-hook`, checked to be tmpfs or
    /// ramfs), the destination a symbolic link to it: no byte on a guest disk, gone when
    /// the guest stops.
    Ram,
}

impl Storage {
    fn parse(s: &str) -> Result<Storage, String> {
        match s {
            "disk" => Ok(Storage::Disk),
            "ram" => Ok(Storage::Ram),
            other => Err(format!("storage `{other}` is not `ram` or `disk`")),
        }
    }
}

/// How a file's bytes are made from the vault.
#[derive(Clone, Debug)]
pub enum Content {
    /// One vault value, as is or decoded.
    Raw {
        /// The vault key.
        key: KeyPath,
        /// Decode the value before delivery.
        decode: Option<Decode>,
    },
    /// `NAME=value` lines with shell-safe quoting.
    Env(Vec<(String, KeyPath)>),
    /// A JSON object of the vars.
    Json(Vec<(String, KeyPath)>),
    /// A template with `{{ phx://key }}` placeholders.
    Template(Template),
}

impl Content {
    /// The format's name, as the manifest spells it.
    pub fn format(&self) -> &'static str {
        match self {
            Content::Raw { .. } => "raw",
            Content::Env(_) => "env",
            Content::Json(_) => "json",
            Content::Template(_) => "template",
        }
    }

    /// Every vault key this file uses, in order of first use.
    pub fn keys(&self) -> Vec<&KeyPath> {
        let mut out: Vec<&KeyPath> = Vec::new();
        match self {
            Content::Raw { key, .. } => out.push(key),
            Content::Env(vars) | Content::Json(vars) => out.extend(vars.iter().map(|(_, k)| k)),
            Content::Template(t) => out.extend(t.parts.iter().filter_map(|p| match p {
                Part::Key { key, .. } => Some(key),
                Part::Text(_) => None,
            })),
        }
        let mut seen = BTreeSet::new();
        out.retain(|k| seen.insert(k.as_str()));
        out
    }
}

/// How a vault value is decoded before delivery.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decode {
    /// Standard base64 (padding optional, white space ignored).
    Base64,
}

/// A parsed template.
#[derive(Clone, Debug)]
pub struct Template {
    /// The template file.
    pub path: Utf8PathBuf,
    /// Text and placeholders, in order.
    pub parts: Vec<Part>,
}

/// A piece of a template.
#[derive(Clone, Debug)]
pub enum Part {
    /// Literal text.
    Text(String),
    /// A `{{ phx://key }}` placeholder.
    Key {
        /// The vault key.
        key: KeyPath,
        /// Where it is in the template.
        place: Place,
    },
}

/// A user or group, by name (resolved in the guest) or number.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Owner {
    /// A name such as `root` or `www-data`.
    Name(String),
    /// A numeric id, as seen inside the guest.
    Id(u32),
}

impl fmt::Display for Owner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Owner::Name(n) => f.write_str(n),
            Owner::Id(n) => n.fmt(f),
        }
    }
}

/// A scalar that may be written as a string or a number.
#[derive(Clone, Debug)]
enum Scalar {
    Str(String),
    Int(i64),
    Float,
}

impl<'de> Deserialize<'de> for Scalar {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Scalar;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string or a number")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Scalar, E> {
                Ok(Scalar::Str(v.to_string()))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Scalar, E> {
                Ok(Scalar::Int(v))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Scalar, E> {
                i64::try_from(v)
                    .map(Scalar::Int)
                    .map_err(|_| E::custom("number out of range"))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Scalar, E> {
                let _ = v;
                Ok(Scalar::Float)
            }
        }
        d.deserialize_any(V)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawManifest {
    guest: Option<Spanned<String>>,
    required: Option<bool>,
    storage: Option<Spanned<String>>,
    files: Option<Vec<Spanned<RawFile>>>,
    after: Option<Vec<Spanned<Vec<String>>>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    dest: Option<Spanned<String>>,
    key: Option<Spanned<String>>,
    format: Option<Spanned<String>>,
    vars: Option<Spanned<BTreeMap<String, Spanned<String>>>>,
    template: Option<Spanned<String>>,
    decode: Option<Spanned<String>>,
    mode: Option<Spanned<Scalar>>,
    owner: Option<Spanned<Scalar>>,
    group: Option<Spanned<Scalar>>,
    storage: Option<Spanned<String>>,
    credential: Option<Spanned<String>>,
}

/// A manifest that failed to load: every problem found, each naming file, line and column.
#[derive(Debug)]
pub struct ManifestError {
    /// The problems, in file order.
    pub problems: Vec<InputError>,
}

impl fmt::Display for ManifestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, p) in self.problems.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{p}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ManifestError {}

impl From<InputError> for ManifestError {
    fn from(e: InputError) -> Self {
        ManifestError { problems: vec![e] }
    }
}

/// The manifest file for `vmid` in `dir`.
pub fn path_for(dir: &Utf8Path, vmid: Vmid) -> Utf8PathBuf {
    dir.join(format!("{vmid}.yaml"))
}

/// The manifests in `dir`, sorted by vmid, plus the names of `.yaml` files that are not
/// named `<vmid>.yaml` (probably mistakes). A missing directory holds no manifests.
pub fn list(dir: &Utf8Path) -> Result<(Vec<Vmid>, Vec<String>), InputError> {
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((Vec::new(), Vec::new())),
        Err(source) => {
            return Err(InputError::Read {
                path: dir.to_owned(),
                source,
            });
        }
    };
    let mut vmids = Vec::new();
    let mut odd = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|source| InputError::Read {
            path: dir.to_owned(),
            source,
        })?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(stem) = name
            .strip_suffix(".yaml")
            .or_else(|| name.strip_suffix(".yml"))
        else {
            continue;
        };
        match stem.parse::<Vmid>() {
            Ok(v) if name.ends_with(".yaml") => vmids.push(v),
            _ => odd.push(name),
        }
    }
    vmids.sort();
    odd.sort();
    Ok((vmids, odd))
}

/// Load the manifest for `vmid` from `dir`; `Ok(None)` when the guest has none.
pub fn load(dir: &Utf8Path, vmid: Vmid) -> Result<Option<Manifest>, ManifestError> {
    let path = path_for(dir, vmid);
    match fs::symlink_metadata(&path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        _ => {}
    }
    let dir_meta = fs::metadata(dir).map_err(|source| InputError::Read {
        path: dir.to_owned(),
        source,
    })?;
    input::check_trust(dir, &dir_meta, Trust::RootWritable)?;
    let text = input::read_text(&path, Trust::RootWritable)?;
    parse(dir, &path, vmid, &text).map(Some)
}

/// Check manifest text. Templates are read from `dir`.
pub fn parse(
    dir: &Utf8Path,
    path: &Utf8Path,
    vmid: Vmid,
    text: &str,
) -> Result<Manifest, ManifestError> {
    let raw: RawManifest = input::parse_yaml(path, text)?;
    let mut problems = Vec::new();
    let mut m = Manifest {
        path: path.to_owned(),
        vmid,
        guest: None,
        required: raw.required.unwrap_or(true),
        files: Vec::new(),
        after: Vec::new(),
    };
    if let Some(g) = raw.guest {
        match g.value.as_str() {
            "lxc" => m.guest = Some(GuestKind::Lxc),
            "qemu" => m.guest = Some(GuestKind::Qemu),
            other => problems.push(
                Place::of(&g.referenced)
                    .error(path, format!("guest: `{other}` is not `lxc` or `qemu`")),
            ),
        }
    }
    let storage = match &raw.storage {
        None => Storage::default(),
        Some(st) => Storage::parse(&st.value).unwrap_or_else(|m| {
            problems.push(Place::of(&st.referenced).error(path, m));
            Storage::default()
        }),
    };
    let files = raw.files.unwrap_or_default();
    if files.is_empty() {
        problems.push(Place::default().error(
            path,
            "the manifest has no `files`; a guest without secrets needs no manifest",
        ));
    }
    let mut dests: BTreeMap<String, Place> = BTreeMap::new();
    for (i, f) in files.into_iter().enumerate() {
        let place = Place::of(&f.referenced);
        match file_spec(dir, path, i, place, storage, f.value) {
            Ok(spec) => {
                if let Some(first) = dests.get(spec.dest.as_str()) {
                    problems.push(place.error(
                        path,
                        format!(
                            "files[{i}]: destination `{}` is also written by the entry at line {}",
                            spec.dest, first.line
                        ),
                    ));
                } else {
                    dests.insert(spec.dest.as_str().to_string(), place);
                    m.files.push(spec);
                }
            }
            Err(mut e) => problems.append(&mut e),
        }
    }
    let mut creds: BTreeMap<&str, u64> = BTreeMap::new();
    for f in &m.files {
        if let Some(name) = &f.credential {
            if let Some(line) = creds.get(name.as_str()) {
                problems.push(f.place.error(
                    path,
                    format!("credential `{name}` is also named by the entry at line {line}"),
                ));
            }
            creds.insert(name, f.place.line);
            if m.guest == Some(GuestKind::Lxc) {
                problems.push(f.place.error(
                    path,
                    "`credential` is for VMs (QEMU passes it through fw_cfg); a container gets files",
                ));
            }
        }
    }
    for (i, cmd) in raw.after.unwrap_or_default().into_iter().enumerate() {
        let place = Place::of(&cmd.referenced);
        let argv = cmd.value;
        if argv.is_empty() || argv[0].is_empty() {
            problems.push(place.error(
                path,
                format!("after[{i}]: a command needs at least a program name"),
            ));
        } else if argv.iter().any(|a| a.contains('\0')) {
            problems
                .push(place.error(path, format!("after[{i}]: an argument contains a NUL byte")));
        } else {
            m.after.push(argv);
        }
    }
    if problems.is_empty() {
        Ok(m)
    } else {
        Err(ManifestError { problems })
    }
}

fn file_spec(
    dir: &Utf8Path,
    path: &Utf8Path,
    i: usize,
    place: Place,
    storage: Storage,
    f: RawFile,
) -> Result<FileSpec, Vec<InputError>> {
    let mut problems = Vec::new();
    let mut err =
        |at: Place, msg: String| problems.push(at.error(path, format!("files[{i}]: {msg}")));

    let credential = f.credential.as_ref().and_then(|c| {
        credential_name(&c.value)
            .map_err(|m| err(Place::of(&c.referenced), m))
            .ok()
    });
    let to_guest = f.dest.is_some();
    let dest = match (f.dest, &credential) {
        (None, Some(name)) => format!("{CREDENTIALS_IN_GUEST}/{name}")
            .parse::<GuestPath>()
            .ok(),
        (None, None) if f.credential.is_some() => None,
        (None, None) => {
            err(
                place,
                "`dest` is missing (or `credential`, for a VM)".into(),
            );
            None
        }
        (Some(d), _) => d
            .value
            .parse::<GuestPath>()
            .map_err(|m| err(Place::of(&d.referenced), m))
            .ok(),
    };
    let key = f.key.as_ref().and_then(|k| {
        let at = Place::of(&k.referenced);
        k.value
            .parse::<KeyPath>()
            .map_err(|m| err(at, m))
            .ok()
            .map(|v| (v, at))
    });
    let format = match &f.format {
        None if f.template.is_some() => Some("template"),
        None if f.vars.is_some() => {
            err(place, "`vars` needs `format: env` or `format: json`".into());
            None
        }
        None => Some("raw"),
        Some(s) => match s.value.as_str() {
            v @ ("raw" | "env" | "json" | "template") => Some(v),
            other => {
                err(
                    Place::of(&s.referenced),
                    format!("format `{other}` is not raw, env, json or template"),
                );
                None
            }
        },
    };
    let decode = f.decode.as_ref().and_then(|d| match d.value.as_str() {
        "base64" => Some(Decode::Base64),
        other => {
            err(
                Place::of(&d.referenced),
                format!("decode `{other}` is not supported (only `base64`)"),
            );
            None
        }
    });
    let mut content = None;
    match format {
        Some("raw") => {
            if f.vars.is_some() || f.template.is_some() {
                err(
                    place,
                    "a raw file takes `key`, not `vars` or `template`".into(),
                );
            } else if let Some((k, _)) = key {
                content = Some(Content::Raw { key: k, decode });
            } else if f.key.is_none() {
                err(
                    place,
                    "`key` is missing (the vault key whose value this file holds)".into(),
                );
            }
        }
        Some(fmt @ ("env" | "json")) => {
            if f.key.is_some() || f.template.is_some() {
                err(
                    place,
                    format!("an {fmt} file takes `vars`, not `key` or `template`"),
                );
            } else if decode.is_some() {
                err(place, "`decode` applies only to raw files".into());
            } else {
                match &f.vars {
                    None => err(
                        place,
                        format!("`vars` is missing (NAME: vault/key pairs for the {fmt} file)"),
                    ),
                    Some(vars) if vars.value.is_empty() => {
                        err(Place::of(&vars.referenced), "`vars` is empty".into())
                    }
                    Some(vars) => {
                        let mut out = Vec::new();
                        for (name, k) in &vars.value {
                            let at = Place::of(&k.referenced);
                            if fmt == "env" && !is_env_name(name) {
                                err(
                                    at,
                                    format!(
                                        "`{}` is not a valid environment variable name",
                                        name.escape_debug()
                                    ),
                                );
                                continue;
                            }
                            if name.is_empty() {
                                err(at, "a JSON field name must not be empty".into());
                                continue;
                            }
                            match k.value.parse::<KeyPath>() {
                                Ok(kp) => out.push((name.clone(), kp)),
                                Err(m) => err(at, format!("vars.{name}: {m}")),
                            }
                        }
                        content = Some(if fmt == "env" {
                            Content::Env(out)
                        } else {
                            Content::Json(out)
                        });
                    }
                }
            }
        }
        Some(_) => {
            if f.key.is_some() || f.vars.is_some() {
                err(
                    place,
                    "a template file takes `template`, not `key` or `vars`".into(),
                );
            } else if decode.is_some() {
                err(place, "`decode` applies only to raw files".into());
            } else {
                match &f.template {
                    None => err(
                        place,
                        "`template` is missing (a file in the manifests directory)".into(),
                    ),
                    Some(t) => match load_template(dir, &t.value) {
                        Ok(tpl) => content = Some(Content::Template(tpl)),
                        Err(TemplateError::Path(m)) => err(Place::of(&t.referenced), m),
                        Err(TemplateError::Input(e)) => {
                            problems_push(&mut err, Place::of(&t.referenced), e)
                        }
                    },
                }
            }
        }
        None => {}
    }
    let mode = match &f.mode {
        None => Some(0o600),
        Some(m) => parse_mode(&m.value)
            .map_err(|msg| err(Place::of(&m.referenced), msg))
            .ok(),
    };
    let owner = owner_of("owner", f.owner.as_ref(), &mut err);
    let group = owner_of("group", f.group.as_ref(), &mut err);
    let storage = match &f.storage {
        None => storage,
        Some(st) => Storage::parse(&st.value)
            .map_err(|m| err(Place::of(&st.referenced), m))
            .unwrap_or(storage),
    };
    if storage == Storage::Ram
        && let Some(d) = &dest
        && (d.as_str() == RAM_DIR || d.as_str().starts_with(&format!("{RAM_DIR}/")))
    {
        err(
            place,
            format!(
                "`{d}` is inside {RAM_DIR}, where phx-hook keeps RAM-only files itself; with `storage: ram` name the path the application reads"
            ),
        );
    }
    match (dest, content, mode, owner, group) {
        (Some(dest), Some(content), Some(mode), Some(owner), Some(group))
            if problems.is_empty() =>
        {
            Ok(FileSpec {
                dest,
                content,
                mode,
                owner,
                group,
                storage,
                credential,
                to_guest,
                place,
            })
        }
        _ => Err(problems),
    }
}

fn problems_push(err: &mut impl FnMut(Place, String), at: Place, e: InputError) {
    err(at, e.to_string());
}

fn is_env_name(s: &str) -> bool {
    let mut c = s.chars();
    matches!(c.next(), Some(ch) if ch == '_' || ch.is_ascii_alphabetic())
        && c.all(|ch| ch == '_' || ch.is_ascii_alphanumeric())
}

fn parse_mode(v: &Scalar) -> Result<u32, String> {
    match v {
        Scalar::Int(_) | Scalar::Float => Err(
            "mode must be a quoted octal string such as \"0600\" (unquoted, YAML reads it as a number, not octal)"
                .to_string(),
        ),
        Scalar::Str(s) => {
            let digits = s.strip_prefix("0o").unwrap_or(s);
            if digits.is_empty() || digits.len() > 5 || !digits.chars().all(|c| ('0'..='7').contains(&c)) {
                return Err(format!("mode `{s}` is not an octal mode such as \"0640\""));
            }
            let m = u32::from_str_radix(digits, 8).map_err(|_| format!("mode `{s}` is not octal"))?;
            if m > 0o7777 {
                return Err(format!("mode `{s}` is larger than 07777"));
            }
            Ok(m)
        }
    }
}

fn owner_of(
    what: &str,
    v: Option<&Spanned<Scalar>>,
    err: &mut impl FnMut(Place, String),
) -> Option<Owner> {
    let Some(v) = v else {
        return Some(Owner::Name("root".into()));
    };
    let at = Place::of(&v.referenced);
    match &v.value {
        Scalar::Int(n) => match u32::try_from(*n) {
            Ok(id) if id != u32::MAX => Some(Owner::Id(id)),
            _ => {
                err(at, format!("{what} {n} is not a valid id"));
                None
            }
        },
        Scalar::Str(s) if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) => {
            match s.parse::<u32>() {
                Ok(id) if id != u32::MAX => Some(Owner::Id(id)),
                _ => {
                    err(at, format!("{what} {s} is not a valid id"));
                    None
                }
            }
        }
        Scalar::Float => {
            err(at, format!("{what} must be a name or a whole number"));
            None
        }
        Scalar::Str(s) if is_user_name(s) => Some(Owner::Name(s.clone())),
        Scalar::Str(s) => {
            err(
                at,
                format!(
                    "{what} `{}` is not a valid user or group name",
                    s.escape_debug()
                ),
            );
            None
        }
    }
}

fn is_user_name(s: &str) -> bool {
    let mut c = s.chars();
    s.len() <= 32 && matches!(c.next(), Some(ch) if ch == '_' || ch.is_ascii_alphabetic()) && {
        let rest: Vec<char> = c.collect();
        let body = match rest.last() {
            Some('$') => &rest[..rest.len() - 1],
            _ => &rest[..],
        };
        body.iter()
            .all(|ch| ch.is_ascii_alphanumeric() || matches!(ch, '_' | '-' | '.'))
    }
}

enum TemplateError {
    Path(String),
    Input(InputError),
}

fn load_template(dir: &Utf8Path, rel: &str) -> Result<Template, TemplateError> {
    let p = Utf8Path::new(rel);
    if rel.is_empty()
        || p.is_absolute()
        || p.components()
            .any(|c| matches!(c, camino::Utf8Component::ParentDir))
    {
        return Err(TemplateError::Path(format!(
            "template `{rel}` must be a relative path inside the manifests directory, without `..`"
        )));
    }
    let full = dir.join(p);
    // A symlink inside the manifests directory must not lead out of it either.
    let (Ok(real), Ok(root)) = (full.canonicalize_utf8(), dir.canonicalize_utf8()) else {
        return Err(TemplateError::Path(format!(
            "template `{rel}` does not exist in `{dir}`"
        )));
    };
    if !real.starts_with(&root) {
        return Err(TemplateError::Path(format!(
            "template `{rel}` resolves outside the manifests directory"
        )));
    }
    let text = input::read_text(&full, Trust::RootWritable).map_err(TemplateError::Input)?;
    parse_template(&full, &text).map_err(TemplateError::Input)
}

/// Split template text into literal text and `{{ phx://key }}` placeholders. Other
/// `{{ … }}` text is left alone (templates are often for tools with their own `{{`).
pub fn parse_template(path: &Utf8Path, text: &str) -> Result<Template, InputError> {
    const OPEN: &str = "{{";
    let mut parts = Vec::new();
    let mut rest = text;
    let mut consumed = 0;
    let mut literal = String::new();
    while let Some(i) = rest.find(OPEN) {
        let after = &rest[i + OPEN.len()..];
        let inner = after.trim_start();
        if !inner.starts_with("phx://") {
            literal.push_str(&rest[..i + OPEN.len()]);
            consumed += i + OPEN.len();
            rest = after;
            continue;
        }
        let place = place_in(text, consumed + i);
        let Some(close) = after.find("}}") else {
            return Err(place.error(
                path,
                "unterminated placeholder: `{{ phx://…` has no closing `}}`",
            ));
        };
        let body = after[..close].trim();
        if body.contains('\n') {
            return Err(place.error(path, "a placeholder must be on one line"));
        }
        let key = body
            .strip_prefix("phx://")
            .unwrap_or_default()
            .parse::<KeyPath>()
            .map_err(|m| place.error(path, format!("placeholder: {m}")))?;
        literal.push_str(&rest[..i]);
        if !literal.is_empty() {
            parts.push(Part::Text(std::mem::take(&mut literal)));
        }
        parts.push(Part::Key { key, place });
        let used = i + OPEN.len() + close + 2;
        consumed += used;
        rest = &rest[used..];
    }
    literal.push_str(rest);
    if !literal.is_empty() {
        parts.push(Part::Text(literal));
    }
    Ok(Template {
        path: path.to_owned(),
        parts,
    })
}

fn place_in(text: &str, offset: usize) -> Place {
    let before = &text[..offset];
    let line = before.matches('\n').count() as u64 + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) as u64 + 1;
    Place { line, column }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_str(text: &str) -> Result<Manifest, ManifestError> {
        parse(
            Utf8Path::new("/nonexistent"),
            Utf8Path::new("/m/101.yaml"),
            "101".parse().unwrap(),
            text,
        )
    }

    #[test]
    fn a_full_manifest() {
        let m = parse_str(
            "guest: lxc\nfiles:\n  - dest: /etc/a\n    key: a/b\n  - dest: /etc/b.env\n    format: env\n    vars: { X: a/x, Y: a/y }\n    mode: \"0640\"\n    owner: 1000\n    group: app\nafter:\n  - [systemctl, restart, x]\n",
        )
        .unwrap();
        assert_eq!(m.guest, Some(GuestKind::Lxc));
        assert!(m.required);
        assert_eq!(m.files.len(), 2);
        assert_eq!(m.files[0].mode, 0o600);
        assert_eq!(m.files[0].owner, Owner::Name("root".into()));
        assert_eq!(m.files[1].mode, 0o640);
        assert_eq!(m.files[1].owner, Owner::Id(1000));
        assert_eq!(m.files[1].group, Owner::Name("app".into()));
        assert_eq!(m.files[1].content.keys().len(), 2);
        assert_eq!(
            m.after,
            vec![vec!["systemctl".to_string(), "restart".into(), "x".into()]]
        );
    }

    #[test]
    fn every_problem_is_reported_with_its_line() {
        let e = parse_str("files:\n  - dest: etc/a\n    key: a\n  - dest: /etc/b\n    key: b\n    mode: \"0999\"\n").unwrap_err();
        assert_eq!(e.problems.len(), 2, "{e}");
        let s = e.to_string();
        assert!(
            s.contains("/m/101.yaml:2:") && s.contains("absolute"),
            "{s}"
        );
        assert!(s.contains("/m/101.yaml:6:") && s.contains("0999"), "{s}");
    }

    #[test]
    fn templates_split_into_parts() {
        let t = parse_template(
            Utf8Path::new("/t"),
            "a={{ phx://x/y }}\nb={{phx://z}} {{ other }}",
        )
        .unwrap();
        let keys: Vec<_> = t
            .parts
            .iter()
            .filter_map(|p| {
                if let Part::Key { key, place } = p {
                    Some((key.as_str(), place.line))
                } else {
                    None
                }
            })
            .collect();
        assert_eq!(keys, vec![("x/y", 1), ("z", 2)]);
        let e = parse_template(Utf8Path::new("/t"), "x\n  {{ phx://a")
            .unwrap_err()
            .to_string();
        assert!(e.contains("/t:2:3") && e.contains("unterminated"), "{e}");
    }

    #[test]
    fn modes() {
        assert_eq!(parse_mode(&Scalar::Str("0640".into())).unwrap(), 0o640);
        assert_eq!(parse_mode(&Scalar::Str("4755".into())).unwrap(), 0o4755);
        for bad in ["", "0x1", "9", "017777", "rw"] {
            assert!(parse_mode(&Scalar::Str(bad.into())).is_err(), "{bad}");
        }
        assert!(
            parse_mode(&Scalar::Int(600))
                .unwrap_err()
                .contains("quoted")
        );
    }
}

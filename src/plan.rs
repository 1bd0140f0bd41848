//! The plan: a manifest and a vault make the complete list of deliveries for one guest,
//! every key and placeholder resolved and every file's bytes rendered, or the list of
//! every problem (not only the first). No I/O happens here: what the plan holds is what
//! a transport will write, so `--dry-run` and the real delivery cannot disagree.

use std::fmt;

use base64::Engine as _;
use camino::Utf8PathBuf;
use zeroize::Zeroizing;

use crate::input::Place;
use crate::manifest::{Content, Decode, Manifest, Owner, Part};
use crate::types::{GuestKind, GuestPath, KeyPath, Vmid};
use crate::vault::doc::json_string;
use crate::vault::{Secret, Vault};

/// Everything to deliver to one guest.
#[derive(Debug)]
pub struct Plan {
    /// The guest.
    pub vmid: Vmid,
    /// The guest kind, when the manifest says it.
    pub guest: Option<GuestKind>,
    /// Whether a failure aborts the start.
    pub required: bool,
    /// The files, in manifest order.
    pub deliveries: Vec<Delivery>,
    /// Commands to run in the guest afterwards.
    pub after: Vec<Vec<String>>,
    /// systemd credentials for the VM's boot, through QEMU's fw_cfg (pre-start writes
    /// them where the VM's `args` point QEMU).
    pub credentials: Vec<Credential>,
}

/// One systemd credential, ready to hand to QEMU.
#[derive(Clone, Debug)]
pub struct Credential {
    /// Its name (`opt/io.systemd.credentials/<name>`).
    pub name: String,
    /// The vault keys it holds.
    pub keys: Vec<KeyPath>,
    /// The bytes.
    pub content: Secret,
}

/// One file, ready to write.
#[derive(Clone, Debug)]
pub struct Delivery {
    /// Where it goes.
    pub dest: GuestPath,
    /// The manifest's format name.
    pub format: &'static str,
    /// The vault keys it holds.
    pub keys: Vec<KeyPath>,
    /// Permission bits.
    pub mode: u32,
    /// Owner (in the guest).
    pub owner: Owner,
    /// Group (in the guest).
    pub group: Owner,
    /// The bytes.
    pub content: Secret,
    /// With `storage: ram`: where the bytes are written instead (below
    /// [`crate::manifest::RAM_DIR`]); `dest` becomes a symbolic link to it.
    pub store: Option<GuestPath>,
}

impl Delivery {
    /// Where the bytes go: `store` for a RAM-only file, else `dest`.
    pub fn written(&self) -> &GuestPath {
        self.store.as_ref().unwrap_or(&self.dest)
    }
}

/// The RAM path of a RAM-only file at `dest`: one name per destination, readable (a
/// digest of the path keeps two destinations with one file name apart).
pub fn ram_path(dest: &GuestPath) -> GuestPath {
    use sha2::{Digest, Sha256};
    let id = crate::types::hex(&Sha256::digest(dest.as_str().as_bytes()));
    let name: String = dest
        .file_name()
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
        .take(40)
        .collect();
    format!("{}/{}-{name}", crate::manifest::RAM_DIR, &id[..16])
        .parse()
        .unwrap_or_else(|_| dest.clone())
}

/// Something that keeps a file from being planned.
#[derive(Debug, Clone)]
pub struct Problem {
    /// The file where the cause is (the manifest, or a template).
    pub file: Utf8PathBuf,
    /// Where in that file.
    pub place: Place,
    /// The destination affected.
    pub dest: GuestPath,
    /// What is wrong (names keys, never values).
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}: {}",
            self.file, self.place.line, self.place.column, self.dest, self.message
        )
    }
}

/// Resolve every file of `m` against `v`; any problem fails the whole plan.
pub fn build(m: &Manifest, v: &Vault) -> Result<Plan, Vec<Problem>> {
    let (plan, problems) = build_partial(m, v);
    if problems.is_empty() {
        Ok(plan)
    } else {
        Err(problems)
    }
}

/// Resolve every file of `m` against `v`: the plan of the files that resolved, and the
/// problems of those that did not (for `required: false`, where what can be delivered is).
pub fn build_partial(m: &Manifest, v: &Vault) -> (Plan, Vec<Problem>) {
    let mut problems = Vec::new();
    let mut deliveries = Vec::new();
    let mut credentials = Vec::new();
    for f in &m.files {
        let mut r = Resolver {
            vault: v,
            dest: &f.dest,
            problems: &mut problems,
        };
        let content = match &f.content {
            Content::Raw { key, decode } => {
                r.get(key, &m.path, f.place).and_then(|s| match decode {
                    None => Some(s.clone()),
                    Some(Decode::Base64) => decode_base64(s).or_else(|| {
                        r.problem(
                            &m.path,
                            f.place,
                            format!("vault key `{key}` is not valid base64"),
                        );
                        None
                    }),
                })
            }
            Content::Env(vars) => {
                let mut out = Zeroizing::new(Vec::new());
                let mut ok = true;
                for (name, key) in vars {
                    match r.get(key, &m.path, f.place) {
                        Some(s) => {
                            if let Err(why) = env_line(&mut out, name, s.expose()) {
                                ok = false;
                                r.problem(
                                    &m.path,
                                    f.place,
                                    format!("vault key `{key}` {why}; deliver it with `format: raw` or `json` instead"),
                                );
                            }
                        }
                        None => ok = false,
                    }
                }
                ok.then(|| Secret::new(out))
            }
            Content::Json(vars) => {
                let mut out = Zeroizing::new(Vec::new());
                let mut ok = true;
                out.push(b'{');
                for (i, (name, key)) in vars.iter().enumerate() {
                    match r.get(key, &m.path, f.place) {
                        Some(s) => {
                            if i > 0 {
                                out.push(b',');
                            }
                            json_string(&mut out, name.as_bytes());
                            out.push(b':');
                            json_string(&mut out, s.expose());
                        }
                        None => ok = false,
                    }
                }
                out.extend_from_slice(b"}\n");
                ok.then(|| Secret::new(out))
            }
            Content::Template(t) => {
                let mut out = Zeroizing::new(Vec::new());
                let mut ok = true;
                for part in &t.parts {
                    match part {
                        Part::Text(s) => out.extend_from_slice(s.as_bytes()),
                        Part::Key { key, place } => match r.get(key, &t.path, *place) {
                            Some(s) => out.extend_from_slice(s.expose()),
                            None => ok = false,
                        },
                    }
                }
                ok.then(|| Secret::new(out))
            }
        };
        let Some(content) = content else { continue };
        if let Some(name) = &f.credential {
            credentials.push(Credential {
                name: name.clone(),
                keys: f.content.keys().into_iter().cloned().collect(),
                content: content.clone(),
            });
        }
        if f.to_guest {
            deliveries.push(Delivery {
                dest: f.dest.clone(),
                format: f.content.format(),
                keys: f.content.keys().into_iter().cloned().collect(),
                mode: f.mode,
                owner: f.owner.clone(),
                group: f.group.clone(),
                content,
                store: (f.storage == crate::manifest::Storage::Ram).then(|| ram_path(&f.dest)),
            });
        }
    }
    let plan = Plan {
        vmid: m.vmid,
        guest: m.guest,
        required: m.required,
        deliveries,
        after: m.after.clone(),
        credentials,
    };
    (plan, problems)
}

/// Looks keys up for one file and records what is wrong.
struct Resolver<'a> {
    vault: &'a Vault,
    dest: &'a GuestPath,
    problems: &'a mut Vec<Problem>,
}

impl<'a> Resolver<'a> {
    fn get(&mut self, key: &KeyPath, file: &Utf8PathBuf, place: Place) -> Option<&'a Secret> {
        match self.vault.get(key) {
            Ok(s) => Some(s),
            Err(e) => {
                self.problem(file, place, e.to_string());
                None
            }
        }
    }

    fn problem(&mut self, file: &Utf8PathBuf, place: Place, message: String) {
        self.problems.push(Problem {
            file: file.clone(),
            place,
            dest: self.dest.clone(),
            message,
        });
    }
}

fn decode_base64(s: &Secret) -> Option<Secret> {
    let engine = base64::engine::GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        base64::engine::GeneralPurposeConfig::new()
            .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent),
    );
    let mut compact = Zeroizing::new(Vec::with_capacity(s.len()));
    compact.extend(
        s.expose()
            .iter()
            .copied()
            .filter(|b| !b.is_ascii_whitespace()),
    );
    let mut out = Zeroizing::new(Vec::with_capacity(compact.len() / 4 * 3 + 3));
    engine.decode_vec(&*compact, &mut out).ok()?;
    Some(Secret::new(out))
}

/// `NAME=value`, written so that sourcing the file in any POSIX shell (dash, bash,
/// busybox) and systemd's `EnvironmentFile=` (`load_env_file`) both read back exactly the
/// value, or an error saying why no quoting can:
///
/// - bare when every byte is one that neither treats specially;
/// - else in double quotes with `\`, `"`, `$` and `` ` `` escaped by a backslash (both
///   undo exactly these; a newline inside the quotes is kept by both);
/// - else, for a value with a carriage return (systemd drops it inside double quotes), in
///   single quotes, which neither interprets.
///
/// Refused: a NUL byte (neither can hold one), bytes that are not UTF-8 (systemd rejects
/// the whole file), and a carriage return together with `'`. Shell-style `'\''` quoting,
/// used before, is read wrongly by systemd and let a value with `'` and a newline add
/// variables of its own (such as `LD_PRELOAD`) to the unit.
fn env_line(out: &mut Zeroizing<Vec<u8>>, name: &str, value: &[u8]) -> Result<(), &'static str> {
    if value.contains(&0) {
        return Err("holds a NUL byte, which an env file cannot carry");
    }
    if std::str::from_utf8(value).is_err() {
        return Err("holds bytes that are not UTF-8, which systemd's EnvironmentFile= refuses");
    }
    let cr = value.contains(&b'\r');
    if cr && value.contains(&b'\'') {
        return Err(
            "holds both a carriage return and `'`, which no env-file quoting carries to both sh and systemd",
        );
    }
    out.extend_from_slice(name.as_bytes());
    out.push(b'=');
    let plain = !value.is_empty()
        && value
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || b"_@%+=:,./-".contains(b));
    if plain {
        out.extend_from_slice(value);
    } else if cr {
        out.push(b'\'');
        out.extend_from_slice(value);
        out.push(b'\'');
    } else {
        out.push(b'"');
        for &b in value {
            if matches!(b, b'\\' | b'"' | b'$' | b'`') {
                out.push(b'\\');
            }
            out.push(b);
        }
        out.push(b'"');
    }
    out.push(b'\n');
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vault::VaultInfo;
    use camino::Utf8Path;

    fn vault() -> Vault {
        Vault::from_plaintext(
            br#"{"a":{"x":"it's $x","y":"plain-1","b64":"aGVs bG8=","nul":"a\u0000b"},"q":"line1\nline2\"\\"}"#,
            VaultInfo::default(),
        )
        .unwrap()
    }

    fn manifest(text: &str) -> Manifest {
        crate::manifest::parse(
            Utf8Path::new("/nonexistent"),
            Utf8Path::new("/m/101.yaml"),
            "101".parse().unwrap(),
            text,
        )
        .unwrap()
    }

    fn content(p: &Plan, i: usize) -> String {
        String::from_utf8(p.deliveries[i].content.expose().to_vec()).unwrap()
    }

    #[test]
    fn formats_render() {
        let m = manifest(concat!(
            "files:\n",
            "  - {dest: /r, key: a/y}\n",
            "  - {dest: /e, format: env, vars: {X: a/x, Y: a/y}}\n",
            "  - {dest: /j, format: json, vars: {q: q, y: a/y}}\n",
            "  - {dest: /b, key: a/b64, decode: base64}\n",
        ));
        let p = build(&m, &vault()).unwrap();
        assert_eq!(content(&p, 0), "plain-1");
        assert_eq!(content(&p, 1), "X=\"it's \\$x\"\nY=plain-1\n");
        let j: serde_json::Value = serde_json::from_str(&content(&p, 2)).unwrap();
        assert_eq!(j["q"], "line1\nline2\"\\");
        assert_eq!(content(&p, 3), "hello");
        assert_eq!(p.deliveries[1].keys.len(), 2);
    }

    #[test]
    fn every_problem_is_listed() {
        let m = manifest(concat!(
            "files:\n",
            "  - {dest: /r, key: missing/one}\n",
            "  - {dest: /e, format: env, vars: {X: a, Y: missing/two, Z: a/nul}}\n",
            "  - {dest: /b, key: a/y, decode: base64}\n",
        ));
        let probs = build(&m, &vault()).unwrap_err();
        let text: Vec<String> = probs.iter().map(ToString::to_string).collect();
        assert_eq!(probs.len(), 5, "{text:#?}");
        assert!(
            text[0].starts_with("/m/101.yaml:2:")
                && text[0].contains("`missing/one` does not exist")
        );
        assert!(text.iter().any(|t| t.contains("`a` is an object")));
        assert!(text.iter().any(|t| t.contains("NUL")));
        assert!(text.iter().any(|t| t.contains("not valid base64")));
    }
}

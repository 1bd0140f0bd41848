//! The vault (DESIGN §2.3): an OpenPGP-encrypted JSON object whose string leaves are the
//! secrets, addressed by `/`-separated key paths. This module reads the host key and the
//! vault, decrypts (through [`pgp`], the only user of rPGP), enforces the signature
//! policy, and indexes the plaintext into [`Secret`]s without building a generic JSON
//! tree (whose strings could not be wiped).
//!
//! It never prints. Its errors name files, key ids and fingerprints, never a value.

pub mod author;
pub mod doc;
pub(crate) mod pgp;
mod secret;

use std::collections::BTreeMap;
use std::fmt;
use std::fs;
use std::io::Read;

use camino::{Utf8Path, Utf8PathBuf};
use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

pub use secret::Secret;

use crate::config::Config;
use crate::input::{self, InputError, Trust};
use crate::types::KeyPath;

/// The largest vault phx-hook reads (pmxcfs itself caps files at 1 MiB; a vault in a
/// git checkout may be larger, but not without bound).
pub const MAX_VAULT_BYTES: u64 = 64 * 1024 * 1024;

/// A decrypted, indexed vault.
pub struct Vault {
    entries: BTreeMap<String, Entry>,
    /// Facts about the vault that are safe to show and audit.
    pub info: VaultInfo,
}

/// What [`Vault::open_with`] does about rollback protection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rollback {
    /// Refuse an older vault; remember a newer one.
    Enforce,
    /// Accept this vault's version as the new reference (`vault accept-rollback`).
    Accept,
    /// Neither check nor record (inspection: `vault verify` reports it separately).
    Ignore,
}

/// What may be said about a vault: never a value.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct VaultInfo {
    /// The vault file.
    pub path: Utf8PathBuf,
    /// SHA-256 of the encrypted file (hex): identifies the vault version in audit lines.
    pub digest: String,
    /// `_phx.version`, when present.
    pub version: Option<u64>,
    /// The fingerprint of the verified signer, when the vault is signed by a listed key.
    pub signer: Option<String>,
    /// Key ids the vault is encrypted to.
    pub recipients: Vec<String>,
    /// Number of secret values.
    pub secrets: usize,
}

enum Entry {
    Text(Secret),
    Object,
    Other(&'static str),
    /// A leaf this index was not asked for: its name is checked like every other (so
    /// `check` and the hook agree on what is malformed), its value is not kept.
    Skipped,
}

/// Why the vault could not be opened. No variant carries a secret value.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum VaultError {
    /// The host key or passphrase file failed its checks.
    #[error(transparent)]
    Input(#[from] InputError),
    /// The host key file holds no usable secret key.
    #[error("failed to load the host key `{path}`: {detail}")]
    BadKey {
        /// The key file.
        path: Utf8PathBuf,
        /// What is wrong.
        detail: String,
    },
    /// The recipients file (for signature checks) is unreadable.
    #[error("failed to load the public keys in `{path}`: {detail}")]
    BadCerts {
        /// The file.
        path: Utf8PathBuf,
        /// What is wrong.
        detail: String,
    },
    /// The file is not an OpenPGP message.
    #[error("`{path}` is not an OpenPGP message ({detail})")]
    NotOpenPgp {
        /// The vault.
        path: Utf8PathBuf,
        /// What the parser said.
        detail: String,
    },
    /// The file is OpenPGP but not encrypted.
    #[error("`{path}` is an OpenPGP message but not an encrypted one")]
    NotEncrypted {
        /// The vault.
        path: Utf8PathBuf,
    },
    /// The vault is not encrypted to any of the host's keys.
    #[error(
        "`{path}` is not encrypted to this host's key: it is encrypted to {}, and the host key is {}",
        list(recipients),
        list(host)
    )]
    NotForThisKey {
        /// The vault.
        path: Utf8PathBuf,
        /// Key ids the vault is encrypted to.
        recipients: Vec<String>,
        /// Host key fingerprints.
        host: Vec<String>,
    },
    /// The host key is passphrase-protected and no passphrase was configured.
    #[error(
        "the host key {key} is protected by a passphrase, and no `key_passphrase_file` is configured"
    )]
    PassphraseNeeded {
        /// The key's fingerprint.
        key: String,
    },
    /// The passphrase does not unlock the host key.
    #[error("the passphrase in `{file}` does not unlock the host key {key}")]
    WrongPassphrase {
        /// The key's fingerprint.
        key: String,
        /// The passphrase file.
        file: Utf8PathBuf,
    },
    /// The integrity check (MDC/AEAD tag) failed: the vault was altered or damaged.
    #[error(
        "`{path}` failed its integrity check: it was modified or damaged after encryption (no plaintext was used)"
    )]
    Tampered {
        /// The vault.
        path: Utf8PathBuf,
    },
    /// GnuPG 2.4 OCB packet, but `gnupg_aead: false`.
    #[error("`{path}` uses GnuPG 2.4's OCB encryption, which is disabled by `gnupg_aead: false`")]
    GnupgAead {
        /// The vault.
        path: Utf8PathBuf,
    },
    /// The message is damaged or truncated.
    #[error("`{path}` is damaged or truncated: {detail}")]
    Corrupt {
        /// The vault.
        path: Utf8PathBuf,
        /// What went wrong.
        detail: String,
    },
    /// The plaintext would be larger than `max_plaintext` (a compression bomb?).
    #[error(
        "`{path}` decompresses to more than {limit} bytes (`max_plaintext`); refusing it (a compression bomb, or not a vault)"
    )]
    PlaintextTooLarge {
        /// The vault.
        path: Utf8PathBuf,
        /// The bound.
        limit: u64,
    },
    /// Far more session-key packets for this host than any real vault carries.
    #[error(
        "`{path}` carries {found} session-key packets for this host's keys or hidden recipients; at most {} are tried (a real vault has one per host key)",
        pgp::MAX_SESSION_KEY_TRIES
    )]
    TooManySessionKeys {
        /// The vault.
        path: Utf8PathBuf,
        /// How many.
        found: usize,
    },
    /// The plaintext is not JSON.
    #[error("the plaintext of `{path}` is not valid JSON ({detail})")]
    NotJson {
        /// The vault.
        path: Utf8PathBuf,
        /// Where the syntax error is (line and column only).
        detail: String,
    },
    /// The plaintext is JSON but its shape is wrong.
    #[error("the plaintext of `{path}` is not a phx-hook vault: {detail}")]
    BadShape {
        /// The vault.
        path: Utf8PathBuf,
        /// What is wrong (key names only).
        detail: String,
    },
    /// `signers` is set and the vault is not signed.
    #[error(
        "`{path}` is not signed, but `signers` requires a signature by {}",
        list(signers)
    )]
    Unsigned {
        /// The vault.
        path: Utf8PathBuf,
        /// The accepted signers.
        signers: Vec<String>,
    },
    /// The vault is older than one this host already accepted.
    #[error(
        "`{path}` is version {found}, older than version {accepted} which this host already accepted: refusing a rolled-back vault"
    )]
    RolledBack {
        /// The vault.
        path: Utf8PathBuf,
        /// Its version.
        found: u64,
        /// The highest version accepted before.
        accepted: u64,
    },
    /// The rollback state could not be read or written.
    #[error("failed to use the rollback state `{path}`: {detail}")]
    RollbackState {
        /// The state file.
        path: Utf8PathBuf,
        /// What went wrong.
        detail: String,
    },
    /// `signers` is set and the vault is signed by someone else (or the signature is bad).
    #[error(
        "`{path}` is signed by {}, which is not one of the accepted signers ({})",
        issuers(found),
        list(signers)
    )]
    UnlistedSigner {
        /// The vault.
        path: Utf8PathBuf,
        /// Issuer fingerprints (or key ids) found in the signatures.
        found: Vec<String>,
        /// The accepted signers.
        signers: Vec<String>,
    },
}

fn list(v: &[String]) -> String {
    if v.is_empty() {
        "nothing".into()
    } else {
        v.join(", ")
    }
}

fn issuers(v: &[String]) -> String {
    if v.is_empty() {
        "an unidentified key".into()
    } else {
        v.join(", ")
    }
}

impl VaultError {
    /// What the administrator can do about it.
    pub fn hint(&self) -> Option<String> {
        Some(match self {
            VaultError::Input(e) => return e.hint(),
            VaultError::NotForThisKey { host, .. } => format!(
                "re-encrypt the vault to the host key, e.g. `gpg --encrypt --recipient {} ...`",
                host.first().map_or("<host fingerprint>", String::as_str)
            ),
            VaultError::PassphraseNeeded { .. } => {
                "set `key_passphrase_file` in the config to a root-only file holding the passphrase".into()
            }
            VaultError::WrongPassphrase { .. } => "check the passphrase file (a trailing newline is ignored)".into(),
            VaultError::Tampered { .. } | VaultError::Corrupt { .. } => {
                "restore the vault from git or a backup, or re-encrypt it".into()
            }
            VaultError::GnupgAead { .. } => "set `gnupg_aead: true` in the config".into(),
            VaultError::PlaintextTooLarge { .. } => {
                "restore the vault from git or a backup; if it is genuine, raise `max_plaintext` in the config".into()
            }
            VaultError::TooManySessionKeys { .. } => {
                "restore the vault from git or a backup, or re-encrypt it with `phx-hook vault rekey`".into()
            }
            VaultError::RolledBack { .. } => {
                "restore the newest vault; if going back is intended, run `phx-hook vault accept-rollback`".into()
            }
            VaultError::Unsigned { .. } => "sign the vault: `gpg --sign --encrypt --local-user <signer> ...`".into(),
            VaultError::UnlistedSigner { .. } => "sign with an accepted key, or add the signer's fingerprint to \
                `signers` (and its public key to the recipients file)"
                .to_string(),
            VaultError::NotJson { .. } | VaultError::BadShape { .. } => {
                "decrypt it with gpg and fix the JSON; the top level must be an object of strings and objects".into()
            }
            _ => return None,
        })
    }
}

/// Why a key could not be resolved.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LookupError {
    /// No such key.
    #[error("vault key `{0}` does not exist")]
    Missing(String),
    /// The key names an object of keys.
    #[error("vault key `{0}` is an object, not a string")]
    Object(String),
    /// The key names a number, boolean, null or array.
    #[error("vault key `{0}` is a {1}, not a string")]
    NotText(String, &'static str),
}

impl Vault {
    /// Read the host key, the passphrase and the vault named by `cfg`, decrypt, check the
    /// signature policy, and index the plaintext.
    pub fn open(cfg: &Config) -> Result<Vault, VaultError> {
        Vault::open_with(cfg, Rollback::Enforce)
    }

    /// [`Vault::open`] with a choice of what rollback protection does.
    pub fn open_with(cfg: &Config, rollback: Rollback) -> Result<Vault, VaultError> {
        Vault::open_filtered(cfg, rollback, None)
    }

    /// Open, indexing only the keys in `only` (see [`Wanted`]).
    pub fn open_for(cfg: &Config, only: &Wanted) -> Result<Vault, VaultError> {
        Vault::open_filtered(cfg, Rollback::Enforce, Some(only))
    }

    fn open_filtered(
        cfg: &Config,
        rollback: Rollback,
        only: Option<&Wanted>,
    ) -> Result<Vault, VaultError> {
        let key_bytes = read_secret_file(&cfg.key, MAX_VAULT_BYTES)?;
        let keys = pgp::HostKeys::parse(&key_bytes).map_err(|e| VaultError::BadKey {
            path: cfg.key.clone(),
            detail: match e {
                pgp::KeyFileError::NoKeys(m) | pgp::KeyFileError::Invalid(m) => m,
            },
        })?;
        let passphrase = match &cfg.key_passphrase_file {
            None => None,
            Some(p) => {
                let mut b = read_secret_file(p, 64 * 1024)?;
                while matches!(b.last(), Some(b'\n' | b'\r')) {
                    b.pop();
                }
                Some(b)
            }
        };
        let certs = if cfg.signers.is_empty() {
            pgp::Certs::none()
        } else {
            let bytes = read_public_file(&cfg.recipients)?;
            pgp::Certs::parse(&bytes)
                .map_err(|detail| VaultError::BadCerts {
                    path: cfg.recipients.clone(),
                    detail,
                })?
                .0
        };
        let ct = read_vault(&cfg.vault)?;
        let path = cfg.vault.clone();
        let d = pgp::decrypt(
            &keys,
            passphrase.as_ref(),
            &ct,
            cfg.gnupg_aead,
            &cfg.signers,
            &certs,
            cfg.max_plaintext,
        )
        .map_err(|e| {
            use pgp::DecryptError as D;
            match e {
                D::NotOpenPgp(detail) => VaultError::NotOpenPgp {
                    path: path.clone(),
                    detail,
                },
                D::NotEncrypted => VaultError::NotEncrypted { path: path.clone() },
                D::NotForThisKey { recipients } => VaultError::NotForThisKey {
                    path: path.clone(),
                    recipients,
                    host: keys.fingerprints(),
                },
                D::PassphraseNeeded { key } => VaultError::PassphraseNeeded { key },
                D::WrongPassphrase { key } => VaultError::WrongPassphrase {
                    key,
                    file: cfg.key_passphrase_file.clone().unwrap_or_default(),
                },
                D::Tampered => VaultError::Tampered { path: path.clone() },
                D::GnupgAeadDisabled => VaultError::GnupgAead { path: path.clone() },
                D::Corrupt(detail) => VaultError::Corrupt {
                    path: path.clone(),
                    detail,
                },
                D::TooLarge { limit } => VaultError::PlaintextTooLarge {
                    path: path.clone(),
                    limit,
                },
                D::TooManySessionKeys { found } => VaultError::TooManySessionKeys {
                    path: path.clone(),
                    found,
                },
            }
        })?;
        let signer = match d.signature {
            pgp::Signature::Valid(f) => Some(f),
            pgp::Signature::Unsigned if !cfg.signers.is_empty() => {
                return Err(VaultError::Unsigned {
                    path,
                    signers: cfg.signers.clone(),
                });
            }
            pgp::Signature::NotVerified(found) if !cfg.signers.is_empty() => {
                return Err(VaultError::UnlistedSigner {
                    path,
                    found,
                    signers: cfg.signers.clone(),
                });
            }
            _ => None,
        };
        let info = VaultInfo {
            path: cfg.vault.clone(),
            digest: crate::types::hex(&Sha256::digest(&ct)),
            version: None,
            signer,
            recipients: d.recipients,
            secrets: 0,
        };
        let v = Vault::index(&d.plaintext, info, only)?;
        match rollback {
            Rollback::Enforce => check_rollback(&cfg.rollback_state, &v.info, false)?,
            Rollback::Accept => check_rollback(&cfg.rollback_state, &v.info, true)?,
            Rollback::Ignore => {}
        }
        Ok(v)
    }

    /// Index a plaintext JSON object.
    pub fn from_plaintext(plaintext: &[u8], info: VaultInfo) -> Result<Vault, VaultError> {
        Vault::index(plaintext, info, None)
    }

    /// [`Vault::from_plaintext`], indexing only the keys in `only`.
    pub fn from_plaintext_for(
        plaintext: &[u8],
        info: VaultInfo,
        only: &Wanted,
    ) -> Result<Vault, VaultError> {
        Vault::index(plaintext, info, Some(only))
    }

    /// Index only `wanted` keys (and the objects on their way), skipping the rest of the
    /// plaintext without copying it: what a hook needs for one guest.
    fn index(
        plaintext: &[u8],
        mut info: VaultInfo,
        only: Option<&Wanted>,
    ) -> Result<Vault, VaultError> {
        let path = info.path.clone();
        let mut entries = BTreeMap::new();
        let mut version = None;
        let mut de = serde_json::Deserializer::from_slice(plaintext);
        let seed = Root {
            entries: &mut entries,
            version: &mut version,
            only,
        };
        if let Err(e) = seed.deserialize(&mut de).and_then(|()| de.end()) {
            return Err(json_error(&path, &e));
        }
        info.version = version;
        info.secrets = entries
            .values()
            .filter(|e| matches!(e, Entry::Text(_)))
            .count();
        Ok(Vault { entries, info })
    }

    /// The value at `key`.
    pub fn get(&self, key: &KeyPath) -> Result<&Secret, LookupError> {
        match self.entries.get(key.as_str()) {
            Some(Entry::Text(s)) => Ok(s),
            Some(Entry::Object) => Err(LookupError::Object(key.to_string())),
            Some(Entry::Other(kind)) => Err(LookupError::NotText(key.to_string(), kind)),
            Some(Entry::Skipped) | None => Err(LookupError::Missing(key.to_string())),
        }
    }

    /// Every key that holds a string, sorted.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.entries
            .iter()
            .filter(|(_, e)| matches!(e, Entry::Text(_)))
            .map(|(k, _)| k.as_str())
    }
}

impl fmt::Debug for Vault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Vault")
            .field("info", &self.info)
            .finish_non_exhaustive()
    }
}

/// The host key file's bytes (root-only, bounded), for keys derived from it.
pub fn read_host_key_bytes(cfg: &Config) -> Result<Zeroizing<Vec<u8>>, VaultError> {
    read_secret_file(&cfg.key, MAX_VAULT_BYTES)
}

/// Rollback protection: refuse a vault older than the highest version this host
/// accepted; remember a newer one. `accept` sets the state to this vault's version
/// whatever it is (`vault accept-rollback`).
pub fn check_rollback(state: &Utf8Path, info: &VaultInfo, accept: bool) -> Result<(), VaultError> {
    let accepted = accepted_version(state)?;
    let found = info.version.unwrap_or(0);
    let err = |detail: String| VaultError::RollbackState {
        path: state.to_owned(),
        detail,
    };
    if found < accepted && !accept {
        return Err(VaultError::RolledBack {
            path: info.path.clone(),
            found,
            accepted,
        });
    }
    if found != accepted || accept {
        if let Some(dir) = state.parent() {
            let _ = fs::create_dir_all(dir);
        }
        // A temporary name per process: hooks of many guests starting at once write this
        // together. A reader that cannot record a newer version (not root) still accepts it.
        if let Err(e) = crate::files::replace_private(state, format!("{found}\n").as_bytes(), true)
        {
            if accept {
                return Err(err(e.to_string()));
            }
            log::warn!("cannot record vault version {found} in `{state}`: {e}");
        }
    }
    Ok(())
}

/// The highest vault version this host accepted (0 if none yet).
pub fn accepted_version(state: &Utf8Path) -> Result<u64, VaultError> {
    let err = |detail: String| VaultError::RollbackState {
        path: state.to_owned(),
        detail,
    };
    match fs::read_to_string(state) {
        Ok(t) => t
            .trim()
            .parse::<u64>()
            .map_err(|_| err("it does not hold a version number".into())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(0),
        Err(e) => Err(err(e.to_string())),
    }
}

/// A serde_json error, reduced to what is safe to print: the category and the place.
/// (serde_json messages can quote input; ours must never quote the plaintext.)
fn json_error(path: &Utf8Path, e: &serde_json::Error) -> VaultError {
    if e.is_data() {
        // Data errors come from our own visitor, whose messages name keys only.
        let msg = e.to_string();
        let msg = match msg.rfind(" at line ") {
            Some(i) => msg[..i].to_string(),
            None => msg,
        };
        return VaultError::BadShape {
            path: path.to_owned(),
            detail: msg,
        };
    }
    let what = match e.classify() {
        serde_json::error::Category::Eof => "it ends early",
        _ => "syntax error",
    };
    VaultError::NotJson {
        path: path.to_owned(),
        detail: format!("{what} at line {} column {}", e.line(), e.column()),
    }
}

fn read_secret_file(path: &Utf8Path, limit: u64) -> Result<Zeroizing<Vec<u8>>, VaultError> {
    let read_err = |source| InputError::Read {
        path: path.to_owned(),
        source,
    };
    let mut f = fs::File::open(path).map_err(read_err)?;
    let meta = f.metadata().map_err(read_err)?;
    input::check_trust(path, &meta, Trust::RootOnly)?;
    let mut buf = Zeroizing::new(Vec::with_capacity(meta.len().min(limit) as usize + 1));
    f.by_ref()
        .take(limit + 1)
        .read_to_end(&mut buf)
        .map_err(read_err)?;
    if buf.len() as u64 > limit {
        return Err(InputError::TooLarge {
            path: path.to_owned(),
            size: buf.len() as u64,
            limit,
        }
        .into());
    }
    Ok(buf)
}

fn read_public_file(path: &Utf8Path) -> Result<Vec<u8>, VaultError> {
    let read_err = |source| InputError::Read {
        path: path.to_owned(),
        source,
    };
    let mut f = fs::File::open(path).map_err(read_err)?;
    let meta = f.metadata().map_err(read_err)?;
    input::check_trust(path, &meta, Trust::RootWritable)?;
    let mut buf = Vec::new();
    f.by_ref()
        .take(MAX_VAULT_BYTES + 1)
        .read_to_end(&mut buf)
        .map_err(read_err)?;
    Ok(buf)
}

fn read_vault(path: &Utf8Path) -> Result<Vec<u8>, VaultError> {
    let read_err = |source| InputError::Read {
        path: path.to_owned(),
        source,
    };
    let mut f = fs::File::open(path).map_err(read_err)?;
    let meta = f.metadata().map_err(read_err)?;
    input::check_trust(path, &meta, Trust::RootWritable)?;
    if let Some(dir) = path.parent().filter(|d| !d.as_str().is_empty()) {
        let dmeta = fs::metadata(dir).map_err(|source| InputError::Read {
            path: dir.to_owned(),
            source,
        })?;
        input::check_trust(dir, &dmeta, Trust::RootWritable)?;
    }
    if meta.len() > MAX_VAULT_BYTES {
        return Err(InputError::TooLarge {
            path: path.to_owned(),
            size: meta.len(),
            limit: MAX_VAULT_BYTES,
        }
        .into());
    }
    let mut buf = Vec::with_capacity(meta.len() as usize);
    f.by_ref()
        .take(MAX_VAULT_BYTES + 1)
        .read_to_end(&mut buf)
        .map_err(read_err)?;
    Ok(buf)
}

/// The top level: a JSON object; `_phx` holds metadata.
struct Root<'a> {
    entries: &'a mut BTreeMap<String, Entry>,
    version: &'a mut Option<u64>,
    only: Option<&'a Wanted>,
}

/// The keys one guest needs, and every prefix on their way.
pub struct Wanted {
    keys: std::collections::HashSet<String>,
    prefixes: std::collections::HashSet<String>,
}

impl Wanted {
    /// The keys in `keys`.
    pub fn new<'k>(keys: impl IntoIterator<Item = &'k KeyPath>) -> Wanted {
        let mut w = Wanted {
            keys: Default::default(),
            prefixes: Default::default(),
        };
        for k in keys {
            let s = k.as_str();
            for (i, _) in s.match_indices('/') {
                w.prefixes.insert(s[..i].to_string());
            }
            w.keys.insert(s.to_string());
        }
        w
    }

    fn wants(&self, path: &str) -> bool {
        self.keys.contains(path) || self.prefixes.contains(path)
    }
}

impl<'de> DeserializeSeed<'de> for Root<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Root<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(key) = map.next_key::<String>()? {
            if key == "_phx" {
                *self.version = map.next_value_seed(Meta)?;
                continue;
            }
            check_segment::<A::Error>("", &key)?;
            let skip = self.only.is_some_and(|w| !w.wants(&key));
            insert::<A::Error>(
                self.entries,
                &key,
                if skip { Entry::Skipped } else { Entry::Object },
            )?;
            if skip {
                map.next_value_seed(Shape {
                    parent: &key,
                    key: None,
                })?;
                continue;
            }
            map.next_value_seed(Node {
                entries: self.entries,
                path: key,
                only: self.only,
            })?;
        }
        Ok(())
    }
    fn visit_seq<A: SeqAccess<'de>>(self, _: A) -> Result<(), A::Error> {
        Err(de::Error::custom(
            "the top level is an array; it must be an object",
        ))
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<(), E> {
        Err(E::custom("the top level is a string; it must be an object"))
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<(), E> {
        Err(E::custom(
            "the top level is a boolean; it must be an object",
        ))
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<(), E> {
        Err(E::custom("the top level is a number; it must be an object"))
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<(), E> {
        Err(E::custom("the top level is a number; it must be an object"))
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<(), E> {
        Err(E::custom("the top level is a number; it must be an object"))
    }
    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        Err(E::custom("the top level is null; it must be an object"))
    }
}

fn check_segment<E: de::Error>(parent: &str, key: &str) -> Result<(), E> {
    if key.is_empty() || key.contains('/') {
        let full = if parent.is_empty() {
            key.to_string()
        } else {
            format!("{parent}/{key}")
        };
        return Err(E::custom(format!(
            "key `{}` is empty or contains `/`, which phx-hook uses to separate key paths",
            crate::text::name(&full)
        )));
    }
    Ok(())
}

fn twice<E: de::Error>(path: &str) -> E {
    E::custom(format!("key `{}` appears twice", crate::text::name(path)))
}

fn insert<E: de::Error>(
    entries: &mut BTreeMap<String, Entry>,
    path: &str,
    e: Entry,
) -> Result<(), E> {
    if entries.insert(path.to_string(), e).is_some() {
        return Err(twice(path));
    }
    Ok(())
}

/// Any wanted value below the top level.
struct Node<'a> {
    entries: &'a mut BTreeMap<String, Entry>,
    path: String,
    only: Option<&'a Wanted>,
}

impl<'de> DeserializeSeed<'de> for Node<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl Node<'_> {
    fn set<E: de::Error>(self, e: Entry) -> Result<(), E> {
        // Replace the placeholder inserted by the parent.
        self.entries.insert(self.path, e);
        Ok(())
    }
}

impl<'de> Visitor<'de> for Node<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string or an object")
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<(), E> {
        self.set(Entry::Text(Secret::copy_from(v.as_bytes())))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<(), E> {
        let v = Zeroizing::new(v.into_bytes());
        self.set(Entry::Text(Secret::copy_from(&v)))
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<(), E> {
        self.set(Entry::Other("boolean"))
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<(), E> {
        self.set(Entry::Other("number"))
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<(), E> {
        self.set(Entry::Other("number"))
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<(), E> {
        self.set(Entry::Other("number"))
    }
    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        self.set(Entry::Other("null"))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq.next_element::<de::IgnoredAny>()?.is_some() {}
        self.set(Entry::Other("array"))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let Some(only) = self.only else {
            // The full index: every name goes into `entries`, which finds duplicates.
            while let Some(key) = map.next_key::<String>()? {
                check_segment::<A::Error>(&self.path, &key)?;
                let path = format!("{}/{key}", self.path);
                insert::<A::Error>(self.entries, &path, Entry::Object)?;
                map.next_value_seed(Node {
                    entries: self.entries,
                    path,
                    only: None,
                })?;
            }
            return Ok(());
        };
        // A partial index: only wanted names are kept; the others are checked for
        // duplicates among their siblings here, without a path or an entry each.
        let mut seen = std::collections::HashSet::new();
        let mut path = String::with_capacity(self.path.len() + 32);
        while let Some(Key(key)) = map.next_key::<Key<'de>>()? {
            check_segment::<A::Error>(&self.path, &key)?;
            if seen.contains(&key) {
                return Err(twice(&format!("{}/{key}", self.path)));
            }
            path.clear();
            path.push_str(&self.path);
            path.push('/');
            path.push_str(&key);
            if only.wants(&path) {
                insert::<A::Error>(self.entries, &path, Entry::Object)?;
                map.next_value_seed(Node {
                    entries: self.entries,
                    path: path.clone(),
                    only: self.only,
                })?;
            } else {
                map.next_value_seed(Shape {
                    parent: &path,
                    key: None,
                })?;
            }
            seen.insert(key);
        }
        Ok(())
    }
}

/// A value this index was not asked for: its names are checked like every other one (so
/// `check` and the hook agree on what is malformed: no empty name, no `/`, no name twice
/// in one object), nothing is kept or copied, and its path (`parent/key`) is only built
/// if it turns out to be an object.
struct Shape<'p> {
    parent: &'p str,
    key: Option<&'p str>,
}

impl<'de> DeserializeSeed<'de> for Shape<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Shape<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<(), E> {
        Ok(())
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<(), E> {
        Ok(())
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<(), E> {
        Ok(())
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<(), E> {
        Ok(())
    }
    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq.next_element::<de::IgnoredAny>()?.is_some() {}
        Ok(())
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let path = match self.key {
            Some(k) => std::borrow::Cow::Owned(format!("{}/{k}", self.parent)),
            None => std::borrow::Cow::Borrowed(self.parent),
        };
        let mut seen = std::collections::HashSet::new();
        while let Some(Key(key)) = map.next_key::<Key<'de>>()? {
            check_segment::<A::Error>(&path, &key)?;
            if seen.contains(&key) {
                return Err(twice(&format!("{path}/{key}")));
            }
            map.next_value_seed(Shape {
                parent: &path,
                key: Some(&key),
            })?;
            seen.insert(key);
        }
        Ok(())
    }
}

/// An object's key, borrowed from the plaintext when it holds no escape.
struct Key<'de>(std::borrow::Cow<'de, str>);

impl<'de> de::Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a key")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Key<'de>, E> {
                Ok(Key(std::borrow::Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Key<'de>, E> {
                Ok(Key(std::borrow::Cow::Owned(v.to_owned())))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Key<'de>, E> {
                Ok(Key(std::borrow::Cow::Owned(v)))
            }
        }
        d.deserialize_str(V)
    }
}

/// `_phx`: an object whose `version` is a non-negative integer; other fields are kept
/// for later versions and ignored.
struct Meta;

impl<'de> DeserializeSeed<'de> for Meta {
    type Value = Option<u64>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Option<u64>, D::Error> {
        d.deserialize_any(self)
    }
}

/// `_phx` is not an object: say what it is, never quote it.
fn meta_is<E: de::Error>(what: &str) -> E {
    E::custom(format!(
        "`_phx` is {what}; it must be an object (phx-hook's metadata)"
    ))
}

impl<'de> Visitor<'de> for Meta {
    type Value = Option<u64>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object (`_phx`)")
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<Option<u64>, E> {
        Err(meta_is("a string"))
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Option<u64>, E> {
        Err(meta_is("a boolean"))
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Option<u64>, E> {
        Err(meta_is("a number"))
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Option<u64>, E> {
        Err(meta_is("a number"))
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Option<u64>, E> {
        Err(meta_is("a number"))
    }
    fn visit_unit<E: de::Error>(self) -> Result<Option<u64>, E> {
        Err(meta_is("null"))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, _: A) -> Result<Option<u64>, A::Error> {
        Err(meta_is("an array"))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Option<u64>, A::Error> {
        let mut version = None;
        while let Some(key) = map.next_key::<String>()? {
            if key == "version" {
                version = Some(map.next_value::<u64>().map_err(|_| {
                    de::Error::custom("`_phx.version` must be a non-negative integer")
                })?);
            } else {
                map.next_value::<de::IgnoredAny>()?;
            }
        }
        Ok(version)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vault(json: &str) -> Result<Vault, VaultError> {
        Vault::from_plaintext(
            json.as_bytes(),
            VaultInfo {
                path: "/v.gpg".into(),
                ..Default::default()
            },
        )
    }

    fn k(s: &str) -> KeyPath {
        s.parse().unwrap()
    }

    #[test]
    fn nested_keys_resolve() {
        let v = vault(r#"{"_phx":{"version":7,"diff_key":"x"},"samba":{"password":"s3\"cr\u00e9t"},"n":1,"a":[1]}"#).unwrap();
        assert_eq!(v.info.version, Some(7));
        assert_eq!(
            v.get(&k("samba/password")).unwrap().expose(),
            "s3\"cr\u{e9}t".as_bytes()
        );
        assert_eq!(
            v.get(&k("samba")).unwrap_err(),
            LookupError::Object("samba".into())
        );
        assert_eq!(
            v.get(&k("n")).unwrap_err(),
            LookupError::NotText("n".into(), "number")
        );
        assert_eq!(
            v.get(&k("a")).unwrap_err(),
            LookupError::NotText("a".into(), "array")
        );
        assert_eq!(
            v.get(&k("nope")).unwrap_err(),
            LookupError::Missing("nope".into())
        );
        assert_eq!(v.keys().collect::<Vec<_>>(), vec!["samba/password"]);
    }

    #[test]
    fn bad_plaintexts_never_quote_values() {
        for (json, want) in [
            ("[\"topsecretvalue\"]", "array"),
            ("\"topsecretvalue\"", "string"),
            ("{\"a\": \"topsecretvalue\"", "ends early"),
            ("{\"a\": topsecretvalue}", "syntax error"),
            ("{\"a/b\": \"topsecretvalue\"}", "contains `/`"),
            (
                "{\"a\": {\"b\": \"x\"}, \"a\": \"topsecretvalue\"}",
                "twice",
            ),
            (
                "{\"_phx\": {\"version\": \"topsecretvalue\"}}",
                "_phx.version",
            ),
            ("not json topsecretvalue", "syntax error"),
            ("{\"_phx\": \"topsecretvalue\"}", "`_phx` is a string"),
            ("{\"_phx\": [\"topsecretvalue\"]}", "`_phx` is an array"),
        ] {
            let e = vault(json).unwrap_err().to_string();
            assert!(e.contains(want), "{json}: {e}");
            assert!(!e.contains("topsecretvalue"), "{json}: {e}");
        }
    }

    /// Regression (issue 12, point 10): an error names a key, but never at the size an
    /// attacker chose, and never with raw control characters.
    #[test]
    fn errors_quote_names_short_and_escaped() {
        let huge = format!("{}/\\u001b[31m", "k".repeat(1 << 20));
        let e = vault(&format!("{{\"{huge}\": \"x\"}}"))
            .unwrap_err()
            .to_string();
        assert!(e.len() < 400, "{} bytes", e.len());
        assert!(!e.contains('\x1b'), "{e}");
        let dup = format!("{{\"{0}\": \"x\", \"{0}\": \"y\"}}", "d".repeat(100_000));
        let e = vault(&dup).unwrap_err().to_string();
        assert!(e.contains("twice") && e.len() < 400, "{e}");
    }

    /// The hook indexes only the keys a guest needs, but reports the same malformations
    /// as `check`, which indexes everything.
    #[test]
    fn a_partial_index_finds_what_a_full_one_finds() {
        let wanted = Wanted::new([&k("a/b")]);
        for (json, want) in [
            (r#"{"a":{"b":"1"},"z":{"y/x":"2"}}"#, "contains `/`"),
            (r#"{"a":{"b":"1"},"z":{"y":"2","y":"3"}}"#, "twice"),
            (r#"{"a":{"b":"1"},"z":"2","z":{"q":"3"}}"#, "twice"),
            (r#"{"a":{"b":"1"},"z":{"y":{"x":"1","x":[2]}}}"#, "twice"),
            (
                r#"{"a":{"b":"1"},"z":{"y":{"\u0078":"1","x":"2"}}}"#,
                "twice",
            ),
            (r#"{"a":{"b":"1","c":{"":"1"}}}"#, "empty"),
            (r#"{"a":{"b":"1"},"z":[{"y":"1"}],"z":3}"#, "twice"),
        ] {
            let info = VaultInfo::default();
            let full = Vault::from_plaintext(json.as_bytes(), info.clone()).unwrap_err();
            let part = Vault::from_plaintext_for(json.as_bytes(), info, &wanted).unwrap_err();
            assert!(full.to_string().contains(want), "{json}: {full}");
            assert_eq!(full.to_string(), part.to_string(), "{json}");
        }
        let v = Vault::from_plaintext_for(
            br#"{"a":{"b":"1","c":"2"},"z":"3"}"#,
            VaultInfo::default(),
            &wanted,
        )
        .unwrap();
        assert_eq!(v.get(&k("a/b")).unwrap().expose(), b"1");
        assert_eq!(v.keys().collect::<Vec<_>>(), vec!["a/b"]);
        assert!(v.get(&k("z")).is_err());
    }
}

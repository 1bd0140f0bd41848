//! Vault authoring: reading and writing the vault the way people edit it. Decryption
//! and signing go through the user's own `gpg` (their keyring, agent, smartcard) by
//! default, or through rPGP with a key file (`--key`, e.g. the host key on the hypervisor
//! itself). Every write encrypts to every key in the recipients file with a fresh session
//! key, signs, increments `_phx.version`, and replaces the vault atomically. Plaintext
//! only ever travels through pipes and wiped buffers, never a file on disk.

use std::fs;
use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Stdio};

use camino::{Utf8Path, Utf8PathBuf};
use zeroize::Zeroizing;

use super::doc::{Doc, DocError};
use super::pgp;
use crate::input::InputError;

/// How the vault is decrypted and signed.
enum Backend {
    /// The user's `gpg`; `signer` picks the signing key (`--local-user`), else gpg's default.
    Gpg {
        /// The signing key.
        signer: Option<String>,
    },
    /// rPGP with a secret key file (decrypts and signs).
    Key {
        /// The key.
        keys: Box<pgp::HostKeys>,
        /// Its passphrase.
        passphrase: Option<Zeroizing<Vec<u8>>>,
    },
}

/// An authoring failure, phrased for the user (never a value).
#[derive(Debug, thiserror::Error)]
pub enum AuthorError {
    /// Something phrased already.
    #[error("{0}")]
    Msg(String),
    /// The plaintext is not a vault document.
    #[error("the vault's plaintext is not valid: {0}")]
    Doc(#[from] DocError),
    /// An input file failed its checks.
    #[error(transparent)]
    Input(#[from] InputError),
}

fn msg(s: impl Into<String>) -> AuthorError {
    AuthorError::Msg(s.into())
}

/// The vault being authored, and how.
pub struct Author {
    /// The vault file.
    pub vault: Utf8PathBuf,
    /// The recipients file (public keys every write encrypts to).
    pub recipients: Utf8PathBuf,
    backend: Backend,
    /// The most plaintext a decryption may yield (`max_plaintext`).
    limit: u64,
}

/// One recipient, for listing.
pub struct Recipient {
    /// Primary fingerprint.
    pub fingerprint: String,
    /// First user id.
    pub user_id: String,
    /// Key ids of all its keys.
    pub key_ids: Vec<String>,
    armored: String,
}

impl Author {
    /// Author with the user's gpg.
    pub fn gpg(vault: &Utf8Path, recipients: &Utf8Path, signer: Option<String>) -> Author {
        Author {
            vault: vault.to_owned(),
            recipients: recipients.to_owned(),
            backend: Backend::Gpg { signer },
            limit: crate::config::DEFAULT_MAX_PLAINTEXT,
        }
    }

    /// Refuse plaintexts larger than `limit` bytes (the config's `max_plaintext`).
    pub fn with_limit(mut self, limit: u64) -> Author {
        self.limit = limit;
        self
    }

    /// Author with a key file (armored or binary; the first key signs).
    pub fn with_key(
        vault: &Utf8Path,
        recipients: &Utf8Path,
        key: &Utf8Path,
        passphrase: Option<&Utf8Path>,
    ) -> Result<Author, AuthorError> {
        let bytes = read_private(key)?;
        let keys = pgp::HostKeys::parse(&bytes).map_err(|e| match e {
            pgp::KeyFileError::NoKeys(m) | pgp::KeyFileError::Invalid(m) => {
                msg(format!("failed to load `{key}`: {m}"))
            }
        })?;
        let passphrase = match passphrase {
            Some(p) => {
                let mut b = read_private(p)?;
                while matches!(b.last(), Some(b'\n' | b'\r')) {
                    b.pop();
                }
                Some(b)
            }
            None => None,
        };
        Ok(Author {
            vault: vault.to_owned(),
            recipients: recipients.to_owned(),
            backend: Backend::Key {
                keys: Box::new(keys),
                passphrase,
            },
            limit: crate::config::DEFAULT_MAX_PLAINTEXT,
        })
    }

    /// Decrypt any vault-format file with this author's keys.
    pub fn decrypt_file(&self, path: &Utf8Path) -> Result<Zeroizing<Vec<u8>>, AuthorError> {
        let ct = fs::read(path).map_err(|e| msg(format!("failed to read `{path}`: {e}")))?;
        self.decrypt(&ct, path)
    }

    fn decrypt(&self, ct: &[u8], path: &Utf8Path) -> Result<Zeroizing<Vec<u8>>, AuthorError> {
        match &self.backend {
            Backend::Gpg { .. } => {
                let mut c = Command::new("gpg");
                c.args(["--batch", "--quiet", "--status-fd", "2", "--decrypt"]);
                let (_, out, err) = gpg_pipe(&mut c, ct, self.limit)?;
                // gpg exits non-zero when it cannot check a signature (the signer's
                // public key is not in the user's keyring), although it decrypted fine;
                // signatures are the host's business (`signers`), so only the decryption
                // status counts here.
                let decrypted = err
                    .lines()
                    .any(|l| l.starts_with("[GNUPG:] DECRYPTION_OKAY"))
                    && !err
                        .lines()
                        .any(|l| l.starts_with("[GNUPG:] DECRYPTION_FAILED"));
                if !decrypted {
                    let human: String = err
                        .lines()
                        .filter(|l| !l.starts_with("[GNUPG:]"))
                        .collect::<Vec<_>>()
                        .join("\n");
                    return Err(msg(format!(
                        "gpg could not decrypt `{path}`: {}",
                        first_lines(&human)
                    )));
                }
                Ok(out)
            }
            Backend::Key { keys, passphrase } => {
                let d = pgp::decrypt(
                    keys,
                    passphrase.as_ref(),
                    ct,
                    true,
                    &[],
                    &pgp::Certs::none(),
                    self.limit,
                )
                .map_err(|e| {
                    msg(match e {
                        pgp::DecryptError::NotForThisKey { recipients } => format!(
                            "`{path}` is not encrypted to this key (it is for {})",
                            recipients.join(", ")
                        ),
                        pgp::DecryptError::Tampered => {
                            format!("`{path}` failed its integrity check")
                        }
                        pgp::DecryptError::WrongPassphrase { key }
                        | pgp::DecryptError::PassphraseNeeded { key } => {
                            format!("the passphrase does not unlock {key}")
                        }
                        pgp::DecryptError::NotOpenPgp(d) | pgp::DecryptError::Corrupt(d) => {
                            format!("`{path}` is damaged: {d}")
                        }
                        pgp::DecryptError::NotEncrypted => format!("`{path}` is not encrypted"),
                        pgp::DecryptError::GnupgAeadDisabled => format!("`{path}` uses OCB"),
                        pgp::DecryptError::TooLarge { limit } => format!(
                            "`{path}` decompresses to more than {limit} bytes (`max_plaintext`)"
                        ),
                        pgp::DecryptError::TooManySessionKeys { found } => {
                            format!("`{path}` carries {found} session-key packets for this key")
                        }
                    })
                })?;
                Ok(d.plaintext)
            }
        }
    }

    /// Decrypt and parse the vault.
    pub fn read(&self) -> Result<Doc, AuthorError> {
        let pt = self.decrypt_file(&self.vault)?;
        Ok(Doc::parse(&pt)?)
    }

    /// The recipients file's keys.
    pub fn recipients(&self) -> Result<Vec<Recipient>, AuthorError> {
        let (certs, bad) = self.load_recipients()?;
        if !bad.is_empty() {
            return Err(msg(format!(
                "`{}` holds keys with invalid self-signatures: {}",
                self.recipients,
                bad.join(", ")
            )));
        }
        Ok(to_recipients(&certs))
    }

    /// The recipients file's certificates, and the fingerprints of any whose
    /// self-signatures do not verify.
    fn load_recipients(&self) -> Result<(pgp::Certs, Vec<String>), AuthorError> {
        let bytes = fs::read(&self.recipients).map_err(|e| {
            msg(format!(
                "failed to read the recipients file `{}`: {e}",
                self.recipients
            ))
        })?;
        pgp::Certs::parse(&bytes).map_err(|e| msg(format!("`{}`: {e}", self.recipients)))
    }

    /// Replace the recipients file with `list` (atomically).
    pub fn write_recipients(&self, list: &[Recipient]) -> Result<(), AuthorError> {
        let text: String = list
            .iter()
            .map(|r| r.armored.clone())
            .collect::<Vec<_>>()
            .join("\n");
        atomic_write(&self.recipients, text.as_bytes(), 0o644)
    }

    /// Parse public keys (armored or binary) into recipients.
    pub fn parse_recipients(bytes: &[u8]) -> Result<Vec<Recipient>, AuthorError> {
        let (certs, bad) =
            pgp::Certs::parse(bytes).map_err(|e| msg(format!("not OpenPGP public keys: {e}")))?;
        if !bad.is_empty() {
            return Err(msg(format!(
                "keys with invalid self-signatures: {}",
                bad.join(", ")
            )));
        }
        let out = to_recipients(&certs);
        if out.is_empty() {
            return Err(msg("no public key found"));
        }
        Ok(out)
    }

    /// Write `doc` as the new vault: version + 1, encrypted to every recipient with a
    /// fresh session key, signed, atomically. Returns the new version.
    pub fn write(&self, doc: &mut Doc) -> Result<u64, AuthorError> {
        let version = doc.version() + 1;
        doc.set_version(version);
        let pt = doc.to_json();
        let armor = fs::read(&self.vault)
            .map(|b| b.starts_with(b"-----BEGIN"))
            .unwrap_or(true);
        let ct = self.encrypt(&pt, armor)?;
        let mode = fs::metadata(&self.vault)
            .map(|m| m.permissions().mode() & 0o7777)
            .unwrap_or(0o644);
        atomic_write(&self.vault, &ct, mode)?;
        Ok(version)
    }

    /// Encrypt `pt` to the recipients and sign.
    pub fn encrypt(&self, pt: &[u8], armor: bool) -> Result<Vec<u8>, AuthorError> {
        let (certs, _) = self.load_recipients()?;
        if certs.infos().is_empty() {
            return Err(msg(format!(
                "the recipients file `{}` holds no key",
                self.recipients
            )));
        }
        match &self.backend {
            Backend::Key { keys, passphrase } => {
                pgp::encrypt(pt, &certs, Some((keys, passphrase.as_ref())), armor)
                    .map_err(|e| msg(format!("failed to encrypt: {e}")))
            }
            Backend::Gpg { signer } => gpg_encrypt(
                pt,
                &certs
                    .infos()
                    .iter()
                    .map(|i| i.armored.clone())
                    .collect::<Vec<_>>(),
                signer.as_deref(),
                armor,
            ),
        }
    }
}

/// `gpg --sign --encrypt` to each key via `--recipient-file` (no import into the user's
/// keyring, no trust questions), plaintext on stdin.
fn gpg_encrypt(
    pt: &[u8],
    certs: &[String],
    signer: Option<&str>,
    armor: bool,
) -> Result<Vec<u8>, AuthorError> {
    let dir = private_dir(true)?;
    let mut c = Command::new("gpg");
    c.args(["--batch", "--yes", "--quiet", "--sign", "--encrypt"]);
    if armor {
        c.arg("--armor");
    }
    if let Some(s) = signer {
        c.args(["--local-user", s]);
    }
    for (i, cert) in certs.iter().enumerate() {
        let p = dir.path().join(format!("r{i}.asc"));
        fs::write(&p, cert).map_err(|e| msg(format!("failed to write a recipient key: {e}")))?;
        c.arg("--recipient-file").arg(&p);
    }
    let (status, out, err) = gpg_pipe(&mut c, pt, u64::MAX)?;
    if !status.success() || out.is_empty() {
        return Err(msg(format!(
            "gpg could not sign and encrypt: {}",
            first_lines(&err)
        )));
    }
    Ok(out.to_vec())
}

/// Run gpg with `input` on stdin (fed from a thread, so a full output pipe cannot
/// deadlock it), returning its status, stdout (in a wiped buffer) and stderr.
/// Run gpg with `input` on stdin; its stdout (at most `limit` bytes: a compressed vault
/// can expand without bound) and its stderr (at most 1 MiB).
fn gpg_pipe(
    c: &mut Command,
    input: &[u8],
    limit: u64,
) -> Result<(std::process::ExitStatus, Zeroizing<Vec<u8>>, String), AuthorError> {
    let mut child = c
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| msg(format!("failed to run gpg: {e}")))?;
    let mut stdin = child.stdin.take().ok_or_else(|| msg("gpg: no stdin"))?;
    let input = Zeroizing::new(input.to_vec());
    let feeder = std::thread::spawn(move || {
        let _ = stdin.write_all(&input);
    });
    let mut out = Zeroizing::new(Vec::new());
    if let Some(o) = child.stdout.take() {
        o.take(limit.saturating_add(1))
            .read_to_end(&mut out)
            .map_err(|e| msg(format!("gpg: {e}")))?;
    }
    if out.len() as u64 > limit {
        let _ = child.kill();
        let _ = child.wait();
        let _ = feeder.join();
        return Err(msg(format!(
            "gpg's plaintext is larger than {limit} bytes (`max_plaintext`); refusing it (a compression bomb?)"
        )));
    }
    let mut err = String::new();
    if let Some(e) = child.stderr.take() {
        let _ = e.take(1 << 20).read_to_string(&mut err);
    }
    let _ = feeder.join();
    let status = child.wait().map_err(|e| msg(format!("gpg: {e}")))?;
    Ok((status, out, err))
}

fn to_recipients(certs: &pgp::Certs) -> Vec<Recipient> {
    certs
        .infos()
        .into_iter()
        .map(|i| Recipient {
            fingerprint: i.fingerprint,
            user_id: i.user_id,
            key_ids: i.key_ids,
            armored: i.armored,
        })
        .collect()
}

fn first_lines(s: &str) -> String {
    s.lines()
        .filter(|l| !l.trim().is_empty())
        .take(3)
        .collect::<Vec<_>>()
        .join("; ")
}

fn read_private(path: &Utf8Path) -> Result<Zeroizing<Vec<u8>>, AuthorError> {
    let mut f = fs::File::open(path).map_err(|e| msg(format!("failed to read `{path}`: {e}")))?;
    let meta = f
        .metadata()
        .map_err(|e| msg(format!("failed to read `{path}`: {e}")))?;
    if meta.permissions().mode() & 0o077 != 0 {
        return Err(InputError::Untrusted {
            path: path.to_owned(),
            problem: format!(
                "it is readable or writable by group or other (mode {:04o})",
                meta.permissions().mode() & 0o7777
            ),
            fix: format!("chmod 600 {path}"),
        }
        .into());
    }
    let mut b = Zeroizing::new(Vec::new());
    f.read_to_end(&mut b)
        .map_err(|e| msg(format!("failed to read `{path}`: {e}")))?;
    Ok(b)
}

/// Write `bytes` to `path` through a temporary file in the same directory, fsync, rename
/// (`files::replace`, which knows pmxcfs's rules).
pub fn atomic_write(path: &Utf8Path, bytes: &[u8], mode: u32) -> Result<(), AuthorError> {
    crate::files::replace(path, bytes, mode, true).map_err(AuthorError::Msg)
}

/// A private (0700) temporary directory on a RAM-backed filesystem: `$XDG_RUNTIME_DIR`,
/// then `/dev/shm`. With `allow_disk`, `/tmp` is the last resort (for public data only,
/// or when the user said `--insecure-tmp`).
pub fn private_dir(allow_disk: bool) -> Result<tempfile::TempDir, AuthorError> {
    let mut candidates: Vec<Utf8PathBuf> = Vec::new();
    if let Ok(x) = std::env::var("XDG_RUNTIME_DIR")
        && !x.is_empty()
    {
        candidates.push(x.into());
    }
    candidates.push("/dev/shm".into());
    for c in &candidates {
        if is_ram_backed(c)
            && let Ok(d) = tempfile::Builder::new().prefix("phx-hook-").tempdir_in(c)
        {
            let _ = fs::set_permissions(d.path(), fs::Permissions::from_mode(0o700));
            return Ok(d);
        }
    }
    if allow_disk {
        let d = tempfile::Builder::new()
            .prefix("phx-hook-")
            .tempdir()
            .map_err(|e| msg(format!("temporary directory: {e}")))?;
        let _ = fs::set_permissions(d.path(), fs::Permissions::from_mode(0o700));
        return Ok(d);
    }
    Err(msg(format!(
        "no RAM-backed directory for the plaintext (tried {}); a disk-backed one needs --insecure-tmp",
        candidates
            .iter()
            .map(|c| c.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    )))
}

/// Whether `path` is on tmpfs or ramfs.
pub fn is_ram_backed(path: &Utf8Path) -> bool {
    nix::sys::statfs::statfs(path.as_std_path())
        .map(|s| {
            let t = s.filesystem_type();
            t == nix::sys::statfs::TMPFS_MAGIC || t.0 == 0x8584_58f6 // RAMFS_MAGIC
        })
        .unwrap_or(false)
}

/// A newly generated host key: armored secret (wiped on drop), armored public part,
/// fingerprint.
pub fn generate_host_key(uid: &str) -> Result<(Zeroizing<String>, String, String), AuthorError> {
    let k = pgp::generate_key(uid).map_err(|e| msg(format!("failed to generate a key: {e}")))?;
    Ok((k.secret_armored, k.public_armored, k.fingerprint))
}

/// The public certificates (armored) and fingerprints of the secret keys in `bytes`.
pub fn public_of_secret(bytes: &[u8]) -> Result<Vec<String>, AuthorError> {
    let keys = pgp::HostKeys::parse(bytes).map_err(|e| match e {
        pgp::KeyFileError::NoKeys(m) | pgp::KeyFileError::Invalid(m) => msg(m),
    })?;
    keys.public_armored().map_err(msg)
}

/// Key ids a vault file is encrypted to (no decryption needed).
pub fn encrypted_to(ct: &[u8]) -> Result<Vec<String>, AuthorError> {
    pgp::recipients_of(ct).map_err(msg)
}

impl Recipient {
    /// The armored certificate.
    pub fn armored(&self) -> &str {
        &self.armored
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ram_backed_filesystems() {
        assert!(is_ram_backed(Utf8Path::new("/dev/shm")));
        assert!(!is_ram_backed(Utf8Path::new("/var/tmp")));
        let d = private_dir(false).unwrap();
        let p = Utf8Path::from_path(d.path()).unwrap();
        assert!(is_ram_backed(p));
        assert_eq!(fs::metadata(p).unwrap().permissions().mode() & 0o777, 0o700);
    }
}

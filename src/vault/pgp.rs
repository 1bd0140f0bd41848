//! The adapter to rPGP (`pgp` 0.21), the only module that imports it. It wraps the traps
//! listed in OPENPGP.md §9: several keys in one file (`from_reader_many`, never
//! `_single`), a wrong passphrase that rPGP reports as a missing key, GnuPG 2.4's OCB
//! packets (opt-in), signature checks that must try subkeys, and SEIPDv1 read mode left
//! at `CheckFirst` so no unauthenticated plaintext is ever released.

use std::io::Read;

use pgp::composed::{
    DecryptionOptions, Deserializable, Esk, Message, SignedPublicKey, SignedSecretKey, TheRing,
};
use pgp::types::{KeyDetails, Password, VerifyingKey};
use zeroize::Zeroizing;

/// The host's secret keys.
pub(crate) struct HostKeys {
    keys: Vec<SignedSecretKey>,
}

/// Why the key file could not be used.
pub(crate) enum KeyFileError {
    NoKeys(String),
    Invalid(String),
}

impl HostKeys {
    /// Parse every secret key in `bytes` (armored or binary).
    pub(crate) fn parse(bytes: &[u8]) -> Result<HostKeys, KeyFileError> {
        let mut keys = Vec::new();
        for block in armor_blocks(bytes) {
            let iter = SignedSecretKey::from_reader_many(block)
                .map_err(|e| KeyFileError::Invalid(e.to_string()))?
                .0;
            for k in iter {
                // No `verify_bindings` here: this is the host's own secret key from a
                // root-only file, so binding signatures (which stop a stranger's subkey
                // being attached to a certificate) protect nothing, and checking them
                // costs an Ed25519 verification per key on every guest start.
                let k = k.map_err(|e| KeyFileError::Invalid(e.to_string()))?;
                keys.push(k);
            }
        }
        if keys.is_empty() {
            return Err(KeyFileError::NoKeys("no OpenPGP secret key found".into()));
        }
        Ok(HostKeys { keys })
    }

    /// Key ids of every primary key and subkey, upper-case hex (to match PKESK recipients).
    pub(crate) fn key_ids(&self) -> Vec<String> {
        self.keys
            .iter()
            .flat_map(|k| {
                std::iter::once(hex_upper(k.primary_key.legacy_key_id().as_ref())).chain(
                    k.secret_subkeys
                        .iter()
                        .map(|s| hex_upper(s.key.legacy_key_id().as_ref())),
                )
            })
            .collect()
    }

    /// Primary-key fingerprints, upper-case hex.
    pub(crate) fn fingerprints(&self) -> Vec<String> {
        self.keys.iter().map(|k| fpr(&k.primary_key)).collect()
    }
}

/// A file may hold several armored blocks one after the other (as `cat a.asc b.asc`
/// makes, and as the recipients file is written); rPGP reads one block per reader.
fn armor_blocks(bytes: &[u8]) -> Vec<&[u8]> {
    const BEGIN: &[u8] = b"-----BEGIN PGP ";
    let starts: Vec<usize> = (0..bytes.len())
        .filter(|&i| (i == 0 || bytes[i - 1] == b'\n') && bytes[i..].starts_with(BEGIN))
        .collect();
    if starts.len() <= 1 {
        return vec![bytes];
    }
    starts
        .iter()
        .enumerate()
        .map(|(k, &s)| &bytes[s..starts.get(k + 1).copied().unwrap_or(bytes.len())])
        .collect()
}

fn fpr(k: &impl KeyDetails) -> String {
    hex_upper(k.fingerprint().as_bytes())
}

fn hex_upper(b: &[u8]) -> String {
    crate::types::hex(b).to_ascii_uppercase()
}

/// Public keys to check signatures with.
pub(crate) struct Certs {
    certs: Vec<SignedPublicKey>,
}

impl Certs {
    /// Parse every certificate in `bytes` (armored or binary); certificates whose
    /// self-signatures do not verify are skipped (and named in the second value).
    pub(crate) fn parse(bytes: &[u8]) -> Result<(Certs, Vec<String>), String> {
        let mut certs = Vec::new();
        let mut bad = Vec::new();
        for block in armor_blocks(bytes) {
            let iter = SignedPublicKey::from_reader_many(block)
                .map_err(|e| e.to_string())?
                .0;
            for c in iter {
                let c = c.map_err(|e| e.to_string())?;
                match c.verify_bindings() {
                    Ok(()) => certs.push(c),
                    Err(_) => bad.push(fpr(&c.primary_key)),
                }
            }
        }
        Ok((Certs { certs }, bad))
    }

    /// An empty set.
    pub(crate) fn none() -> Certs {
        Certs { certs: Vec::new() }
    }

    fn get(&self, fingerprint: &str) -> Option<&SignedPublicKey> {
        self.certs
            .iter()
            .find(|c| fpr(&c.primary_key) == fingerprint)
    }
}

/// What decryption found out besides the plaintext.
pub(crate) struct Decrypted {
    pub(crate) plaintext: Zeroizing<Vec<u8>>,
    /// Key ids the message is encrypted to (`0000000000000000` = hidden recipient).
    pub(crate) recipients: Vec<String>,
    pub(crate) signature: Signature,
}

/// The signature status of a decrypted message.
pub(crate) enum Signature {
    Unsigned,
    /// Verified against the certificate with this primary fingerprint.
    Valid(String),
    /// Signed, but by none of the candidate keys (or the signature is bad). The issuer
    /// fingerprints (or key ids) the signatures name.
    NotVerified(Vec<String>),
}

/// Why decryption failed. No variant carries plaintext or key material.
pub(crate) enum DecryptError {
    NotOpenPgp(String),
    NotEncrypted,
    NotForThisKey {
        recipients: Vec<String>,
    },
    PassphraseNeeded {
        key: String,
    },
    WrongPassphrase {
        key: String,
    },
    Tampered,
    GnupgAeadDisabled,
    Corrupt(String),
    /// The plaintext is larger than the configured bound (a compression bomb, or a
    /// vault far larger than any real one).
    TooLarge {
        limit: u64,
    },
    /// More session-key packets addressed to this host (or hidden) than are worth trying.
    TooManySessionKeys {
        found: usize,
    },
}

/// The most session-key packets for this host's keys (or hidden recipients) that are
/// tried. Each try is a public-key decryption (~5 ms with RSA-3072), so a vault stuffed
/// with bogus packets for the host's key id would otherwise cost minutes per start. A
/// real vault has one per host key, plus one per hidden recipient.
pub(crate) const MAX_SESSION_KEY_TRIES: usize = 16;

/// Decrypt `ct` with the host keys and, when the message is signed, check the signature
/// against `signers` (primary fingerprints) looked up in `certs`. The plaintext is read
/// as a stream and refused past `limit` bytes, so a compressed vault cannot make phx-hook
/// allocate more than that.
pub(crate) fn decrypt(
    keys: &HostKeys,
    passphrase: Option<&Zeroizing<Vec<u8>>>,
    ct: &[u8],
    gnupg_aead: bool,
    signers: &[String],
    certs: &Certs,
    limit: u64,
) -> Result<Decrypted, DecryptError> {
    let (msg, _headers) =
        Message::from_reader(ct).map_err(|e| DecryptError::NotOpenPgp(e.to_string()))?;
    let recipients = match &msg {
        Message::Encrypted { esk, .. } => esk
            .iter()
            .filter_map(|e| match e {
                Esk::PublicKeyEncryptedSessionKey(p) => Some(match (p.id(), p.fingerprint()) {
                    (Ok(id), _) => hex_upper(id.as_ref()),
                    (_, Ok(Some(f))) => hex_upper(f.as_bytes()),
                    _ => "0000000000000000".to_string(),
                }),
                Esk::SymKeyEncryptedSessionKey(_) => None,
            })
            .collect::<Vec<_>>(),
        _ => return Err(DecryptError::NotEncrypted),
    };
    let ours = keys.key_ids();
    let tries = recipients
        .iter()
        .filter(|r| r.chars().all(|c| c == '0') || ours.contains(r))
        .count();
    if tries > MAX_SESSION_KEY_TRIES {
        return Err(DecryptError::TooManySessionKeys { found: tries });
    }

    let pw = match passphrase {
        Some(p) => Password::from(p.as_slice()),
        None => Password::empty(),
    };
    let pws: Vec<&Password> = keys.keys.iter().map(|_| &pw).collect();
    let mut options = DecryptionOptions::new();
    if gnupg_aead {
        options = options.enable_gnupg_aead();
    }
    let ring = TheRing {
        secret_keys: keys.keys.iter().collect(),
        key_passwords: pws,
        decrypt_options: options,
        ..Default::default()
    };
    let (mut msg, _ring_result) = match msg.decrypt_the_ring(ring, true) {
        Ok(m) => m,
        Err(e) => {
            return Err(classify(
                e,
                keys,
                &pw,
                passphrase.is_some(),
                ct,
                &recipients,
            ));
        }
    };
    let corrupt =
        |e: pgp::errors::Error| io_kind(&e).unwrap_or_else(|| DecryptError::Corrupt(e.to_string()));
    if msg.is_compressed() {
        msg = msg.decompress().map_err(corrupt)?;
    }
    let plaintext = read_capped(&mut msg, ct.len().saturating_mul(4), limit)
        .map_err(|e| corrupt(e.into()))?
        .ok_or(DecryptError::TooLarge { limit })?;
    let signature = check_signature(&msg, signers, certs);
    Ok(Decrypted {
        plaintext,
        recipients,
        signature,
    })
}

/// Read `r` to its end into a wiped buffer, or `None` once it yields more than `limit`
/// bytes. The buffer starts at `hint` and doubles, never past `limit + 1`, and each
/// outgrown buffer is wiped before it is freed (a plain `read_to_end` would leave copies
/// of the plaintext in freed memory, and grow as far as the stream goes).
fn read_capped(
    r: &mut impl Read,
    hint: usize,
    limit: u64,
) -> std::io::Result<Option<Zeroizing<Vec<u8>>>> {
    let max = usize::try_from(limit)
        .unwrap_or(usize::MAX)
        .saturating_add(1);
    let mut buf = Zeroizing::new(Vec::with_capacity(hint.clamp(4096, max)));
    loop {
        if buf.len() == buf.capacity() {
            if buf.len() >= max {
                return Ok(None);
            }
            let mut bigger = Zeroizing::new(Vec::with_capacity(
                buf.capacity().saturating_mul(2).min(max),
            ));
            bigger.extend_from_slice(&buf);
            buf = bigger;
        }
        let len = buf.len();
        // Zero only what this read may fill: zeroing all spare room on every call would
        // make reading a large plaintext quadratic.
        let room = (buf.capacity() - len).min(64 * 1024);
        buf.resize(len + room, 0);
        match r.read(&mut buf[len..]) {
            Ok(0) => {
                buf.truncate(len);
                return Ok(Some(buf));
            }
            Ok(n) => buf.truncate(len + n),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => buf.truncate(len),
            Err(e) => return Err(e),
        }
    }
}

fn check_signature(msg: &Message<'_>, signers: &[String], certs: &Certs) -> Signature {
    let Message::Signed { reader, .. } = msg else {
        return Signature::Unsigned;
    };
    let mut issuers = Vec::new();
    for i in 0..reader.num_signatures() {
        if let Some(sig) = reader.signature(i) {
            for f in sig.issuer_fingerprint() {
                issuers.push(hex_upper(f.as_bytes()));
            }
            if sig.issuer_fingerprint().is_empty() {
                for id in sig.issuer_key_id() {
                    issuers.push(hex_upper(id.as_ref()));
                }
            }
        }
        for want in signers {
            let Some(cert) = certs.get(want) else {
                continue;
            };
            let mut cands: Vec<&dyn VerifyingKey> = vec![&cert.primary_key];
            cands.extend(
                cert.public_subkeys
                    .iter()
                    .map(|s| &s.key as &dyn VerifyingKey),
            );
            if cands
                .into_iter()
                .any(|k| msg.verify_nested_explicit(i, k).is_ok())
            {
                return Signature::Valid(want.clone());
            }
        }
    }
    issuers.dedup();
    Signature::NotVerified(issuers)
}

/// Turn rPGP's decrypt error into one that tells the administrator what to do. rPGP
/// reports a wrong passphrase as a missing key (OPENPGP.md §4), so a missing key is
/// diagnosed here: does any host key match a recipient, and does its passphrase unlock it?
fn classify(
    e: pgp::errors::Error,
    keys: &HostKeys,
    pw: &Password,
    have_pw: bool,
    _ct: &[u8],
    recipients: &[String],
) -> DecryptError {
    if let Some(k) = io_kind(&e) {
        return k;
    }
    let text = e.to_string();
    if text.contains("type 20") || text.contains("DecryptionOptions") {
        return DecryptError::GnupgAeadDisabled;
    }
    if !matches!(e, pgp::errors::Error::MissingKey) {
        return DecryptError::Corrupt(text);
    }
    let hidden = recipients.iter().any(|r| r.chars().all(|c| c == '0'));
    for key in &keys.keys {
        let ids: Vec<String> = std::iter::once(hex_upper(key.primary_key.legacy_key_id().as_ref()))
            .chain(
                key.secret_subkeys
                    .iter()
                    .map(|s| hex_upper(s.key.legacy_key_id().as_ref())),
            )
            .collect();
        let matched = hidden || recipients.iter().any(|r| ids.contains(r));
        if !matched {
            continue;
        }
        let locked = key.primary_key.secret_params().is_encrypted()
            || key
                .secret_subkeys
                .iter()
                .any(|s| s.key.secret_params().is_encrypted());
        if !locked {
            continue;
        }
        let unlocks = key
            .secret_subkeys
            .iter()
            .map(|s| s.key.unlock(pw, |_, _| Ok(())).is_ok())
            .chain(std::iter::once(
                key.primary_key.unlock(pw, |_, _| Ok(())).is_ok(),
            ))
            .any(|ok| ok);
        if !unlocks {
            let key = fpr(&key.primary_key);
            return if have_pw {
                DecryptError::WrongPassphrase { key }
            } else {
                DecryptError::PassphraseNeeded { key }
            };
        }
    }
    DecryptError::NotForThisKey {
        recipients: recipients.to_vec(),
    }
}

/// rPGP wraps the MDC failure (and truncation) in an I/O error.
fn io_kind(e: &pgp::errors::Error) -> Option<DecryptError> {
    let text = e.to_string();
    if matches!(e, pgp::errors::Error::MdcError) || text.contains("Modification Detection Code") {
        return Some(DecryptError::Tampered);
    }
    if let pgp::errors::Error::IO { source, .. } = e {
        let inner = source
            .get_ref()
            .and_then(|i| i.downcast_ref::<pgp::errors::Error>());
        if matches!(inner, Some(pgp::errors::Error::MdcError)) {
            return Some(DecryptError::Tampered);
        }
        if source.kind() == std::io::ErrorKind::UnexpectedEof {
            return Some(DecryptError::Corrupt("the message is truncated".into()));
        }
    }
    None
}

// ---- Writing: key generation, encryption, signing (vault authoring) ----

use pgp::composed::{
    ArmorOptions, EncryptionCaps, KeyType, MessageBuilder, SecretKeyParamsBuilder,
    SubkeyParamsBuilder,
};
use pgp::crypto::{ecc_curve::ECCCurve, hash::HashAlgorithm, sym::SymmetricKeyAlgorithm};
use pgp::types::CompressionAlgorithm;

/// A freshly generated host key.
pub(crate) struct NewKey {
    pub(crate) secret_armored: Zeroizing<String>,
    pub(crate) public_armored: String,
    pub(crate) fingerprint: String,
}

/// Generate a v4 host key that gpg 2.2 reads: Ed25519 (legacy) primary for certifying and
/// signing, a Curve25519 (legacy ECDH) encryption subkey, and preferences AES-256,
/// SHA-512, ZLIB, without which gpg 2.2 falls back to 3DES (OPENPGP.md §9.5).
pub(crate) fn generate_key(uid: &str) -> Result<NewKey, String> {
    let mut rng = rand::thread_rng();
    let mut enc = SubkeyParamsBuilder::default();
    enc.key_type(KeyType::ECDH(ECCCurve::Curve25519Legacy))
        .can_encrypt(EncryptionCaps::All);
    let mut p = SecretKeyParamsBuilder::default();
    p.key_type(KeyType::Ed25519Legacy)
        .can_certify(true)
        .can_sign(true)
        .primary_user_id(uid.into())
        .preferred_symmetric_algorithms(
            vec![SymmetricKeyAlgorithm::AES256, SymmetricKeyAlgorithm::AES128].into(),
        )
        .preferred_hash_algorithms(vec![HashAlgorithm::Sha512, HashAlgorithm::Sha256].into())
        .preferred_compression_algorithms(
            vec![CompressionAlgorithm::ZLIB, CompressionAlgorithm::ZIP].into(),
        )
        .subkeys(vec![enc.build().map_err(|e| e.to_string())?]);
    let key = p
        .build()
        .map_err(|e| e.to_string())?
        .generate(&mut rng)
        .map_err(|e| e.to_string())?;
    let secret_armored = Zeroizing::new(
        key.to_armored_string(ArmorOptions::default())
            .map_err(|e| e.to_string())?,
    );
    let public_armored = key
        .to_public_key()
        .to_armored_string(ArmorOptions::default())
        .map_err(|e| e.to_string())?;
    Ok(NewKey {
        secret_armored,
        public_armored,
        fingerprint: fpr(&key.primary_key),
    })
}

impl HostKeys {
    /// The public certificates of these keys, armored.
    pub(crate) fn public_armored(&self) -> Result<Vec<String>, String> {
        self.keys
            .iter()
            .map(|k| {
                k.to_public_key()
                    .to_armored_string(ArmorOptions::default())
                    .map_err(|e| e.to_string())
            })
            .collect()
    }
}

/// One certificate's facts, for listing recipients.
pub(crate) struct CertInfo {
    pub(crate) fingerprint: String,
    pub(crate) user_id: String,
    /// Key ids of the primary and every subkey (to match PKESK recipients).
    pub(crate) key_ids: Vec<String>,
    pub(crate) armored: String,
}

impl Certs {
    /// Facts about every certificate.
    pub(crate) fn infos(&self) -> Vec<CertInfo> {
        self.certs
            .iter()
            .map(|c| CertInfo {
                fingerprint: fpr(&c.primary_key),
                user_id: c
                    .details
                    .users
                    .first()
                    .map(|u| String::from_utf8_lossy(u.id.id()).into_owned())
                    .unwrap_or_default(),
                key_ids: std::iter::once(hex_upper(c.primary_key.legacy_key_id().as_ref()))
                    .chain(
                        c.public_subkeys
                            .iter()
                            .map(|s| hex_upper(s.key.legacy_key_id().as_ref())),
                    )
                    .collect(),
                armored: c
                    .to_armored_string(ArmorOptions::default())
                    .unwrap_or_default(),
            })
            .collect()
    }
}

/// Key ids a message is encrypted to, without decrypting it.
pub(crate) fn recipients_of(ct: &[u8]) -> Result<Vec<String>, String> {
    let (msg, _) = Message::from_reader(ct).map_err(|e| e.to_string())?;
    match &msg {
        Message::Encrypted { esk, .. } => Ok(esk
            .iter()
            .filter_map(|e| match e {
                Esk::PublicKeyEncryptedSessionKey(p) => {
                    p.id().ok().map(|id| hex_upper(id.as_ref()))
                }
                Esk::SymKeyEncryptedSessionKey(_) => None,
            })
            .collect()),
        _ => Err("not an encrypted OpenPGP message".into()),
    }
}

/// Encrypt `plaintext` with a fresh session key (SEIPDv1 + MDC, AES-256, ZLIB: what gpg
/// 2.2 and 2.4 read) to the encryption subkeys of every certificate (never the primary:
/// OPENPGP.md §9.1), signed by `signer` when given.
pub(crate) fn encrypt(
    plaintext: &[u8],
    to: &Certs,
    signer: Option<(&HostKeys, Option<&Zeroizing<Vec<u8>>>)>,
    armor: bool,
) -> Result<Vec<u8>, String> {
    let mut rng = rand::thread_rng();
    let mut b = MessageBuilder::from_bytes("", plaintext.to_vec())
        .seipd_v1(&mut rng, SymmetricKeyAlgorithm::AES256);
    b.compression(CompressionAlgorithm::ZLIB);
    for cert in &to.certs {
        let subs: Vec<_> = cert
            .public_subkeys
            .iter()
            .filter(|sk| {
                sk.signatures.iter().any(|s| {
                    let f = s.key_flags();
                    f.encrypt_comms() || f.encrypt_storage()
                })
            })
            .collect();
        if subs.is_empty() {
            return Err(format!(
                "{} has no encryption subkey",
                fpr(&cert.primary_key)
            ));
        }
        for sub in subs {
            b.encrypt_to_key(&mut rng, sub).map_err(|e| e.to_string())?;
        }
    }
    if let Some((keys, pw)) = signer {
        let key = keys.keys.first().ok_or("no signing key")?;
        let pw = pw.map_or_else(Password::empty, |p| Password::from(p.as_slice()));
        // A signing subkey if there is one, else the primary (which gpg and rPGP keys
        // made with [SC] have).
        let sub = key
            .secret_subkeys
            .iter()
            .find(|s| s.signatures.iter().any(|sig| sig.key_flags().sign()));
        match sub {
            Some(s) => b.sign(&s.key, pw, HashAlgorithm::Sha256),
            None => b.sign(&key.primary_key, pw, HashAlgorithm::Sha256),
        };
    }
    if armor {
        b.to_armored_string(&mut rng, ArmorOptions::default())
            .map(String::into_bytes)
            .map_err(|e| e.to_string())
    } else {
        b.to_vec(&mut rng).map_err(|e| e.to_string())
    }
}

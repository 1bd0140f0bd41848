//! Vault decryption against keys and vaults made by the real gpg: every supported shape
//! decrypts and resolves a manifest; every failure is a distinct error, exit 1, with no
//! value on any output.

use crate::util::*;

fn assert_no_secret(r: &Run) {
    for v in SECRET_VALUES {
        r.assert_lacks(v);
    }
}

/// `check` on a node must pass and show the vault version.
fn check_ok(n: &Node) {
    let r = n.run(&["check"]);
    r.assert_code(0)
        .assert_contains("version 3")
        .assert_contains("ok      101 lxc: 5 files");
    assert_no_secret(&r);
}

#[test]
fn ed25519_and_rsa_keys_armored_and_binary() {
    let k = keys();
    for key in ["ed", "rsa"] {
        for armor_key in [true, false] {
            for armor_vault in [true, false] {
                let n = ready_node();
                n.host_key(&k.secret(key, armor_key));
                let opts: &[&str] = if armor_vault { &["--armor"] } else { &[] };
                n.vault(&k.encrypt(VAULT_JSON.as_bytes(), &[key], false, None, opts));
                check_ok(&n);
            }
        }
    }
}

#[test]
fn several_recipients_each_host_key_decrypts() {
    let k = keys();
    let ct = k.encrypt(
        VAULT_JSON.as_bytes(),
        &["other", "rsa", "ed"],
        false,
        None,
        &[],
    );
    for key in ["ed", "rsa"] {
        let n = ready_node();
        n.host_key(&k.secret(key, true));
        n.vault(&ct);
        check_ok(&n);
    }
}

#[test]
fn hidden_recipients() {
    let k = keys();
    let n = ready_node();
    n.vault(&k.encrypt(VAULT_JSON.as_bytes(), &["other", "ed"], true, None, &[]));
    check_ok(&n);
}

#[test]
fn key_file_with_several_keys_tries_each() {
    // The vault is for the second key in the file: taking only the first would fail.
    let k = keys();
    let n = ready_node();
    let mut both = k.secret("other", false);
    both.extend(k.secret("ed", false));
    n.host_key(&both);
    check_ok(&n);
}

#[test]
fn signed_vault_accepted_and_signer_reported() {
    let k = keys();
    let n = ready_node();
    n.vault(&k.encrypt(VAULT_JSON.as_bytes(), &["ed"], false, Some("signer"), &[]));
    n.write("recipients.asc", &k.public(&["ed", "signer", "stranger"]));
    n.config(&format!("signers: [\"{}\"]\n", k.fpr("signer")));
    n.run(&["check"])
        .assert_code(0)
        .assert_contains(&format!("signed by {}", k.fpr("signer")));
    // Without a policy a signed vault is still fine.
    n.config("");
    n.run(&["check"]).assert_code(0).assert_contains("unsigned");
}

#[test]
fn passphrase_protected_key() {
    let k = keys();
    let n = ready_node();
    n.host_key(&k.secret("edpw", true));
    n.vault(&k.encrypt(VAULT_JSON.as_bytes(), &["edpw"], false, None, &[]));
    n.write("host.pass", format!("{PASSPHRASE}\n").as_bytes());
    n.config(&format!(
        "key_passphrase_file: {}\n",
        n.path("host.pass").display()
    ));
    check_ok(&n);

    // Wrong passphrase: its own error, naming the file.
    n.write("host.pass", b"not it\n");
    let r = n.run(&["check"]);
    r.assert_code(1)
        .assert_contains("does not unlock the host key")
        .assert_contains("host.pass");
    assert_no_secret(&r);

    // No passphrase configured.
    n.config("");
    n.run(&["check"])
        .assert_code(1)
        .assert_contains("protected by a passphrase")
        .assert_contains("key_passphrase_file");
}

#[test]
fn gnupg_24_ocb_packets() {
    let n = Node::new();
    let data = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/gnupg24");
    n.host_key(&std::fs::read(format!("{data}/bob.sec.asc")).unwrap());
    n.vault(&std::fs::read(format!("{data}/msg_to_bob.asc")).unwrap());
    // Decrypted (the plaintext, "foo\n", is not JSON: that is the error we expect).
    n.run(&["check"])
        .assert_code(1)
        .assert_contains("is not valid JSON");
    n.config("gnupg_aead: false\n");
    n.run(&["check"])
        .assert_code(1)
        .assert_contains("OCB")
        .assert_contains("gnupg_aead: true");
}

/// Each broken vault gives its own message; (what to break, the expected words).
#[test]
fn each_failure_is_distinct() {
    let k = keys();
    let good = k.encrypt(VAULT_JSON.as_bytes(), &["ed"], false, None, &[]);
    let mut tampered = good.clone();
    let mid = tampered.len() / 2;
    tampered[mid] ^= 0x01;
    let truncated = good[..good.len() - 40].to_vec();
    let other = k.encrypt(VAULT_JSON.as_bytes(), &["other"], false, None, &[]);
    let not_json = k.encrypt(b"SMB-SECRET-7f3a9c is not json", &["ed"], false, None, &[]);
    let array = k.encrypt(b"[\"SMB-SECRET-7f3a9c\"]", &["ed"], false, None, &[]);
    let garbage = b"this is not OpenPGP at all SMB-SECRET-7f3a9c\n".to_vec();
    let signed_only = k.sign_only(VAULT_JSON.as_bytes());
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("tampered", tampered, "failed its integrity check"),
        ("truncated", truncated, "damaged or truncated"),
        ("other key", other, "is not encrypted to this host's key"),
        ("not json", not_json, "is not valid JSON"),
        ("array", array, "the top level is an array"),
        ("garbage", garbage, "is not an OpenPGP message"),
        ("signed, not encrypted", signed_only, "not an encrypted one"),
    ];
    let mut seen = Vec::new();
    for (what, bytes, want) in cases {
        let n = ready_node();
        n.vault(&bytes);
        let r = n.run(&["check"]);
        r.assert_code(1).assert_contains(want);
        assert_no_secret(&r);
        let r = n.run(&["inject", "101", "--dry-run"]);
        r.assert_code(1).assert_contains(want);
        assert_no_secret(&r);
        assert!(!seen.contains(&want), "{what}");
        seen.push(want);
    }
}

#[test]
fn wrong_recipient_names_key_ids_and_host_fingerprint() {
    let k = keys();
    let n = ready_node();
    n.vault(&k.encrypt(VAULT_JSON.as_bytes(), &["other"], false, None, &[]));
    let r = n.run(&["check"]);
    r.assert_code(1)
        .assert_contains(k.fpr("ed"))
        .assert_contains("gpg --encrypt --recipient");
    // The other key's encryption subkey id is the recipient named.
    let out = sh(gpg(&k.home).args(["--with-colons", "--list-keys", k.fpr("other")]));
    let sub = colon_field(&out.stdout, "sub", 4);
    r.assert_contains(&sub);
}

#[test]
fn signature_policy() {
    let k = keys();
    let n = ready_node();
    n.write("recipients.asc", &k.public(&["ed", "signer", "stranger"]));
    n.config(&format!("signers: [\"{}\"]\n", k.fpr("signer")));
    // Unsigned.
    let r = n.run(&["check"]);
    r.assert_code(1)
        .assert_contains("is not signed")
        .assert_contains(k.fpr("signer"));
    // Signed by a key that is not listed: the signer's fingerprint is reported.
    n.vault(&k.encrypt(VAULT_JSON.as_bytes(), &["ed"], false, Some("stranger"), &[]));
    let r = n.run(&["check"]);
    r.assert_code(1)
        .assert_contains("not one of the accepted signers")
        .assert_contains(k.fpr("stranger"));
    assert_no_secret(&r);
    // Signed by the listed key, armored this time.
    n.vault(&k.encrypt(
        VAULT_JSON.as_bytes(),
        &["ed"],
        false,
        Some("signer"),
        &["--armor"],
    ));
    n.run(&["check"]).assert_code(0);
}

#[test]
fn host_key_readable_by_others_is_refused() {
    use std::os::unix::fs::PermissionsExt;
    let n = ready_node();
    std::fs::set_permissions(n.path("host.key"), std::fs::Permissions::from_mode(0o644)).unwrap();
    n.run(&["check"])
        .assert_code(1)
        .assert_contains("readable or writable by group or other")
        .assert_contains(&format!("chmod 0600 {}", n.path("host.key").display()));
}

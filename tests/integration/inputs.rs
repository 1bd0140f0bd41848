//! Bad input of every kind gets a clear message that names the file, the place and the
//! problem; exit 1; never a panic (exit 101).

use crate::util::*;

/// (case, manifest for guest 101, words the output must hold)
const BAD_MANIFESTS: &[(&str, &str, &[&str])] = &[
    (
        "unknown top key",
        "files:\n  - {dest: /a, key: samba/password}\nafterr: []\n",
        &["101.yaml:3:", "afterr"],
    ),
    (
        "unknown file key",
        "files:\n  - dest: /a\n    key: samba/password\n    mdoe: \"0600\"\n",
        &["101.yaml:4:", "mdoe"],
    ),
    ("files not a list", "files: /etc/a\n", &["101.yaml:1:"]),
    (
        "required not a bool",
        "required: maybe\nfiles:\n  - {dest: /a, key: samba/password}\n",
        &["101.yaml:1:", "boolean"],
    ),
    (
        "guest unknown",
        "guest: docker\nfiles:\n  - {dest: /a, key: samba/password}\n",
        &["101.yaml:1:", "docker"],
    ),
    ("no files", "guest: lxc\n", &["101.yaml", "no `files`"]),
    (
        "dest missing",
        "files:\n  - key: samba/password\n",
        &["101.yaml:2:", "`dest` is missing"],
    ),
    (
        "dest relative",
        "files:\n  - {dest: etc/a, key: samba/password}\n",
        &["101.yaml:2:", "not an absolute path"],
    ),
    (
        "dest with ..",
        "files:\n  - {dest: /etc/../shadow, key: samba/password}\n",
        &["101.yaml:2:", "contains `..`"],
    ),
    (
        "dest with //",
        "files:\n  - {dest: /etc//a, key: samba/password}\n",
        &["101.yaml:2:", "not normalised"],
    ),
    (
        "dest with newline",
        "files:\n  - {dest: \"/etc/a\\nb\", key: samba/password}\n",
        &["101.yaml:2:", "line break"],
    ),
    (
        "dest with NUL",
        "files:\n  - {dest: \"/etc/a\\0b\", key: samba/password}\n",
        &["101.yaml:2:", "NUL"],
    ),
    (
        "dest is a directory",
        "files:\n  - {dest: /etc/, key: samba/password}\n",
        &["101.yaml:2:", "names a directory"],
    ),
    (
        "dest not a string",
        "files:\n  - {dest: [a], key: samba/password}\n",
        &["101.yaml:2:"],
    ),
    (
        "duplicate dest",
        "files:\n  - {dest: /a, key: samba/password}\n  - {dest: /a, key: app/api_token}\n",
        &["101.yaml:3:", "also written by the entry at line 2"],
    ),
    (
        "key missing",
        "files:\n  - {dest: /a}\n",
        &["101.yaml:2:", "`key` is missing"],
    ),
    (
        "key malformed",
        "files:\n  - {dest: /a, key: /samba//password}\n",
        &["101.yaml:2:", "empty segment"],
    ),
    (
        "key reserved",
        "files:\n  - {dest: /a, key: _phx/version}\n",
        &["101.yaml:2:", "reserved"],
    ),
    (
        "bad format",
        "files:\n  - {dest: /a, key: samba/password, format: yaml}\n",
        &["101.yaml:2:", "format `yaml`"],
    ),
    (
        "env without vars",
        "files:\n  - {dest: /a, format: env}\n",
        &["101.yaml:2:", "`vars` is missing"],
    ),
    (
        "env with key",
        "files:\n  - {dest: /a, format: env, key: x, vars: {A: x}}\n",
        &["101.yaml:2:", "takes `vars`"],
    ),
    (
        "env bad var name",
        "files:\n  - dest: /a\n    format: env\n    vars: {1BAD: samba/password}\n",
        &["101.yaml:4:", "1BAD"],
    ),
    (
        "vars without format",
        "files:\n  - {dest: /a, vars: {A: x}}\n",
        &["101.yaml:2:", "needs `format: env`"],
    ),
    (
        "decode unknown",
        "files:\n  - {dest: /a, key: x, decode: hex}\n",
        &["101.yaml:2:", "decode `hex`"],
    ),
    (
        "decode on env",
        "files:\n  - {dest: /a, format: env, vars: {A: x}, decode: base64}\n",
        &["101.yaml:2:", "only to raw"],
    ),
    (
        "mode unquoted",
        "files:\n  - {dest: /a, key: x, mode: 0600}\n",
        &["101.yaml:2:", "quoted octal"],
    ),
    (
        "mode not octal",
        "files:\n  - {dest: /a, key: x, mode: \"0680\"}\n",
        &["101.yaml:2:", "0680"],
    ),
    (
        "mode too large",
        "files:\n  - {dest: /a, key: x, mode: \"17777\"}\n",
        &["101.yaml:2:", "larger than 07777"],
    ),
    (
        "owner negative",
        "files:\n  - {dest: /a, key: x, owner: -5}\n",
        &["101.yaml:2:", "owner -5"],
    ),
    (
        "owner bad name",
        "files:\n  - {dest: /a, key: x, owner: \"bad name\"}\n",
        &["101.yaml:2:", "not a valid user"],
    ),
    (
        "group float",
        "files:\n  - {dest: /a, key: x, group: 1.5}\n",
        &["101.yaml:2:", "group must be"],
    ),
    (
        "after not argv",
        "files:\n  - {dest: /a, key: samba/password}\nafter:\n  - []\n",
        &["101.yaml:4:", "program name"],
    ),
    (
        "after a string",
        "files:\n  - {dest: /a, key: samba/password}\nafter: systemctl restart x\n",
        &["101.yaml:3:"],
    ),
    (
        "yaml syntax",
        "files:\n  - dest: /a\n   key: x\n",
        &["101.yaml:3:"],
    ),
    (
        "tab indentation",
        "files:\n\t- dest: /a\n",
        &["101.yaml:2:"],
    ),
    (
        "unterminated quote",
        "files:\n  - {dest: \"/a, key: x}\n",
        &["101.yaml:"],
    ),
    (
        "template absolute",
        "files:\n  - {dest: /a, template: /etc/passwd}\n",
        &[
            "101.yaml:2:",
            "relative path inside the manifests directory",
        ],
    ),
    (
        "template escapes",
        "files:\n  - {dest: /a, template: ../phx-hook.yaml}\n",
        &["101.yaml:2:", "without `..`"],
    ),
    (
        "template missing",
        "files:\n  - {dest: /a, template: templates/nope.tmpl}\n",
        &["101.yaml:2:", "does not exist"],
    ),
    (
        "missing vault key",
        "files:\n  - {dest: /a, key: samba/passwort}\n",
        &["101.yaml:2:", "`samba/passwort` does not exist"],
    ),
    (
        "key is an object",
        "files:\n  - {dest: /a, key: samba}\n",
        &["101.yaml:2:", "`samba` is an object"],
    ),
    (
        "bad base64",
        "files:\n  - {dest: /a, key: samba/password, decode: base64}\n",
        &["101.yaml:2:", "not valid base64"],
    ),
    (
        "placeholder names missing key",
        "files:\n  - {dest: /a, template: templates/bad.tmpl}\n",
        &["bad.tmpl:2:7", "`app/nope` does not exist"],
    ),
    (
        "unterminated placeholder",
        "files:\n  - {dest: /a, template: templates/open.tmpl}\n",
        &["open.tmpl:1:3", "unterminated"],
    ),
    (
        "alias bomb",
        "a: &a [x,x,x,x,x,x,x,x,x,x]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a,*a]\nc: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b,*b]\nd: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c,*c]\ne: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d,*d]\nf: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e,*e]\ng: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f,*f]\nfiles: *g\n",
        &["101.yaml:"],
    ),
];

#[test]
fn bad_manifests() {
    let n = ready_node();
    n.write(
        "manifests/templates/bad.tmpl",
        b"ok\ntoken={{ phx://app/nope }}\n",
    );
    n.write(
        "manifests/templates/open.tmpl",
        b"x {{ phx://app/api_token\n",
    );
    assert!(BAD_MANIFESTS.len() >= 30);
    for (case, yaml, wants) in BAD_MANIFESTS {
        n.manifest(101, yaml);
        for args in [&["check", "101"][..], &["inject", "101", "--dry-run"]] {
            let r = n.run(args);
            assert_eq!(r.code, 1, "{case}: {args:?}: {r:#?}");
            for w in *wants {
                assert!(
                    r.all().contains(w),
                    "{case}: {args:?}: lacks {w:?}:\n{}",
                    r.all()
                );
            }
            for v in SECRET_VALUES {
                assert!(!r.all().contains(v), "{case}: leaked a value:\n{}", r.all());
            }
        }
    }
}

#[test]
fn every_manifest_problem_is_listed() {
    let n = ready_node();
    n.manifest(101, "files:\n  - {dest: etc/a, key: samba/password}\n  - {dest: /b, key: x, mode: \"9\"}\n  - {dest: /c, key: nope/one}\n  - {dest: /d, key: nope/two}\n");
    let r = n.run(&["check"]);
    r.assert_code(1)
        .assert_contains("101.yaml:2:")
        .assert_contains("101.yaml:3:");
    // Vault keys are resolved once the manifest parses: both missing keys are named.
    n.manifest(
        101,
        "files:\n  - {dest: /c, key: nope/one}\n  - {dest: /d, key: nope/two}\n",
    );
    n.run(&["check"])
        .assert_code(1)
        .assert_contains("nope/one")
        .assert_contains("nope/two");
}

#[test]
fn huge_manifest_is_refused_without_reading_it_all() {
    let n = ready_node();
    let mut big = String::from("files:\n");
    while big.len() < 10 * 1024 * 1024 {
        big.push_str("  - {dest: /etc/some/long/path/name/for/padding, key: samba/password}\n");
    }
    n.manifest(101, &big);
    n.run(&["check", "101"])
        .assert_code(1)
        .assert_contains("101.yaml")
        .assert_contains("too large");
}

/// (case, config text, words the output must hold)
const BAD_CONFIGS: &[(&str, &str, &[&str])] = &[
    (
        "unknown key",
        "vault: /x\nvalut: /y\n",
        &["phx-hook.yaml:2:", "valut"],
    ),
    (
        "unknown pve key",
        "pve:\n  qga_sockets: /x\n",
        &["phx-hook.yaml:2:", "qga_sockets"],
    ),
    (
        "bad transport",
        "pve:\n  lxc_transport: ssh\n",
        &["phx-hook.yaml:2:", "ssh"],
    ),
    (
        "bad duration",
        "agent:\n  wait: soon\n",
        &["phx-hook.yaml:2:", "agent.wait", "not a duration"],
    ),
    (
        "short key id as signer",
        "signers: [\"DEADBEEF\"]\n",
        &["phx-hook.yaml:1:", "full OpenPGP fingerprint"],
    ),
    (
        "signers not a list",
        "signers: yes\n",
        &["phx-hook.yaml:1:"],
    ),
    (
        "empty path",
        "vault: \"\"\n",
        &["phx-hook.yaml:1:", "must not be empty"],
    ),
    ("syntax", "vault: [\n", &["phx-hook.yaml:"]),
    (
        "gnupg_aead not bool",
        "gnupg_aead: perhaps\n",
        &["phx-hook.yaml:1:"],
    ),
];

#[test]
fn bad_configs() {
    let n = ready_node();
    for (case, text, wants) in BAD_CONFIGS {
        n.write("phx-hook.yaml", text.as_bytes());
        let r = n.run(&["check"]);
        assert_eq!(r.code, 1, "{case}: {r:#?}");
        for w in *wants {
            assert!(r.all().contains(w), "{case}: lacks {w:?}:\n{}", r.all());
        }
    }
}

#[test]
fn untrusted_inputs_are_refused_with_the_fix() {
    use std::os::unix::fs::PermissionsExt;
    let set = |p: std::path::PathBuf, m: u32| {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(m)).unwrap()
    };
    let n = ready_node();
    set(n.path("phx-hook.yaml"), 0o666);
    n.run(&["check"])
        .assert_code(1)
        .assert_contains("writable by group or other")
        .assert_contains("chmod 0644");
    set(n.path("phx-hook.yaml"), 0o640); // pmxcfs's mode passes
    n.run(&["check"]).assert_code(0);
    set(n.path("manifests/101.yaml"), 0o664);
    n.run(&["check", "101"])
        .assert_code(1)
        .assert_contains("101.yaml")
        .assert_contains("chmod 0644");
    set(n.path("manifests/101.yaml"), 0o600);
    set(n.path("manifests/templates/app.conf.tmpl"), 0o646);
    n.run(&["check", "101"])
        .assert_code(1)
        .assert_contains("app.conf.tmpl")
        .assert_contains("chmod 0644");
    set(n.path("manifests/templates/app.conf.tmpl"), 0o600);
    // A file not owned by root.
    std::os::unix::fs::chown(n.path("manifests/101.yaml"), Some(1000), None).unwrap();
    n.run(&["check", "101"])
        .assert_code(1)
        .assert_contains("owned by uid 1000")
        .assert_contains("chown root:root");
}

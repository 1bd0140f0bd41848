//! Test harness: keys made by the real `gpg` once per test run, a throwaway node
//! layout (config, manifests, vault, host key) per test, and a runner for the real
//! `phx-hook` binary.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;

pub const BIN: &str = env!("CARGO_BIN_EXE_phx-hook");

/// Run a command, panic with its output if it fails.
pub fn sh(cmd: &mut Command) -> Output {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("failed to run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// A GnuPG home with the keys the tests use, made once.
pub struct Keys {
    pub home: PathBuf,
    /// name -> primary fingerprint
    fprs: Vec<(&'static str, String)>,
}

/// Key names: `ed` (ed25519/cv25519), `rsa` (RSA-3072), `edpw` (ed25519/cv25519 with
/// passphrase `correct horse`), `other` (a key the host does not hold), `signer` and
/// `stranger` (signing keys; only `signer` is listed in configs that set `signers`).
pub const PASSPHRASE: &str = "correct horse";

/// Earlier test runs' GnuPG homes, and the gpg-agent each left running (it watches its
/// home with inotify, and a machine allows 128 inotify instances per user): removed once
/// the run that made them is gone.
fn reap_old_homes() {
    let Ok(dir) = fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for e in dir.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(pid) = name
            .strip_prefix("phx-hook-gnupg-")
            .and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        if pid == std::process::id() || std::path::Path::new(&format!("/proc/{pid}")).exists() {
            continue;
        }
        let _ = Command::new("gpgconf")
            .arg("--homedir")
            .arg(e.path())
            .args(["--kill", "gpg-agent"])
            .stderr(Stdio::null())
            .status();
        let _ = fs::remove_dir_all(e.path());
    }
}

pub fn keys() -> &'static Keys {
    static KEYS: OnceLock<Keys> = OnceLock::new();
    KEYS.get_or_init(|| {
        reap_old_homes();
        let home = std::env::temp_dir().join(format!("phx-hook-gnupg-{}", std::process::id()));
        let _ = fs::remove_dir_all(&home);
        fs::create_dir_all(&home).unwrap();
        fs::set_permissions(&home, fs::Permissions::from_mode(0o700)).unwrap();
        let mut fprs = Vec::new();
        for (name, algo, pw) in [
            ("ed", "future-default", ""),
            ("rsa", "default", ""),
            ("edpw", "future-default", PASSPHRASE),
            ("other", "future-default", ""),
            ("signer", "future-default", ""),
            ("stranger", "future-default", ""),
        ] {
            let uid = format!("{name} <{name}@phx-hook.test>");
            sh(gpg(&home).args([
                "--passphrase",
                pw,
                "--quick-gen-key",
                &uid,
                algo,
                "default",
                "never",
            ]));
            let out = sh(gpg(&home).args(["--with-colons", "--list-keys", &uid]));
            let fpr = colon_field(&out.stdout, "fpr", 9);
            fprs.push((name, fpr));
        }
        Keys { home, fprs }
    })
}

pub fn gpg(home: &Path) -> Command {
    let mut c = Command::new("gpg");
    c.arg("--homedir").arg(home).args([
        "--batch",
        "--quiet",
        "--yes",
        "--pinentry-mode",
        "loopback",
        "--trust-model",
        "always",
    ]);
    c
}

impl Keys {
    pub fn fpr(&self, name: &str) -> &str {
        &self.fprs.iter().find(|(n, _)| *n == name).unwrap().1
    }

    /// The secret key `name`, armored or binary.
    pub fn secret(&self, name: &str, armor: bool) -> Vec<u8> {
        let mut c = gpg(&self.home);
        c.args(["--passphrase", if name == "edpw" { PASSPHRASE } else { "" }]);
        if armor {
            c.arg("--armor");
        }
        sh(c.args(["--export-secret-keys", self.fpr(name)])).stdout
    }

    /// Public keys of `names`, armored.
    pub fn public(&self, names: &[&str]) -> Vec<u8> {
        let mut c = gpg(&self.home);
        c.args(["--armor", "--export"]);
        for n in names {
            c.arg(self.fpr(n));
        }
        sh(&mut c).stdout
    }

    /// Sign (without encrypting) `plaintext` with the `ed` key.
    pub fn sign_only(&self, plaintext: &[u8]) -> Vec<u8> {
        let dir = tempfile::tempdir().unwrap();
        let input = dir.path().join("in.json");
        fs::write(&input, plaintext).unwrap();
        let out = dir.path().join("out.gpg");
        sh(gpg(&self.home)
            .args([
                "--passphrase",
                "",
                "--local-user",
                self.fpr("ed"),
                "--output",
            ])
            .arg(&out)
            .arg("--sign")
            .arg(&input));
        fs::read(&out).unwrap()
    }

    /// Encrypt `plaintext` with gpg (read from a pipe: the test plaintext never touches
    /// the disk, so disk-leak scans are not confused). `opts` are extra gpg arguments.
    pub fn encrypt(
        &self,
        plaintext: &[u8],
        recipients: &[&str],
        hidden: bool,
        signer: Option<&str>,
        opts: &[&str],
    ) -> Vec<u8> {
        use std::io::Write;
        let mut c = gpg(&self.home);
        c.args(["--passphrase", ""]);
        for r in recipients {
            c.arg(if hidden { "-R" } else { "-r" }).arg(self.fpr(r));
        }
        if let Some(s) = signer {
            c.args(["--sign", "--local-user", self.fpr(s)]);
        }
        c.args(opts).arg("--encrypt");
        let mut child = c
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        let input = plaintext.to_vec();
        let feeder = std::thread::spawn(move || {
            let _ = stdin.write_all(&input);
        });
        let out = child.wait_with_output().unwrap();
        feeder.join().unwrap();
        assert!(
            out.status.success(),
            "gpg --encrypt failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    }
}

/// A throwaway host: config, manifests directory, vault and host key in a 0700 temp dir.
pub struct Node {
    pub dir: tempfile::TempDir,
}

impl Node {
    pub fn new() -> Node {
        let dir = tempfile::tempdir().unwrap();
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o700)).unwrap();
        let n = Node { dir };
        fs::create_dir_all(n.path("manifests")).unwrap();
        fs::create_dir_all(n.path("pve/lxc")).unwrap();
        fs::create_dir_all(n.path("pve/qemu-server")).unwrap();
        n.config("");
        n
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// Write the config: the standard paths plus `extra` YAML lines.
    pub fn config(&self, extra: &str) {
        let d = self.dir.path().display();
        self.write(
            "phx-hook.yaml",
            format!(
                "vault: {d}/secrets.json.gpg\nkey: {d}/host.key\nmanifests: {d}/manifests\naudit_log: {d}/audit.jsonl\nrollback_state: {d}/vault-version\nstate_dir: {d}/run\njournal: false\npve:\n  config_dir: {d}/pve\n{extra}"
            )
            .as_bytes(),
        );
    }

    pub fn write(&self, rel: &str, bytes: &[u8]) {
        let p = self.path(rel);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(&p, bytes).unwrap();
        fs::set_permissions(&p, fs::Permissions::from_mode(0o600)).unwrap();
    }

    pub fn host_key(&self, bytes: &[u8]) {
        self.write("host.key", bytes);
    }

    pub fn vault(&self, bytes: &[u8]) {
        self.write("secrets.json.gpg", bytes);
    }

    pub fn manifest(&self, vmid: u32, yaml: &str) {
        self.write(&format!("manifests/{vmid}.yaml"), yaml.as_bytes());
    }

    /// Run phx-hook with this node's config.
    pub fn run(&self, args: &[&str]) -> Run {
        self.run_env(args, &[])
    }

    /// Run phx-hook with this node's config and extra environment variables.
    pub fn run_env(&self, args: &[&str], env: &[(&str, &str)]) -> Run {
        self.finish(Command::new(BIN), args, env)
    }

    /// `cmd` (phx-hook, or a wrapper whose argv ends with it) with this node's config and
    /// `args`, no stdin, the caller's config and log level unset.
    fn finish(&self, mut cmd: Command, args: &[&str], env: &[(&str, &str)]) -> Run {
        let out = cmd
            .envs(env.iter().copied())
            .arg("--config")
            .arg(self.path("phx-hook.yaml"))
            .args(args)
            .env_remove("PHX_HOOK_CONFIG")
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .output()
            .unwrap();
        Run::from(out)
    }
}

/// What a run printed.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl From<std::process::Output> for Run {
    fn from(out: std::process::Output) -> Run {
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }
}

impl Run {
    pub fn all(&self) -> String {
        format!("{}{}", self.stdout, self.stderr)
    }

    #[track_caller]
    pub fn assert_code(&self, code: i32) -> &Run {
        assert_eq!(
            self.code, code,
            "exit status; stdout:\n{}\nstderr:\n{}",
            self.stdout, self.stderr
        );
        self
    }

    #[track_caller]
    pub fn assert_contains(&self, needle: &str) -> &Run {
        assert!(
            self.all().contains(needle),
            "output lacks {needle:?}:\nstdout:\n{}\nstderr:\n{}",
            self.stdout,
            self.stderr
        );
        self
    }

    #[track_caller]
    pub fn assert_lacks(&self, needle: &str) -> &Run {
        assert!(
            !self.all().contains(needle),
            "output has {needle:?}:\nstdout:\n{}\nstderr:\n{}",
            self.stdout,
            self.stderr
        );
        self
    }
}

/// A vault plaintext whose values are distinctive, so a leak is easy to spot.
pub const VAULT_JSON: &str = r#"{
  "_phx": {"version": 3},
  "samba": {"password": "SMB-SECRET-7f3a9c"},
  "app": {"db_password": "DB-SECRET-41b2e8", "api_token": "TOKEN-SECRET-c0ffee"},
  "kerberos": {"keytab": "S0VZVEFCLVNFQ1JFVC1iaW5hcnkA/w=="}
}"#;

/// Assert that no value of [`VAULT_JSON`] is in any of `texts`.
pub fn leaks(texts: &[&str]) {
    for t in texts {
        for v in SECRET_VALUES {
            assert!(!t.contains(v), "a secret value leaked:\n{t}");
        }
    }
}

/// Every value (and the decoded keytab) in [`VAULT_JSON`].
pub const SECRET_VALUES: [&str; 5] = [
    "SMB-SECRET-7f3a9c",
    "DB-SECRET-41b2e8",
    "TOKEN-SECRET-c0ffee",
    "S0VZVEFCLVNFQ1JFVC1iaW5hcnkA",
    "KEYTAB-SECRET",
];

/// A manifest that uses every format.
pub fn full_manifest() -> &'static str {
    "guest: lxc\nfiles:\n  - dest: /etc/samba/phoenix.secret\n    key: samba/password\n  - dest: /etc/app/app.env\n    format: env\n    vars: { DATABASE_PASS: app/db_password, API_TOKEN: app/api_token }\n    mode: \"0640\"\n    group: 1000\n  - dest: /etc/app/app.json\n    format: json\n    vars: { db: app/db_password }\n  - dest: /etc/app/app.conf\n    template: templates/app.conf.tmpl\n  - dest: /etc/krb5.keytab\n    key: kerberos/keytab\n    decode: base64\nafter:\n  - [systemctl, try-reload-or-restart, smbd]\n"
}

pub const TEMPLATE: &str =
    "[db]\npassword = {{ phx://app/db_password }}\ntoken={{phx://app/api_token}}\n";

/// A node with the ed25519 host key, a gpg-made vault and the full manifest for 101.
pub fn ready_node() -> Node {
    let k = keys();
    let n = Node::new();
    n.host_key(&k.secret("ed", true));
    n.vault(&k.encrypt(VAULT_JSON.as_bytes(), &["ed"], false, None, &[]));
    n.write("manifests/templates/app.conf.tmpl", TEMPLATE.as_bytes());
    n.manifest(101, full_manifest());
    n
}

/// Collect every datagram sent to a unix socket bound at `path` (a syslog stand-in), one
/// line each.
pub fn listen_datagrams(path: &Path) -> std::sync::Arc<std::sync::Mutex<Vec<u8>>> {
    let _ = fs::remove_file(path);
    let sock = std::os::unix::net::UnixDatagram::bind(path).unwrap();
    let log = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let sink = log.clone();
    std::thread::spawn(move || {
        let mut buf = vec![0u8; 65536];
        while let Ok(n) = sock.recv(&mut buf) {
            let mut l = sink.lock().unwrap();
            l.extend_from_slice(&buf[..n]);
            l.push(b'\n');
        }
    });
    log
}

/// Field `field` (0-based) of the first `record` line of a `gpg --with-colons` listing:
/// `("fpr", 9)` is the primary key's fingerprint, `("sub", 4)` the first subkey's id.
pub fn colon_field(listing: &[u8], record: &str, field: usize) -> String {
    let text = std::str::from_utf8(listing).unwrap();
    let line = text
        .lines()
        .find(|l| l.split(':').next() == Some(record))
        .unwrap_or_else(|| panic!("no `{record}` line in the gpg listing:\n{text}"));
    line.split(':').nth(field).unwrap().to_string()
}

impl Node {
    /// [`Node::run`] under an address-space limit of `mib` MiB (`prlimit --as`): a run
    /// that tries to allocate more fails instead of succeeding slowly.
    pub fn run_limited(&self, mib: u64, args: &[&str]) -> Run {
        let mut c = Command::new("prlimit");
        c.arg(format!("--as={}", mib << 20)).arg("--").arg(BIN);
        self.finish(c, args, &[])
    }
}

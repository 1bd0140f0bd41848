//! Credentials given to admin tools on their command line: a table of tools and the
//! forms each accepts a secret in (a password option, `user%password`, a mount option,
//! `pass:...`, a positional word), applied to a shell-like reading of the line. A value
//! that is a variable, a command substitution or a file reference is safe.
//!
//! The forms come from each tool's manual page; where a short flag means something else
//! in a tool (`-p` is a port for `redis-cli`, the database for `mysql` when separate), the
//! table says exactly what the tool does.

/// How a tool takes a secret.
#[derive(Debug)]
pub enum Form {
    /// The next word, or `--flag=VALUE`, or (a short flag) `-fVALUE`.
    Value(&'static [&'static str]),
    /// Only attached to a short flag: `mysql -pSECRET` (a separate word is not a password).
    Attached(&'static str),
    /// `user<sep>secret` after the flag (`smbclient -U user%pw`, `curl -u user:pw`); no
    /// separator means the tool prompts.
    UserPass(&'static [&'static str], char),
    /// Comma-separated `key=secret` options after the flag (`mount -o password=...`).
    Options(&'static [&'static str], &'static [&'static str]),
    /// `pass:SECRET` after the flag (`openssl -passout pass:...`); `env:` and `file:` are
    /// references.
    PassPrefix(&'static [&'static str]),
    /// The `n`th positional word after the words `after` (`rabbitmqctl add_user NAME PW`).
    Positional(&'static [&'static str], usize),
    /// The word after a keyword (`nmcli ... password PW`, `mysqladmin password PW`).
    Keyword(&'static [&'static str]),
    /// `KEY=VALUE` after the flag, a secret when KEY names one (`--from-literal`, `-e`).
    KeyValue(&'static [&'static str]),
    /// A word `key=secret` for one of the keys (`vault login -method=userpass password=PW`).
    Assign(&'static [&'static str]),
    /// `htpasswd -b[c] FILE USER PW`, `htpasswd -nb USER PW`.
    Htpasswd,
}

/// One tool (or a family sharing its options).
#[derive(Debug)]
pub struct Tool {
    /// Command names (basenames).
    pub names: &'static [&'static str],
    /// Its first positional word must be one of these (a subcommand), if any are given.
    pub sub: &'static [&'static str],
    /// What kind of tool (for the table in the docs).
    pub kind: &'static str,
    /// Where a secret goes.
    pub forms: &'static [Form],
}

use Form::*;

/// The table: storage, directory, database, cache and queue, BMC, backup, container and
/// registry, VCS, HTTP, VPN and network, Proxmox and cloud tools.
pub const TOOLS: &[Tool] = &[
    Tool {
        names: &[
            "smbclient",
            "smbcacls",
            "rpcclient",
            "smbget",
            "smbtree",
            "net",
            "wbinfo",
            "smbpasswd",
            "samba-tool",
        ],
        sub: &[],
        kind: "storage",
        forms: &[
            UserPass(&["-U", "--user"], '%'),
            Value(&["--password", "--newpassword", "--adminpass", "--pw-nt-hash"]),
        ],
    },
    Tool {
        names: &["mount", "mount.cifs", "mount.smb3", "mount.davfs"],
        sub: &[],
        kind: "storage",
        forms: &[Options(
            &["-o", "--options"],
            &["password", "pass", "passwd", "pw"],
        )],
    },
    Tool {
        names: &["iscsiadm"],
        sub: &[],
        kind: "storage",
        forms: &[Keyword(&[
            "node.session.auth.password",
            "node.session.auth.password_in",
            "discovery.sendtargets.auth.password",
        ])],
    },
    Tool {
        names: &["pvesm"],
        sub: &[],
        kind: "storage",
        forms: &[Value(&["--password", "-password"])],
    },
    Tool {
        names: &["qm"],
        sub: &[],
        kind: "proxmox",
        forms: &[Value(&["--cipassword", "-cipassword"])],
    },
    Tool {
        names: &["proxmox-backup-client", "proxmox-backup-manager"],
        sub: &[],
        kind: "backup",
        forms: &[Value(&["--password"])],
    },
    Tool {
        names: &["rclone"],
        sub: &[],
        kind: "backup",
        forms: &[
            Keyword(&[
                "pass",
                "password",
                "secret_access_key",
                "password2",
                "token",
            ]),
            Value(&[
                "--sftp-pass",
                "--ftp-pass",
                "--smb-pass",
                "--webdav-pass",
                "--s3-secret-access-key",
                "--azureblob-key",
                "--b2-key",
            ]),
        ],
    },
    Tool {
        names: &["s3cmd"],
        sub: &[],
        kind: "storage",
        forms: &[Value(&["--secret_key"])],
    },
    Tool {
        names: &["mc", "mcli"],
        sub: &[],
        kind: "storage",
        forms: &[
            Positional(&["alias", "set"], 4),
            Positional(&["host", "add"], 4),
        ],
    },
    Tool {
        names: &["aws"],
        sub: &["configure"],
        kind: "cloud",
        forms: &[Positional(&["set", "aws_secret_access_key"], 1)],
    },
    Tool {
        names: &["az"],
        sub: &["login"],
        kind: "cloud",
        forms: &[Value(&["-p", "--password"])],
    },
    Tool {
        names: &[
            "ldapsearch",
            "ldapadd",
            "ldapmodify",
            "ldapdelete",
            "ldapmodrdn",
            "ldapwhoami",
            "ldapcompare",
            "ldapexop",
            "ldapurl",
        ],
        sub: &[],
        kind: "directory",
        forms: &[Value(&["-w"])],
    },
    Tool {
        names: &["ldappasswd"],
        sub: &[],
        kind: "directory",
        forms: &[Value(&["-w", "-s", "-a"])],
    },
    Tool {
        names: &["ipa-server-install"],
        sub: &[],
        kind: "directory",
        forms: &[Value(&[
            "-p",
            "-a",
            "-P",
            "--ds-password",
            "--admin-password",
            "--master-password",
            "--dirsrv-pin",
            "--http-pin",
            "--pkinit-pin",
        ])],
    },
    Tool {
        names: &["ipa-client-install"],
        sub: &[],
        kind: "directory",
        forms: &[Value(&["-w", "--password"])],
    },
    Tool {
        names: &["ipa-replica-install"],
        sub: &[],
        kind: "directory",
        forms: &[Value(&[
            "-w",
            "--admin-password",
            "-p",
            "--password",
            "--dirsrv-pin",
            "--http-pin",
            "--pkinit-pin",
        ])],
    },
    Tool {
        names: &["ipa-ca-install", "ipa-kra-install"],
        sub: &[],
        kind: "directory",
        forms: &[Value(&["-w", "--admin-password", "-p", "--password"])],
    },
    Tool {
        names: &["ipa-adtrust-install"],
        sub: &[],
        kind: "directory",
        forms: &[Value(&["-a", "--admin-password"])],
    },
    Tool {
        names: &["realm", "adcli"],
        sub: &[],
        kind: "directory",
        forms: &[Value(&["--one-time-password"])],
    },
    Tool {
        names: &[
            "mysql",
            "mariadb",
            "mysqldump",
            "mariadb-dump",
            "mysqladmin",
            "mariadb-admin",
            "mysqlimport",
            "mysqlcheck",
            "mysqlshow",
            "mysqlpump",
            "mysqlsh",
        ],
        sub: &[],
        kind: "database",
        forms: &[
            Attached("-p"),
            Value(&["--password"]),
            Keyword(&["password"]),
        ],
    },
    Tool {
        names: &[
            "mongo",
            "mongosh",
            "mongodump",
            "mongorestore",
            "mongoexport",
            "mongoimport",
            "mongostat",
            "mongotop",
        ],
        sub: &[],
        kind: "database",
        forms: &[Value(&[
            "-p",
            "--password",
            "--tlsCertificateKeyFilePassword",
            "--awsSecretAccessKey",
            "--awsSessionToken",
        ])],
    },
    Tool {
        names: &["influx"],
        sub: &[],
        kind: "database",
        forms: &[Value(&["-password", "--password", "--token", "-t"])],
    },
    Tool {
        names: &["sqlcmd", "bcp"],
        sub: &[],
        kind: "database",
        forms: &[Value(&["-P", "--password"])],
    },
    Tool {
        names: &["cqlsh"],
        sub: &[],
        kind: "database",
        forms: &[Value(&["-p", "--password"])],
    },
    Tool {
        names: &["clickhouse-client", "clickhouse"],
        sub: &[],
        kind: "database",
        forms: &[Value(&["--password"])],
    },
    Tool {
        names: &["redis-cli", "valkey-cli", "keydb-cli"],
        sub: &[],
        kind: "cache",
        forms: &[Value(&["-a", "--pass"])],
    },
    Tool {
        names: &["rabbitmqctl"],
        sub: &[],
        kind: "queue",
        forms: &[
            Positional(&["add_user"], 2),
            Positional(&["change_password"], 2),
        ],
    },
    Tool {
        names: &["rabbitmqadmin"],
        sub: &[],
        kind: "queue",
        forms: &[Value(&["-p", "--password"])],
    },
    Tool {
        names: &["ipmitool"],
        sub: &[],
        kind: "bmc",
        forms: &[Value(&["-P"])],
    },
    Tool {
        names: &[
            "ipmi-sensors",
            "ipmipower",
            "ipmi-chassis",
            "ipmi-sel",
            "ipmiconsole",
            "bmc-info",
            "bmc-device",
            "ipmi-config",
            "ipmi-dcmi",
            "ipmi-raw",
            "ipmi-fru",
        ],
        sub: &[],
        kind: "bmc",
        forms: &[Value(&["-p", "--password", "-k", "--k-g"])],
    },
    Tool {
        names: &["racadm"],
        sub: &[],
        kind: "bmc",
        forms: &[Value(&["-p"])],
    },
    Tool {
        names: &["ipmiutil"],
        sub: &[],
        kind: "bmc",
        forms: &[Value(&["-P"])],
    },
    Tool {
        names: &["hponcfg", "ilorest"],
        sub: &[],
        kind: "bmc",
        forms: &[Value(&["-p", "--password"])],
    },
    Tool {
        names: &[
            "docker", "podman", "buildah", "nerdctl", "crane", "oras", "regctl",
        ],
        sub: &["login"],
        kind: "registry",
        forms: &[Value(&["-p", "--password"])],
    },
    Tool {
        names: &["docker", "podman", "nerdctl"],
        sub: &["run", "create", "exec"],
        kind: "container",
        forms: &[KeyValue(&["-e", "--env"])],
    },
    Tool {
        names: &["skopeo"],
        sub: &[],
        kind: "registry",
        forms: &[
            UserPass(&["--creds", "--src-creds", "--dest-creds"], ':'),
            Value(&[
                "--password",
                "--registry-token",
                "--src-registry-token",
                "--dest-registry-token",
            ]),
        ],
    },
    Tool {
        names: &["helm"],
        sub: &[],
        kind: "registry",
        forms: &[Value(&["--password"])],
    },
    Tool {
        names: &["kubectl", "oc"],
        sub: &[],
        kind: "container",
        forms: &[
            Value(&["--token", "--password"]),
            KeyValue(&["--from-literal"]),
        ],
    },
    Tool {
        names: &["az"],
        sub: &["acr"],
        kind: "registry",
        forms: &[Value(&["-p", "--password"])],
    },
    Tool {
        names: &["gitlab-runner"],
        sub: &["register"],
        kind: "ci",
        forms: &[Value(&["-r", "--registration-token", "-t", "--token"])],
    },
    Tool {
        names: &["svn"],
        sub: &[],
        kind: "vcs",
        forms: &[Value(&["--password"])],
    },
    Tool {
        names: &["hg"],
        sub: &[],
        kind: "vcs",
        forms: &[KeyValue(&["--config"])],
    },
    Tool {
        names: &["curl"],
        sub: &[],
        kind: "http",
        forms: &[
            UserPass(&["-u", "--user", "-U", "--proxy-user"], ':'),
            Value(&["--oauth2-bearer", "--pass"]),
        ],
    },
    Tool {
        names: &["wget"],
        sub: &[],
        kind: "http",
        forms: &[Value(&[
            "--password",
            "--http-password",
            "--ftp-password",
            "--proxy-password",
        ])],
    },
    Tool {
        names: &["http", "https", "xh"],
        sub: &[],
        kind: "http",
        forms: &[UserPass(&["-a", "--auth"], ':')],
    },
    Tool {
        names: &["lftp"],
        sub: &[],
        kind: "http",
        forms: &[UserPass(&["-u"], ',')],
    },
    Tool {
        names: &["sshpass"],
        sub: &[],
        kind: "remote",
        forms: &[Value(&["-p"])],
    },
    Tool {
        names: &["xfreerdp", "wlfreerdp", "sdl-freerdp"],
        sub: &[],
        kind: "remote",
        forms: &[Value(&["/p:"])],
    },
    Tool {
        names: &["rdesktop"],
        sub: &[],
        kind: "remote",
        forms: &[Value(&["-p"])],
    },
    Tool {
        names: &["nmcli"],
        sub: &[],
        kind: "network",
        forms: &[Keyword(&[
            "password",
            "wifi-sec.psk",
            "802-11-wireless-security.psk",
            "802-1x.password",
            "vpn.secrets",
        ])],
    },
    Tool {
        names: &["wpa_passphrase"],
        sub: &[],
        kind: "network",
        forms: &[Positional(&[], 2)],
    },
    Tool {
        names: &[
            "snmpwalk",
            "snmpget",
            "snmpset",
            "snmpbulkwalk",
            "snmptrap",
            "snmptable",
        ],
        sub: &[],
        kind: "network",
        forms: &[Value(&["-A", "-X"])],
    },
    Tool {
        names: &["openvpn"],
        sub: &[],
        kind: "network",
        forms: &[Value(&["--askpass"])],
    },
    Tool {
        names: &["pveum", "pvesh", "pvecm", "pct", "proxmox-backup-manager"],
        sub: &[],
        kind: "proxmox",
        forms: &[Value(&["--password", "-password", "--secret", "--token"])],
    },
    Tool {
        names: &["vault", "bao"],
        sub: &["login"],
        kind: "secrets",
        forms: &[Positional(&["login"], 1), Assign(&["password", "token"])],
    },
    Tool {
        names: &["consul", "nomad"],
        sub: &[],
        kind: "orchestration",
        forms: &[Value(&["-token", "--token"])],
    },
    Tool {
        names: &["openssl"],
        sub: &[],
        kind: "crypto",
        forms: &[PassPrefix(&["-passout", "-passin", "-pass", "-password"])],
    },
    Tool {
        names: &["htpasswd"],
        sub: &[],
        kind: "web",
        forms: &[Htpasswd],
    },
    Tool {
        names: &["openssl"],
        sub: &["passwd"],
        kind: "crypto",
        forms: &[Positional(&["passwd"], 1)],
    },
    Tool {
        names: &["keytool"],
        sub: &[],
        kind: "crypto",
        forms: &[Value(&[
            "-storepass",
            "-keypass",
            "-srcstorepass",
            "-deststorepass",
            "-srckeypass",
            "-destkeypass",
            "-new",
        ])],
    },
    Tool {
        names: &["sonar-scanner", "mvn", "gradle"],
        sub: &[],
        kind: "ci",
        forms: &[Assign(&[
            "-Dsonar.login",
            "-Dsonar.token",
            "-Dsonar.password",
        ])],
    },
    Tool {
        names: &[
            "l4t_create_default_user.sh",
            "useradd",
            "adduser",
            "usermod",
        ],
        sub: &[],
        kind: "system",
        forms: &[Value(&["-p", "--password"])],
    },
    Tool {
        names: &["ansible-playbook", "ansible"],
        sub: &[],
        kind: "automation",
        forms: &[KeyValue(&["-e", "--extra-vars"])],
    },
];

/// The table as Markdown (docs/scan-tools.md is this, checked by a test).
pub fn markdown() -> String {
    let mut out = String::from(
        "# Tools whose command line `phx-hook scan` reads for secrets\n\nGenerated from `src/scan/tools.rs` (`TOOLS`); a test keeps this file equal to the table.\nA value that is a variable, a command substitution, a file reference or a placeholder is not reported.\n\n| kind | tools | only with | where the secret is |\n|---|---|---|---|\n",
    );
    for t in TOOLS {
        let forms: Vec<String> = t
            .forms
            .iter()
            .map(|f| match f {
                Value(flags) => flags
                    .iter()
                    .map(|f| format!("`{f} X`"))
                    .collect::<Vec<_>>()
                    .join(", "),
                Attached(f) => format!("`{f}X` (attached only)"),
                UserPass(flags, sep) => flags
                    .iter()
                    .map(|f| format!("`{f} user{sep}X`"))
                    .collect::<Vec<_>>()
                    .join(", "),
                Options(flags, keys) => format!(
                    "{} with {}",
                    flags
                        .iter()
                        .map(|f| format!("`{f}`"))
                        .collect::<Vec<_>>()
                        .join("/"),
                    keys.iter()
                        .map(|k| format!("`{k}=X`"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
                PassPrefix(flags) => flags
                    .iter()
                    .map(|f| format!("`{f} pass:X`"))
                    .collect::<Vec<_>>()
                    .join(", "),
                Positional([], n) => format!("argument {n}"),
                Positional(after, n) => format!("argument {n} after `{}`", after.join(" ")),
                Keyword(keys) => keys
                    .iter()
                    .map(|k| format!("`{k} X`"))
                    .collect::<Vec<_>>()
                    .join(", "),
                KeyValue(flags) => flags
                    .iter()
                    .map(|f| format!("`{f} NAME=X` (NAME a secret's name)"))
                    .collect::<Vec<_>>()
                    .join(", "),
                Assign(keys) => keys
                    .iter()
                    .map(|k| format!("`{k}=X`"))
                    .collect::<Vec<_>>()
                    .join(", "),
                Htpasswd => "`-b[c] FILE USER X`, `-nb USER X`".to_string(),
            })
            .collect();
        out.push_str(&format!(
            "| {} | {} | {} | {} |\n",
            t.kind,
            t.names
                .iter()
                .map(|n| format!("`{n}`"))
                .collect::<Vec<_>>()
                .join(", "),
            if t.sub.is_empty() {
                String::new()
            } else {
                t.sub
                    .iter()
                    .map(|s| format!("`{s}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            },
            forms.join("; ")
        ));
    }
    out
}

/// One word of a shell-like line: its text without quotes, and for each character where
/// it is in the line and whether it was inside single quotes.
#[derive(Debug, Clone)]
pub struct Word {
    /// The text.
    pub text: String,
    /// Per character: (byte offset in the line, inside single quotes).
    pub at: Vec<(usize, bool)>,
    /// It ends a command (`|`, `;`, `&&`, ...).
    pub sep: bool,
}

impl Word {
    /// Whether `text[a..b]` (char indices) holds a shell expansion (`$` or a backquote
    /// outside single quotes).
    pub fn expands(&self, a: usize, b: usize) -> bool {
        self.text
            .chars()
            .zip(&self.at)
            .skip(a)
            .take(b - a)
            .any(|(c, &(_, single))| !single && (c == '$' || c == '`'))
    }

    /// Byte range in the line of `text[a..b]` (char indices).
    pub fn span(&self, a: usize, b: usize) -> (usize, usize) {
        let start = self.at[a].0;
        let last = self.at[b - 1].0;
        let width = self.text.chars().nth(b - 1).map_or(1, char::len_utf8);
        (start, last + width)
    }
}

/// Split a line into words as a shell would (quotes removed, `\` escapes), with command
/// separators as words of their own. Not a shell parser: good enough to find a tool and
/// its arguments, and to know which characters were quoted.
pub fn words(line: &str) -> Vec<Word> {
    let mut out = Vec::new();
    let mut cur = Word {
        text: String::new(),
        at: Vec::new(),
        sep: false,
    };
    let mut started = false;
    let mut chars = line.char_indices().peekable();
    let flush = |cur: &mut Word, started: &mut bool, out: &mut Vec<Word>| {
        if *started {
            out.push(std::mem::replace(
                cur,
                Word {
                    text: String::new(),
                    at: Vec::new(),
                    sep: false,
                },
            ));
        }
        *started = false;
    };
    while let Some((i, c)) = chars.next() {
        match c {
            ' ' | '\t' | '[' | ']' => flush(&mut cur, &mut started, &mut out),
            // `["mysqladmin", "-p..."]`: a comma right after a quoted word ends it.
            ',' if started
                && cur.at.last().is_some_and(|&(p, _)| {
                    line[p..]
                        .chars()
                        .nth(1)
                        .is_some_and(|q| q == '"' || q == '\'')
                }) =>
            {
                flush(&mut cur, &mut started, &mut out)
            }
            '\'' => {
                started = true;
                for (j, d) in chars.by_ref() {
                    if d == '\'' {
                        break;
                    }
                    cur.text.push(d);
                    cur.at.push((j, true));
                }
            }
            '"' => {
                started = true;
                while let Some((j, d)) = chars.next() {
                    match d {
                        '"' => break,
                        '\\' => {
                            if let Some((k, e)) = chars.next() {
                                cur.text.push(e);
                                cur.at.push((k, true));
                            }
                        }
                        _ => {
                            cur.text.push(d);
                            cur.at.push((j, false));
                        }
                    }
                }
            }
            '\\' => {
                started = true;
                if let Some((k, e)) = chars.next() {
                    cur.text.push(e);
                    cur.at.push((k, true));
                }
            }
            '|' | ';' | '&' | '(' | ')' | '`' | '\n' => {
                // `$(` starts a command too; a lone `$` before it stays in the word.
                if c == '(' && cur.text.ends_with('$') {
                    cur.text.pop();
                    cur.at.pop();
                }
                flush(&mut cur, &mut started, &mut out);
                out.push(Word {
                    text: c.to_string(),
                    at: vec![(i, false)],
                    sep: true,
                });
            }
            _ => {
                started = true;
                cur.text.push(c);
                cur.at.push((i, false));
            }
        }
    }
    flush(&mut cur, &mut started, &mut out);
    out
}

/// A secret found in a tool's arguments: which tool, which form, where.
#[derive(Debug, PartialEq, Eq)]
pub struct ToolHit {
    /// The tool as written (basename).
    pub tool: String,
    /// The option or form (`-U`, `-o password`, `pass:`).
    pub how: String,
    /// Byte range of the secret in the line.
    pub span: (usize, usize),
    /// The secret's text (unquoted).
    pub value: String,
}

fn basename(w: &str) -> &str {
    w.rsplit('/').next().unwrap_or(w)
}

/// Every secret handed to a tool of [`TOOLS`] on `line`. Values that expand (`$X`,
/// `$(...)`) are skipped here; the caller classifies the rest (placeholders, paths).
pub fn scan(line: &str) -> Vec<ToolHit> {
    let ws = words(line);
    let mut out = scan_words(&ws);
    // A command inside one quoted word (`os.system("mount -o password=...")`, a YAML
    // `command: "..."`): read it again as a line of its own.
    for w in &ws {
        if w.sep || !w.text.contains(' ') {
            continue;
        }
        for h in scan(&w.text) {
            let (a, b) = (
                w.text[..h.span.0].chars().count(),
                w.text[..h.span.1].chars().count(),
            );
            if a < b && b <= w.at.len() {
                let span = w.span(a, b);
                if !out.iter().any(|o| o.span.0 < span.1 && span.0 < o.span.1) {
                    out.push(ToolHit { span, ..h });
                }
            }
        }
    }
    out
}

fn scan_words(ws: &[Word]) -> Vec<ToolHit> {
    let mut out = Vec::new();
    for (i, w) in ws.iter().enumerate() {
        if w.sep {
            continue;
        }
        let name = basename(&w.text);
        // A wrapper's argument or an assignment is not a tool name.
        let tools: Vec<&Tool> = TOOLS.iter().filter(|t| t.names.contains(&name)).collect();
        if tools.is_empty() {
            continue;
        }
        let end = ws[i + 1..]
            .iter()
            .position(|w| w.sep)
            .map_or(ws.len(), |p| i + 1 + p);
        let args = &ws[i + 1..end];
        let first_positional = args.iter().find(|a| !a.text.starts_with('-'));
        for t in tools {
            if !t.sub.is_empty()
                && !first_positional.is_some_and(|p| t.sub.contains(&p.text.as_str()))
            {
                continue;
            }
            for f in t.forms {
                apply(name, f, args, &mut out);
            }
        }
    }
    out
}

fn hit(out: &mut Vec<ToolHit>, tool: &str, how: &str, w: &Word, a: usize, b: usize) {
    if a >= b || b > w.text.chars().count() || w.expands(a, b) {
        return;
    }
    let span = w.span(a, b);
    if out.iter().any(|h| h.span.0 < span.1 && span.0 < h.span.1) {
        return;
    }
    out.push(ToolHit {
        tool: tool.to_string(),
        how: how.to_string(),
        span,
        value: w.text.chars().skip(a).take(b - a).collect(),
    });
}

fn char_len(s: &str) -> usize {
    s.chars().count()
}

/// The value of `flag` at `args[k]`: (word index, char offset where the value starts).
fn flag_value(flag: &str, args: &[Word], k: usize) -> Option<(usize, usize)> {
    let a = &args[k].text;
    if a == flag {
        return (k + 1 < args.len() && !args[k + 1].sep).then_some((k + 1, 0));
    }
    if flag.starts_with("--") || flag.len() > 2 {
        // `--password=X`, `/p:X`, `-passout=X`
        if let Some(rest) = a.strip_prefix(flag) {
            if flag.ends_with(':') {
                return Some((k, char_len(flag)));
            }
            if rest.starts_with('=') {
                return Some((k, char_len(flag) + 1));
            }
        }
        return None;
    }
    // A short flag with its value attached: `-Psecret`.
    (a.starts_with(flag) && a.len() > flag.len()).then_some((k, char_len(flag)))
}

/// A positional word: not an option, not a `key=value` setting.
fn is_positional(w: &str) -> bool {
    !w.starts_with('-')
        && !w.split_once('=').is_some_and(|(k, _)| {
            !k.is_empty()
                && k.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.')
        })
}

fn apply(tool: &str, form: &Form, args: &[Word], out: &mut Vec<ToolHit>) {
    match form {
        Value(flags) => {
            for k in 0..args.len() {
                for flag in *flags {
                    if let Some((j, off)) = flag_value(flag, args, k) {
                        let n = char_len(&args[j].text);
                        hit(out, tool, flag, &args[j], off, n);
                    }
                }
            }
        }
        Attached(flag) => {
            for a in args {
                if a.text.starts_with(flag)
                    && a.text.len() > flag.len()
                    && !a.text.starts_with("--")
                {
                    hit(out, tool, flag, a, char_len(flag), char_len(&a.text));
                }
            }
        }
        UserPass(flags, sep) => {
            for k in 0..args.len() {
                for flag in *flags {
                    if let Some((j, off)) = flag_value(flag, args, k) {
                        let w = &args[j];
                        let chars: Vec<char> = w.text.chars().collect();
                        if let Some(p) = chars[off..].iter().position(|c| c == sep) {
                            hit(out, tool, flag, w, off + p + 1, chars.len());
                        }
                    }
                }
            }
        }
        Options(flags, keys) => {
            for k in 0..args.len() {
                for flag in *flags {
                    if let Some((j, off)) = flag_value(flag, args, k) {
                        let w = &args[j];
                        let chars: Vec<char> = w.text.chars().collect();
                        let mut start = off;
                        for part in w.text.chars().skip(off).collect::<String>().split(',') {
                            let n = char_len(part);
                            if let Some((key, v)) = part.split_once('=')
                                && keys.contains(&key.trim())
                            {
                                let a = start + char_len(key) + 1;
                                hit(out, tool, &format!("{flag} {key}"), w, a, a + char_len(v));
                            }
                            start += n + 1;
                            if start > chars.len() {
                                break;
                            }
                        }
                    }
                }
            }
        }
        PassPrefix(flags) => {
            for k in 0..args.len() {
                for flag in *flags {
                    if let Some((j, off)) = flag_value(flag, args, k) {
                        let w = &args[j];
                        let rest: String = w.text.chars().skip(off).collect();
                        if rest.starts_with("pass:") {
                            hit(
                                out,
                                tool,
                                &format!("{flag} pass:"),
                                w,
                                off + 5,
                                char_len(&w.text),
                            );
                        }
                    }
                }
            }
        }
        Positional(after, n) => {
            let pos: Vec<&Word> = args.iter().filter(|a| is_positional(&a.text)).collect();
            let at = if after.is_empty() {
                Some(0)
            } else {
                pos.windows(after.len())
                    .position(|win| win.iter().zip(*after).all(|(w, a)| w.text == *a))
                    .map(|p| p + after.len())
            };
            if let Some(at) = at
                && let Some(w) = pos.get(at + n - 1)
            {
                let how = if after.is_empty() {
                    format!("argument {n}")
                } else {
                    format!("{} argument {n}", after.join(" "))
                };
                hit(out, tool, &how, w, 0, char_len(&w.text));
            }
        }
        Keyword(keys) => {
            for k in 0..args.len().saturating_sub(1) {
                if keys.contains(&args[k].text.as_str()) && !args[k + 1].sep {
                    hit(
                        out,
                        tool,
                        &args[k].text,
                        &args[k + 1],
                        0,
                        char_len(&args[k + 1].text),
                    );
                }
            }
        }
        Assign(keys) => {
            for a in args {
                if let Some((key, v)) = a.text.split_once('=')
                    && keys.contains(&key)
                {
                    let off = char_len(key) + 1;
                    hit(out, tool, key, a, off, off + char_len(v));
                }
            }
        }
        KeyValue(flags) => {
            for k in 0..args.len() {
                for flag in *flags {
                    let Some((j, off)) = flag_value(flag, args, k) else {
                        continue;
                    };
                    let w = &args[j];
                    let rest: String = w.text.chars().skip(off).collect();
                    if let Some((key, v)) = rest.split_once('=')
                        && key
                            .bytes()
                            .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b))
                        && crate::scan::rules::is_secret_name(key)
                    {
                        let a = off + char_len(key) + 1;
                        hit(out, tool, &format!("{flag} {key}"), w, a, a + char_len(v));
                    }
                }
            }
        }
        Htpasswd => {
            let flags: String = args
                .iter()
                .filter(|a| a.text.starts_with('-') && !a.text.starts_with("--"))
                .map(|a| a.text[1..].to_string())
                .collect();
            if !flags.contains('b') {
                return;
            }
            let pos: Vec<&Word> = args.iter().filter(|a| !a.text.starts_with('-')).collect();
            let idx = if flags.contains('n') { 1 } else { 2 };
            if let Some(w) = pos.get(idx) {
                hit(out, tool, "-b", w, 0, char_len(&w.text));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn found(line: &str) -> Vec<(String, String)> {
        scan(line)
            .into_iter()
            .map(|h| {
                assert_eq!(&line[h.span.0..h.span.1].replace(['"', '\''], ""), &h.value);
                (h.tool, h.value)
            })
            .collect()
    }

    fn one(line: &str, tool: &str, value: &str) {
        assert_eq!(
            found(line),
            vec![(tool.to_string(), value.to_string())],
            "{line}"
        );
    }

    #[test]
    fn the_forms() {
        one(
            "smbclient //nas/share -U backup%S3cr3tPw -c ls",
            "smbclient",
            "S3cr3tPw",
        );
        one(
            "sudo mount -t cifs //nas/x /mnt -o username=bk,password=S3cr3tPw,vers=3.0",
            "mount",
            "S3cr3tPw",
        );
        one("mysql -uroot -pS3cr3tPw -e 'select 1'", "mysql", "S3cr3tPw");
        one(
            "mysqldump --password='S3cr3tPw' db",
            "mysqldump",
            "S3cr3tPw",
        );
        one(
            "ldapsearch -x -D cn=admin -w S3cr3tPw -b dc=x",
            "ldapsearch",
            "S3cr3tPw",
        );
        one(
            "redis-cli -h cache -p 6379 -a S3cr3tPw ping",
            "redis-cli",
            "S3cr3tPw",
        );
        one(
            "ipmitool -I lanplus -H 10.0.0.5 -U admin -P S3cr3tPw power status",
            "ipmitool",
            "S3cr3tPw",
        );
        one(
            "echo ok; docker login -u ci -p S3cr3tPw registry.example.com",
            "docker",
            "S3cr3tPw",
        );
        one(
            "skopeo copy --dest-creds ci:S3cr3tPw docker://a docker://b",
            "skopeo",
            "S3cr3tPw",
        );
        one(
            "curl -fsS -u admin:S3cr3tPw https://pve:8006/",
            "curl",
            "S3cr3tPw",
        );
        one(
            "openssl pkcs12 -export -in a -passout pass:S3cr3tPw -out b",
            "openssl",
            "S3cr3tPw",
        );
        one(
            "rabbitmqctl add_user app S3cr3tPw",
            "rabbitmqctl",
            "S3cr3tPw",
        );
        one(
            "htpasswd -bc /etc/nginx/.htpasswd admin S3cr3tPw",
            "htpasswd",
            "S3cr3tPw",
        );
        one("htpasswd -nb admin S3cr3tPw", "htpasswd", "S3cr3tPw");
        one(
            "mc alias set minio http://m:9000 minioadmin S3cr3tPw",
            "mc",
            "S3cr3tPw",
        );
        one(
            "kubectl create secret generic db --from-literal=password=S3cr3tPw",
            "kubectl",
            "S3cr3tPw",
        );
        one(
            "pveum user add ci@pve --password S3cr3tPw",
            "pveum",
            "S3cr3tPw",
        );
        one(
            "nmcli dev wifi connect Home password S3cr3tPw",
            "nmcli",
            "S3cr3tPw",
        );
        one(
            "xfreerdp /u:admin /p:S3cr3tPw /v:host",
            "xfreerdp",
            "S3cr3tPw",
        );
        one("net ads join -U Administrator%S3cr3tPw", "net", "S3cr3tPw");
        one(
            "aws configure set aws_secret_access_key S3cr3tPw",
            "aws",
            "S3cr3tPw",
        );
        one(
            "docker run -d -e MYSQL_ROOT_PASSWORD=S3cr3tPw mysql:8",
            "docker",
            "S3cr3tPw",
        );
        one(
            "vault login -method=userpass username=ops password=S3cr3tPw",
            "vault",
            "S3cr3tPw",
        );
        one(
            "vault login s.S3cr3tPwS3cr3tPw",
            "vault",
            "s.S3cr3tPwS3cr3tPw",
        );
        one(
            "keytool -importcert -keystore t.p12 -storepass S3cr3tPw -noprompt",
            "keytool",
            "S3cr3tPw",
        );
        one(
            "x = run(\"openssl passwd -6 S3cr3tPw\")",
            "openssl",
            "S3cr3tPw",
        );
        one(
            "test: [\"CMD\", \"mysqladmin\", \"ping\", \"-pS3cr3tPw\"]",
            "mysqladmin",
            "S3cr3tPw",
        );
        one(
            "docker run --rm img sonar-scanner -Dsonar.host.url=http://x -Dsonar.login=a12fac8226",
            "sonar-scanner",
            "a12fac8226",
        );
    }

    #[test]
    fn references_prompts_and_other_meanings_are_not_secrets() {
        for line in [
            "smbclient //nas/share -U \"$SMB_USER%$SMB_PASS\"",
            "smbclient //nas/share -U backup",
            "mysql -u root -p mydb",
            "mysql -u root -p\"$MYSQL_PASSWORD\"",
            "docker login -u ci --password-stdin registry",
            "docker run -p 8080:80 nginx",
            "redis-cli -p 6379 ping",
            "ssh -p 2222 host",
            "ldapsearch -x -W -b dc=x",
            "ldapsearch -y /etc/ldap.secret",
            "curl -u \"admin:${PW}\" https://x/",
            "openssl req -passout env:PASS -new",
            "mount -o credentials=/root/.smbcred //nas/x /mnt",
            "curl -H 'Content-Type: application/json' -d '{\"pw\":\"'\"$PW\"'\"}' https://x",
            "ipmitool -E -U admin power status",
            "kubectl create secret generic db --from-file=password=./pw.txt",
            "influx -precision rfc3339 -execute 'show databases'",
            "openssl genrsa -aes256 -out key.pem 4096",
        ] {
            assert!(found(line).is_empty(), "{line}: {:?}", found(line));
        }
    }

    /// docs/scan-tools.md is the table (`PHX_WRITE_DOCS=1 cargo test` rewrites it).
    #[test]
    fn the_documented_table_is_the_table() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/scan-tools.md");
        if std::env::var_os("PHX_WRITE_DOCS").is_some() {
            std::fs::write(path, markdown()).unwrap();
        }
        assert_eq!(
            std::fs::read_to_string(path).unwrap_or_default(),
            markdown(),
            "run PHX_WRITE_DOCS=1 cargo test --lib"
        );
    }

    #[test]
    fn at_least_25_tools() {
        let mut names: Vec<&str> = TOOLS.iter().flat_map(|t| t.names.iter().copied()).collect();
        names.sort_unstable();
        names.dedup();
        assert!(names.len() >= 25, "{}", names.len());
    }
}

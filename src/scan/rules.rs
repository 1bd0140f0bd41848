//! Detection rules for hardcoded secrets in infrastructure code: assignments whose name
//! says secret (shell, env files, JSON, YAML, TOML, INI, docker-compose), secrets handed
//! to tools on a command line, URLs with credentials, private-key blocks and well-known
//! token formats. What is not a finding: references (`$VAR`, `${VAR}`, `$(cmd)`,
//! `{{ ... }}`), empty values, placeholders, names that only mention a secret
//! (`token_url`, `secret_name`, `passwordless`), and public hashes (reported as info).

use std::sync::LazyLock;

use regex::Regex;

/// How bad a finding is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Worth knowing (a public hash).
    Info,
    /// A weak or placeholder-like secret (`changeme`).
    Low,
    /// A literal secret.
    Medium,
    /// A literal secret that looks random, or a tool's credential.
    High,
    /// A private key or a live token.
    Critical,
}

impl Severity {
    /// Lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }
}

/// One detection on a line: where the value is (byte range in the line), which rule,
/// how bad, and the variable name when there is one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hit {
    /// Rule id.
    pub rule: &'static str,
    /// Severity.
    pub severity: Severity,
    /// Byte range of the secret value in the line.
    pub start: usize,
    /// End of that range.
    pub end: usize,
    /// The variable or key name, if the secret is assigned to one.
    pub name: Option<String>,
}

/// Rule ids and their descriptions (for SARIF and `--help`).
pub const RULES: &[(&str, &str)] = &[
    (
        "secret-assignment",
        "A literal secret assigned to a name that says secret (password, token, api key, ...)",
    ),
    (
        "tool-credential",
        "A secret passed to a tool on its command line or piped into it (chpasswd, smbpasswd, --password, mysql -p, curl -u, sshpass)",
    ),
    (
        "url-credentials",
        "A URL with a password in it (scheme://user:password@host)",
    ),
    ("private-key", "A private key block"),
    ("token-github", "A GitHub token"),
    ("token-gitlab", "A GitLab personal access token"),
    ("token-slack", "A Slack token"),
    ("token-aws", "An AWS access key id"),
    ("token-stripe", "A live Stripe secret key"),
    ("token-jwt", "A JSON Web Token"),
    ("token-proxmox", "A Proxmox VE API token secret"),
    (
        "password-hash",
        "A password hash (public by design; listed for review)",
    ),
];

/// Substrings (ASCII, lower-case) one of which a line must contain to be looked at.
pub const TRIGGERS: &[&str] = &[
    "pass",
    "pwd",
    "pw",
    "secret",
    "token",
    "key",
    "auth",
    "cred",
    "-----begin",
    "://",
    "gh",
    "glpat",
    "xox",
    "akia",
    "asia",
    "_live_",
    "eyj",
    "pveapitoken",
    "mysql",
    "curl",
    "psk",
];

macro_rules! re {
    ($name:ident, $pat:expr) => {
        static $name: LazyLock<Regex> =
            LazyLock::new(|| Regex::new($pat).expect("a valid built-in pattern"));
    };
}

re!(
    PRIVATE_KEY,
    r"-----BEGIN (?:(?:RSA|DSA|EC|OPENSSH|ENCRYPTED|PGP) )?PRIVATE KEY(?: BLOCK)?-----"
);
re!(
    GITHUB,
    r"\b(?:gh[pousr]_[A-Za-z0-9]{36,255}|github_pat_[A-Za-z0-9_]{22,255})\b"
);
re!(GITLAB, r"\bglpat-[A-Za-z0-9_\-]{20,}");
re!(SLACK, r"\bxox[baprs]-[A-Za-z0-9-]{10,}");
re!(AWS, r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b");
re!(STRIPE, r"\b[sr]k_live_[0-9a-zA-Z]{24,}\b");
re!(
    JWT,
    r"\beyJ[A-Za-z0-9_-]{10,}\.eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}"
);
re!(
    PROXMOX,
    r"PVEAPIToken=[^\s@]+@[^\s!]+![^\s=]+=([0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})"
);
re!(
    URL_CRED,
    r#"\b[a-zA-Z][a-zA-Z0-9+.-]*://[^\s:/@'"]+:([^\s@/'"]+)@[^\s'"]+"#
);
re!(
    CHPASSWD,
    r#"(?:echo|printf)\s+(?:-[en]+\s+)?['"]?[^'":|\s]+:([^'"|\s]+)['"]?\s*\|\s*(?:sudo\s+)?chpasswd"#
);
re!(
    SMBPASSWD,
    r#"(?:echo|printf)\s+(?:-[en]+\s+)?['"]([^'"\\$]+)(?:\\n[^'"]*)?['"]\s*\|\s*(?:sudo\s+)?smbpasswd"#
);
re!(
    PASSWORD_FLAG,
    r#"(?:^|\s)--pass(?:word|wd)?(?:=|\s+)(?:"([^"\s]+)"|'([^'\s]+)'|([^\s'"]+))"#
);
re!(
    MYSQL_P,
    r#"\bmysql(?:dump|admin)?\b.*?\s-p([^\s'"-][^\s'"]*)"#
);
re!(
    SSHPASS,
    r#"\bsshpass\s+-p\s*(?:"([^"\s]+)"|'([^'\s]+)'|([^\s'"]+))"#
);
re!(
    CURL_USER,
    r#"\bcurl\b.*?\s(?:-u|--user)\s+['"]?[^:\s'"]+:([^\s'"]+?)['"]?(?:\s|$)"#
);
re!(
    SHELL_ASSIGN,
    r#"^\s*(?:export\s+|local\s+|readonly\s+|declare\s+(?:-\w+\s+)*)?([A-Za-z_][A-Za-z0-9_]*)=(?:"([^"]*)"|'([^']*)'|([^\s#;'"]*))"#
);
re!(
    YAML_ASSIGN,
    r#"^\s*(?:-\s+)?["']?([A-Za-z_][A-Za-z0-9_.-]*)["']?\s*:\s+(?:"([^"]*)"|'([^']*)'|([^\s#'"][^#]*?))\s*(?:#.*)?$"#
);
re!(
    JSON_ASSIGN,
    r#""([A-Za-z_][A-Za-z0-9_.-]*)"\s*:\s*"((?:[^"\\]|\\.)*)""#
);
re!(
    INI_ASSIGN,
    r#"^\s*([A-Za-z_][A-Za-z0-9_.-]*)\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s#;'"][^#;]*?))\s*$"#
);
re!(
    COMPOSE_LIST,
    r#"^\s*-\s*["']?([A-Za-z_][A-Za-z0-9_]*)=([^"'\s]*)["']?\s*$"#
);
re!(
    CRYPT_HASH,
    r"^\$(?:1|2[abxy]?|5|6|y|argon2(?:id|i|d)?)\$[^\s]{8,}$"
);

/// Words in a name that say it holds a secret.
const SECRET_WORDS: &[&str] = &[
    "password",
    "passwd",
    "pass",
    "pwd",
    "secret",
    "token",
    "apikey",
    "credential",
    "credentials",
    "auth",
    "authkey",
    "passphrase",
    "psk",
    "smbpass",
    "pw",
];
/// Words that, before `key`, make it a secret key.
const KEY_QUALIFIERS: &[&str] = &[
    "api",
    "access",
    "private",
    "secret",
    "encryption",
    "signing",
    "master",
    "auth",
    "app",
];
/// A last word that means the name is about a secret, not one.
const NOT_A_SECRET_SUFFIX: &[&str] = &[
    "url",
    "uri",
    "name",
    "file",
    "path",
    "ref",
    "id",
    "length",
    "len",
    "min",
    "max",
    "policy",
    "prompt",
    "field",
    "env",
    "var",
    "type",
    "header",
    "endpoint",
    "expiry",
    "expires",
    "ttl",
    "enabled",
    "required",
    "mode",
    "format",
    "dir",
    "command",
    "cmd",
    "chars",
    "count",
    "method",
    "algorithm",
    "size",
    "hash",
    "salt",
    "file_path",
    "location",
    "source",
    "provider",
    "store",
    "backend",
    "timeout",
    "lifetime",
    "rotation",
    "hint",
    "label",
    "user",
    "username",
    "login",
    "host",
    "port",
    "scope",
    "scopes",
    "regex",
    "pattern",
    "version",
    "kind",
    "secretname",
];

/// Split a name into lower-case words: `smb_password`, `SMB-PASSWORD`, `apiKey`,
/// `db.password` all give their words.
pub fn words(name: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut prev_lower = false;
    for c in name.chars() {
        if c == '_' || c == '-' || c == '.' {
            if !cur.is_empty() {
                out.push(std::mem::take(&mut cur));
            }
            prev_lower = false;
            continue;
        }
        if c.is_ascii_uppercase() && prev_lower && !cur.is_empty() {
            out.push(std::mem::take(&mut cur));
        }
        prev_lower = c.is_ascii_lowercase() || c.is_ascii_digit();
        cur.push(c.to_ascii_lowercase());
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// Whether a name says it holds a secret.
pub fn is_secret_name(name: &str) -> bool {
    let w = words(name);
    let Some(last) = w.last() else { return false };
    if NOT_A_SECRET_SUFFIX.contains(&last.as_str()) {
        return false;
    }
    w.iter().enumerate().any(|(i, word)| {
        SECRET_WORDS.contains(&word.as_str())
            || (word == "key" && i > 0 && KEY_QUALIFIERS.contains(&w[i - 1].as_str()))
            || word.ends_with("password")
            || word.ends_with("passwd")
            || word.ends_with("secret")
            || word.ends_with("token") && word.len() > 5
            || word == "apikey"
    })
}

/// Whether a name is about a password hash (`password_hash`, `hashed_password`, `crypt`).
fn is_hash_name(name: &str) -> bool {
    let w = words(name);
    w.iter()
        .any(|x| x == "hash" || x == "hashed" || x == "crypt" || x == "crypted" || x == "digest")
}

/// What a literal value is.
#[derive(Debug, PartialEq, Eq)]
pub enum ValueKind {
    /// Not a secret: empty, a reference, a placeholder, a boolean, a short number, a path.
    NotSecret,
    /// A weak default (`changeme`): a low-severity finding.
    Weak,
    /// A crypt(3) hash: info.
    Hash,
    /// A literal secret; high when it looks random.
    Secret {
        /// It looks generated (high entropy).
        random: bool,
    },
}

/// Classify a literal value.
pub fn classify(value: &str) -> ValueKind {
    let v = value.trim();
    if v.is_empty() {
        return ValueKind::NotSecret;
    }
    if CRYPT_HASH.is_match(v) {
        return ValueKind::Hash;
    }
    if v.starts_with('$')
        || v.starts_with('{')
        || v.starts_with('[')
        || v.contains("${")
        || v.contains("$(")
        || v.contains("{{")
        || v.contains("%(")
        || v.contains("<%")
        || v.starts_with('!')
        || v.starts_with("ENC[")
        || v.starts_with("vault:")
        || v.starts_with("secret:")
        || v.starts_with("file:")
        || v.starts_with("env:")
        || v.starts_with("lookup(")
        || v.starts_with("@")
        || v.starts_with("#{")
    {
        return ValueKind::NotSecret;
    }
    let lower = v.to_ascii_lowercase();
    let bare = lower
        .trim_matches(|c| c == '<' || c == '>' || c == '[' || c == ']' || c == '{' || c == '}');
    const PLACEHOLDERS: &[&str] = &[
        "not_set",
        "notset",
        "none",
        "null",
        "nil",
        "~",
        "true",
        "false",
        "yes",
        "no",
        "on",
        "off",
        "redacted",
        "todo",
        "tbd",
        "fixme",
        "example",
        "dummy",
        "placeholder",
        "your_password",
        "yourpassword",
        "your-password",
        "your_password_here",
        "password_here",
        "your_token",
        "your_token_here",
        "your_api_key",
        "your-api-key",
        "insert_password_here",
        "replace_me",
        "replaceme",
        "replace-me",
        "unset",
        "empty",
        "required",
        "optional",
        "string",
        "secret",
        "token",
        "password",
        "passwd",
        "****",
        "...",
        "-",
        "na",
        "n/a",
        "undefined",
        "default",
        "generated",
        "random",
    ];
    if lower.starts_with('<') && lower.ends_with('>')
        || PLACEHOLDERS.contains(&lower.as_str())
        || PLACEHOLDERS.contains(&bare)
        || lower
            .chars()
            .all(|c| c == 'x' || c == '*' || c == '.' || c == '#' || c == '-' || c == '_')
        || lower.starts_with("your_") && lower.ends_with("_here")
    {
        return ValueKind::NotSecret;
    }
    if v.len() <= 4 && v.chars().all(|c| c.is_ascii_digit()) {
        return ValueKind::NotSecret;
    }
    if (v.starts_with('/') || v.starts_with("./") || v.starts_with("~/"))
        && !v.contains(' ')
        && v.len() > 1
        && v[1..].contains('/')
    {
        return ValueKind::NotSecret;
    }
    const WEAK: &[&str] = &[
        "changeme",
        "change_me",
        "change-me",
        "changeit",
        "admin",
        "root",
        "test",
        "test123",
        "123456",
        "password123",
        "letmein",
        "welcome",
    ];
    if WEAK.contains(&lower.as_str()) {
        return ValueKind::Weak;
    }
    ValueKind::Secret {
        random: looks_random(v),
    }
}

/// Shannon entropy above ~3.5 bits per character over at least 12 characters, or a long
/// hex/base64 run: a generated secret rather than a word.
fn looks_random(v: &str) -> bool {
    if v.len() < 12 {
        return false;
    }
    let mut counts = [0u32; 256];
    for b in v.bytes() {
        counts[b as usize] += 1;
    }
    let n = v.len() as f64;
    let h: f64 = counts
        .iter()
        .filter(|&&c| c > 0)
        .map(|&c| {
            let p = f64::from(c) / n;
            -p * p.log2()
        })
        .sum();
    h >= 3.5
}

fn push(
    out: &mut Vec<Hit>,
    rule: &'static str,
    severity: Severity,
    m: regex::Match<'_>,
    name: Option<String>,
) {
    if out.iter().any(|h| h.start < m.end() && m.start() < h.end) {
        return;
    }
    out.push(Hit {
        rule,
        severity,
        start: m.start(),
        end: m.end(),
        name,
    });
}

fn first<'a>(c: &regex::Captures<'a>, idx: &[usize]) -> Option<regex::Match<'a>> {
    idx.iter().find_map(|&i| c.get(i))
}

/// Every hit on one line. `line` must not contain a newline.
pub fn scan_line(line: &str) -> Vec<Hit> {
    let mut out = Vec::new();
    if line.len() > 8192 {
        return out;
    }
    // 1. Formats that are secrets wherever they appear.
    if let Some(m) = PRIVATE_KEY.find(line) {
        push(&mut out, "private-key", Severity::Critical, m, None);
    }
    for (re, rule, sev) in [
        (&*GITHUB, "token-github", Severity::Critical),
        (&*GITLAB, "token-gitlab", Severity::Critical),
        (&*SLACK, "token-slack", Severity::Critical),
        (&*AWS, "token-aws", Severity::High),
        (&*STRIPE, "token-stripe", Severity::Critical),
        (&*JWT, "token-jwt", Severity::High),
    ] {
        for m in re.find_iter(line) {
            push(&mut out, rule, sev, m, None);
        }
    }
    for c in PROXMOX.captures_iter(line) {
        if let Some(m) = c.get(1) {
            push(&mut out, "token-proxmox", Severity::Critical, m, None);
        }
    }
    for c in URL_CRED.captures_iter(line) {
        if let Some(m) = c.get(1)
            && matches!(
                classify(m.as_str()),
                ValueKind::Secret { .. } | ValueKind::Weak
            )
        {
            push(&mut out, "url-credentials", Severity::High, m, None);
        }
    }
    // 2. Secrets handed to tools.
    for (re, groups) in [
        (&*CHPASSWD, &[1usize][..]),
        (&*SMBPASSWD, &[1][..]),
        (&*PASSWORD_FLAG, &[1, 2, 3][..]),
        (&*MYSQL_P, &[1][..]),
        (&*SSHPASS, &[1, 2, 3][..]),
        (&*CURL_USER, &[1][..]),
    ] {
        for c in re.captures_iter(line) {
            if let Some(m) = first(&c, groups) {
                match classify(m.as_str()) {
                    ValueKind::Secret { .. } => {
                        push(&mut out, "tool-credential", Severity::High, m, None)
                    }
                    ValueKind::Weak => push(&mut out, "tool-credential", Severity::Low, m, None),
                    _ => {}
                }
            }
        }
    }
    // 3. Assignments to secret names, in every syntax.
    let mut assign = |name: regex::Match<'_>, value: Option<regex::Match<'_>>| {
        let Some(value) = value else { return };
        let n = name.as_str();
        let kind = classify(value.as_str());
        if is_hash_name(n) || kind == ValueKind::Hash {
            if kind == ValueKind::Hash && (is_hash_name(n) || is_secret_name(n)) {
                push(
                    &mut out,
                    "password-hash",
                    Severity::Info,
                    value,
                    Some(n.to_string()),
                );
            }
            return;
        }
        if !is_secret_name(n) {
            return;
        }
        match kind {
            ValueKind::Secret { random } => push(
                &mut out,
                "secret-assignment",
                if random {
                    Severity::High
                } else {
                    Severity::Medium
                },
                value,
                Some(n.to_string()),
            ),
            ValueKind::Weak => push(
                &mut out,
                "secret-assignment",
                Severity::Low,
                value,
                Some(n.to_string()),
            ),
            _ => {}
        }
    };
    for c in JSON_ASSIGN.captures_iter(line) {
        assign(c.get(1).expect("group 1"), c.get(2));
    }
    for re in [&*SHELL_ASSIGN, &*INI_ASSIGN, &*YAML_ASSIGN] {
        if let Some(c) = re.captures(line) {
            assign(c.get(1).expect("group 1"), first(&c, &[2, 3, 4]));
        }
    }
    if let Some(c) = COMPOSE_LIST.captures(line) {
        assign(c.get(1).expect("group 1"), c.get(2));
    }
    out.sort_by_key(|h| h.start);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hits(line: &str) -> Vec<(&'static str, &str)> {
        scan_line(line)
            .into_iter()
            .map(|h| (h.rule, &line[h.start..h.end]))
            .collect()
    }

    #[test]
    fn names() {
        for yes in [
            "smb_password",
            "DB_PASS",
            "apiKey",
            "API_KEY",
            "client_secret",
            "auth_token",
            "GITHUB_TOKEN",
            "PGPASSWORD",
            "private_key",
            "mysql_root_password",
            "passphrase",
        ] {
            assert!(is_secret_name(yes), "{yes}");
        }
        for no in [
            "passwordless",
            "token_url",
            "secret_name",
            "password_file",
            "password_min_length",
            "key",
            "ssh_key_path",
            "author",
            "keyboard",
            "monkey",
            "passport",
            "auth_method",
            "username",
        ] {
            assert!(!is_secret_name(no), "{no}");
        }
    }

    #[test]
    fn the_samba_pattern() {
        assert_eq!(
            hits(r#"    local smb_password="Sup3rS3cret!""#),
            vec![("secret-assignment", "Sup3rS3cret!")]
        );
        assert_eq!(
            hits(r#"echo -e "Sup3rS3cret!\nSup3rS3cret!" | smbpasswd -s -a phoenix"#),
            vec![("tool-credential", "Sup3rS3cret!")]
        );
        assert_eq!(
            hits(r#"printf '%s\n%s\n' "$SMB_PASSWORD" "$SMB_PASSWORD" | smbpasswd -s -a phoenix"#),
            vec![]
        );
    }

    #[test]
    fn references_and_placeholders_are_not_findings() {
        for line in [
            "DB_PASSWORD=$DB_PASSWORD",
            "DB_PASSWORD=${DB_PASSWORD:?missing}",
            "token=$(cat /run/secrets/token)",
            "password: {{ vault_password }}",
            "password: \"\"",
            "password: NOT_SET",
            "password: <password>",
            "password: xxxxxxxx",
            "password_hash_rounds = 5000",
        ] {
            assert!(hits(line).is_empty(), "{line}: {:?}", hits(line));
        }
        assert_eq!(scan_line("password: changeme")[0].severity, Severity::Low);
        assert_eq!(
            scan_line("password_hash: $6$rounds=5000$abcdefgh$ABCDEFGHIJKLMNOPQRSTUVWXYZ")[0].rule,
            "password-hash"
        );
    }
}

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
    /// How it was found or why its severity is what it is (`smbclient -U`, "test fixture").
    pub detail: Option<String>,
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
    (
        "webhook-url",
        "A webhook URL with its token in it (Slack, Discord, Microsoft Teams, generic hooks)",
    ),
    (
        "k8s-secret",
        "A value in the data or stringData of a Kubernetes Secret manifest",
    ),
    (
        "cloud-init-password",
        "A password in cloud-init user data (chpasswd list, plain_text_passwd)",
    ),
    (
        "credential-file",
        "A password in a credentials file (.netrc, .pgpass)",
    ),
    (
        "htpasswd",
        "A user:hash line (htpasswd, shadow, a chpasswd list): a password hash anyone with the file can attack offline",
    ),
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
    "ghp_",
    "gho_",
    "ghu_",
    "ghs_",
    "ghr_",
    "github_pat_",
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
    "hook",
    "$apr1$",
    "$2y$",
    "{sha}",
    "login",
    "add_user",
    "change_password",
    "alias",
    "host add",
];

/// Whether a line can hold a hit at all: one of [`TRIGGERS`] or a tool's name, found
/// case-insensitively by one automaton.
pub fn has_trigger(line: &str) -> bool {
    static ANY: LazyLock<regex::bytes::Regex> = LazyLock::new(|| {
        let words: Vec<String> = TRIGGERS.iter().map(|t| regex::escape(t)).collect();
        // Tool names as words, as written (`mc` must not match `doc`, `oc` not `block`).
        let mut tools: Vec<String> = super::tools::TOOLS
            .iter()
            .flat_map(|t| t.names.iter().map(|n| regex::escape(n)))
            .collect();
        tools.sort();
        tools.dedup();
        regex::bytes::Regex::new(&format!(
            "(?i:{})|(?-u:\\b)(?:{})(?-u:\\b)",
            words.join("|"),
            tools.join("|")
        ))
        .expect("a valid built-in pattern")
    });
    ANY.is_match(line.as_bytes())
}

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
    r#"(?:^|\s)--([A-Za-z0-9][A-Za-z0-9-]*)(?:=|\s+)(?:"([^"\s]+)"|'([^'\s]+)'|([^\s'"]+))"#
);
re!(
    WEBHOOK,
    r#"https://(?:hooks\.slack\.com/(?:services|workflows|triggers)/[A-Za-z0-9_/-]{20,}|(?:ptb\.|canary\.)?discord(?:app)?\.com/api/webhooks/[0-9]{5,}/[A-Za-z0-9_-]{20,}|[A-Za-z0-9-]+\.webhook\.office\.com/webhookb2/[A-Za-z0-9@/_-]{20,}|outlook\.office\.com/webhook/[A-Za-z0-9@/_-]{20,}|prod-[0-9]+\.[a-z]+\.logic\.azure\.com[^\s'"]*sig=[A-Za-z0-9_%-]{20,}|[A-Za-z0-9.-]+/[A-Za-z0-9/._-]*hooks?/[A-Za-z0-9/._-]*[A-Za-z0-9_-]{24,})"#
);
re!(
    APR1_ANYWHERE,
    r"\$\$?(?:apr1|2[aby])\$\$?[./0-9A-Za-z]{2,}\$\$?[./0-9A-Za-z]{8,}"
);
re!(
    EXPANSION_DEFAULT,
    r#"\$\{([A-Za-z_][A-Za-z0-9_]*):?[-=](?:"([^"}$]+)"|'([^'}$]+)'|([^"'}$\s][^}$]*))\}"#
);
re!(
    TEMPLATE_DEFAULT,
    r#"\{\{-?\s*([.$A-Za-z0-9_ ]+?)\s*\|\s*default\s+"([^"]+)"\s*-?\}\}"#
);
re!(
    ECHO_TO_CRED_FILE,
    r#"\b(?:echo|printf)\s+(?:-[en]+\s+)?(?:"([^"$%\\\s]+)"|'([^'%\\\s]+)'|([^\s"'$%|>]+))\s*>>?\s*\S*(?:pass|cred|secret|token|pwd)\S*"#
);
re!(
    DEBCONF,
    r"^\s*\S+\s+\S*(?:password|passwd|pass|pw)\S*\s+(?:password|string)\s+(\S+)\s*$"
);
re!(
    PIPED_TO_PASSWD,
    r"\|\s*(?:sudo\s+)?(?:smbpasswd|passwd|chpasswd|pdbedit|vncpasswd|x11vnc\s+-storepasswd)\b"
);
re!(
    ECHO_LITERAL,
    r#"\b(?:echo|printf)\s+(?:-[en]+\s+)?(?:"([^"$\\]+)"|'([^'\\]+)')"#
);
re!(
    PROSE_PASSWORD,
    r"(?i)\b(?:password|passwd|pass|pwd)\s*(?::|=|\bis\b|\bto\s+be\b|\bto\b|\()\s*[\x22']?\(?([^\s,;()'\x22`<>\[\]{}]{4,})"
);
re!(
    HTPASSWD_LINE,
    r"^\s*[A-Za-z0-9._@-]+:((?:\$apr1\$|\$2[aby]\$|\$5\$|\$6\$|\{SHA\}|\{SSHA\})[^\s:]{8,})\s*$"
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
    FLOW_ASSIGN,
    r#"[{,]\s*["']?([A-Za-z_][A-Za-z0-9_.-]*)["']?\s*:\s*(?:"([^"]*)"|'([^']*)'|([^,}\s"']+(?:\s+[^,}\s"']+)*))"#
);
re!(
    COMPOSE_LIST,
    r#"^\s*-\s*["']?([A-Za-z_][A-Za-z0-9_]*)=([^"'\s]*)["']?\s*$"#
);
re!(
    CRYPT_HASH,
    r"^\$(?:1|2[abxy]?|5|6|y|argon2(?:id|i|d)?)\$[^\s]{8,}$"
);

/// Words prose puts after "password:" that are not passwords.
const PROSE_WORDS: &[&str] = &[
    "required",
    "optional",
    "string",
    "hidden",
    "masked",
    "prompt",
    "interactive",
    "disabled",
    "enabled",
    "expired",
    "changed",
    "missing",
    "invalid",
    "incorrect",
    "wrong",
    "correct",
    "needed",
    "unknown",
    "default",
    "random",
    "generated",
    "provided",
    "protected",
    "authentication",
    "encrypted",
    "hashed",
    "stored",
    "verified",
    "policy",
];

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
    "db",
    "database",
    "mechanism",
    "directory",
    "folder",
    "plugin",
    "server",
    "service",
    "realm",
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
            // `rootpw`, `bindpw`, `adminpwd` (OpenLDAP, Samba, many installers).
            || (word.ends_with("pw") || word.ends_with("pwd")) && (4..=9).contains(&word.len())
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
    if CRYPT_HASH.is_match(v)
        || [
            "{SSHA}",
            "{SSHA256}",
            "{SSHA512}",
            "{SHA}",
            "{SMD5}",
            "{MD5}",
            "{CRYPT}",
            "{PBKDF2",
        ]
        .iter()
        .any(|p| v.starts_with(p))
    {
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
    if is_reference(v) || is_placeholder(v) {
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
    // Ports, counts, timeouts; a value too short to be anyone's password. A longer
    // number under a secret's name is a PIN: weak, but a secret.
    if v.len() <= 4 && v.chars().all(|c| c.is_ascii_digit()) || v.chars().count() <= 2 {
        return ValueKind::NotSecret;
    }
    if v.len() <= 8 && v.chars().all(|c| c.is_ascii_digit()) {
        return ValueKind::Weak;
    }
    // A relative path (`ignore/secrets`, `certs/server.key`), not a generated string.
    if v.contains('/')
        && !v.starts_with('/')
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"/._-".contains(&b))
        && v.split('/').all(|p| !p.is_empty())
        && !looks_random(v)
    {
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

/// A value that names where the secret is instead of being it: an expansion in any
/// template language, a shell quote splice (`'{"pw":"'"$PW"'"}'` leaves `'` or `'"`), a
/// function call or a dotted reference (`os.getenv("X")`, `var.db_password`), an
/// environment variable in another syntax (`%PASSWORD%`, `@@PW@@`, `__PW__`).
pub fn is_reference(v: &str) -> bool {
    static DOTTED: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(r#"^(?:var|local|locals|data|module|each|self|params|inputs|secrets|vars|env|process\.env|os\.environ|settings|config|cfg|values|item|ansible_facts|hostvars|steps|needs|github|random_password|aws_[a-z_]+|azurerm_[a-z_]+|google_[a-z_]+|vault_[a-z_]+|kubernetes_[a-z_]+)(?:\.[A-Za-z0-9_\-\[\]"']+)+$"#)
            .expect("a valid built-in pattern")
    });
    v.contains('\'')
        || v.contains('"')
        || v.contains("${")
        || v.contains("$(")
        || v.contains("{{")
        || v.contains("{%")
        || v.contains("%(")
        || v.contains("<%")
        || v.contains("#{")
        || v.starts_with('$') && v.len() > 1
        || v.starts_with('%') && v.ends_with('%') && v.len() > 2
        || v.starts_with("@@") && v.ends_with("@@")
        || v.starts_with("__") && v.ends_with("__") && v.len() > 4
        || v.starts_with("--")
        || DOTTED.is_match(v)
        || v.ends_with(')')
            && v.find('(').is_some_and(|p| {
                p > 0
                    && v[..p]
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"_.:$".contains(&b))
            })
}

/// A placeholder or sentinel, in any case style and with words around it:
/// `ENTER_TOKEN_HERE`, `your-password-here`, `CHANGE_ME`, `<password>`, `xxx`, `...`,
/// `not-required`, `UNSET`: every word of it is a placeholder word.
pub fn is_placeholder(v: &str) -> bool {
    const WORDS: &[&str] = &[
        "enter",
        "your",
        "here",
        "insert",
        "put",
        "replace",
        "change",
        "me",
        "changeme",
        "todo",
        "fixme",
        "tbd",
        "xxx",
        "xx",
        "x",
        "not",
        "no",
        "required",
        "set",
        "unset",
        "none",
        "null",
        "nil",
        "example",
        "sample",
        "dummy",
        "fake",
        "placeholder",
        "redacted",
        "hidden",
        "masked",
        "secret",
        "secrets",
        "password",
        "passwd",
        "pass",
        "pw",
        "pwd",
        "token",
        "key",
        "api",
        "apikey",
        "access",
        "value",
        "my",
        "the",
        "a",
        "an",
        "some",
        "foo",
        "bar",
        "baz",
        "string",
        "str",
        "default",
        "generate",
        "generated",
        "random",
        "new",
        "old",
        "goes",
        "to",
        "be",
        "filled",
        "fill",
        "in",
        "add",
        "use",
        "own",
        "real",
        "actual",
        "valid",
        "empty",
        "blank",
        "undefined",
        "unknown",
        "n",
        "na",
        "tba",
        "client",
        "id",
        "user",
        "username",
        "name",
        "admin",
        "db",
        "database",
        "app",
        "auth",
        "private",
        "public",
        "bearer",
        "webhook",
        "url",
        "this",
        "with",
        "for",
        "of",
        "and",
        "or",
        "is",
        "it",
        "you",
        "yours",
        "must",
        "should",
        "please",
        "provide",
        "provided",
        "specify",
        "specified",
        "some",
        "any",
        "secure",
        "strong",
        "long",
        "very",
        "super",
        "s3cret",
        "test",
    ];
    let lower = v.to_ascii_lowercase();
    if lower.chars().all(|c| "x*.#-_?<>[]{}()/ ".contains(c)) {
        return true;
    }
    // `<...>` and `[...]` around words: a slot to fill in.
    let inner = lower.trim_matches(|c: char| "<>[]{}()".contains(c));
    if (lower.starts_with('<') && lower.ends_with('>')
        || lower.starts_with('[') && lower.ends_with(']'))
        && !inner.is_empty()
    {
        return true;
    }
    let ws: Vec<String> = v
        .split(|c: char| !c.is_ascii_alphanumeric() && c != '_' && c != '-' && c != '.')
        .flat_map(words)
        .collect();
    let meaningful: Vec<&String> = ws.iter().filter(|w| !w.is_empty()).collect();
    let has = |w: &str| meaningful.iter().any(|m| m.as_str() == w);
    let alpha_words = meaningful
        .iter()
        .all(|w| w.chars().all(|c| c.is_ascii_alphabetic()));
    if meaningful.len() >= 2 {
        // `your_mongo_password`, `YOUR-API-KEY`, `put-base64-keys-here`,
        // `insecure-secret-change-me`, `CHANGE_ME_MASTER_PASSWORD`, `SAS_KEY_VALUE`.
        if meaningful[0] == "your"
            || meaningful.len() >= 3 && meaningful.last().is_some_and(|w| w.as_str() == "here")
            || meaningful
                .windows(2)
                .any(|p| p[0] == "change" && (p[1] == "me" || p[1] == "it"))
            || has("changeme")
            || has("changeit")
            || has("replaceme")
            || alpha_words
                && v.bytes().all(|b| b.is_ascii_uppercase() || b == b'_')
                && v.contains('_')
        {
            return true;
        }
    }
    if matches!(
        lower.as_str(),
        "changeme" | "changeit" | "change_me" | "change-me" | "replaceme"
    ) {
        return true;
    }
    // An alphabet run is a made-up value.
    let alnum: String = lower.chars().filter(char::is_ascii_alphanumeric).collect();
    if alnum.len() >= 8
        && ["abcdefghijklmnopqrstuvwxyz", "qwertyuiopasdfghjklzxcvbnm"]
            .iter()
            .any(|run| run.contains(alnum.as_str()))
    {
        return true;
    }
    // Sequential digits in a test or example value (`TEST-123456789-1234-...`).
    if v.contains("123456789")
        && ["test", "example", "sample", "dummy", "fake", "1234-1234"]
            .iter()
            .any(|w| lower.contains(w))
    {
        return true;
    }
    // One word on its own is a placeholder only if it clearly is one (`password` as a
    // password is a weak secret, and `admin` one too).
    if meaningful.len() < 2 {
        return matches!(
            lower.trim_matches(|c: char| !c.is_ascii_alphanumeric()),
            "todo"
                | "fixme"
                | "tbd"
                | "unset"
                | "none"
                | "null"
                | "nil"
                | "placeholder"
                | "redacted"
                | "dummy"
                | "example"
                | "sample"
                | "xxx"
                | "undefined"
                | "masked"
                | "hidden"
                | "notset"
                | "tba"
        );
    }
    meaningful.iter().all(|w| {
        WORDS.contains(&w.as_str())
            || w.chars().all(|c| c == 'x')
            || w.chars().all(|c| c.is_ascii_digit()) && w.len() <= 2
    })
}

/// A here-document that feeds a password tool (`cat <<EOF | vncpasswd`, `chpasswd
/// <<EOF`): its terminator, and whether its lines are `user:password` (chpasswd).
pub fn passwd_heredoc(line: &str) -> Option<(String, bool)> {
    static HEREDOC: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(r#"<<-?\s*["']?([A-Za-z_][A-Za-z0-9_]*)["']?"#)
            .expect("a valid built-in pattern")
    });
    static TOOL: LazyLock<Regex> = LazyLock::new(|| {
        // A command, not a path (`cat >> /etc/passwd <<EOF` feeds no password tool).
        Regex::new(r"(?:^|[\s|;&(])(?:sudo\s+)?(vncpasswd|smbpasswd|passwd|chpasswd|pdbedit|x11vnc|kinit|ldappasswd)\b")
            .expect("a valid built-in pattern")
    });
    let end = HEREDOC.captures(line)?.get(1)?.as_str().to_string();
    let tool = TOOL.captures(line)?.get(1)?.as_str();
    Some((end, tool == "chpasswd"))
}

/// Whether a crypt(3) or LDAP hash has a salt that looks generated (not an example's).
pub fn hash_salt_is_random(v: &str) -> bool {
    let v = v.trim();
    if let Some(rest) = [
        "{SSHA}",
        "{SSHA256}",
        "{SSHA512}",
        "{SMD5}",
        "{PBKDF2}",
        "{PBKDF2-SHA256}",
        "{PBKDF2-SHA512}",
        "{ARGON2}",
        "{CRYPT}",
    ]
    .iter()
    .find_map(|p| v.strip_prefix(p))
    {
        return rest.len() >= 16 && !rest.contains("AAAA");
    }
    let parts: Vec<&str> = v.split('$').collect();
    // `$id$[rounds=N$]salt$hash`; bcrypt is `$2y$COST$` then 22 characters of salt and
    // the hash in one field.
    let salt = if parts.get(1).is_some_and(|id| id.starts_with('2')) {
        parts.get(3).map_or("", |f| &f[..f.len().min(22)])
    } else {
        parts
            .iter()
            .skip(2)
            .find(|p| !p.starts_with("rounds=") && !p.is_empty())
            .copied()
            .unwrap_or_default()
    };
    let lower = salt.to_ascii_lowercase();
    salt.len() >= 8
        && ![
            "salt", "silly", "example", "abcdefgh", "12345678", "xxxxxxxx",
        ]
        .iter()
        .any(|w| lower.contains(w))
        && salt
            .chars()
            .any(|c| c.is_ascii_digit() || c.is_ascii_uppercase() || c == '.' || c == '/')
}

/// The literal an expect(1) `send "..."` line sends (without a trailing `\r`/`\n`), as a
/// byte range of the line.
pub fn expect_send(line: &str) -> Option<(usize, usize)> {
    static SEND: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(r#"^\s*send\s+(?:--\s+)?"([^"$\[\\]+)(?:\\[rn])*""#)
            .expect("a valid built-in pattern")
    });
    let m = SEND.captures(line)?.get(1)?;
    matches!(
        classify(m.as_str()),
        ValueKind::Secret { .. } | ValueKind::Weak
    )
    .then(|| (m.start(), m.end()))
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
    push_span(
        out,
        Hit {
            rule,
            severity,
            start: m.start(),
            end: m.end(),
            name,
            detail: None,
        },
    );
}

/// Keep `h` unless an earlier hit already covers part of its range.
fn push_span(out: &mut Vec<Hit>, h: Hit) {
    if out.iter().any(|o| o.start < h.end && h.start < o.end) {
        return;
    }
    out.push(h);
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
    // 2. Secrets handed to tools: the table (see `tools`), echo-piped passwords, and any
    // long option whose name says secret (`--registry-password`, `--api-token`).
    for h in super::tools::scan(line) {
        let sev = match classify(&h.value) {
            ValueKind::Secret { .. } => Severity::High,
            ValueKind::Weak => Severity::Low,
            _ => continue,
        };
        push_span(
            &mut out,
            Hit {
                rule: "tool-credential",
                severity: sev,
                start: h.span.0,
                end: h.span.1,
                name: None,
                detail: Some(format!("{} {}", h.tool, h.how)),
            },
        );
    }
    for (re, groups) in [(&*CHPASSWD, &[1usize][..]), (&*SMBPASSWD, &[1][..])] {
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
    for c in PASSWORD_FLAG.captures_iter(line) {
        let (Some(flag), Some(m)) = (c.get(1), first(&c, &[2, 3, 4])) else {
            continue;
        };
        let words = words(flag.as_str());
        let names_secret = words.last().is_some_and(|w| {
            [
                "password",
                "passwd",
                "pass",
                "pw",
                "secret",
                "token",
                "apikey",
                "passphrase",
            ]
            .contains(&w.as_str())
                || w == "key"
                    && words.len() > 1
                    && ["api", "secret", "access", "private", "auth"]
                        .contains(&words[words.len() - 2].as_str())
        });
        if !names_secret {
            continue;
        }
        match classify(m.as_str()) {
            ValueKind::Secret { .. } => push(
                &mut out,
                "tool-credential",
                Severity::High,
                m,
                Some(format!("--{}", flag.as_str())),
            ),
            ValueKind::Weak => push(
                &mut out,
                "tool-credential",
                Severity::Low,
                m,
                Some(format!("--{}", flag.as_str())),
            ),
            _ => {}
        }
    }
    // Secret-named variables set for one command: `PGPASSWORD=pw psql`, `sudo MYSQL_PWD=pw
    // mysql`, `ENV DB_PASSWORD=pw`, `Environment=DB_PASSWORD=pw`, Java properties
    // `-Didp.keystore.password=pw`, and `password=pw` among comma-separated options
    // (`username=pi,password=pw` in an fstab line or a mount string).
    for (k, w) in super::tools::words(line).iter().enumerate() {
        let prefix = ["Environment=", "-D"]
            .iter()
            .find(|p| w.text.starts_with(**p))
            .map_or(0, |p| p.chars().count());
        let text: String = w.text.chars().skip(prefix).collect();
        let mut at = prefix;
        for part in text.split(',') {
            let part_len = part.chars().count();
            let here = at;
            at += part_len + 1;
            let Some((key, v)) = part.split_once('=') else {
                continue;
            };
            // SonarQube's token goes in `sonar.login` (older scanners) or `sonar.token`.
            let sonar = matches!(key, "sonar.login" | "sonar.token" | "sonar.password");
            if (k == 0 && prefix == 0 && here == 0)
                || key.is_empty()
                || !key
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b))
                || !key.as_bytes()[0].is_ascii_alphabetic()
                || !(is_secret_name(key) || sonar)
            {
                continue;
            }
            let a = here + key.chars().count() + 1;
            let b = a + v.chars().count();
            if a >= b || w.expands(a, b) {
                continue;
            }
            let (start, end) = w.span(a, b);
            let sev = match classify(v) {
                ValueKind::Secret { random: true } => Severity::High,
                ValueKind::Secret { random: false } => Severity::Medium,
                ValueKind::Weak => Severity::Low,
                _ => continue,
            };
            push_span(
                &mut out,
                Hit {
                    rule: "secret-assignment",
                    severity: sev,
                    start,
                    end,
                    name: Some(key.to_string()),
                    detail: None,
                },
            );
        }
    }
    // `${DB_PASSWORD:-literal}`: the default is a literal secret.
    for c in EXPANSION_DEFAULT.captures_iter(line) {
        let (Some(n), Some(m)) = (c.get(1), first(&c, &[2, 3, 4])) else {
            continue;
        };
        if is_secret_name(n.as_str()) {
            match classify(m.as_str()) {
                ValueKind::Secret { .. } => push(
                    &mut out,
                    "secret-assignment",
                    Severity::Medium,
                    m,
                    Some(n.as_str().to_string()),
                ),
                ValueKind::Weak => push(
                    &mut out,
                    "secret-assignment",
                    Severity::Low,
                    m,
                    Some(n.as_str().to_string()),
                ),
                _ => {}
            }
        }
    }
    // A Helm or Go template default for a secret value: `{{ .Values.x.password | default "pw" }}`.
    for c in TEMPLATE_DEFAULT.captures_iter(line) {
        let (Some(expr), Some(m)) = (c.get(1), c.get(2)) else {
            continue;
        };
        let named = expr.as_str().rsplit(['.', ' ']).next().unwrap_or_default();
        if is_secret_name(named)
            && matches!(
                classify(m.as_str()),
                ValueKind::Secret { .. } | ValueKind::Weak
            )
        {
            push(
                &mut out,
                "secret-assignment",
                Severity::Medium,
                m,
                Some(named.to_string()),
            );
        }
    }
    // A literal written to a credentials file: `printf "pw" > keystore_creds`.
    for c in ECHO_TO_CRED_FILE.captures_iter(line) {
        if let Some(m) = first(&c, &[1, 2, 3])
            && matches!(classify(m.as_str()), ValueKind::Secret { .. })
        {
            push(&mut out, "tool-credential", Severity::High, m, None);
        }
    }
    // debconf preseeding: `slapd slapd/password1 password pw`.
    if let Some(c) = DEBCONF.captures(line)
        && let Some(m) = c.get(1)
        && matches!(
            classify(m.as_str()),
            ValueKind::Secret { .. } | ValueKind::Weak
        )
    {
        push(
            &mut out,
            "tool-credential",
            Severity::High,
            m,
            Some("debconf".into()),
        );
    }
    // Every literal a line echoes into a password-setting tool:
    // `(echo "pw"; echo "pw") | smbpasswd -s -a user`.
    if PIPED_TO_PASSWD.is_match(line) {
        for c in ECHO_LITERAL.captures_iter(line) {
            if let Some(m) = first(&c, &[1, 2])
                && matches!(
                    classify(m.as_str()),
                    ValueKind::Secret { .. } | ValueKind::Weak
                )
                && !m.as_str().contains('%')
            {
                push(&mut out, "tool-credential", Severity::High, m, None);
            }
        }
    }
    // A password in prose, a comment or a message: `Password: pw`, `(User: u / Pass: pw)`.
    for c in PROSE_PASSWORD.captures_iter(line) {
        if let Some(m) = c.get(1)
            && !line[m.end()..].starts_with(['(', '.', '[', '$', '{'])
            && matches!(classify(m.as_str()), ValueKind::Secret { .. })
            && !is_secret_name(m.as_str())
            && m.as_str()
                .chars()
                .any(|c| c.is_ascii_digit() || !c.is_ascii_alphabetic())
                | (m.as_str().len() >= 6
                    && m.as_str().chars().all(|c| c.is_ascii_lowercase())
                    && !PROSE_WORDS.contains(&m.as_str()))
        {
            push(
                &mut out,
                "secret-assignment",
                Severity::Medium,
                m,
                Some("password".into()),
            );
        }
    }
    for m in WEBHOOK.find_iter(line) {
        push(&mut out, "webhook-url", Severity::High, m, None);
    }
    if let Some(c) = HTPASSWD_LINE.captures(line)
        && let Some(m) = c.get(1)
        && (!m.as_str().starts_with('$') || hash_salt_is_random(m.as_str()))
    {
        push(&mut out, "htpasswd", Severity::Medium, m, None);
    }
    // An htpasswd entry inside another value (a Traefik or nginx label; `$$` escapes).
    for m in APR1_ANYWHERE.find_iter(line) {
        if hash_salt_is_random(&m.as_str().replace("$$", "$")) {
            push(&mut out, "htpasswd", Severity::Medium, m, None);
        }
    }
    // 3. Assignments to secret names, in every syntax.
    let mut assign = |name: regex::Match<'_>, value: Option<regex::Match<'_>>| {
        let Some(value) = value else { return };
        let n = name.as_str();
        let kind = classify(value.as_str());
        if is_hash_name(n) || kind == ValueKind::Hash {
            if kind == ValueKind::Hash && (is_hash_name(n) || is_secret_name(n)) {
                // A hash with a random salt is someone's real password, crackable offline
                // (low); one with an example salt (`saltsalt`, glibc's
                // `usesomesillystring...`) documents the format (info).
                let real = hash_salt_is_random(value.as_str());
                push_span(
                    &mut out,
                    Hit {
                        rule: "password-hash",
                        severity: if real { Severity::Low } else { Severity::Info },
                        start: value.start(),
                        end: value.end(),
                        name: Some(n.to_string()),
                        detail: real.then(|| {
                            "a password hash with a random salt: crackable offline".to_string()
                        }),
                    },
                );
            }
            return;
        }
        if !is_secret_name(n) {
            return;
        }
        // An access key (id) names an account, like a user name (MinIO's is one): a
        // finding only when it looks generated, as a cloud key id does.
        let w = words(n);
        let access_id = w
            .iter()
            .rev()
            .skip_while(|x| *x == "id")
            .take(2)
            .eq(["key", "access"].iter());
        if access_id && !matches!(kind, ValueKind::Secret { random: true }) {
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
    if line.contains('{') {
        for c in FLOW_ASSIGN.captures_iter(line) {
            // `${VAR:?message}` is an expansion, not a mapping.
            let at = c.get(0).map_or(0, |m| m.start());
            if at > 0 && matches!(line.as_bytes()[at - 1], b'$' | b'#' | b'%' | b'@') {
                continue;
            }
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
        assert!(hits("password: changeme").is_empty());
        assert_eq!(scan_line("password: letmein")[0].severity, Severity::Low);
        assert_eq!(
            scan_line("password_hash: $6$rounds=5000$abcdefgh$ABCDEFGHIJKLMNOPQRSTUVWXYZ")[0].rule,
            "password-hash"
        );
    }

    /// Issue 16's precision list: none of these is a secret.
    #[test]
    fn interpolations_placeholders_and_fragments() {
        for line in [
            r#"curl -d '{"user":"admin","pw":"'"$PW"'"}' https://x/api"#,
            r#"DB_PASSWORD="${DB_PASSWORD}""#,
            "TOKEN=$(vault kv get -field=token secret/ci)",
            "password = %(db_password)s",
            "password: '{{ vault_db_password }}'",
            "password: <%= @db_password %>",
            "API_TOKEN=ENTER_TOKEN_HERE",
            "api_key: your-api-key-here",
            "password: UNSET",
            "password: not-required",
            "secret: none",
            "token: null",
            "password: TODO",
            "PASSWORD=CHANGE_ME",
            "admin_password: xxx",
            "password: <password>",
            "password: ...",
            "password_required: true",
            "redis_password_port: 6379",
            "token_count: 12",
            "docker run -v /run/secrets/token:/token:ro app",
            "docker run --mount type=bind,src=./token.txt,dst=/token app",
            "password = os.getenv(\"DB_PASSWORD\")",
            "db_password = var.db_password",
            "rsync --password-file=/etc/rsync.secret a b",
            "docker login -u ci --password-stdin ghcr.io",
        ] {
            assert!(hits(line).is_empty(), "{line}: {:?}", hits(line));
        }
    }

    /// Issue 16's recall list: each form, and a near miss that is not a secret.
    #[test]
    fn infrastructure_forms_and_their_near_misses() {
        for (line, value) in [
            (
                "curl -X POST https://hooks.slack.com/services/T0ABCDEF1/B0ABCDEF2/aBcDeFgHiJkLmNoPqRsTuVwX -d x",
                "https://hooks.slack.com/services/T0ABCDEF1/B0ABCDEF2/aBcDeFgHiJkLmNoPqRsTuVwX",
            ),
            (
                "url: https://discord.com/api/webhooks/123456789012345678/aBcDeFgHiJkLmNoPqRsTuVwXyZ012345",
                "https://discord.com/api/webhooks/123456789012345678/aBcDeFgHiJkLmNoPqRsTuVwXyZ012345",
            ),
            (
                "TEAMS=https://contoso.webhook.office.com/webhookb2/1a2b3c4d-aaaa@5e6f/IncomingWebhook/abcdef0123456789abcdef/1234",
                "https://contoso.webhook.office.com/webhookb2/1a2b3c4d-aaaa@5e6f/IncomingWebhook/abcdef0123456789abcdef/1234",
            ),
            (
                "docker login -u ci -p Gh7sQ2pLx9 registry.lan",
                "Gh7sQ2pLx9",
            ),
            ("podman login --password Gh7sQ2pLx9 quay.io", "Gh7sQ2pLx9"),
            (
                "helm repo add corp https://charts.lan --username ci --password Gh7sQ2pLx9",
                "Gh7sQ2pLx9",
            ),
            (
                "argocd repo add x --registry-password Gh7sQ2pLx9",
                "Gh7sQ2pLx9",
            ),
            ("pveum user add ci@pve --password Gh7sQ2pLx9", "Gh7sQ2pLx9"),
            ("PGPASSWORD=Gh7sQ2pLx9 psql -h db -U app", "Gh7sQ2pLx9"),
            ("sudo MYSQL_PWD=Gh7sQ2pLx9 mysql -u root", "Gh7sQ2pLx9"),
            ("psk=\"Gh7sQ2pLx9wifi\"", "Gh7sQ2pLx9wifi"),
            (
                "admin:$apr1$Zx9Lm2Qa$Qw8e7r6t5y4u3i2o1p0aZ.",
                "$apr1$Zx9Lm2Qa$Qw8e7r6t5y4u3i2o1p0aZ.",
            ),
            (
                "openssl pkcs12 -export -in a.crt -passout pass:Gh7sQ2pLx9 -out a.p12",
                "Gh7sQ2pLx9",
            ),
            (r#"  "adminPassword": "Gh7sQ2pLx9","#, "Gh7sQ2pLx9"),
            (r#"  "clientSecret": "Gh7sQ2pLx9","#, "Gh7sQ2pLx9"),
            ("plain_text_passwd: Gh7sQ2pLx9", "Gh7sQ2pLx9"),
        ] {
            let h = hits(line);
            assert!(h.iter().any(|(_, v)| *v == value), "{line}: {h:?}");
        }
        for near in [
            "curl https://hooks.slack.com/services/ -d x",
            "docker login -u ci --password-stdin registry.lan",
            "helm repo add corp https://charts.lan --pass-credentials",
            "PGPASSWORD_FILE=/run/secrets/pg psql",
            "psk=$WIFI_PSK",
            "# admin:x",
            "openssl req -new -passout env:KEY_PASS -out a.csr",
            r#"  "adminPasswordLength": 16,"#,
            r#"  "clientSecretName": "oauth""#,
            "plain_text_passwd: '{{ pw }}'",
        ] {
            assert!(hits(near).is_empty(), "{near}: {:?}", hits(near));
        }
    }

    /// Rules found missing on the held-out corpus, in general form.
    #[test]
    fn held_out_lessons() {
        // OpenLDAP-style names, LDAP hash schemes, real versus example salts.
        assert!(is_secret_name("openldap_server_rootpw") && is_secret_name("olcRootPW"));
        let h = scan_line("olcRootPW: {SSHA}HjctE0WeqEUI2TvR+pmVxx2YiqFe3xAK");
        assert_eq!((h[0].rule, h[0].severity), ("password-hash", Severity::Low));
        let h =
            scan_line("    passwd: $6$rounds=4096$pKQlPVilIMTUM$4nHFT45hTzfXe0L1ra6iDGELqvGdm6Pnv");
        assert_eq!(h[0].severity, Severity::Low);
        let h = scan_line("password: \"$6$saltsalt$9mLmaPoBdFf0pZWUw1hYlPeRUeUrFu2Xpj0cbVBpvP8\"");
        assert_eq!(h[0].severity, Severity::Info);
        assert!(hits("#  user:$apr1$salt$Xxd1irWT9ycqoYxGFn4cb.").is_empty());
        assert!(hash_salt_is_random(
            "$2y$10$N9qo8uLOickgx2ZMRZoMyeIjZAgcfl7p92ldGxad68LJZdL17lhWy"
        ));
        // expect(1) answers and literals written to credential files.
        assert_eq!(expect_send("  send \"gxvpi700\\r\""), Some((8, 16)));
        assert_eq!(expect_send("send \"$pw\\r\""), None);
        assert_eq!(
            hits("sh -c \"echo -n 'gxvpi700' > /etc/ldapscripts/ldapscripts.passwd\"")[0].1,
            "gxvpi700"
        );
        assert!(hits("echo \"Database Credentials\" >> ~/app.creds").is_empty());
        // Sonar's token under its old name; alphabet runs are made up.
        assert_eq!(
            hits("  -D sonar.login=9bc0bc4d884dba84a4c9d8fc4767266e1c7fd220 \\")[0].1,
            "9bc0bc4d884dba84a4c9d8fc4767266e1c7fd220"
        );
        assert!(hits("auth_password: abcdefghijklmnop").is_empty());
        assert!(!hits("secret_key = \"T0mlS3cretKeyAbCdEfGhIjKlMnOpQrStUv\"").is_empty());
    }
}

//! What a line means depends on its file: a value under a Kubernetes Secret's `data:`, a
//! `user:password` line in cloud-init's `chpasswd: list:`, a `.pgpass` line, an OpenAPI
//! `example:`. This module reads a file line by line with that context (YAML and
//! pretty-printed JSON nesting, block scalars, documents), adds the hits only context
//! gives, and sets the severity of hits in documentation (at most `low`) and in test
//! fixtures and sample files (one step lower), saying why.

use super::rules::{self, Hit, Severity, ValueKind};

/// What kind of file, from its path and first bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FileKind {
    /// Documentation (Markdown, reStructuredText, an OpenAPI or JSON Schema document).
    pub doc: bool,
    /// A test fixture, example or sample file.
    pub fixture: bool,
    /// A special credentials format.
    pub special: Special,
}

/// Files whose format is itself a credential store.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Special {
    /// Nothing special.
    None,
    /// `.netrc`: `machine M login L password P`.
    Netrc,
    /// `.pgpass`: `host:port:database:user:password`.
    Pgpass,
    /// `htpasswd` or `shadow`: `user:hash[:...]` lines.
    UserHash,
}

/// Classify a file by its path (as shown) and the start of its text.
pub fn kind(path: &str, text: &str) -> FileKind {
    let lower = path.to_ascii_lowercase();
    let name = lower.rsplit('/').next().unwrap_or(&lower);
    let mut n = text.len().min(4096);
    while !text.is_char_boundary(n) {
        n -= 1;
    }
    let head = &text[..n];
    let ext = name.rsplit_once('.').map_or("", |(_, e)| e);
    let doc = matches!(
        ext,
        "md" | "markdown" | "rst" | "adoc" | "asciidoc" | "html" | "htm"
    ) || (matches!(ext, "yaml" | "yml" | "json")
        && ["openapi:", "swagger:", "\"openapi\"", "\"swagger\""]
            .iter()
            .any(|m| head.contains(m)));
    const FIXTURE_DIRS: &[&str] = &[
        "test", "tests", "testdata", "testing", "spec", "specs", "fixture", "fixtures", "example",
        "examples", "sample", "samples", "demo", "demos", "mock", "mocks",
    ];
    let fixture = lower
        .split('/')
        .rev()
        .skip(1)
        .any(|d| FIXTURE_DIRS.contains(&d))
        || [".example", ".sample", ".dist", ".template", ".tmpl", ".tpl"]
            .iter()
            .any(|s| name.ends_with(s) || name.contains(&format!("{s}.")))
        || name.starts_with("example.")
        || name.starts_with("sample.")
        || name.starts_with("test_") && ext == "py"
        || name.ends_with("_test.go");
    let special = match name {
        ".netrc" | "_netrc" | "netrc" => Special::Netrc,
        ".pgpass" | "pgpass" | "pgpass.conf" => Special::Pgpass,
        n if n.ends_with(".netrc") => Special::Netrc,
        n if n.ends_with(".pgpass") => Special::Pgpass,
        n if n == "htpasswd"
            || n == ".htpasswd"
            || n.ends_with(".htpasswd")
            || n == "shadow"
            || n == "shadow-"
            || n.ends_with(".shadow") =>
        {
            Special::UserHash
        }
        _ => Special::None,
    };
    FileKind {
        doc,
        fixture,
        special,
    }
}

/// One YAML (or pretty-printed JSON) key line: its indentation and key.
fn key_of(line: &str) -> Option<(usize, String, &str)> {
    let trimmed = line.trim_start();
    let indent = line.len() - trimmed.len();
    let (dash, body) = match trimmed.strip_prefix("- ") {
        Some(b) => (2, b.trim_start()),
        None => (0, trimmed),
    };
    let _ = dash;
    let body_indent = indent + (trimmed.len() - body.len());
    let (key, rest) = if let Some(b) = body.strip_prefix('"') {
        let end = b.find('"')?;
        let rest = b[end + 1..].trim_start().strip_prefix(':')?;
        (b[..end].to_string(), rest)
    } else {
        let colon = body
            .find(": ")
            .or_else(|| body.strip_suffix(':').map(|b| b.len()))?;
        let k = &body[..colon];
        if k.is_empty() || k.contains(' ') && !k.starts_with('\'') {
            return None;
        }
        (k.trim_matches('\'').to_string(), &body[colon + 1..])
    };
    Some((body_indent, key, rest.trim()))
}

/// Hits on every line of a file, with context: `(line index, hit)`.
pub fn scan_file(path: &str, text: &str) -> Vec<(usize, Hit)> {
    let fk = kind(path, text);
    let mut out: Vec<(usize, Hit)> = Vec::new();
    let lines: Vec<&str> = text.lines().collect();
    // Kubernetes Secrets: which YAML documents are `kind: Secret`.
    let mut secret_doc = vec![false; lines.len()];
    {
        let mut start = 0;
        for i in 0..=lines.len() {
            if i == lines.len() || lines[i].trim_end() == "---" {
                let is_secret = lines[start..i]
                    .iter()
                    .any(|l| l.trim_end() == "kind: Secret" || l.trim() == "\"kind\": \"Secret\",");
                for s in &mut secret_doc[start..i] {
                    *s = is_secret;
                }
                start = i + 1;
            }
        }
    }
    // The keys enclosing the current line, and an open block scalar.
    let mut stack: Vec<(usize, String)> = Vec::new();
    let mut block: Option<(usize, bool)> = None; // (indent of its key, is a chpasswd list)
    let mut netrc_password_next = false;
    // An open here-document that feeds a password tool: (terminator, is chpasswd).
    let mut heredoc: Option<(String, bool)> = None;
    let mut expect_password = false;
    // Physical lines of a command continued with `\`.
    let mut continued: Vec<(usize, &str)> = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        if line.len() > 8192 {
            continue;
        }
        let indent = line.len() - line.trim_start().len();
        let trimmed = line.trim();
        if let Some((end, chpasswd)) = &heredoc {
            if trimmed == end {
                heredoc = None;
            } else if *chpasswd {
                chpasswd_line(line, i, &mut out);
            } else if trimmed.chars().count() >= 4
                && matches!(
                    rules::classify(trimmed),
                    ValueKind::Secret { .. } | ValueKind::Weak
                )
            {
                let start = line.find(trimmed).unwrap_or(0);
                out.push((
                    i,
                    hit(
                        line,
                        start,
                        start + trimmed.len(),
                        "tool-credential",
                        Severity::High,
                        None,
                    ),
                ));
            }
            continue;
        }
        if let Some(h) = rules::passwd_heredoc(line) {
            heredoc = Some(h);
        }
        // expect(1): the `send` that answers a password prompt.
        if expect_password && let Some((a, b)) = rules::expect_send(line) {
            out.push((
                i,
                hit(
                    line,
                    a,
                    b,
                    "tool-credential",
                    Severity::High,
                    Some("expect send".into()),
                ),
            ));
        }
        if trimmed.starts_with("expect ")
            || trimmed.starts_with("expect\t")
            || trimmed.starts_with("-re ")
        {
            let l = trimmed.to_ascii_lowercase();
            expect_password = l.contains("pass") || l.contains("secret") || l.contains("pin");
        } else if trimmed.starts_with("send ") {
            expect_password = false;
        }
        // Inside a block scalar (`key: |`): text, not keys (a CI script, a chpasswd list).
        let mut in_block = false;
        if let Some((key_indent, chpasswd)) = block {
            if trimmed.is_empty() || indent > key_indent {
                if chpasswd {
                    chpasswd_line(line, i, &mut out);
                }
                in_block = true;
            } else {
                block = None;
            }
        }
        let mut hits = Vec::new();
        let comment = ["#", "//", ";"]
            .iter()
            .find(|m| trimmed.starts_with(**m))
            .map(|m| line.find(m).unwrap_or(0) + m.len());
        if let Some(at) = comment {
            // A commented-out assignment or command still leaks what it holds; a shell
            // session shown in a comment (`# $ openssl passwd ...`) documents a command.
            let rest = &line[at..];
            if rules::has_trigger(rest) && !rest.trim_start().starts_with("$ ") {
                for mut h in rules::scan_line(rest) {
                    h.start += at;
                    h.end += at;
                    hits.push(h);
                }
            }
        } else if !trimmed.is_empty() {
            let key = if in_block { None } else { key_of(line) };
            if let Some((ki, k, rest)) = &key {
                while stack.last().is_some_and(|(si, _)| si >= ki) {
                    stack.pop();
                }
                let in_chpasswd = stack.iter().any(|(_, s)| s == "chpasswd");
                if rest.starts_with('|') || rest.starts_with('>') {
                    block = Some((*ki, in_chpasswd && k == "list"));
                }
                // Kubernetes Secret data: every value is a secret (base64 under `data`).
                if secret_doc[i]
                    && let Some(parent) = stack.last().map(|(_, p)| p.as_str())
                    && (parent == "data" || parent == "stringData")
                    && !rest.is_empty()
                {
                    k8s_value(line, rest, parent == "data", i, &mut out);
                }
                stack.push((*ki, k.clone()));
            } else if trimmed.starts_with("- ")
                && stack.last().is_some_and(|(_, k)| k == "list")
                && stack.iter().any(|(_, k)| k == "chpasswd")
            {
                chpasswd_line(line, i, &mut out);
            }
            if rules::has_trigger(line) {
                hits = rules::scan_line(line);
            }
            // Documentation members of API descriptions and schemas.
            let in_example = stack.iter().any(|(_, k)| {
                matches!(
                    k.as_str(),
                    "example" | "examples" | "x-example" | "x-examples" | "default"
                )
            }) || key.as_ref().is_some_and(|(_, k, _)| {
                matches!(k.as_str(), "example" | "examples" | "x-example")
            });
            if in_example {
                for h in &mut hits {
                    lower_doc(h, "an API example member");
                }
            }
        }
        // A command continued over several lines: its options read as one line.
        continued.push((i, line));
        if !line.trim_end().ends_with('\\') {
            if continued.len() > 1 {
                out.extend(continued_hits(&continued));
            }
            continued.clear();
        } else if continued.len() > 64 {
            continued.clear();
        }
        match fk.special {
            Special::Netrc => netrc_line(line, i, &mut netrc_password_next, &mut out),
            Special::Pgpass => pgpass_line(line, i, &mut out),
            Special::UserHash => user_hash_line(line, i, &mut out),
            Special::None => {}
        }
        out.extend(hits.into_iter().map(|h| (i, h)));
    }
    // A Bitnami SealedSecret holds ciphertext only the cluster can open: made to be
    // committed.
    if text.contains("SealedSecret") || text.contains("encryptedData") {
        out.retain(|(i, h)| {
            let v = lines[*i].get(h.start..h.end).unwrap_or_default();
            !(v.len() >= 64
                && v.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"+/=".contains(&b)))
        });
    }
    // A value the same file replaces with `sed` before it is used is a template token
    // (`sed -i "s/adminadmin/${password}/g"`), not a password.
    let tokens = sed_tokens(text);
    if !tokens.is_empty() {
        out.retain(|(i, h)| {
            !tokens
                .iter()
                .any(|t| lines[*i].get(h.start..h.end) == Some(t.as_str()))
        });
    }
    // One hit per place.
    out.sort_by_key(|(i, h)| (*i, h.start));
    out.dedup_by(|b, a| a.0 == b.0 && a.1.start < b.1.end && b.1.start < a.1.end);
    for (_, h) in &mut out {
        if fk.doc {
            lower_doc(h, "documentation");
        } else if fk.fixture && h.severity > Severity::Info {
            h.severity = match h.severity {
                Severity::Critical => Severity::High,
                Severity::High => Severity::Medium,
                _ => Severity::Low,
            };
            h.detail = Some(join(
                h.detail.take(),
                "in a test fixture or sample file: severity lowered",
            ));
        }
    }
    out
}

fn join(a: Option<String>, b: &str) -> String {
    match a {
        Some(a) => format!("{a}; {b}"),
        None => b.to_string(),
    }
}

fn lower_doc(h: &mut Hit, why: &str) {
    if h.severity > Severity::Low {
        h.severity = Severity::Low;
        h.detail = Some(join(h.detail.take(), &format!("{why}: at most low")));
    }
}

fn hit(
    line: &str,
    start: usize,
    end: usize,
    rule: &'static str,
    sev: Severity,
    name: Option<String>,
) -> Hit {
    debug_assert!(end <= line.len());
    Hit {
        rule,
        severity: sev,
        start,
        end,
        name,
        detail: None,
    }
}

/// Literals a `sed` substitution in `text` replaces with an expansion
/// (`s/TOKEN/${VAR}/`, any delimiter).
fn sed_tokens(text: &str) -> Vec<String> {
    static SED: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
        regex::Regex::new(
            r"\bsed\b[^\n]*?\bs([/|#,@])([A-Za-z0-9_.@!%+-]{3,})([/|#,@])[^/|#,@\n]*\$",
        )
        .expect("a valid built-in pattern")
    });
    if !text.contains("sed") {
        return Vec::new();
    }
    SED.captures_iter(text)
        .filter(|c| c.get(1).map(|m| m.as_str()) == c.get(3).map(|m| m.as_str()))
        .filter_map(|c| c.get(2).map(|m| m.as_str().to_string()))
        .collect()
}

/// Hits in a command continued over `parts` (physical lines ending in `\\`), read as one
/// line and mapped back to the physical line each is on.
fn continued_hits(parts: &[(usize, &str)]) -> Vec<(usize, Hit)> {
    let mut joined = String::new();
    let mut starts = Vec::new();
    for (_, l) in parts {
        starts.push(joined.len());
        let body = l.trim_end();
        joined.push_str(body.strip_suffix('\\').unwrap_or(body));
        joined.push(' ');
    }
    let mut out = Vec::new();
    if !rules::has_trigger(&joined) {
        return out;
    }
    for mut h in rules::scan_line(&joined) {
        let k = starts.iter().rposition(|&s| s <= h.start).unwrap_or(0);
        let (i, l) = parts[k];
        if h.end - starts[k] > l.len() {
            continue;
        }
        h.start -= starts[k];
        h.end -= starts[k];
        out.push((i, h));
    }
    out
}

/// `user:hash[:...]` in an htpasswd or shadow file: a crackable password hash (a locked
/// or empty field is not one).
fn user_hash_line(line: &str, i: usize, out: &mut Vec<(usize, Hit)>) {
    let mut f = line.splitn(3, ':');
    let (Some(user), Some(hash)) = (f.next(), f.next()) else {
        return;
    };
    if user.is_empty()
        || user.contains(char::is_whitespace)
        || user.starts_with('#')
        || hash.len() < 8
        || hash.starts_with('!')
        || hash.starts_with('*')
        || hash.starts_with('$') && !rules::hash_salt_is_random(hash)
    {
        return;
    }
    let start = user.len() + 1;
    out.push((
        i,
        hit(
            line,
            start,
            start + hash.len(),
            "htpasswd",
            Severity::Medium,
            Some(user.to_string()),
        ),
    ));
}

/// `  name: value` under a Secret's `data` (base64: the decoded bytes are classified) or
/// `stringData`.
fn k8s_value(line: &str, rest: &str, base64: bool, i: usize, out: &mut Vec<(usize, Hit)>) {
    use base64::Engine;
    let value = rest.trim().trim_matches(|c| c == '"' || c == '\'');
    let Some(start) = line.rfind(value).filter(|_| !value.is_empty()) else {
        return;
    };
    let decoded;
    let plain = if base64 {
        match base64::engine::general_purpose::STANDARD.decode(value) {
            Ok(b) => {
                decoded = String::from_utf8_lossy(&b).into_owned();
                decoded.trim()
            }
            Err(_) => return,
        }
    } else {
        value
    };
    let sev = if plain.contains("-----BEGIN") {
        if !plain.contains("PRIVATE KEY") {
            return;
        }
        Severity::Critical
    } else {
        match rules::classify(plain) {
            ValueKind::Secret { .. } => Severity::High,
            ValueKind::Weak => Severity::Low,
            _ => return,
        }
    };
    let name = line
        .trim_start()
        .split(':')
        .next()
        .map(|k| k.trim().to_string());
    // A Secret also holds what is not secret: its user name, host, port, database.
    if name.as_deref().is_some_and(|n| {
        rules::words(n).last().is_some_and(|l| {
            [
                "user",
                "username",
                "login",
                "host",
                "hostname",
                "port",
                "url",
                "uri",
                "endpoint",
                "database",
                "db",
                "name",
                "namespace",
                "region",
                "bucket",
                "server",
                "address",
                "email",
                "realm",
                "domain",
                "scheme",
            ]
            .contains(&l.as_str())
        })
    }) {
        return;
    }
    out.push((
        i,
        hit(line, start, start + value.len(), "k8s-secret", sev, name),
    ));
}

/// `user:password` (or `- user:password`) in a `chpasswd: list:`; `RANDOM` and hashes
/// are not literal passwords.
fn chpasswd_line(line: &str, i: usize, out: &mut Vec<(usize, Hit)>) {
    let t = line.trim_start();
    let body = t.strip_prefix("- ").unwrap_or(t).trim();
    let body = body.trim_matches(|c| c == '"' || c == '\'');
    let Some((user, pw)) = body.split_once(':') else {
        return;
    };
    if user.is_empty() || user.contains(' ') || pw.is_empty() || pw.eq_ignore_ascii_case("random") {
        return;
    }
    let (rule, sev) = match rules::classify(pw) {
        ValueKind::Secret { .. } => ("cloud-init-password", Severity::High),
        ValueKind::Weak => ("cloud-init-password", Severity::Low),
        ValueKind::Hash => ("htpasswd", Severity::Medium),
        _ => return,
    };
    let Some(start) = line.find(body).map(|p| p + user.len() + 1) else {
        return;
    };
    out.push((
        i,
        hit(
            line,
            start,
            start + pw.len(),
            rule,
            sev,
            Some(user.to_string()),
        ),
    ));
}

/// `.netrc`: the word after `password` (on this line or the next).
fn netrc_line(line: &str, i: usize, next: &mut bool, out: &mut Vec<(usize, Hit)>) {
    let mut offset = 0;
    for w in line.split_whitespace() {
        let start = offset + line[offset..].find(w).unwrap_or(0);
        offset = start + w.len();
        if *next {
            *next = false;
            if matches!(
                rules::classify(w),
                ValueKind::Secret { .. } | ValueKind::Weak
            ) {
                out.push((
                    i,
                    hit(
                        line,
                        start,
                        start + w.len(),
                        "credential-file",
                        Severity::High,
                        Some("password".into()),
                    ),
                ));
            }
        } else if w == "password" || w == "passwd" {
            *next = true;
        }
    }
}

/// `.pgpass`: `host:port:database:user:password` (`\:` escapes a colon).
fn pgpass_line(line: &str, i: usize, out: &mut Vec<(usize, Hit)>) {
    if line.trim_start().starts_with('#') {
        return;
    }
    let mut fields = 0;
    let mut prev = '\0';
    for (p, c) in line.char_indices() {
        if c == ':' && prev != '\\' {
            fields += 1;
            if fields == 4 {
                let pw = &line[p + 1..];
                if matches!(
                    rules::classify(pw),
                    ValueKind::Secret { .. } | ValueKind::Weak
                ) {
                    out.push((
                        i,
                        hit(
                            line,
                            p + 1,
                            line.len(),
                            "credential-file",
                            Severity::High,
                            Some("password".into()),
                        ),
                    ));
                }
                return;
            }
        }
        prev = c;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn found(path: &str, text: &str) -> Vec<(usize, &'static str, String, Severity)> {
        scan_file(path, text)
            .into_iter()
            .map(|(i, h)| {
                let line = text.lines().nth(i).unwrap();
                (i + 1, h.rule, line[h.start..h.end].to_string(), h.severity)
            })
            .collect()
    }

    #[test]
    fn kubernetes_secrets() {
        let y = "apiVersion: v1\nkind: Secret\nmetadata:\n  name: db\ntype: Opaque\ndata:\n  password: UzNjcjN0UHdHZW5lcmF0ZWQ=\n  username: YWRtaW4=\nstringData:\n  token: tok-9f8e7d6c5b4a\n---\nkind: ConfigMap\ndata:\n  mode: fast\n";
        let f = found("k8s/db.yaml", y);
        assert_eq!(
            f.iter().map(|x| (x.0, x.1)).collect::<Vec<_>>(),
            vec![(7, "k8s-secret"), (10, "k8s-secret")],
            "{f:?}"
        );
    }

    #[test]
    fn cloud_init_chpasswd() {
        let y = "#cloud-config\nchpasswd:\n  expire: false\n  list: |\n    root:Gen3ratedPw1\n    ubuntu:RANDOM\n  users:\n    - {name: ops, password: Gen3ratedPw2, type: text}\nusers:\n  - name: app\n    plain_text_passwd: Gen3ratedPw3\n";
        let f = found("cloud-init/user-data", y);
        assert_eq!(
            f.iter().map(|x| (x.0, x.2.as_str())).collect::<Vec<_>>(),
            vec![
                (5, "Gen3ratedPw1"),
                (8, "Gen3ratedPw2"),
                (11, "Gen3ratedPw3")
            ],
            "{f:?}"
        );
        let y2 = "chpasswd:\n  list:\n    - root:Gen3ratedPw4\n";
        assert_eq!(found("user-data", y2)[0].2, "Gen3ratedPw4");
    }

    #[test]
    fn credential_files() {
        let f = found(
            ".netrc",
            "machine api.example.com\n  login ci\n  password Gen3ratedPw5\n",
        );
        assert_eq!(f[0].2, "Gen3ratedPw5");
        let f = found("home/.pgpass", "db.local:5432:*:app:Gen3rated\\:Pw6\n");
        assert_eq!(f[0].2, "Gen3rated\\:Pw6");
    }

    #[test]
    fn documentation_and_fixtures_are_lowered_with_a_reason() {
        let api = "openapi: 3.0.0\ncomponents:\n  schemas:\n    Login:\n      example:\n        password: Gen3ratedPw7xQ2\n";
        let f = scan_file("api/openapi.yaml", api);
        assert!(!f.is_empty());
        assert!(f.iter().all(|(_, h)| h.severity <= Severity::Low));
        let f = scan_file("tests/fixtures/app.env", "DB_PASSWORD=Gen3ratedPw8x9Yq2\n");
        assert_eq!(f[0].1.severity, Severity::Medium);
        assert!(f[0].1.detail.as_deref().unwrap().contains("fixture"));
        let f = scan_file(
            "README.md",
            "Set `DB_PASSWORD=Gen3ratedPw8x9Yq2` in the env file.\n",
        );
        assert_eq!(f[0].1.severity, Severity::Low);
        let f = scan_file(
            "src/app.json",
            "{\n  \"examples\": {\n    \"adminPassword\": \"Gen3ratedPw9\"\n  },\n  \"clientSecret\": \"Gen3ratedPw10\"\n}\n",
        );
        assert_eq!(f.len(), 2);
        assert_eq!(f[0].1.severity, Severity::Low);
        assert_eq!(f[1].1.severity, Severity::High);
    }
}

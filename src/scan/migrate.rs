//! `scan --migrate`: for each finding, a vault key (from the file and variable names) and
//! the source change that reads the secret from phx-hook instead: shell scripts get
//! `"${NAME:?missing}"` and are run under `phx-hook run --env NAME=key`; configs
//! (env, JSON, YAML, TOML, INI) become templates with `{{ phx://key }}` for a manifest.
//! Changes are shown as unified diffs; nothing is written without `--write`.

use std::collections::BTreeMap;

use camino::{Utf8Path, Utf8PathBuf};
use zeroize::Zeroizing;

use super::Finding;
use crate::types::KeyPath;

/// One secret to store.
pub struct Proposal {
    /// Its vault key.
    pub key: KeyPath,
    /// Its value.
    pub value: Zeroizing<String>,
    /// The environment variable a shell script reads it from.
    pub env: String,
}

/// How a file is rewritten.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Style {
    /// A shell script: `"${NAME:?missing}"`, run under `phx-hook run`.
    Shell,
    /// A config: a template with `{{ phx://key }}` placeholders.
    Template,
}

/// A rewritten file.
pub struct FileChange {
    /// The file.
    pub path: Utf8PathBuf,
    /// How.
    pub style: Style,
    /// The new text (may hold other, unmigrated secrets; it is the user's file).
    pub new: String,
    /// The old text.
    pub old: String,
    /// `--env NAME=key` pairs (shell) or keys (template) this file needs.
    pub needs: Vec<(String, KeyPath)>,
}

/// The whole migration.
pub struct Migration {
    /// Secrets to store.
    pub proposals: Vec<Proposal>,
    /// Files to rewrite.
    pub changes: Vec<FileChange>,
    /// Findings left alone, with why.
    pub skipped: Vec<String>,
}

fn slug(s: &str) -> String {
    let mut out: String = s
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else if c == '-' || c == '_' {
                c
            } else {
                '-'
            }
        })
        .collect();
    while out.contains("--") {
        out = out.replace("--", "-");
    }
    out.trim_matches(|c| c == '-' || c == '_').to_string()
}

fn is_shell(path: &Utf8Path, text: &str) -> bool {
    matches!(path.extension(), Some("sh" | "bash" | "zsh" | "ksh"))
        || text
            .lines()
            .next()
            .is_some_and(|l| l.starts_with("#!") && (l.contains("sh") || l.contains("bash")))
}

/// The variable name a finding's value is for.
fn name_for(f: &Finding) -> String {
    match (&f.name, f.rule) {
        (Some(n), _) => n.clone(),
        (None, "url-credentials") => "url_password".into(),
        (None, "tool-credential") => "password".into(),
        (None, r) => r.trim_start_matches("token-").replace('-', "_") + "_token",
    }
}

/// Plan the migration of `findings` (a tree scan; history findings are not migrated).
pub fn plan(findings: &[Finding]) -> Migration {
    let mut skipped = Vec::new();
    let mut by_value: BTreeMap<Vec<u8>, usize> = BTreeMap::new();
    let mut proposals: Vec<Proposal> = Vec::new();
    let mut per_file: BTreeMap<String, Vec<(&Finding, usize)>> = BTreeMap::new();
    // Named findings first, so a tool finding sharing a value reuses the better name.
    let mut order: Vec<&Finding> = findings.iter().filter(|f| f.commit.is_none()).collect();
    order.sort_by_key(|f| (f.name.is_none(), f.path.clone(), f.line));
    for f in order {
        if matches!(f.rule, "private-key" | "password-hash") {
            skipped.push(format!(
                "{}:{}: {} is not migrated automatically",
                f.path, f.line, f.rule
            ));
            continue;
        }
        let idx = *by_value
            .entry(f.value.as_bytes().to_vec())
            .or_insert_with(|| {
                let stem = Utf8Path::new(&f.path)
                    .file_stem()
                    .map(slug)
                    .filter(|s| !s.is_empty())
                    .unwrap_or_else(|| "secrets".into());
                let name = slug(&name_for(f)).replace('-', "_");
                let mut key = format!("{stem}/{name}");
                let mut n = 2;
                while proposals.iter().any(|p| p.key.as_str() == key) {
                    key = format!("{stem}/{name}_{n}");
                    n += 1;
                }
                proposals.push(Proposal {
                    key: key
                        .parse()
                        .unwrap_or_else(|_| "migrated/secret".parse().expect("a valid key")),
                    value: f.value.clone(),
                    env: name.to_ascii_uppercase(),
                });
                proposals.len() - 1
            });
        per_file.entry(f.path.clone()).or_default().push((f, idx));
    }
    let mut changes = Vec::new();
    for (path, list) in per_file {
        let path = Utf8PathBuf::from(path);
        let Ok(old) = std::fs::read_to_string(&path) else {
            skipped.push(format!("{path}: cannot read it"));
            continue;
        };
        let style = if is_shell(&path, &old) {
            Style::Shell
        } else {
            Style::Template
        };
        let mut lines: Vec<String> = old.split('\n').map(str::to_string).collect();
        let mut needs: Vec<(String, KeyPath)> = Vec::new();
        let mut by_line: BTreeMap<usize, Vec<(&Finding, usize)>> = BTreeMap::new();
        for (f, idx) in list {
            by_line.entry(f.line).or_default().push((f, idx));
        }
        for (ln, mut hits) in by_line {
            let Some(line) = lines.get(ln - 1).cloned() else {
                continue;
            };
            hits.sort_by_key(|(f, _)| std::cmp::Reverse(f.span.0));
            let mut new = line.clone();
            for (f, idx) in hits {
                let p = &proposals[idx];
                match rewrite(&new, f, p, style) {
                    Some(r) => {
                        new = r;
                        let need = match style {
                            Style::Shell => (p.env.clone(), p.key.clone()),
                            Style::Template => (String::new(), p.key.clone()),
                        };
                        if !needs.contains(&need) {
                            needs.push(need);
                        }
                    }
                    None => skipped.push(format!("{path}:{ln}: the value is inside single quotes with other text; rewrite it by hand")),
                }
            }
            lines[ln - 1] = new;
        }
        let new = lines.join("\n");
        if new != old {
            changes.push(FileChange {
                path,
                style,
                new,
                old,
                needs,
            });
        }
    }
    Migration {
        proposals,
        changes,
        skipped,
    }
}

/// Rewrite one value on one line; `None` when it cannot be done safely.
fn rewrite(line: &str, f: &Finding, p: &Proposal, style: Style) -> Option<String> {
    let (s, e) = f.span;
    if e > line.len() || &line[s..e] != f.value.as_str() {
        return None;
    }
    let before = &line[..s];
    let after = &line[e..];
    let dq = before.ends_with('"') && after.starts_with('"');
    let sq = before.ends_with('\'') && after.starts_with('\'');
    let in_double = before.matches('"').count() % 2 == 1;
    let in_single = before.matches('\'').count() % 2 == 1 && !in_double;
    match style {
        Style::Shell => {
            let var = format!("${{{}:?missing}}", p.env);
            if dq || in_double {
                // Every occurrence inside this double-quoted line (`"pw\npw" | smbpasswd`).
                Some(line.replace(f.value.as_str(), &var))
            } else if sq {
                Some(format!(
                    "{}\"{var}\"{}",
                    &before[..before.len() - 1],
                    &after[1..]
                ))
            } else if in_single {
                None
            } else {
                Some(format!("{before}\"{var}\"{after}"))
            }
        }
        Style::Template => {
            let ph = format!("{{{{ phx://{} }}}}", p.key);
            let yaml_plain = !dq && !sq && before.trim_end().ends_with(':');
            Some(if yaml_plain {
                format!("{before}\"{ph}\"{after}")
            } else {
                format!("{before}{ph}{after}")
            })
        }
    }
}

/// A unified diff of two texts (changed lines with 2 lines of context), with every
/// value in `secrets` redacted from the removed lines.
pub fn unified_diff(path: &str, old: &str, new: &str, secrets: &[&str]) -> String {
    let redact = |line: &str| {
        let mut l = line.to_string();
        for s in secrets.iter().filter(|s| !s.is_empty()) {
            let head: String = s.chars().take(2).collect();
            l = l.replace(*s, &format!("{head}****** ({} chars)", s.chars().count()));
        }
        l
    };
    let a: Vec<&str> = old.split('\n').collect();
    let b: Vec<&str> = new.split('\n').collect();
    let mut out = format!("--- a/{path}\n+++ b/{path}\n");
    if a.len() != b.len() {
        return out + "(line counts differ; not shown)\n";
    }
    let changed: Vec<usize> = (0..a.len()).filter(|&i| a[i] != b[i]).collect();
    let mut i = 0;
    while i < changed.len() {
        let start = changed[i].saturating_sub(2);
        let mut end = changed[i];
        while i + 1 < changed.len() && changed[i + 1] <= end + 5 {
            i += 1;
            end = changed[i];
        }
        let end = (end + 3).min(a.len());
        out.push_str(&format!(
            "@@ -{},{} +{},{} @@\n",
            start + 1,
            end - start,
            start + 1,
            end - start
        ));
        for k in start..end {
            if a[k] == b[k] {
                out.push_str(&format!(" {}\n", redact(a[k])));
            } else {
                out.push_str(&format!("-{}\n+{}\n", redact(a[k]), redact(b[k])));
            }
        }
        i += 1;
    }
    out
}

//! Baselines and allowlists: findings a team has accepted, for `scan` and
//! `run`.
//!
//! - A baseline is a previous JSON report; a finding whose `id` is in it is
//!   dropped (ids are stable fingerprints of kind + subject).
//! - An allowlist is TOML (`--allow FILE`, or `.semleak.toml` found from the
//!   current directory upward):
//!
//!   ```toml
//!   [[allow]]
//!   kind = "leaked_semaphore"      # optional
//!   name = "mp-*"                  # optional: glob on resource names/paths
//!   cmdline = "*pytest*"           # optional: glob on the pids' command lines
//!   reason = "pytest-xdist leaks these on timeout; tracked in #123"
//!   ```
//!
//!   An entry matches when every criterion it gives matches; each entry
//!   needs a reason and at least one criterion, and a `name` or `cmdline`
//!   pattern that would match anything (`*`, `?*`, `[!x]*`, `*.*`, …) is
//!   refused.
//!
//! An allowlist silences findings, so it is trusted only when it is owned by
//! the invoking user or root, nobody else can write it, and it sits in a
//! directory nobody else can write: a `.semleak.toml` found upward that
//! fails this is ignored (with a warning); an untrusted `--allow FILE` is an
//! error.

use std::collections::HashSet;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use globset::{Glob, GlobMatcher};
use schemars::JsonSchema;
use semleak_platform::escape_for_terminal;
use serde::{Deserialize, Serialize};

use crate::analyze::{Finding, Kind, Subject};
use crate::input::{read_capped_text, SETTINGS_LIMIT};

pub const ALLOWLIST_FILE: &str = ".semleak.toml";

#[derive(Debug, thiserror::Error)]
pub enum SuppressError {
    #[error("cannot read {}", shown(path))]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("baseline {} is not a semleak JSON report: {detail}", shown(path))]
    Baseline { path: PathBuf, detail: String },
    #[error("allowlist {}: {detail}", shown(path))]
    Allowlist { path: PathBuf, detail: String },
    #[error("allowlist {} is not trusted: {why}", shown(path))]
    Untrusted { path: PathBuf, why: String },
}

/// A path for a message: terminal-safe.
fn shown(path: &Path) -> String {
    escape_for_terminal(&path.to_string_lossy())
}

/// Text from a file for a message: terminal-safe and at most `max` characters.
fn short(text: &str, max: usize) -> String {
    let escaped = escape_for_terminal(text);
    if escaped.chars().count() <= max {
        escaped
    } else {
        escaped.chars().take(max).collect::<String>() + "…"
    }
}

/// How many findings were dropped, and why (an additive report field).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Suppressed {
    pub baseline: usize,
    pub allowlist: usize,
    /// The allowlist file used, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowlist_file: Option<String>,
    /// An allowlist that was found but not used, and why (not trusted).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowlist_ignored: Option<String>,
}

impl From<SuppressError> for crate::exit::AppError {
    fn from(e: SuppressError) -> Self {
        crate::exit::AppError::Module(Box::new(e))
    }
}

impl Suppressed {
    pub fn total(&self) -> usize {
        self.baseline + self.allowlist
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AllowFile {
    #[serde(default)]
    allow: Vec<AllowEntry>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AllowEntry {
    kind: Option<String>,
    name: Option<String>,
    cmdline: Option<String>,
    reason: Option<String>,
}

#[derive(Debug)]
struct AllowRule {
    kind: Option<Kind>,
    name: Option<GlobMatcher>,
    cmdline: Option<GlobMatcher>,
}

/// The loaded baseline and allowlist.
#[derive(Debug, Default)]
pub struct Suppressor {
    baseline: HashSet<String>,
    rules: Vec<AllowRule>,
    allowlist_file: Option<PathBuf>,
    /// A found allowlist that was ignored, and why: for stderr and the report.
    pub ignored: Option<String>,
}

impl Suppressor {
    /// Load `baseline` and the allowlist: `allow` if given, else the first
    /// `.semleak.toml` from `search_from` upward. `uid` is the invoking
    /// (effective) user: only files it or root owns are trusted.
    pub fn load(
        baseline: Option<&Path>,
        allow: Option<&Path>,
        search_from: Option<&Path>,
        uid: u32,
    ) -> Result<Suppressor, SuppressError> {
        let mut s = Suppressor::default();
        if let Some(path) = baseline {
            s.baseline = load_baseline(path)?;
        }
        let allow_path = match allow {
            Some(p) => {
                if let Some(why) = untrusted(p, uid) {
                    return Err(SuppressError::Untrusted {
                        path: p.to_path_buf(),
                        why,
                    });
                }
                Some(p.to_path_buf())
            }
            None => match search_from.and_then(find_allowlist) {
                Some(found) => match untrusted(&found, uid) {
                    Some(why) => {
                        s.ignored = Some(format!("ignored {}: {why}", shown(&found)));
                        None
                    }
                    None => Some(found),
                },
                None => None,
            },
        };
        if let Some(path) = allow_path {
            let text = read_text(&path).map_err(|source| SuppressError::Read {
                path: path.clone(),
                source,
            })?;
            s.rules = parse_allowlist(&text).map_err(|detail| SuppressError::Allowlist {
                path: path.clone(),
                detail,
            })?;
            s.allowlist_file = Some(path);
        }
        Ok(s)
    }

    /// Drop the findings the baseline or allowlist names. `cmdline_of` gives
    /// a pid's command line (arguments joined by spaces) as recorded.
    pub fn apply(
        &self,
        findings: Vec<Finding>,
        cmdline_of: &dyn Fn(i32) -> Option<String>,
    ) -> (Vec<Finding>, Suppressed) {
        let mut counts = Suppressed {
            allowlist_file: self
                .allowlist_file
                .as_ref()
                .map(|p| p.display().to_string()),
            allowlist_ignored: self.ignored.clone(),
            ..Suppressed::default()
        };
        let kept = findings
            .into_iter()
            .filter_map(|mut f| {
                if self.baseline.contains(&f.id) {
                    counts.baseline += 1;
                    return None;
                }
                if !self.rules.iter().any(|r| r.matches(&f, cmdline_of)) {
                    return Some(f);
                }
                if f.kind == Kind::LeakedSemaphore && f.subjects.len() > 1 {
                    // A group of semaphores: only the names a rule accepts
                    // leave it, never the rest of the group.
                    let before = f.subjects.len();
                    self.drop_accepted_subjects(&mut f, cmdline_of);
                    counts.allowlist += before - f.subjects.len();
                    return (!f.subjects.is_empty()).then_some(f);
                }
                counts.allowlist += 1;
                None
            })
            .collect();
        (kept, counts)
    }

    /// Remove from a grouped finding the subjects (and the cleanup steps
    /// that remove them) that a rule accepts; the headline counts what is
    /// left.
    fn drop_accepted_subjects(&self, f: &mut Finding, cmdline_of: &dyn Fn(i32) -> Option<String>) {
        let accepted: Vec<Subject> = f
            .subjects
            .iter()
            .filter(|s| {
                self.rules
                    .iter()
                    .any(|rule| rule.matches_subject(f, Some(s), cmdline_of))
            })
            .cloned()
            .collect();
        let removed: HashSet<(u64, u64)> = accepted.iter().filter_map(Subject::file_key).collect();
        f.subjects.retain(|s| !accepted.contains(s));
        f.cleanup
            .retain(|c| c.file_key().is_none_or(|k| !removed.contains(&k)));
    }
}

impl AllowRule {
    fn matches(&self, f: &Finding, cmdline_of: &dyn Fn(i32) -> Option<String>) -> bool {
        f.subjects
            .iter()
            .any(|s| self.matches_subject(f, Some(s), cmdline_of))
            || (self.name.is_none() && self.matches_subject(f, None, cmdline_of))
    }

    /// Whether the rule accepts `subject` of `f` (`None`: the finding as a
    /// whole, which no `name` rule matches).
    fn matches_subject(
        &self,
        f: &Finding,
        subject: Option<&Subject>,
        cmdline_of: &dyn Fn(i32) -> Option<String>,
    ) -> bool {
        if self.kind.is_some_and(|k| k != f.kind) {
            return false;
        }
        if let Some(glob) = &self.name {
            let hit = subject.is_some_and(|s| s.names().iter().any(|n| glob.is_match(n)));
            if !hit {
                return false;
            }
        }
        if let Some(glob) = &self.cmdline {
            let hit = f
                .pids
                .iter()
                .copied()
                .chain(f.parent_pid)
                .filter_map(cmdline_of)
                .any(|c| glob.is_match(&c));
            if !hit {
                return false;
            }
        }
        true
    }
}

/// The first `.semleak.toml` in `start` or one of its ancestors.
pub fn find_allowlist(start: &Path) -> Option<PathBuf> {
    start
        .ancestors()
        .map(|d| d.join(ALLOWLIST_FILE))
        .find(|p| p.is_file())
}

/// Why `path` cannot be trusted as an allowlist for `uid`, if it cannot:
/// the file (symlinks resolved) and its directory must be owned by `uid` or
/// root and writable by nobody else.
pub fn untrusted(path: &Path, uid: u32) -> Option<String> {
    // A file that cannot be resolved cannot be read either: reading it
    // reports why.
    let real = fs::canonicalize(path).ok()?;
    let dir = real.parent().unwrap_or(Path::new("/"));
    for (what, p) in [("it", real.as_path()), ("its directory", dir)] {
        let md = match fs::metadata(p) {
            Ok(md) => md,
            Err(e) => return Some(format!("cannot stat {what}: {e}")),
        };
        if md.uid() != uid && md.uid() != 0 {
            return Some(format!(
                "{what} is owned by uid {}, not by you (uid {uid}) or root",
                md.uid()
            ));
        }
        if md.mode() & 0o022 != 0 {
            return Some(format!(
                "{what} can be written by {} (mode {:04o})",
                if md.mode() & 0o002 != 0 {
                    "anyone"
                } else {
                    "its group"
                },
                md.mode() & 0o7777
            ));
        }
    }
    None
}

/// A baseline or allowlist file's text, at most [`SETTINGS_LIMIT`].
fn read_text(path: &Path) -> std::io::Result<String> {
    read_capped_text(path, SETTINGS_LIMIT, false)
}

fn load_baseline(path: &Path) -> Result<HashSet<String>, SuppressError> {
    let text = read_text(path).map_err(|source| SuppressError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    parse_baseline(&text).map_err(|detail| SuppressError::Baseline {
        path: path.to_path_buf(),
        detail,
    })
}

/// The finding ids of a baseline (a JSON report's text).
pub fn parse_baseline(text: &str) -> Result<HashSet<String>, String> {
    let value: serde_json::Value =
        serde_json::from_str(text).map_err(|e| short(&e.to_string(), 120))?;
    let findings = value
        .get("findings")
        .and_then(|f| f.as_array())
        .ok_or_else(|| "no `findings` array".to_string())?;
    findings
        .iter()
        .map(|f| {
            f.get("id")
                .and_then(|id| id.as_str())
                .map(str::to_string)
                .ok_or_else(|| "a finding has no string `id`".to_string())
        })
        .collect()
}

/// Check an allowlist's text as `load` would: the number of entries, or
/// the (short, terminal-safe) error.
pub fn check_allowlist(text: &str) -> Result<usize, String> {
    parse_allowlist(text).map(|rules| rules.len())
}

fn parse_allowlist(text: &str) -> Result<Vec<AllowRule>, String> {
    let file: AllowFile = toml::from_str(text).map_err(|e| toml_error(text, &e))?;
    file.allow
        .into_iter()
        .enumerate()
        .map(|(i, e)| {
            let n = i + 1;
            if e.reason.as_deref().is_none_or(|r| r.trim().is_empty()) {
                return Err(format!("[[allow]] entry {n} has no `reason`"));
            }
            if e.kind.is_none() && e.name.is_none() && e.cmdline.is_none() {
                return Err(format!(
                    "[[allow]] entry {n} names no `kind`, `name` or `cmdline`: it would allow everything"
                ));
            }
            let kind = e
                .kind
                .map(|k| {
                    Kind::parse(&k).ok_or_else(|| {
                        let known: Vec<&str> = Kind::ALL.iter().map(|k| k.as_str()).collect();
                        format!(
                            "[[allow]] entry {n}: unknown kind `{}` (known: {})",
                            short(&k, 40),
                            known.join(", ")
                        )
                    })
                })
                .transpose()?;
            let glob = |field: &str, pattern: Option<String>| {
                pattern
                    .map(|p| {
                        let matcher = Glob::new(&p).map(|g| g.compile_matcher()).map_err(|e| {
                            format!(
                                "[[allow]] entry {n}: bad `{field}` glob `{}`: {}",
                                short(&p, 60),
                                short(&e.kind().to_string(), 80)
                            )
                        })?;
                        if let Some(why) = matches_anything(field, &p, &matcher) {
                            return Err(format!(
                                "[[allow]] entry {n}: `{field} = \"{}\"` {why}; name what it allows \
                                 (e.g. \"mp-*\"), or give `kind` alone to accept a whole kind",
                                short(&p, 60)
                            ));
                        }
                        Ok(matcher)
                    })
                    .transpose()
            };
            Ok(AllowRule {
                kind,
                name: glob("name", e.name)?,
                cmdline: glob("cmdline", e.cmdline)?,
            })
        })
        .collect()
}

/// A TOML error as one short, terminal-safe line: where, and what.
fn toml_error(text: &str, e: &toml::de::Error) -> String {
    let what = short(e.message().lines().next().unwrap_or("invalid TOML"), 100);
    match e.span() {
        Some(span) => {
            let before = &text.as_bytes()[..span.start.min(text.len())];
            let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
            let column = before.iter().rev().take_while(|&&b| b != b'\n').count() + 1;
            format!("line {line}, column {column}: {what}")
        }
        None => what,
    }
}

/// Names no allowlist entry is written for: a pattern that matches one of
/// them, in any of the forms a resource or command line takes, matches
/// everything in effect.
const CANARY_NAMES: [&str; 9] = ["", "x", "Q", "7", "_", ".", "-", "zq7-Vw.8_k", "\u{1}é"];
const CANARY_RESOURCES: [&str; 4] = [
    "/dev/shm/sem.zq7-Vw.8_k",
    "sem.zq7-Vw.8_k",
    "pipe:[4026531840]",
    "socket:[4026531841]",
];
const CANARY_COMMANDS: [&str; 3] = ["/usr/bin/qv9 --zz=1", "sh -c true", "python3 -c pass"];

/// Why a `name`/`cmdline` glob would match anything, if it would: it has no
/// literal character at all (`*`, `**`, `?*`, `[!x]*`, `{*,a}`), or it
/// matches a name nobody writes an entry for (`*.*`, `*/*`, `/dev/shm/sem.*`).
fn matches_anything(field: &str, pattern: &str, glob: &GlobMatcher) -> Option<String> {
    if !has_literal(pattern) {
        return Some("has no literal character, so it matches anything".into());
    }
    let extra: &[&str] = if field == "name" {
        &CANARY_RESOURCES
    } else {
        &CANARY_COMMANDS
    };
    CANARY_NAMES
        .iter()
        .chain(extra)
        .find(|c| glob.is_match(c))
        .map(|c| {
            format!(
                "matches everything (even `{}`, a name it cannot have been written for)",
                short(c, 40)
            )
        })
}

/// Does every string the glob matches need at least one literal character?
/// Wildcards (`*`, `?`), classes (`[…]`) and alternations with a branch
/// that has none (`{*,x}`) do not count.
fn has_literal(pattern: &str) -> bool {
    let chars: Vec<char> = pattern.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        match chars[i] {
            '*' | '?' => i += 1,
            '[' => i = class_end(&chars, i),
            '{' => {
                let close = chars[i..]
                    .iter()
                    .position(|&c| c == '}')
                    .map_or(chars.len(), |p| i + p);
                let inner: String = chars[i + 1..close.min(chars.len())].iter().collect();
                if inner.split(',').all(has_literal) {
                    return true;
                }
                i = close + 1;
            }
            _ => return true, // a literal, or `\x` (an escaped literal)
        }
    }
    false
}

/// Index just past the class that opens at `start` (`[!]x]` included).
fn class_end(chars: &[char], start: usize) -> usize {
    let mut i = start + 1;
    if matches!(chars.get(i), Some('!' | '^')) {
        i += 1;
    }
    if chars.get(i) == Some(&']') {
        i += 1;
    }
    while i < chars.len() && chars[i] != ']' {
        i += 1;
    }
    i + 1
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analyze::{CleanupStep, Confidence, Group, Headline, Severity};
    use semleak_platform::RawName;

    fn finding(kind: Kind, resource: &str, pids: &[i32]) -> Finding {
        let mut f = Finding::new(
            kind,
            resource.as_bytes(),
            Severity::Error,
            Confidence::Certain,
        );
        if !resource.is_empty() {
            f.subjects = vec![Subject::SemaphoreName(resource.to_string())];
        }
        f.pids = pids.to_vec();
        f
    }

    fn cmdlines(pid: i32) -> Option<String> {
        match pid {
            10 => Some("python3 -m pytest -q".into()),
            20 => Some("sleep 100".into()),
            _ => None,
        }
    }

    fn with_rules(text: &str) -> Suppressor {
        Suppressor {
            rules: parse_allowlist(text).unwrap(),
            ..Suppressor::default()
        }
    }

    #[test]
    fn allowlist_matches_every_given_criterion() {
        let s = with_rules(
            r#"
[[allow]]
kind = "leaked_semaphore"
name = "mp-*"
reason = "known"

[[allow]]
kind = "orphan"
cmdline = "*pytest*"
reason = "xdist workers"
"#,
        );
        let fs = vec![
            finding(Kind::LeakedSemaphore, "/dev/shm/sem.mp-ab12", &[]),
            finding(Kind::LeakedSemaphore, "/dev/shm/sem.other", &[]),
            finding(Kind::Orphan, "", &[10]),
            finding(Kind::Orphan, "", &[20]),
            finding(Kind::Zombie, "/dev/shm/sem.mp-zz", &[10]),
        ];
        let (kept, counts) = s.apply(fs, &cmdlines);
        let kept: Vec<_> = kept.iter().map(|f| f.resources().clone()).collect();
        assert_eq!(
            kept,
            vec![
                vec!["/dev/shm/sem.other".to_string()],
                vec![],
                vec!["/dev/shm/sem.mp-zz".to_string()]
            ]
        );
        assert_eq!(counts.allowlist, 2);
        assert_eq!(counts.baseline, 0);
    }

    #[test]
    fn name_glob_sees_path_basename_and_semaphore_name() {
        for pattern in ["/dev/shm/sem.mp-*", "sem.mp-*", "mp-*"] {
            let s = with_rules(&format!(
                "[[allow]]\nname = \"{pattern}\"\nreason = \"r\"\n"
            ));
            let (kept, _) = s.apply(
                vec![finding(Kind::LeakedSemaphore, "/dev/shm/sem.mp-1", &[])],
                &cmdlines,
            );
            assert!(kept.is_empty(), "{pattern}");
        }
    }

    #[test]
    fn baseline_drops_exactly_its_ids() {
        let a = finding(Kind::LeakedSemaphore, "/dev/shm/sem.a", &[]);
        let b = finding(Kind::LeakedSemaphore, "/dev/shm/sem.b", &[]);
        let s = Suppressor {
            baseline: [a.id.clone()].into_iter().collect(),
            ..Suppressor::default()
        };
        let (kept, counts) = s.apply(vec![a, b.clone()], &cmdlines);
        assert_eq!(kept, vec![b]);
        assert_eq!(counts.baseline, 1);
    }

    #[test]
    fn a_name_rule_takes_only_its_names_out_of_a_group() {
        let mut group = finding(Kind::LeakedSemaphore, "", &[]);
        group.summary = Headline::Unheld(Group::Prefix("app-".into()));
        for (inode, name) in [(1, "app-a"), (2, "app-b"), (3, "app-c")] {
            let path = RawName::from(format!("/dev/shm/sem.{name}"));
            group.subjects.push(Subject::SemaphoreFile {
                dev: 0x1a,
                inode,
                path: path.clone(),
                name: name.into(),
            });
            group.cleanup.push(CleanupStep::RemoveFile {
                dev: 0x1a,
                inode,
                path,
            });
        }
        assert!(group.summary_text().starts_with("3 semaphores named app-*"));
        let s = with_rules("[[allow]]\nname = \"app-b\"\nreason = \"ours\"\n");
        let (kept, counts) = s.apply(vec![group], &cmdlines);
        assert_eq!(counts.allowlist, 1);
        assert_eq!(
            kept[0].resources(),
            ["/dev/shm/sem.app-a", "/dev/shm/sem.app-c"]
        );
        assert_eq!(
            kept[0].cleanup_lines(),
            ["rm -- /dev/shm/sem.app-a", "rm -- /dev/shm/sem.app-c"]
        );
        assert!(kept[0].summary_text().starts_with("2 semaphores"));
        // A rule naming every member drops the finding.
        let s = with_rules("[[allow]]\nname = \"app-?\"\nreason = \"ours\"\n");
        let (kept, counts) = s.apply(kept, &cmdlines);
        assert!(kept.is_empty());
        assert_eq!(counts.allowlist, 2);
    }

    #[test]
    fn bad_allowlists_are_rejected() {
        let err = parse_allowlist("[[allow]]\nkind = \"zombie\"\n").unwrap_err();
        assert!(err.contains("no `reason`"), "{err}");
        let err = parse_allowlist("[[allow]]\nreason = \"x\"\n").unwrap_err();
        assert!(err.contains("allow everything"), "{err}");
        let err = parse_allowlist("[[allow]]\nkind = \"nope\"\nreason = \"x\"\n").unwrap_err();
        assert!(err.contains("unknown kind"), "{err}");
        let err = parse_allowlist("[[allow]]\nname = \"[\"\nreason = \"x\"\n").unwrap_err();
        assert!(err.contains("bad `name` glob"), "{err}");
        assert!(parse_allowlist("[[allow]\n").is_err());
        let err = parse_allowlist("[[allow]]\nkind = \"zombie\"\nreason = \"x\"\ntypo = 1\n")
            .unwrap_err();
        assert!(err.contains("typo"), "{err}");
    }

    #[test]
    fn match_everything_patterns_are_refused_however_spelled() {
        for p in [
            "*",
            "**",
            "?*",
            "*?",
            "***",
            "[!x]*",
            "[!]]*",
            "[^a]*",
            "[a-z]*",
            "{*,mp-*}",
            "**/*",
            "*/**",
            "*.*",
            "*/*",
            "/*",
            "/dev/shm/sem.*",
            "sem.*",
            "",
            "*:*",
            "*[]]*",
        ] {
            let text = format!("[[allow]]\nname = \"{p}\"\nreason = \"r\"\n");
            let err = parse_allowlist(&text).expect_err(p);
            assert!(err.contains("matches"), "{p}: {err}");
        }
        for p in ["*", "* *", "*-c*", "*/*", "?*"] {
            let text = format!("[[allow]]\ncmdline = \"{p}\"\nreason = \"r\"\n");
            assert!(parse_allowlist(&text).is_err(), "cmdline {p}");
        }
        for p in [
            "mp-*",
            "loky-*",
            "/dev/shm/sem.mp-*",
            "sem.mp-*",
            "psm_*",
            "{mp,loky}-*",
        ] {
            let text = format!("[[allow]]\nname = \"{p}\"\nreason = \"r\"\n");
            assert!(parse_allowlist(&text).is_ok(), "{p}");
        }
        for p in ["*pytest*", "*celery worker*"] {
            let text = format!("[[allow]]\ncmdline = \"{p}\"\nreason = \"r\"\n");
            assert!(parse_allowlist(&text).is_ok(), "{p}");
        }
    }

    #[test]
    fn parse_errors_are_escaped_and_short() {
        let hostile = format!(
            "[[allow]]\nkind = \"zombie\x1b[31m{}\"\nreason = \"r\"\n",
            "A".repeat(5000)
        );
        let err = parse_allowlist(&hostile).unwrap_err();
        assert!(!err.contains('\x1b'), "{err}");
        assert!(err.len() < 300, "{} chars: {err}", err.len());
        let err =
            parse_allowlist("[[allow]]\nkind = \"zombie\"\nreason = \"r\"\n\x1b]0;x\x07 = = \n")
                .unwrap_err();
        assert!(err.starts_with("line 4, column"), "{err}");
        assert!(!err.contains('\x1b') && !err.contains('\n'), "{err}");
    }

    fn write_allowlist(dir: &Path) -> PathBuf {
        let p = dir.join(ALLOWLIST_FILE);
        std::fs::write(&p, "[[allow]]\nkind=\"zombie\"\nreason=\"r\"\n").unwrap();
        p
    }

    fn chmod(p: &Path, mode: u32) {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
    }

    #[test]
    fn allowlists_others_can_write_are_not_trusted() {
        // SAFETY: geteuid has no preconditions.
        let me = unsafe { libc::geteuid() };
        let dir = tempfile::tempdir().unwrap();
        let p = write_allowlist(dir.path());
        chmod(dir.path(), 0o755);
        chmod(&p, 0o644);
        assert_eq!(untrusted(&p, me), None);
        let s = Suppressor::load(None, None, Some(dir.path()), me).unwrap();
        assert!(s.ignored.is_none() && s.rules.len() == 1);

        chmod(dir.path(), 0o777); // a world-writable directory
        assert!(untrusted(&p, me)
            .unwrap()
            .contains("its directory can be written by anyone"));
        let s = Suppressor::load(None, None, Some(dir.path()), me).unwrap();
        assert!(s.rules.is_empty());
        assert!(s
            .ignored
            .as_deref()
            .unwrap()
            .contains("can be written by anyone"));
        let err = Suppressor::load(None, Some(&p), None, me).unwrap_err();
        assert!(err.to_string().contains("is not trusted"), "{err}");

        chmod(dir.path(), 0o755);
        chmod(&p, 0o664);
        assert!(untrusted(&p, me).unwrap().contains("its group"));
        chmod(&p, 0o644);
        // Someone else's file: root's and the invoking user's only are trusted.
        let other = if me == 4242 { 4243 } else { 4242 };
        if me == 0 {
            std::os::unix::fs::chown(&p, Some(4242), None).unwrap();
            let why = untrusted(&p, 0).unwrap();
            assert!(why.contains("owned by uid 4242"), "{why}");
        } else {
            eprintln!("not root: another user's allowlist is checked by uid only");
            assert!(untrusted(&p, other).unwrap().contains(&format!("uid {me}")));
        }
    }

    #[test]
    fn allowlist_is_found_upward() {
        let dir = tempfile::tempdir().unwrap();
        let nested = dir.path().join("a/b");
        std::fs::create_dir_all(&nested).unwrap();
        std::fs::write(
            dir.path().join(ALLOWLIST_FILE),
            "[[allow]]\nkind=\"zombie\"\nreason=\"r\"\n",
        )
        .unwrap();
        assert_eq!(
            find_allowlist(&nested),
            Some(dir.path().join(ALLOWLIST_FILE))
        );
    }
}

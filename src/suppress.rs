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
//!   needs a reason and at least one criterion.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use globset::{Glob, GlobMatcher};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::analyze::{Finding, Kind};

pub const ALLOWLIST_FILE: &str = ".semleak.toml";

#[derive(Debug, thiserror::Error)]
pub enum SuppressError {
    #[error("cannot read {}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("baseline {} is not a semleak JSON report: {detail}", path.display())]
    Baseline { path: PathBuf, detail: String },
    #[error("allowlist {}: {detail}", path.display())]
    Allowlist { path: PathBuf, detail: String },
}

/// How many findings were dropped, and why (an additive report field).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Suppressed {
    pub baseline: usize,
    pub allowlist: usize,
    /// The allowlist file used, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowlist_file: Option<String>,
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
}

impl Suppressor {
    /// Load `baseline` and the allowlist: `allow` if given, else the first
    /// `.semleak.toml` from `search_from` upward.
    pub fn load(
        baseline: Option<&Path>,
        allow: Option<&Path>,
        search_from: Option<&Path>,
    ) -> Result<Suppressor, SuppressError> {
        let mut s = Suppressor::default();
        if let Some(path) = baseline {
            s.baseline = load_baseline(path)?;
        }
        let allow_path = match allow {
            Some(p) => Some(p.to_path_buf()),
            None => search_from.and_then(find_allowlist),
        };
        if let Some(path) = allow_path {
            let text = std::fs::read_to_string(&path).map_err(|source| SuppressError::Read {
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
            ..Suppressed::default()
        };
        let kept = findings
            .into_iter()
            .filter(|f| {
                if self.baseline.contains(&f.id) {
                    counts.baseline += 1;
                    false
                } else if self.rules.iter().any(|r| r.matches(f, cmdline_of)) {
                    counts.allowlist += 1;
                    false
                } else {
                    true
                }
            })
            .collect();
        (kept, counts)
    }
}

impl AllowRule {
    fn matches(&self, f: &Finding, cmdline_of: &dyn Fn(i32) -> Option<String>) -> bool {
        if self.kind.is_some_and(|k| k != f.kind) {
            return false;
        }
        if let Some(glob) = &self.name {
            let hit = f.resources.iter().any(|r| {
                let base = r.rsplit('/').next().unwrap_or(r);
                glob.is_match(r)
                    || glob.is_match(base)
                    || base.strip_prefix("sem.").is_some_and(|n| glob.is_match(n))
            });
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

fn load_baseline(path: &Path) -> Result<HashSet<String>, SuppressError> {
    let text = std::fs::read_to_string(path).map_err(|source| SuppressError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let bad = |detail: String| SuppressError::Baseline {
        path: path.to_path_buf(),
        detail,
    };
    let value: serde_json::Value = serde_json::from_str(&text).map_err(|e| bad(e.to_string()))?;
    let findings = value
        .get("findings")
        .and_then(|f| f.as_array())
        .ok_or_else(|| bad("no `findings` array".into()))?;
    findings
        .iter()
        .map(|f| {
            f.get("id")
                .and_then(|id| id.as_str())
                .map(str::to_string)
                .ok_or_else(|| bad("a finding has no string `id`".into()))
        })
        .collect()
}

fn parse_allowlist(text: &str) -> Result<Vec<AllowRule>, String> {
    let file: AllowFile = toml::from_str(text).map_err(|e| e.to_string())?;
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
                            "[[allow]] entry {n}: unknown kind `{k}` (known: {})",
                            known.join(", ")
                        )
                    })
                })
                .transpose()?;
            let glob = |field: &str, pattern: Option<String>| {
                pattern
                    .map(|p| {
                        Glob::new(&p)
                            .map(|g| g.compile_matcher())
                            .map_err(|e| format!("[[allow]] entry {n}: bad `{field}` glob: {e}"))
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analyze::{Confidence, Severity};

    fn finding(kind: Kind, resource: &str, pids: &[i32]) -> Finding {
        let mut f = Finding::new(
            kind,
            resource.as_bytes(),
            Severity::Error,
            Confidence::Certain,
        );
        if !resource.is_empty() {
            f.resources = vec![resource.to_string()];
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
        let kept: Vec<_> = kept.iter().map(|f| f.resources.clone()).collect();
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

//! A finding: what a rule diagnosed, as facts ([`super::facts`]), with the
//! kinds, severities and confidences that classify it. Its JSON form
//! (docs/JSON.md) is rendered from the facts by [`super::words`].

use std::borrow::Cow;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::facts::{CleanupStep, Evidence, Headline, Subject};
use super::words;

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Info,
    Warning,
    Error,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Error => "error",
        }
    }
}

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Confidence {
    Possible,
    Likely,
    Certain,
}

impl Confidence {
    pub fn as_str(self) -> &'static str {
        match self {
            Confidence::Possible => "possible",
            Confidence::Likely => "likely",
            Confidence::Certain => "certain",
        }
    }
}

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    LeakedSemaphore,
    SemaphorePressure,
    SemaphoreHoarding,
    PerWorkerSemaphores,
    ShmPressure,
    Zombie,
    Orphan,
    FullWakeupPipe,
    StalledWakeupPipe,
    ThreadPileup,
}

impl Kind {
    pub const ALL: [Kind; 10] = [
        Kind::LeakedSemaphore,
        Kind::SemaphorePressure,
        Kind::SemaphoreHoarding,
        Kind::PerWorkerSemaphores,
        Kind::ShmPressure,
        Kind::Zombie,
        Kind::Orphan,
        Kind::FullWakeupPipe,
        Kind::StalledWakeupPipe,
        Kind::ThreadPileup,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::LeakedSemaphore => "leaked_semaphore",
            Kind::SemaphorePressure => "semaphore_pressure",
            Kind::SemaphoreHoarding => "semaphore_hoarding",
            Kind::PerWorkerSemaphores => "per_worker_semaphores",
            Kind::ShmPressure => "shm_pressure",
            Kind::Zombie => "zombie",
            Kind::Orphan => "orphan",
            Kind::FullWakeupPipe => "full_wakeup_pipe",
            Kind::StalledWakeupPipe => "stalled_wakeup_pipe",
            Kind::ThreadPileup => "thread_pileup",
        }
    }

    /// Heading for the table renderer.
    pub fn title(self) -> &'static str {
        match self {
            Kind::LeakedSemaphore => "Leaked semaphores",
            Kind::SemaphorePressure => "Semaphore limit pressure",
            Kind::SemaphoreHoarding => "Processes holding many semaphores",
            Kind::PerWorkerSemaphores => "Semaphores made in every worker",
            Kind::ShmPressure => "Shared-memory pressure",
            Kind::Zombie => "Zombies",
            Kind::Orphan => "Orphaned workers",
            Kind::FullWakeupPipe => "Full wakeup channels",
            Kind::StalledWakeupPipe => "Stalled wakeup channels",
            Kind::ThreadPileup => "Thread pile-ups",
        }
    }

    pub fn parse(s: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// One diagnosed problem.
#[derive(Debug, Clone, PartialEq)]
pub struct Finding {
    pub id: String,
    pub kind: Kind,
    pub severity: Severity,
    pub confidence: Confidence,
    pub summary: Headline,
    pub pids: Vec<i32>,
    pub parent_pid: Option<i32>,
    /// The reaping parent's command name (zombie findings), for metrics labels.
    pub parent_comm: Option<String>,
    pub subjects: Vec<Subject>,
    pub evidence: Vec<Evidence>,
    pub recommendation: String,
    pub cleanup: Vec<CleanupStep>,
    /// The container of the finding's parent or first process, when its
    /// cgroup path names one (Linux).
    pub container: Option<semleak_platform::Container>,
}

impl Finding {
    /// A finding with its stable id computed from kind and subject. The
    /// subject names what the finding is about across scans (a semaphore's
    /// path, a parent's command line), never counts or times.
    pub fn new(kind: Kind, subject: &[u8], severity: Severity, confidence: Confidence) -> Self {
        Finding {
            id: finding_id(kind, subject),
            kind,
            severity,
            confidence,
            summary: Headline::default(),
            pids: Vec::new(),
            parent_pid: None,
            parent_comm: None,
            subjects: Vec::new(),
            evidence: Vec::new(),
            recommendation: String::new(),
            cleanup: Vec::new(),
            container: None,
        }
    }

    /// The headline in words.
    pub fn summary_text(&self) -> String {
        words::headline(&self.summary, self.subjects.len())
    }

    /// Each subject in words (the JSON `resources`).
    pub fn resources(&self) -> Vec<String> {
        self.subjects.iter().map(words::subject).collect()
    }

    /// Each piece of evidence in words.
    pub fn evidence_lines(&self) -> Vec<String> {
        self.evidence.iter().map(words::evidence).collect()
    }

    /// Each cleanup step as the line a person runs.
    pub fn cleanup_lines(&self) -> Vec<String> {
        self.cleanup.iter().map(words::cleanup).collect()
    }

    /// Rule-worded evidence (rules not yet on typed facts).
    pub fn say(&mut self, text: String) {
        self.evidence.push(Evidence::Said(text));
    }

    /// A rule-worded headline.
    pub fn headline(&mut self, text: impl Into<String>) {
        self.summary = Headline::Said(text.into());
    }

    fn to_json(&self) -> FindingJson {
        FindingJson {
            id: self.id.clone(),
            kind: self.kind,
            severity: self.severity,
            confidence: self.confidence,
            summary: self.summary_text(),
            pids: self.pids.clone(),
            parent_pid: self.parent_pid,
            parent_comm: self.parent_comm.clone(),
            resources: self.resources(),
            evidence: self.evidence_lines(),
            recommendation: self.recommendation.clone(),
            cleanup: self.cleanup_lines(),
            container: self.container.clone(),
        }
    }
}

/// One diagnosed problem: a finding of the JSON report (docs/JSON.md).
#[derive(Serialize, Deserialize, JsonSchema)]
struct FindingJson {
    id: String,
    kind: Kind,
    severity: Severity,
    confidence: Confidence,
    summary: String,
    pids: Vec<i32>,
    parent_pid: Option<i32>,
    /// The reaping parent's command name (zombie findings), for metrics labels.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    parent_comm: Option<String>,
    resources: Vec<String>,
    evidence: Vec<String>,
    recommendation: String,
    cleanup: Vec<String>,
    /// The container of the finding's parent or first process, when its
    /// cgroup path names one (Linux).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    container: Option<semleak_platform::Container>,
}

impl Serialize for Finding {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.to_json().serialize(serializer)
    }
}

impl JsonSchema for Finding {
    fn schema_name() -> Cow<'static, str> {
        "Finding".into()
    }

    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        FindingJson::json_schema(generator)
    }
}

/// `kind-` + FNV-1a 64 of the subject: short, stable across versions and
/// hosts, no dependency.
pub fn finding_id(kind: Kind, subject: &[u8]) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for b in kind
        .as_str()
        .as_bytes()
        .iter()
        .chain([0u8].iter())
        .chain(subject)
    {
        hash ^= u64::from(*b);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{}-{hash:016x}", kind.as_str())
}

pub fn sort_findings(findings: &mut [Finding]) {
    findings.sort_by(|a, b| {
        b.severity
            .cmp(&a.severity)
            .then(a.kind.cmp(&b.kind))
            .then_with(|| a.id.cmp(&b.id))
    });
}

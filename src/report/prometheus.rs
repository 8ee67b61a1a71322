//! `--format prometheus`: the report as Prometheus text exposition (gauges
//! with `# HELP`/`# TYPE`, encoded by the `prometheus-client` crate), for
//! node_exporter's textfile collector and `semleak exporter`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue, LabelValueEncoder};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use super::Report;
use crate::analyze::{Kind, Severity};

/// At most this many reaping parents get their own `semleak_zombies`
/// series; the rest are summed under `parent_pid="other"`, so a host with
/// thousands of leaking parents cannot blow up a time-series database.
pub const MAX_ZOMBIE_PARENTS: usize = 20;

/// The severities, lowest first, for one series per kind and severity.
const SEVERITIES: [Severity; 3] = [Severity::Info, Severity::Warning, Severity::Error];

/// A label value from the system (a command name may hold any byte):
/// backslash, double quote and newline escaped as the exposition format
/// requires. `prometheus-client` 0.24 writes label values verbatim.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LabelText(pub String);

impl EncodeLabelValue for LabelText {
    fn encode(&self, encoder: &mut LabelValueEncoder) -> Result<(), std::fmt::Error> {
        encoder.write_str(&escape_label_value(&self.0))
    }
}

/// Escape `\`, `"` and line feed; carriage returns and other control bytes
/// are written as `\xNN` text so a line of the exposition stays one line.
pub fn escape_label_value(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c if c.is_control() => {
                let _ = write!(out, "\\\\x{:02x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct KindSeverity {
    kind: LabelText,
    severity: LabelText,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct KindLabel {
    kind: LabelText,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct ParentLabels {
    parent_pid: LabelText,
    parent_comm: LabelText,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct BuildLabels {
    version: LabelText,
    os: LabelText,
}

type IntGauges<L> = Family<L, Gauge>;
type FloatGauge = Gauge<f64, AtomicU64>;

/// State the exporter keeps across scrapes, rendered with every report.
#[derive(Debug, Default, Clone)]
pub struct ExporterState {
    /// Scans that failed since the exporter started.
    pub scan_errors: u64,
    /// Unix time of the report served (seconds).
    pub last_success_unix: Option<f64>,
}

/// The exposition text of one report (Prometheus text format 0.0.4, which
/// node_exporter's textfile collector reads).
pub fn render(report: &Report) -> String {
    render_with(report, None)
}

/// [`render`], with the exporter's own counters when `state` is given; the
/// exporter serves it as OpenMetrics, so it ends with `# EOF`.
pub fn render_with(report: &Report, state: Option<&ExporterState>) -> String {
    let mut registry = Registry::with_prefix("semleak");
    register_report(&mut registry, report);
    let mut text = String::new();
    if let Some(state) = state {
        let errors: Counter = Counter::default();
        errors.inc_by(state.scan_errors);
        registry.register("scan_errors", "Scans that failed since the exporter started; the metrics then are the last good scan's", errors);
        if let Some(t) = state.last_success_unix {
            let g = FloatGauge::default();
            g.set(t);
            registry.register(
                "last_scan_success_timestamp_seconds",
                "When the scan these metrics come from finished (Unix time)",
                g,
            );
        }
        prometheus_client::encoding::text::encode(&mut text, &registry)
            .expect("writing to a String cannot fail");
    } else {
        prometheus_client::encoding::text::encode_registry(&mut text, &registry)
            .expect("writing to a String cannot fail");
    }
    in_stable_order(&text)
}

/// The samples of each metric sorted by their labels: `prometheus-client`
/// keeps a family's series in a hash map, so without this two scans of the
/// same host print them in different orders (textfile diffs, golden tests).
/// Comment lines (`# HELP`, `# TYPE`, `# UNIT`, `# EOF`) stay where they are.
fn in_stable_order(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut samples: Vec<&str> = Vec::new();
    let flush = |samples: &mut Vec<&str>, out: &mut String| {
        samples.sort_unstable();
        for line in samples.drain(..) {
            out.push_str(line);
            out.push('\n');
        }
    };
    for line in text.lines() {
        if line.starts_with('#') {
            flush(&mut samples, &mut out);
            out.push_str(line);
            out.push('\n');
        } else {
            samples.push(line);
        }
    }
    flush(&mut samples, &mut out);
    out
}

fn label(s: impl Into<String>) -> LabelText {
    LabelText(s.into())
}

fn int_gauge(registry: &mut Registry, name: &str, help: &str, value: u64) {
    let g: Gauge = Gauge::default();
    g.set(i64::try_from(value).unwrap_or(i64::MAX));
    registry.register(name, help, g);
}

fn float_gauge(registry: &mut Registry, name: &str, help: &str, value: f64) {
    let g = FloatGauge::default();
    g.set(value);
    registry.register(name, help, g);
}

fn register_report(registry: &mut Registry, report: &Report) {
    let build = IntGauges::<BuildLabels>::default();
    build
        .get_or_create(&BuildLabels {
            version: label(report.semleak_version.clone()),
            os: label(report.host.os.clone()),
        })
        .set(1);
    registry.register(
        "build_info",
        "semleak's version and the OS it scanned; always 1",
        build,
    );

    // Every kind and severity, zeros included: a series that disappears
    // when the leak is fixed breaks alerts and graphs.
    let findings = IntGauges::<KindSeverity>::default();
    let objects = IntGauges::<KindLabel>::default();
    let bytes = IntGauges::<KindLabel>::default();
    let mut counts: BTreeMap<(Kind, Severity), i64> = BTreeMap::new();
    let mut object_counts: BTreeMap<Kind, i64> = BTreeMap::new();
    let mut byte_counts: BTreeMap<Kind, u64> = BTreeMap::new();
    let sizes: BTreeMap<(u64, u64), u64> = report
        .inventory
        .semaphores
        .iter()
        .map(|s| ((s.dev, s.inode), s.size))
        .collect();
    for f in &report.findings {
        *counts.entry((f.kind, f.severity)).or_default() += 1;
        *object_counts.entry(f.kind).or_default() += leaked_objects(f);
        *byte_counts.entry(f.kind).or_default() += f
            .subjects
            .iter()
            .filter_map(|s| sizes.get(&s.file_key()?))
            .sum::<u64>();
    }
    for kind in Kind::ALL {
        for severity in SEVERITIES {
            findings
                .get_or_create(&KindSeverity {
                    kind: label(kind.as_str()),
                    severity: label(severity.as_str()),
                })
                .set(counts.get(&(kind, severity)).copied().unwrap_or(0));
        }
        let k = KindLabel {
            kind: label(kind.as_str()),
        };
        objects
            .get_or_create(&k)
            .set(object_counts.get(&kind).copied().unwrap_or(0));
        bytes
            .get_or_create(&k)
            .set(i64::try_from(byte_counts.get(&kind).copied().unwrap_or(0)).unwrap_or(i64::MAX));
    }
    registry.register(
        "findings",
        "Findings of this scan by kind and severity",
        findings,
    );
    registry.register(
        "leaked_objects",
        "Objects the findings name, by kind: semaphores and segments for the semaphore kinds, processes for zombies and orphans",
        objects,
    );
    registry.register(
        "leaked_bytes",
        "Bytes of the shared-memory objects the findings name, by kind",
        bytes,
    );

    register_limits(registry, report);
    register_processes(registry, report);
}

/// What one finding counts as leaked: the processes of a zombie or orphan
/// finding, the resources of the others (a channel, a semaphore).
fn leaked_objects(f: &crate::analyze::Finding) -> i64 {
    let n = match f.kind {
        Kind::Zombie | Kind::Orphan => f.pids.len(),
        _ => f.subjects.len(),
    };
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn register_limits(registry: &mut Registry, report: &Report) {
    if let Some(sem) = &report.limits.semaphores {
        int_gauge(
            registry,
            "semaphores_in_use",
            "Named semaphores seen",
            sem.in_use,
        );
        if let Some(max) = sem.max.filter(|m| *m > 0) {
            int_gauge(
                registry,
                "semaphores_limit",
                "The OS limit on named semaphores (macOS kern.posix.sem.max)",
                max,
            );
            float_gauge(
                registry,
                "semaphores_limit_ratio",
                "Named semaphores in use over the OS limit (0 to 1)",
                sem.in_use as f64 / max as f64,
            );
        }
    }
    if let Some(shm) = &report.limits.shm {
        int_gauge(
            registry,
            "shm_bytes_used",
            "Bytes used on the shared-memory filesystem",
            shm.bytes_used,
        );
        int_gauge(
            registry,
            "shm_bytes_limit",
            "Size of the shared-memory filesystem in bytes",
            shm.bytes_total,
        );
        int_gauge(
            registry,
            "shm_inodes_used",
            "Inodes used on the shared-memory filesystem",
            shm.inodes_used,
        );
        int_gauge(
            registry,
            "shm_inodes_limit",
            "Inodes of the shared-memory filesystem",
            shm.inodes_total,
        );
        if shm.bytes_total > 0 {
            float_gauge(
                registry,
                "shm_bytes_ratio",
                "Shared-memory bytes used over the filesystem's size (0 to 1)",
                shm.bytes_used as f64 / shm.bytes_total as f64,
            );
        }
        if shm.inodes_total > 0 {
            float_gauge(
                registry,
                "shm_inodes_ratio",
                "Shared-memory inodes used over the filesystem's inodes (0 to 1)",
                shm.inodes_used as f64 / shm.inodes_total as f64,
            );
        }
    }
    if let Some(pid_max) = report.limits.pid_max {
        int_gauge(
            registry,
            "pid_max",
            "The kernel's pid limit (kernel.pid_max)",
            pid_max,
        );
    }
}

fn register_processes(registry: &mut Registry, report: &Report) {
    // Zombies by reaping parent, the largest first, capped.
    let mut parents: Vec<(i64, String, String)> = report
        .findings
        .iter()
        .filter(|f| f.kind == Kind::Zombie)
        .map(|f| {
            (
                i64::try_from(f.pids.len()).unwrap_or(i64::MAX),
                f.parent_pid
                    .map_or_else(|| "unknown".to_string(), |p| p.to_string()),
                f.parent_comm.clone().unwrap_or_default(),
            )
        })
        .collect();
    parents.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
    let zombies = IntGauges::<ParentLabels>::default();
    let mut other = 0i64;
    for (i, (count, pid, comm)) in parents.into_iter().enumerate() {
        if i < MAX_ZOMBIE_PARENTS {
            zombies
                .get_or_create(&ParentLabels {
                    parent_pid: label(pid),
                    parent_comm: label(comm),
                })
                .inc_by(count);
        } else {
            other = other.saturating_add(count);
        }
    }
    // Always present, so "other" is a series to alert on, not a surprise.
    zombies
        .get_or_create(&ParentLabels {
            parent_pid: label("other"),
            parent_comm: label("other"),
        })
        .set(other);
    registry.register(
        "zombies",
        "Unreaped exited children by reaping parent (the largest parents; the rest under parent_pid=\"other\")",
        zombies,
    );
    let count_of = |kind: Kind, by: fn(&crate::analyze::Finding) -> usize| -> u64 {
        report
            .findings
            .iter()
            .filter(|f| f.kind == kind)
            .map(by)
            .sum::<usize>() as u64
    };
    int_gauge(
        registry,
        "orphans",
        "Orphaned workers (their parent died)",
        count_of(Kind::Orphan, |f| f.pids.len()),
    );
    int_gauge(
        registry,
        "wakeup_channels_full",
        "Event-loop wakeup channels found full",
        count_of(Kind::FullWakeupPipe, |_| 1),
    );
    int_gauge(
        registry,
        "wakeup_channels_stalled",
        "Event-loop wakeup channels with data nobody reads",
        count_of(Kind::StalledWakeupPipe, |_| 1),
    );

    let vis = &report.visibility;
    float_gauge(
        registry,
        "scan_duration_seconds",
        "How long the scan took",
        report.duration_ms as f64 / 1000.0,
    );
    int_gauge(
        registry,
        "processes",
        "Processes seen",
        vis.processes_total as u64,
    );
    int_gauge(
        registry,
        "processes_inspected",
        "Processes whose file descriptors and mappings were read",
        vis.processes_inspected as u64,
    );
    int_gauge(
        registry,
        "processes_skipped",
        "Processes that could not be inspected (permissions, exited)",
        vis.skipped.len() as u64,
    );
    int_gauge(
        registry,
        "visibility_complete",
        "1 when the scan saw everything, 0 when something was hidden from it",
        u64::from(vis.complete),
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analyze::{testing, Confidence, Finding};

    fn zombie_finding(ppid: i32, comm: &str, children: usize) -> Finding {
        let mut f = Finding::new(
            Kind::Zombie,
            comm.as_bytes(),
            Severity::Warning,
            Confidence::Certain,
        );
        f.parent_pid = Some(ppid);
        f.parent_comm = Some(comm.to_string());
        f.pids = (0..children).map(|i| ppid * 100 + i as i32).collect();
        f
    }

    #[test]
    fn zombie_parents_beyond_the_cap_go_to_other() {
        let findings: Vec<Finding> = (1..=MAX_ZOMBIE_PARENTS as i32 + 3)
            .map(|p| zombie_finding(p + 1000, "disp", p as usize))
            .collect();
        let report = Report::new("scan", &testing::snapshot(), findings);
        let text = render(&report);
        let series: Vec<&str> = text
            .lines()
            .filter(|l| l.starts_with("semleak_zombies{"))
            .collect();
        assert_eq!(series.len(), MAX_ZOMBIE_PARENTS + 1, "{text}");
        // The three smallest parents (1, 2 and 3 children) are summed.
        assert!(
            text.contains("semleak_zombies{parent_pid=\"other\",parent_comm=\"other\"} 6"),
            "{text}"
        );
        assert!(text.contains("semleak_zombies{parent_pid=\"1023\",parent_comm=\"disp\"} 23"));
        assert!(text.contains("semleak_findings{kind=\"zombie\",severity=\"warning\"} 23"));
        assert!(text.contains("semleak_leaked_objects{kind=\"zombie\"} 276"));
    }

    #[test]
    fn every_kind_has_a_series_even_at_zero() {
        let report = Report::new("scan", &testing::snapshot(), Vec::new());
        let text = render(&report);
        for kind in Kind::ALL {
            for severity in SEVERITIES {
                let line = format!(
                    "semleak_findings{{kind=\"{}\",severity=\"{}\"}} 0",
                    kind.as_str(),
                    severity.as_str()
                );
                assert!(text.contains(&line), "{line} missing");
            }
        }
        assert!(text.contains("# TYPE semleak_build_info gauge"));
        assert!(!text.contains("# EOF"), "the textfile format has no EOF");
        let served = render_with(&report, Some(&ExporterState::default()));
        assert!(served.ends_with("# EOF\n"));
        assert!(served.contains("semleak_scan_errors_total 0"));
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape_label_value(r#"a"b\c"#), r#"a\"b\\c"#);
        assert_eq!(escape_label_value("a\nb"), "a\\nb");
        assert_eq!(escape_label_value("a\rb\u{1b}"), "a\\\\x0db\\\\x1b");
        assert_eq!(escape_label_value("päckchen"), "päckchen");
    }
}

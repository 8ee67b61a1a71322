//! `semleak exporter`: `/metrics` over HTTP, one scan per scrape (at most
//! one at a time, reused within `--min-interval`), until SIGTERM or SIGINT.
//! The HTTP side, and its limits, are in [`http`].

pub mod http;

use std::net::TcpListener;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use self::http::{Limits, Method, Request, Response, ServeError, Server};
use super::load_suppressor;
use super::scan::scan_report;
use crate::cli::{CollectArgs, ExporterArgs, ProbeArgs, RuleArgs};
use crate::exit::{AppError, EXIT_OK};
use crate::report::prometheus::{render_with, ExporterState};
use crate::report::Report;
use crate::suppress::Suppressor;

const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// The last good scan and the exporter's counters.
struct Cache {
    report: Option<Report>,
    scanned_at: Option<Instant>,
    state: ExporterState,
}

/// What a scrape needs, owned: the workers outlive the borrowed arguments'
/// scope (they are not joined on SIGTERM, so a stalled client cannot delay
/// the exit).
struct Scanner {
    collect: CollectArgs,
    probe: ProbeArgs,
    rules: RuleArgs,
    min_interval: std::time::Duration,
    suppressor: Suppressor,
    /// Held for the whole scan: at most one runs at a time, and a scrape
    /// that waited for it reuses its result within `--min-interval`.
    cache: Mutex<Cache>,
}

impl From<ServeError> for AppError {
    fn from(e: ServeError) -> Self {
        AppError::Module(Box::new(e))
    }
}

pub fn exporter(args: &ExporterArgs) -> Result<i32, AppError> {
    let suppressor = load_suppressor(&args.suppress)?;
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        signal_hook::flag::register(signal, Arc::clone(&stop)).map_err(|source| {
            AppError::Listen {
                addr: args.listen,
                source,
            }
        })?;
    }
    let listen_error = |source| AppError::Listen {
        addr: args.listen,
        source,
    };
    let listener = TcpListener::bind(args.listen).map_err(listen_error)?;
    let scanner = Scanner {
        collect: args.collect.clone(),
        probe: args.probe.clone(),
        rules: args.rules.clone(),
        min_interval: args.min_interval,
        suppressor,
        cache: Mutex::new(Cache {
            report: None,
            scanned_at: None,
            state: ExporterState::default(),
        }),
    };
    let server = Server::start(listener, Limits::default(), move |request| {
        respond(request, &scanner)
    })?;
    let bound = server.local_addr().map_err(listen_error)?;
    // Only now: the workers are running, so "serving" is true.
    eprintln!("semleak exporter: serving http://{bound}/metrics");
    server.run(&stop)?;
    eprintln!("semleak exporter: stopped");
    Ok(EXIT_OK)
}

fn respond(request: &Request, scanner: &Scanner) -> Response {
    match (request.method, request.path.as_str()) {
        (Method::Get | Method::Head, "/metrics") => metrics(scanner),
        (Method::Get | Method::Head, "/") => Response::text(
            200,
            "semleak exporter: metrics are at /metrics\n".to_string(),
            "text/plain; charset=utf-8",
        ),
        (Method::Get | Method::Head, _) => {
            Response::text(404, "not found: try /metrics\n".to_string(), "text/plain")
        }
        _ => Response::text(405, "only GET and HEAD\n".to_string(), "text/plain"),
    }
}

fn metrics(scanner: &Scanner) -> Response {
    // A scan that panicked ends its worker and the exporter (see
    // `Server::run`), so a poisoned cache is never read in practice.
    let mut cache = scanner.cache.lock().unwrap_or_else(PoisonError::into_inner);
    let fresh = cache
        .scanned_at
        .is_some_and(|t| t.elapsed() < scanner.min_interval);
    if !fresh {
        match scan_report(
            &scanner.collect,
            &scanner.probe,
            &scanner.rules,
            &scanner.suppressor,
        ) {
            Ok(report) => {
                cache.report = Some(report);
                cache.scanned_at = Some(Instant::now());
                cache.state.last_success_unix = SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .ok()
                    .map(|d| d.as_secs_f64());
            }
            Err(e) => {
                cache.state.scan_errors += 1;
                eprintln!("semleak exporter: scan failed: {e}");
            }
        }
    }
    match &cache.report {
        Some(report) => Response::text(200, render_with(report, Some(&cache.state)), OPENMETRICS),
        None => Response::text(
            503,
            format!(
                "semleak exporter: no scan has succeeded yet ({} failed)\n",
                cache.state.scan_errors
            ),
            "text/plain; charset=utf-8",
        ),
    }
}

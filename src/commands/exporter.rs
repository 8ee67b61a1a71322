//! `semleak exporter`: `/metrics` over HTTP, one scan per scrape (at most
//! one at a time, reused within `--min-interval`), until SIGTERM or SIGINT.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tiny_http::{Header, Method, Request, Response, Server};

use super::load_suppressor;
use super::scan::scan_report;
use crate::cli::ExporterArgs;
use crate::exit::{AppError, EXIT_OK};
use crate::report::prometheus::{render_with, ExporterState};
use crate::report::Report;
use crate::suppress::Suppressor;

/// How often the loop wakes to notice a signal between requests.
const POLL: Duration = Duration::from_millis(200);

const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// The last good scan and the exporter's counters.
struct Cache {
    report: Option<Report>,
    scanned_at: Option<Instant>,
    state: ExporterState,
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
    let server = Server::http(args.listen).map_err(|e| AppError::Listen {
        addr: args.listen,
        source: std::io::Error::other(e),
    })?;
    let bound = server
        .server_addr()
        .to_ip()
        .map_or_else(|| args.listen.to_string(), |a| a.to_string());
    eprintln!("semleak exporter: serving http://{bound}/metrics");

    let mut cache = Cache {
        report: None,
        scanned_at: None,
        state: ExporterState::default(),
    };
    // One request at a time on this thread: at most one scan runs.
    while !stop.load(Ordering::Relaxed) {
        match server.recv_timeout(POLL) {
            Ok(Some(request)) => respond(request, args, &suppressor, &mut cache),
            Ok(None) => {}
            // Interrupted by the signal, or a broken connection: go on.
            Err(_) => {}
        }
    }
    eprintln!("semleak exporter: stopped");
    Ok(EXIT_OK)
}

fn respond(request: Request, args: &ExporterArgs, suppressor: &Suppressor, cache: &mut Cache) {
    let path = request.url().split('?').next().unwrap_or("");
    let response = match (request.method(), path) {
        (Method::Get | Method::Head, "/metrics") => metrics(args, suppressor, cache),
        (Method::Get | Method::Head, "/") => text(
            200,
            "semleak exporter: metrics are at /metrics\n".to_string(),
            "text/plain; charset=utf-8",
        ),
        (Method::Get | Method::Head, _) => {
            text(404, "not found: try /metrics\n".to_string(), "text/plain")
        }
        _ => text(405, "only GET and HEAD\n".to_string(), "text/plain"),
    };
    // A scraper that went away is not the exporter's problem.
    let _ = request.respond(response);
}

fn metrics(
    args: &ExporterArgs,
    suppressor: &Suppressor,
    cache: &mut Cache,
) -> Response<std::io::Cursor<Vec<u8>>> {
    let fresh = cache
        .scanned_at
        .is_some_and(|t| t.elapsed() < args.min_interval);
    if !fresh {
        match scan_report(&args.collect, &args.probe, &args.rules, suppressor) {
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
        Some(report) => text(200, render_with(report, Some(&cache.state)), OPENMETRICS),
        None => text(
            503,
            format!(
                "semleak exporter: no scan has succeeded yet ({} failed)\n",
                cache.state.scan_errors
            ),
            "text/plain; charset=utf-8",
        ),
    }
}

fn text(status: u16, body: String, content_type: &str) -> Response<std::io::Cursor<Vec<u8>>> {
    let header = Header::from_bytes(&b"Content-Type"[..], content_type.as_bytes())
        .expect("a constant header is valid");
    Response::from_data(body.into_bytes())
        .with_status_code(status)
        .with_header(header)
}

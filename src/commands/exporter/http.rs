//! The exporter's HTTP/1.1 responder: just enough HTTP for `GET /metrics`,
//! bounded everywhere a client could make it wait or allocate.
//!
//! Why not a library: tiny_http (used before) reads whatever body a
//! `Content-Length` announces into one allocation (`18446744073709551615`
//! panics, `1099511627776` aborts), has no header or thread limit and lets
//! one client stall the rest; hyper would pull in tokio for one GET route.
//! What is here is small enough to read in one sitting: a pure parser of the
//! request head ([`parse_head`], property-tested and fuzzed), a fixed pool of
//! worker threads started once, and an accept loop that polls the stop flag.
//!
//! The limits: a request head of at most [`MAX_HEAD`] bytes, received within
//! [`Limits::read_timeout`]; no request body (a `Content-Length` above 0 or a
//! `Transfer-Encoding` is refused unread); one response per connection
//! (`Connection: close`), written within [`Limits::write_timeout`]; at most
//! [`Limits::workers`] connections at a time, the next ones answered `503`
//! and closed on the accepting thread. Failing to serve (a worker thread
//! cannot start or died, `accept` fails for [`Limits::accept_failing_for`])
//! is an error, so a supervisor restarts the exporter instead of it staying
//! up with a dead port.

use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

/// The request line and headers together, blank line included. Scrapers send
/// a few hundred bytes; 8 KiB is what most servers allow.
pub const MAX_HEAD: usize = 8 * 1024;

/// The request methods the exporter tells apart; any other valid one is
/// answered `405`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Get,
    Head,
    Other,
}

/// A request head that was read completely and is acceptable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub method: Method,
    /// The request target up to `?` (printable ASCII, not decoded).
    pub path: String,
}

/// Why a request head is refused; each is one status code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reject {
    /// Not an HTTP/1.x request line or header.
    BadRequest,
    /// The request line alone is longer than [`MAX_HEAD`].
    LineTooLong,
    /// The head is longer than [`MAX_HEAD`].
    HeadTooLarge,
    /// A body is announced: nothing here takes one, so it is never read.
    BodyNotAccepted,
    /// `HTTP/2.0` and the like.
    VersionNotSupported,
}

impl Reject {
    pub fn status(self) -> u16 {
        match self {
            Self::BadRequest => 400,
            Self::LineTooLong => 414,
            Self::HeadTooLarge => 431,
            Self::BodyNotAccepted => 413,
            Self::VersionNotSupported => 505,
        }
    }

    fn response(self) -> Response {
        let body = match self {
            Self::BadRequest => "bad request\n",
            Self::LineTooLong => "request line too long\n",
            Self::HeadTooLarge => "request header too large\n",
            Self::BodyNotAccepted => "no request body is accepted\n",
            Self::VersionNotSupported => "only HTTP/1.0 and HTTP/1.1\n",
        };
        Response::text(self.status(), body.to_string(), "text/plain")
    }
}

/// Parses the start of a connection's bytes as a request head.
/// `Ok(None)`: the head is not complete yet (read more, if the deadline
/// allows). Bytes after the head (a body, pipelined requests) are ignored:
/// one request per connection. Lines may end in CRLF or LF.
pub fn parse_head(buf: &[u8]) -> Result<Option<Request>, Reject> {
    let window = &buf[..buf.len().min(MAX_HEAD)];
    let Some(end) = head_end(window) else {
        return if buf.len() < MAX_HEAD {
            Ok(None)
        } else if window.contains(&b'\n') {
            Err(Reject::HeadTooLarge)
        } else {
            Err(Reject::LineTooLong)
        };
    };
    let mut lines = window[..end]
        .split(|&b| b == b'\n')
        .map(|line| line.strip_suffix(b"\r").unwrap_or(line));
    let request = request_line(lines.next().unwrap_or_default())?;
    for line in lines {
        header(line)?;
    }
    Ok(Some(request))
}

/// Where the blank line ending the head starts: the index of the `\n` ending
/// the last header line (or the request line).
fn head_end(buf: &[u8]) -> Option<usize> {
    (0..buf.len()).find(|&i| {
        buf[i] == b'\n' && {
            let rest = &buf[i + 1..];
            rest.starts_with(b"\n") || rest.starts_with(b"\r\n")
        }
    })
}

fn request_line(line: &[u8]) -> Result<Request, Reject> {
    let mut parts = line.split(|&b| b == b' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(Reject::BadRequest);
    };
    if method.is_empty() || !method.iter().copied().all(is_tchar) {
        return Err(Reject::BadRequest);
    }
    if target.is_empty() || !target.iter().all(|b| (0x21..=0x7e).contains(b)) {
        return Err(Reject::BadRequest);
    }
    match version {
        b"HTTP/1.1" | b"HTTP/1.0" => {}
        v if v.starts_with(b"HTTP/") => return Err(Reject::VersionNotSupported),
        _ => return Err(Reject::BadRequest),
    }
    let method = match method {
        b"GET" => Method::Get,
        b"HEAD" => Method::Head,
        _ => Method::Other,
    };
    let path = target.split(|&b| b == b'?').next().unwrap_or_default();
    // Printable ASCII was checked above, so this is never lossy.
    let path = String::from_utf8_lossy(path).into_owned();
    Ok(Request { method, path })
}

fn header(line: &[u8]) -> Result<(), Reject> {
    let Some(colon) = line.iter().position(|&b| b == b':') else {
        return Err(Reject::BadRequest);
    };
    let (name, value) = (&line[..colon], &line[colon + 1..]);
    // An empty name also rejects obsolete line folding (a leading space).
    if name.is_empty() || !name.iter().copied().all(is_tchar) {
        return Err(Reject::BadRequest);
    }
    if value.iter().any(|&b| b != b'\t' && (b < 0x20 || b == 0x7f)) {
        return Err(Reject::BadRequest);
    }
    let value = value.trim_ascii();
    if name.eq_ignore_ascii_case(b"content-length") {
        // Compared as digits, never converted: no number is too large.
        if value.is_empty() || !value.iter().all(u8::is_ascii_digit) {
            return Err(Reject::BadRequest);
        }
        if value.iter().any(|&b| b != b'0') {
            return Err(Reject::BodyNotAccepted);
        }
    } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
        return Err(Reject::BodyNotAccepted);
    }
    Ok(())
}

/// RFC 9110 token characters (method and header names).
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// One complete response, written with `Connection: close`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    pub content_type: &'static str,
    pub body: Vec<u8>,
}

impl Response {
    pub fn text(status: u16, body: String, content_type: &'static str) -> Self {
        Self {
            status,
            content_type,
            body: body.into_bytes(),
        }
    }

    /// The bytes on the wire; `head_only` for HEAD (same headers, no body).
    pub fn encode(&self, head_only: bool) -> Vec<u8> {
        let mut out = format!(
            "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: close\r\n",
            self.status,
            reason(self.status),
            self.content_type,
            self.body.len()
        );
        if self.status == 405 {
            out.push_str("Allow: GET, HEAD\r\n");
        }
        if self.status == 503 {
            out.push_str("Retry-After: 1\r\n");
        }
        out.push_str("\r\n");
        let mut out = out.into_bytes();
        if !head_only {
            out.extend_from_slice(&self.body);
        }
        out
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        413 => "Content Too Large",
        414 => "URI Too Long",
        431 => "Request Header Fields Too Large",
        503 => "Service Unavailable",
        505 => "HTTP Version Not Supported",
        _ => "",
    }
}

/// How much one client may take, and how failure to serve is recognised.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Worker threads, started once: the most connections served at a time.
    pub workers: usize,
    /// The whole request head must arrive within this (not per read: a
    /// byte a second does not keep a worker).
    pub read_timeout: Duration,
    /// The whole response must be taken within this.
    pub write_timeout: Duration,
    /// How often the accepting thread looks at the stop flag and the workers
    /// when no connection arrives.
    pub poll: Duration,
    /// `accept` failing without a success for this long is an error.
    pub accept_failing_for: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            workers: 16,
            read_timeout: Duration::from_secs(3),
            write_timeout: Duration::from_secs(5),
            poll: Duration::from_millis(50),
            accept_failing_for: Duration::from_secs(10),
        }
    }
}

/// Why the exporter stopped serving (not a client's error: those only end
/// their own connection).
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("cannot make the listening socket non-blocking")]
    Listener(#[source] io::Error),
    #[error("cannot start worker thread {index} of {count}")]
    Spawn {
        index: usize,
        count: usize,
        #[source]
        source: io::Error,
    },
    #[error("a worker thread died (its panic is printed above); no longer serving")]
    WorkerDied,
    #[error("accepting connections has failed for {seconds} s")]
    Accept {
        seconds: u64,
        #[source]
        source: io::Error,
    },
}

/// A listener with its workers started: [`Server::start`] fails when they
/// cannot start, before anything says the exporter is serving.
pub struct Server {
    listener: TcpListener,
    tx: SyncSender<TcpStream>,
    busy: Arc<AtomicUsize>,
    workers: Vec<JoinHandle<()>>,
    limits: Limits,
}

impl Server {
    pub fn start<H>(listener: TcpListener, limits: Limits, handler: H) -> Result<Self, ServeError>
    where
        H: Fn(&Request) -> Response + Send + Sync + 'static,
    {
        listener
            .set_nonblocking(true)
            .map_err(ServeError::Listener)?;
        // Capacity `workers` and at most `workers` connections queued or in
        // progress (`busy`), so a send never blocks the accepting thread.
        let (tx, rx) = mpsc::sync_channel::<TcpStream>(limits.workers);
        let rx = Arc::new(Mutex::new(rx));
        let busy = Arc::new(AtomicUsize::new(0));
        let handler = Arc::new(handler);
        let workers = start_workers(limits.workers, |index| {
            let (rx, busy, handler) = (Arc::clone(&rx), Arc::clone(&busy), Arc::clone(&handler));
            thread::Builder::new()
                .name(format!("http-{index}"))
                .spawn(move || worker(&rx, &busy, &*handler, limits))
        })?;
        Ok(Self {
            listener,
            tx,
            busy,
            workers,
            limits,
        })
    }

    pub fn local_addr(&self) -> io::Result<std::net::SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves until `stop` is set, or until serving fails. Returns without
    /// waiting for connections in progress: each is bounded by the
    /// timeouts, and the process is about to exit.
    pub fn run(self, stop: &AtomicBool) -> Result<(), ServeError> {
        let limits = self.limits;
        let mut failures = AcceptFailures::new(limits.accept_failing_for);
        while !stop.load(Ordering::Relaxed) {
            if self.workers.iter().any(JoinHandle::is_finished) {
                return Err(ServeError::WorkerDied);
            }
            match self.listener.accept() {
                Ok((stream, _)) => {
                    failures.succeeded();
                    dispatch(stream, &self.tx, &self.busy, limits.workers);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => thread::sleep(limits.poll),
                // The client gave up before it was accepted, or a signal.
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::ConnectionAborted | io::ErrorKind::Interrupted
                    ) => {}
                // Out of descriptors or memory: maybe passing, so retry a while.
                Err(e) => {
                    failures.failed(e, Instant::now())?;
                    thread::sleep(limits.poll);
                }
            }
        }
        Ok(())
    }
}

/// Starts `count` workers with `spawn`; the first that cannot start is the
/// error (the ones started end when their channel closes).
pub fn start_workers(
    count: usize,
    mut spawn: impl FnMut(usize) -> io::Result<JoinHandle<()>>,
) -> Result<Vec<JoinHandle<()>>, ServeError> {
    (0..count)
        .map(|index| {
            spawn(index).map_err(|source| ServeError::Spawn {
                index: index + 1,
                count,
                source,
            })
        })
        .collect()
}

/// Tells a passing `accept` error from a persistent one.
#[derive(Debug)]
pub struct AcceptFailures {
    failing_since: Option<Instant>,
    allowed: Duration,
}

impl AcceptFailures {
    pub fn new(allowed: Duration) -> Self {
        Self {
            failing_since: None,
            allowed,
        }
    }

    pub fn succeeded(&mut self) {
        self.failing_since = None;
    }

    /// An error when `accept` has failed since `allowed` ago with no success.
    pub fn failed(&mut self, error: io::Error, now: Instant) -> Result<(), ServeError> {
        let since = *self.failing_since.get_or_insert(now);
        let failing = now.saturating_duration_since(since);
        if failing >= self.allowed {
            return Err(ServeError::Accept {
                seconds: failing.as_secs(),
                source: error,
            });
        }
        Ok(())
    }
}

/// Hands the connection to a free worker, or answers 503 right here (a
/// write into an empty socket buffer, which does not block) and closes it.
fn dispatch(stream: TcpStream, tx: &SyncSender<TcpStream>, busy: &AtomicUsize, workers: usize) {
    // Only this thread increments `busy`, so checking then adding is exact.
    if busy.load(Ordering::Acquire) < workers {
        busy.fetch_add(1, Ordering::AcqRel);
        if let Err(TrySendError::Full(stream) | TrySendError::Disconnected(stream)) =
            tx.try_send(stream)
        {
            busy.fetch_sub(1, Ordering::AcqRel);
            refuse(stream);
        }
    } else {
        refuse(stream);
    }
}

fn refuse(mut stream: TcpStream) {
    let busy = Response::text(503, "too many connections\n".to_string(), "text/plain");
    if stream.set_nonblocking(true).is_ok() {
        let _ = stream.write(&busy.encode(false));
    }
    let _ = stream.shutdown(Shutdown::Write);
}

fn worker(
    rx: &Mutex<Receiver<TcpStream>>,
    busy: &AtomicUsize,
    handler: &(dyn Fn(&Request) -> Response + Send + Sync),
    limits: Limits,
) {
    loop {
        // One idle worker waits in `recv`, the others for the lock. Nothing
        // panics while holding it, so a poisoned lock is still usable.
        let next = rx.lock().unwrap_or_else(PoisonError::into_inner).recv();
        let Ok(stream) = next else {
            return; // The accepting thread stopped.
        };
        connection(stream, handler, limits);
        busy.fetch_sub(1, Ordering::AcqRel);
    }
}

/// One connection: read the head, answer once, close. I/O errors end the
/// connection silently: a client that went away is not the exporter's
/// problem.
fn connection(
    mut stream: TcpStream,
    handler: &(dyn Fn(&Request) -> Response + Send + Sync),
    limits: Limits,
) {
    if stream.set_nonblocking(false).is_err() {
        return;
    }
    let _ = stream.set_nodelay(true);
    let deadline = Instant::now() + limits.read_timeout;
    let mut buf = vec![0; MAX_HEAD];
    let mut len = 0;
    let (response, head_only) = loop {
        match parse_head(&buf[..len]) {
            Ok(Some(request)) => break (handler(&request), request.method == Method::Head),
            Err(reject) => break (reject.response(), false),
            Ok(None) => {}
        }
        let Some(left) = remaining(deadline) else {
            let late = Response::text(408, "request not received in time\n".into(), "text/plain");
            break (late, false);
        };
        if stream.set_read_timeout(Some(left)).is_err() {
            return;
        }
        match stream.read(&mut buf[len..]) {
            Ok(0) => return,
            Ok(n) => len += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            // The timeout: the next turn answers 408.
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) => {}
            Err(_) => return,
        }
    };
    let deadline = Instant::now() + limits.write_timeout;
    if write_by(&mut stream, &response.encode(head_only), deadline).is_ok() {
        let _ = stream.shutdown(Shutdown::Write);
    }
}

/// `write_all` that gives up at `deadline` (a write timeout alone is per
/// call: a reader taking a byte just before each expiry would never end).
fn write_by(stream: &mut TcpStream, mut bytes: &[u8], deadline: Instant) -> io::Result<()> {
    while !bytes.is_empty() {
        let left = remaining(deadline).ok_or(io::ErrorKind::TimedOut)?;
        stream.set_write_timeout(Some(left))?;
        match stream.write(bytes) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => bytes = &bytes[n..],
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Time left until `deadline`, `None` once it has passed (a zero timeout
/// would mean none at all to `set_read_timeout`).
fn remaining(deadline: Instant) -> Option<Duration> {
    Some(deadline.checked_duration_since(Instant::now())?).filter(|d| !d.is_zero())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn get(path: &str) -> Result<Option<Request>, Reject> {
        parse_head(format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes())
    }

    #[test]
    fn parses_what_scrapers_send() {
        let head = b"GET /metrics?x=1 HTTP/1.1\r\nHost: 127.0.0.1:9877\r\nUser-Agent: Prometheus/2.53\r\nAccept: application/openmetrics-text;version=1.0.0\r\nContent-Length: 0\r\n\r\n";
        assert_eq!(
            parse_head(head),
            Ok(Some(Request {
                method: Method::Get,
                path: "/metrics".into()
            }))
        );
        let head = parse_head(b"HEAD / HTTP/1.0\n\n").unwrap().unwrap();
        assert_eq!((head.method, head.path.as_str()), (Method::Head, "/"));
        let post = parse_head(b"POST /metrics HTTP/1.1\r\n\r\n")
            .unwrap()
            .unwrap();
        assert_eq!(post.method, Method::Other);
    }

    #[test]
    fn waits_for_the_blank_line() {
        assert_eq!(parse_head(b""), Ok(None));
        assert_eq!(parse_head(b"GET /metr"), Ok(None));
        assert_eq!(
            parse_head(b"GET /metrics HTTP/1.1\r\nHost: x\r\n"),
            Ok(None)
        );
        assert_eq!(parse_head(b"GET /metrics HTTP/1.1\r\n\r"), Ok(None));
        assert!(matches!(get("/metrics"), Ok(Some(_))));
    }

    #[test]
    fn refuses_any_body_unread() {
        for cl in [
            "1",
            "2000",
            "18446744073709551615",
            "1099511627776",
            "99999999999999999999999999",
        ] {
            let head = format!("GET /metrics HTTP/1.1\r\nContent-Length: {cl}\r\n\r\n");
            assert_eq!(
                parse_head(head.as_bytes()),
                Err(Reject::BodyNotAccepted),
                "{cl}"
            );
        }
        let chunked = b"GET / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n";
        assert_eq!(parse_head(chunked), Err(Reject::BodyNotAccepted));
        let zero = b"GET / HTTP/1.1\r\ncontent-length:  000 \r\n\r\n";
        assert!(matches!(parse_head(zero), Ok(Some(_))));
        for bad in ["-1", "1 2", "", "0x10", "+0"] {
            let head = format!("GET / HTTP/1.1\r\nContent-Length: {bad}\r\n\r\n");
            assert_eq!(
                parse_head(head.as_bytes()),
                Err(Reject::BadRequest),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn refuses_malformed_heads() {
        for bad in [
            &b"GET /metrics\r\n\r\n"[..],
            b"GET  /metrics HTTP/1.1\r\n\r\n",
            b"GET /metrics HTTP/1.1 x\r\n\r\n",
            b"G\x01T / HTTP/1.1\r\n\r\n",
            b"GET /m\xffx HTTP/1.1\r\n\r\n",
            b"GET / FTP/1.1\r\n\r\n",
            b"\r\n\r\n",
            b"GET / HTTP/1.1\r\nno colon\r\n\r\n",
            b"GET / HTTP/1.1\r\n folded: x\r\n\r\n",
            b"GET / HTTP/1.1\r\nBad Name: x\r\n\r\n",
            b"GET / HTTP/1.1\r\nX: a\x00b\r\n\r\n",
        ] {
            assert_eq!(
                parse_head(bad),
                Err(Reject::BadRequest),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
        assert_eq!(
            parse_head(b"GET / HTTP/2.0\r\n\r\n"),
            Err(Reject::VersionNotSupported)
        );
    }

    #[test]
    fn bounds_the_head() {
        let long_line = format!("GET /{} HTTP/1.1", "a".repeat(MAX_HEAD));
        assert_eq!(parse_head(long_line.as_bytes()), Err(Reject::LineTooLong));
        let mut big = b"GET / HTTP/1.1\r\n".to_vec();
        while big.len() < MAX_HEAD {
            big.extend_from_slice(b"X-Filler: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n");
        }
        assert_eq!(parse_head(&big), Err(Reject::HeadTooLarge));
        big.extend_from_slice(b"\r\n");
        assert_eq!(
            parse_head(&big),
            Err(Reject::HeadTooLarge),
            "the end is past the limit"
        );
        // Exactly at the limit is fine.
        let mut exact = b"GET / HTTP/1.1\r\nX: ".to_vec();
        exact.resize(MAX_HEAD - 4, b'a');
        exact.extend_from_slice(b"\r\n\r\n");
        assert_eq!(exact.len(), MAX_HEAD);
        assert!(matches!(parse_head(&exact), Ok(Some(_))));
    }

    #[test]
    fn pipelined_requests_and_bodies_after_the_head_are_ignored() {
        let two = b"GET /metrics HTTP/1.1\r\n\r\nGET /other HTTP/1.1\r\n\r\n";
        assert_eq!(parse_head(two).unwrap().unwrap().path, "/metrics");
    }

    #[test]
    fn encodes_one_response_per_connection() {
        let r = Response::text(200, "hi\n".into(), "text/plain");
        assert_eq!(
            String::from_utf8(r.encode(false)).unwrap(),
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 3\r\nConnection: close\r\n\r\nhi\n"
        );
        let head = String::from_utf8(r.encode(true)).unwrap();
        assert!(
            head.ends_with("Content-Length: 3\r\nConnection: close\r\n\r\n"),
            "{head}"
        );
        let not_allowed = Response::text(405, String::new(), "text/plain").encode(false);
        assert!(String::from_utf8(not_allowed)
            .unwrap()
            .contains("Allow: GET, HEAD\r\n"));
    }

    #[test]
    fn a_worker_that_cannot_start_is_an_error() {
        let mut started = Vec::new();
        let err = start_workers(4, |i| {
            if i == 2 {
                // What pthread_create gives under a full pids.max.
                return Err(io::Error::from_raw_os_error(libc::EAGAIN));
            }
            let h = thread::spawn(|| {});
            started.push(i);
            Ok(h)
        })
        .unwrap_err();
        assert!(
            matches!(
                err,
                ServeError::Spawn {
                    index: 3,
                    count: 4,
                    ..
                }
            ),
            "{err:?}"
        );
        assert_eq!(err.to_string(), "cannot start worker thread 3 of 4");
        assert_eq!(started, [0, 1]);
    }

    #[test]
    fn accept_failing_persistently_is_an_error_passing_failures_are_not() {
        let t0 = Instant::now();
        let mut f = AcceptFailures::new(Duration::from_secs(10));
        let emfile = || io::Error::from_raw_os_error(libc::EMFILE);
        assert!(f.failed(emfile(), t0).is_ok());
        assert!(f.failed(emfile(), t0 + Duration::from_secs(9)).is_ok());
        f.succeeded();
        assert!(
            f.failed(emfile(), t0 + Duration::from_secs(15)).is_ok(),
            "a success resets"
        );
        let err = f
            .failed(emfile(), t0 + Duration::from_secs(25))
            .unwrap_err();
        assert_eq!(err.to_string(), "accepting connections has failed for 10 s");
    }

    #[test]
    fn serving_stops_with_an_error_when_a_worker_dies() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let limits = Limits {
            workers: 2,
            ..Limits::default()
        };
        let server = {
            let stop = Arc::clone(&stop);
            thread::spawn(move || {
                let server = Server::start(listener, limits, |_: &Request| -> Response {
                    panic!("a bug in the handler (expected by this test)")
                });
                server.unwrap().run(&stop)
            })
        };
        let mut client = TcpStream::connect(addr).unwrap();
        client.write_all(b"GET /metrics HTTP/1.1\r\n\r\n").unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while !server.is_finished() && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(10));
        }
        stop.store(true, Ordering::Relaxed);
        let result = server.join().unwrap();
        assert!(matches!(result, Err(ServeError::WorkerDied)), "{result:?}");
    }

    #[test]
    fn serves_and_stops_on_the_flag() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let server = {
            let stop = Arc::clone(&stop);
            thread::spawn(move || {
                let server = Server::start(listener, Limits::default(), |r: &Request| {
                    Response::text(200, r.path.clone(), "text/plain")
                });
                server.unwrap().run(&stop)
            })
        };
        let mut client = TcpStream::connect(addr).unwrap();
        client.write_all(b"GET /x?y HTTP/1.1\r\n\r\n").unwrap();
        let mut answer = String::new();
        client.read_to_string(&mut answer).unwrap();
        assert!(answer.starts_with("HTTP/1.1 200 OK\r\n"), "{answer}");
        assert!(answer.ends_with("\r\n\r\n/x"), "{answer}");
        stop.store(true, Ordering::Relaxed);
        assert!(server.join().unwrap().is_ok());
    }

    proptest! {
        /// Any bytes: no panic.
        #[test]
        fn never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
            let _ = parse_head(&bytes);
        }

        #[test]
        fn any_request_of_printable_parts_parses(
            method in "[A-Z]{1,8}",
            path in "/[!-~]{0,40}",
            headers in proptest::collection::vec(("[A-Za-z-]{1,20}", "[ -~]{0,40}"), 0..8),
        ) {
            let mut head = format!("{method} {path} HTTP/1.1\r\n");
            for (name, value) in &headers {
                head.push_str(&format!("{name}: {value}\r\n"));
            }
            head.push_str("\r\n");
            let zero = |v: &str| !v.trim().is_empty() && v.trim().bytes().all(|b| b == b'0');
            let body = headers.iter().any(|(n, v)| {
                n.eq_ignore_ascii_case("transfer-encoding")
                    || (n.eq_ignore_ascii_case("content-length") && !zero(v))
            });
            let parsed = parse_head(head.as_bytes());
            if body {
                prop_assert!(parsed.is_err());
            } else {
                let r = parsed.unwrap().unwrap();
                prop_assert_eq!(r.path.as_str(), path.split('?').next().unwrap());
            }
            // Every proper prefix is incomplete, never an error.
            for cut in [0, head.len() / 2, head.len() - 1] {
                prop_assert_eq!(parse_head(&head.as_bytes()[..cut]), Ok(None));
            }
        }
    }
}

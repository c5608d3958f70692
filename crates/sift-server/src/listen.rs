//! Accepting and serving connections: a cap on open connections, a deadline
//! for each request head, a keep-alive idle timeout, back-off on accept
//! errors, and a graceful stop.
//!
//! `axum::serve` has none of these, and 140 idle connections under
//! `ulimit -n 128` once left the store unable to open its files. So every
//! connection holds a slot of a semaphore sized to what the file-descriptor
//! limit leaves after the store's reserve; past the cap a client gets a 503
//! that says so, never a 500 from a starved store.
//!
//! Deadlines are watched per connection from outside hyper, by observing its
//! socket: while no request is in flight the connection is idle (the idle
//! timeout runs); the first byte of a new request head starts the header
//! timeout instead. A request in flight (a change stream included, however
//! long) is never cut by either; its body has its own deadline (`body.rs`).

use std::convert::Infallible;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore, watch};
use tokio::time::Instant;

use crate::config::Config;

/// Connections past the cap whose 503 is sent and closed gracefully (the
/// client has a moment to read it); beyond these, the 503 is written
/// without waiting and the connection closed at once.
const REFUSALS: usize = 16;
/// File descriptors kept for the store and outbound requests beyond those
/// open when serving starts: new workspaces' databases, SQLite's temporary
/// files, webhook and Facebook connections.
pub const FD_RESERVE: u64 = 64;
/// How long a refused client has to read its 503.
const REFUSAL_GRACE: Duration = Duration::from_secs(1);
/// How long a stop waits for requests in flight to finish.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(30);
const BACKOFF_MIN: Duration = Duration::from_millis(10);
const BACKOFF_MAX: Duration = Duration::from_secs(1);

/// The connection timeouts.
#[derive(Clone, Copy, Debug)]
struct Timeouts {
    header: Duration,
    idle: Duration,
}

/// How many connections may be open: the configured cap, lowered to what
/// the process's file-descriptor limit leaves after the descriptors open now
/// (the store's databases), [`FD_RESERVE`] and the refusals.
pub fn connection_cap(config: &Config) -> usize {
    let Some(limit) = open_file_limit() else {
        return config.max_connections.max(1);
    };
    let open = open_descriptors().unwrap_or(0);
    let cap = cap_within(config.max_connections, limit, open);
    if cap < config.max_connections {
        tracing::warn!(
            limit,
            open,
            reserve = FD_RESERVE,
            cap,
            configured = config.max_connections,
            "the open-file limit (ulimit -n) leaves room for fewer connections than --max-connections; raise it to serve more"
        );
    }
    cap
}

/// The cap for `configured` connections under an open-file `limit` with
/// `open` descriptors in use: never past what leaves the reserve free, and
/// at least one.
fn cap_within(configured: usize, limit: u64, open: u64) -> usize {
    let room = limit.saturating_sub(open + FD_RESERVE + REFUSALS as u64);
    configured
        .min(usize::try_from(room).unwrap_or(usize::MAX))
        .max(1)
}

fn open_file_limit() -> Option<u64> {
    rustix::process::getrlimit(rustix::process::Resource::Nofile).current
}

fn open_descriptors() -> Option<u64> {
    std::fs::read_dir("/proc/self/fd")
        .ok()
        .map(|dir| dir.count() as u64)
}

/// Serves `app` on `listener` until `shutdown` resolves, then stops
/// accepting, lets in-flight requests finish (change streams end on
/// `stopping`) and returns once every connection has closed.
pub async fn run(
    app: Router,
    config: &Config,
    listener: TcpListener,
    stopping: watch::Sender<bool>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    let cap = connection_cap(config);
    tracing::info!(max_connections = cap, "accepting connections");
    let slots = Arc::new(Semaphore::new(cap));
    let refusals = Arc::new(Semaphore::new(REFUSALS));
    let timeouts = Timeouts {
        header: config.header_read_timeout,
        idle: config.idle_timeout,
    };
    let (stop_tx, stop_rx) = watch::channel(false);
    tokio::pin!(shutdown);
    let mut backoff = Duration::ZERO;
    loop {
        let accepted = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => accepted,
        };
        match accepted {
            Ok((stream, _)) => {
                backoff = Duration::ZERO;
                if let Ok(slot) = slots.clone().try_acquire_owned() {
                    tokio::spawn(connection(
                        stream,
                        app.clone(),
                        slot,
                        timeouts,
                        stop_rx.clone(),
                    ));
                } else if let Ok(permit) = refusals.clone().try_acquire_owned() {
                    metrics::counter!("sift_connections_refused_total").increment(1);
                    tokio::spawn(refuse(stream, permit));
                } else {
                    metrics::counter!("sift_connections_refused_total").increment(1);
                    refuse_now(stream);
                }
            }
            Err(error) => {
                // Out of descriptors (or memory): retrying at once would spin;
                // waiting lets connections close.
                backoff = (backoff * 2).clamp(BACKOFF_MIN, BACKOFF_MAX);
                metrics::counter!("sift_accept_errors_total").increment(1);
                tracing::warn!(%error, retry_in_ms = backoff.as_millis() as u64, "accept failed");
                tokio::select! {
                    () = &mut shutdown => break,
                    () = tokio::time::sleep(backoff) => {}
                }
            }
        }
    }
    drop(listener);
    stopping.send_replace(true);
    stop_tx.send_replace(true);
    // Every connection holds a slot until it ends. A client that stopped
    // reading a response could hold its connection for ever: after the
    // grace period the rest are dropped (queued writes are still flushed).
    if tokio::time::timeout(SHUTDOWN_GRACE, slots.acquire_many(cap as u32))
        .await
        .is_err()
    {
        tracing::warn!(
            open = cap - slots.available_permits(),
            "connections still open after the shutdown grace period are dropped"
        );
    }
    Ok(())
}

/// The 503 of a connection past the cap, in the API's error shape.
fn refusal() -> Vec<u8> {
    let body = serde_json::json!({"error": {
        "code": "unavailable",
        "message": "the server has as many connections open as it allows; retry in a moment",
        "details": {},
    }})
    .to_string();
    format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\ncontent-length: {}\r\nretry-after: 1\r\nconnection: close\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// The 503 without waiting: it fits in the new socket's empty send buffer.
/// What the client already sent is read first, so that closing sends a FIN
/// after the answer rather than a reset that could discard it.
fn refuse_now(stream: TcpStream) {
    let _ = stream.try_write(&refusal());
    let mut sink = [0u8; 4096];
    while matches!(stream.try_read(&mut sink), Ok(n) if n > 0) {}
}

async fn refuse(mut stream: TcpStream, _permit: OwnedSemaphorePermit) {
    let _ = tokio::time::timeout(REFUSAL_GRACE, async {
        stream.write_all(&refusal()).await?;
        stream.shutdown().await?;
        // Closing with the request unread would reset the connection, and
        // the client could lose the 503 before reading it.
        let mut sink = [0u8; 4096];
        while tokio::io::AsyncReadExt::read(&mut stream, &mut sink).await? > 0 {}
        io::Result::Ok(())
    })
    .await;
}

/// What the watchdog of one connection needs to know.
struct Activity {
    epoch: Instant,
    in_flight: AtomicUsize,
    /// Milliseconds from `epoch` since when no request has been in flight.
    idle_since: AtomicU64,
    /// Milliseconds from `epoch` of the first byte of a request head not yet
    /// complete; `u64::MAX` when none.
    head_started: AtomicU64,
    changed: Notify,
}

const NONE: u64 = u64::MAX;

impl Activity {
    fn new() -> Activity {
        Activity {
            epoch: Instant::now(),
            in_flight: AtomicUsize::new(0),
            idle_since: AtomicU64::new(0),
            head_started: AtomicU64::new(NONE),
            changed: Notify::new(),
        }
    }

    fn now(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    fn read_some(&self) {
        if self.in_flight.load(Ordering::Acquire) == 0
            && self.head_started.load(Ordering::Acquire) == NONE
        {
            self.head_started.store(self.now(), Ordering::Release);
            self.changed.notify_one();
        }
    }

    fn request_started(self: &Arc<Self>) -> InFlight {
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        self.head_started.store(NONE, Ordering::Release);
        InFlight(self.clone())
    }

    /// When the connection is to be closed unless something happens first.
    fn deadline(&self, timeouts: Timeouts) -> Option<Instant> {
        if self.in_flight.load(Ordering::Acquire) > 0 {
            return None;
        }
        let head = self.head_started.load(Ordering::Acquire);
        let at = if head == NONE {
            Duration::from_millis(self.idle_since.load(Ordering::Acquire)) + timeouts.idle
        } else {
            Duration::from_millis(head) + timeouts.header
        };
        Some(self.epoch + at)
    }
}

/// Held by a request until its response has been written (or dropped).
struct InFlight(Arc<Activity>);

impl Drop for InFlight {
    fn drop(&mut self) {
        if self.0.in_flight.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.0.idle_since.store(self.0.now(), Ordering::Release);
            self.0.changed.notify_one();
        }
    }
}

/// The socket, noting each read for the watchdog.
struct Watched {
    stream: TcpStream,
    activity: Arc<Activity>,
}

impl AsyncRead for Watched {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.stream).poll_read(cx, buf);
        if matches!(polled, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.activity.read_some();
        }
        polled
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

/// A response body that keeps its request counted as in flight until it is
/// dropped.
struct Counted {
    body: Body,
    _in_flight: InFlight,
}

impl http_body::Body for Counted {
    type Data = axum::body::Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.body.size_hint()
    }
}

async fn connection(
    stream: TcpStream,
    app: Router,
    _slot: OwnedSemaphorePermit,
    timeouts: Timeouts,
    mut stop: watch::Receiver<bool>,
) {
    let _ = stream.set_nodelay(true);
    let activity = Arc::new(Activity::new());
    let io = TokioIo::new(Watched {
        stream,
        activity: activity.clone(),
    });
    let requests = activity.clone();
    let service = hyper::service::service_fn(move |request: hyper::Request<Incoming>| {
        let in_flight = requests.request_started();
        let mut app = app.clone();
        async move {
            let response = tower::Service::call(&mut app, request.map(Body::new)).await?;
            Ok::<_, Infallible>(response.map(|body| {
                Body::new(Counted {
                    body,
                    _in_flight: in_flight,
                })
            }))
        }
    });
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .serve_connection(io, service);
    tokio::pin!(conn);
    let mut stopping = *stop.borrow();
    if stopping {
        conn.as_mut().graceful_shutdown();
    }
    loop {
        let changed = activity.changed.notified();
        let deadline = activity.deadline(timeouts);
        tokio::select! {
            served = conn.as_mut() => {
                if let Err(error) = served {
                    tracing::debug!(%error, "connection ended with an error");
                }
                return;
            }
            _ = stop.changed(), if !stopping => {
                stopping = true;
                conn.as_mut().graceful_shutdown();
            }
            () = changed => {}
            () = sleep_until(deadline) => {
                if activity.deadline(timeouts).is_some_and(|d| d <= Instant::now()) {
                    let reason = if activity.head_started.load(Ordering::Acquire) == NONE { "idle" } else { "header" };
                    metrics::counter!("sift_connections_timed_out_total", "reason" => reason).increment(1);
                    tracing::debug!(reason, "closing a connection past its deadline");
                    return;
                }
            }
        }
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cap_leaves_the_stores_reserve_free() {
        // `ulimit -n 128` with 25 descriptors open: 128 - 25 - 64 - 16.
        assert_eq!(cap_within(1024, 128, 25), 23);
        assert_eq!(cap_within(10, 128, 25), 10);
        assert_eq!(cap_within(1024, 20_000, 40), 1024);
        // A limit too low for any reserve still serves one connection.
        assert_eq!(cap_within(1024, 64, 30), 1);
    }
}

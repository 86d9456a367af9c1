//! The listener: plain HTTP/1.1 + h2c, or TLS; one task per connection, hyper-util's auto
//! builder; graceful shutdown on Ctrl-C / SIGTERM.
//!
//! Connections are a bounded resource (issue 9): at most `max_connections` are served at
//! once (kept below the file-descriptor limit, which is raised to its hard maximum at
//! start-up), and one more is answered `503` and closed at once, so `accept` never runs out
//! of descriptors and `/healthz` keeps answering. Headers (and a TLS handshake) must arrive
//! within `header_read_timeout_secs`; a connection that moves no byte for
//! `idle_timeout_secs` is closed. One peer address holds at most a quarter of the slots
//! (`peer_share`); at the cap the idlest keep-alive connection is closed to make room. A
//! client must take a reply waiting on it at `min_send_rate_bytes` or be reset.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::body::Body;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

use crate::error::StartError;
use crate::{App, AppRef};

/// Counts what storage holds, for the `tarn_stored_*` gauges (run in the background).
pub(crate) async fn scan_stored(app: AppRef) {
    let mut objects = 0i64;
    let mut bytes = 0i64;
    for p in [&app.cfg.artifact_prefix, &app.cfg.revision_prefix] {
        match app.storage.list(&format!("{p}/")).await {
            Ok(list) => {
                objects += list.len() as i64;
                bytes += list.iter().map(|l| l.meta.len as i64).sum::<i64>();
            }
            Err(e) => tracing::warn!("counting stored objects: {e}"),
        }
    }
    app.metrics.objects.fetch_add(objects, Relaxed);
    app.metrics.stored_bytes.fetch_add(bytes, Relaxed);
}

/// What happens before the first request: spool files of a killed server go, and what
/// storage holds is counted (local storage before the first request, so that uploads during
/// the scan are not counted twice; a bucket in the background).
pub(crate) async fn prepare(app: &AppRef) {
    let n = app.storage.clean_dead_spool();
    if n > 0 {
        tracing::warn!("removed {n} upload spool file(s) left by a killed server");
    }
    if matches!(app.storage, crate::storage::Storage::Local(_)) {
        scan_stored(app.clone()).await;
    } else {
        tokio::spawn(scan_stored(app.clone()));
    }
}

/// A bound server, ready to run.
pub(crate) struct Bound {
    listener: TcpListener,
    app: AppRef,
    tls: Option<tokio_rustls::TlsAcceptor>,
}

impl Bound {
    /// The actual listen address (useful with port 0).
    pub(crate) fn local_addr(&self) -> SocketAddr {
        self.listener.local_addr().expect("bound socket")
    }

    /// The shared state.
    pub(crate) fn app(&self) -> &AppRef {
        &self.app
    }
}

/// Binds the listen address (before anything is created, so a busy port leaves no trace).
pub(crate) async fn listen(addr: SocketAddr) -> Result<TcpListener, StartError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| StartError::Listen { addr, source })
}

impl Bound {
    /// A server on a bound `listener`.
    pub(crate) fn new(
        listener: TcpListener,
        app: App,
        tls: Option<tokio_rustls::TlsAcceptor>,
    ) -> Bound {
        Bound {
            listener,
            app: Arc::new(app),
            tls,
        }
    }
}

/// Serves until `shutdown` resolves.
pub(crate) async fn run(
    bound: Bound,
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<(), StartError> {
    let Bound { listener, app, tls } = bound;
    prepare(&app).await;
    let header_timeout = Duration::from_secs(app.cfg.header_read_timeout_secs.max(1));
    let idle_timeout = Duration::from_secs(app.cfg.idle_timeout_secs.max(1));
    let builder = {
        let mut b = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
        // The head buffer is also the most a connection buffers of a reply the client does
        // not read (beside the kernel's socket buffer).
        let head = app
            .cfg
            .max_request_head_bytes
            .max(crate::config::MIN_REQUEST_HEAD_BYTES);
        b.http1()
            .keep_alive(true)
            .max_buf_size(head)
            .timer(TokioTimer::new())
            .header_read_timeout(header_timeout);
        b.http2()
            .max_concurrent_streams(256)
            .max_header_list_size(head.min(u32::MAX as usize) as u32)
            .timer(TokioTimer::new());
        Arc::new(b)
    };
    let cap = connection_cap(&app.cfg);
    tracing::info!("serving at most {cap} connections at once");
    let slots = Arc::new(Semaphore::new(cap));
    let refusals = Arc::new(Semaphore::new(MAX_REFUSALS));
    let peers = crate::peer_share::PeerShares::new(cap);
    let open = OpenConnections::default();
    let last_refusal_log = Arc::new(AtomicU64::new(0));
    tokio::pin!(shutdown);
    loop {
        let (mut stream, peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(s) => s,
                Err(e) => {
                    tracing::warn!("accept: {e}");
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    continue;
                }
            },
            _ = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        // A peer over its share is refused like any connection over the cap.
        let peer_slot = peers.try_enter(peer.ip());
        let over_share = peer_slot.is_none();
        // At the cap, the idlest keep-alive connection is closed to make room (its slot
        // goes to this connection, which waits for it).
        let slot = peer_slot.and_then(|p| match slots.clone().try_acquire_owned() {
            Ok(s) => Some((Some(s), p)),
            Err(_) if open.evict_idlest() => Some((None, p)),
            Err(_) => None,
        });
        let Some((slot, peer_slot)) = slot else {
            // Full: a clear refusal, then close (never hold the descriptor).
            let now = START.get_or_init(Instant::now).elapsed().as_secs();
            if last_refusal_log.swap(now, Relaxed) != now {
                if over_share {
                    tracing::warn!(
                        "refusing connections from {}: it holds its share of the {cap} connection slots (a quarter)",
                        peer.ip()
                    );
                } else {
                    tracing::warn!(
                        "refusing connections: all {cap} connection slots are in use (max_connections)"
                    );
                }
            }
            let plain = tls.is_none();
            // A bounded number of refusals at once, each for at most 2 s: a flood of them
            // cannot run the process out of descriptors (past that, a refusal is a close).
            let Ok(refusing) = refusals.clone().try_acquire_owned() else {
                continue;
            };
            let app = app.clone();
            tokio::spawn(async move {
                let _refusing = refusing;
                if plain {
                    let reply = refusal(&app, &mut stream, cap).await;
                    let _ = tokio::time::timeout(
                        Duration::from_secs(1),
                        stream.write_all(reply.as_bytes()),
                    )
                    .await;
                }
            });
            continue;
        };
        let app = app.clone();
        let builder = builder.clone();
        let tls = tls.clone();
        let slots = slots.clone();
        let open = open.clone();
        tokio::spawn(async move {
            let slot = match slot {
                Some(s) => s,
                None => match tokio::time::timeout(EVICTION_WAIT, slots.acquire_owned()).await {
                    Ok(Ok(s)) => s,
                    _ => return,
                },
            };
            let _slot = (slot, peer_slot);
            let activity = Activity::new();
            let fd = raw_fd(&stream);
            let floor = SendFloor {
                window: Duration::from_secs(app.cfg.body_read_timeout_secs.max(1)),
                min_rate: app.cfg.min_send_rate_bytes,
            };
            let (_registered, evicted) = open.register(&activity);
            let busy = activity.busy.clone();
            let peer_ip = crate::peer_share::PeerIp(peer.ip());
            let service = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
                let app = app.clone();
                let guard = Busy::enter(busy.clone());
                req.extensions_mut().insert(peer_ip);
                async move {
                    let resp = crate::routes::handle(app, req.map(Body::new)).await;
                    drop(guard);
                    Ok::<_, Infallible>(resp)
                }
            });
            let watch = activity.clone();
            let serve = async move {
                match tls {
                    None => {
                        builder
                            .serve_connection_with_upgrades(
                                TokioIo::new(Watched::new(stream, activity)),
                                service,
                            )
                            .await
                    }
                    Some(acc) => {
                        match tokio::time::timeout(header_timeout, acc.accept(stream)).await {
                            Ok(Ok(s)) => {
                                builder
                                    .serve_connection_with_upgrades(
                                        TokioIo::new(Watched::new(s, activity)),
                                        service,
                                    )
                                    .await
                            }
                            Ok(Err(e)) => {
                                tracing::debug!("TLS handshake: {e}");
                                Ok(())
                            }
                            Err(_) => {
                                tracing::debug!("TLS handshake: timed out");
                                Ok(())
                            }
                        }
                    }
                }
            };
            let r = tokio::select! {
                r = serve => r,
                closing = watch.watch(fd, header_timeout, idle_timeout, floor) => {
                    match closing {
                        Closing::Idle => tracing::debug!("closing an idle connection"),
                        Closing::SlowReader => {
                            tracing::debug!("closing a connection whose client reads its reply too slowly");
                            // Reset, not closed: its queued bytes are dropped at once.
                            if let Some(fd) = fd {
                                reset_on_close(fd);
                            }
                        }
                    }
                    Ok(())
                }
                _ = evicted.notified() => {
                    tracing::debug!("closing the idlest keep-alive connection to make room");
                    Ok(())
                }
            };
            if let Err(e) = r {
                tracing::debug!("connection: {e}");
            }
        });
    }
    Ok(())
}

static START: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();

/// How long a connection admitted by evicting another waits for the freed slot.
const EVICTION_WAIT: Duration = Duration::from_secs(1);

/// A keep-alive connection quiet at least this long may be evicted at the cap.
const EVICTABLE_AFTER_MS: u64 = 250;

/// The connections being served, for eviction at the cap: each with its [`Activity`] and a
/// signal that closes it.
#[derive(Clone, Default)]
struct OpenConnections {
    inner: Arc<std::sync::Mutex<OpenInner>>,
}

#[derive(Default)]
struct OpenInner {
    next: u64,
    conns: std::collections::HashMap<u64, (Activity, Arc<tokio::sync::Notify>)>,
}

/// Removes its connection from [`OpenConnections`] when dropped.
struct Registered {
    open: OpenConnections,
    id: u64,
}

impl Drop for Registered {
    fn drop(&mut self) {
        let mut inner = self.open.inner.lock().unwrap_or_else(|e| e.into_inner());
        inner.conns.remove(&self.id);
    }
}

impl OpenConnections {
    fn register(&self, activity: &Activity) -> (Registered, Arc<tokio::sync::Notify>) {
        let notify = Arc::new(tokio::sync::Notify::new());
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let id = inner.next;
        inner.next += 1;
        inner.conns.insert(id, (activity.clone(), notify.clone()));
        (
            Registered {
                open: self.clone(),
                id,
            },
            notify,
        )
    }

    /// Signals the idlest keep-alive connection to close: one that has answered a request,
    /// has none in progress and has moved no byte for the longest time (at least
    /// [`EVICTABLE_AFTER_MS`]). Connections still sending their first request are left to
    /// the header timeout. Whether one was found.
    fn evict_idlest(&self) -> bool {
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let now = now_ms();
        let idlest = inner
            .conns
            .iter()
            .filter(|(_, (a, _))| a.answered.load(Relaxed) && a.busy.load(Relaxed) == 0)
            .map(|(id, (a, _))| (a.last_ms.load(Relaxed), *id))
            .filter(|(last, _)| now.saturating_sub(*last) >= EVICTABLE_AFTER_MS)
            .min();
        let Some((_, id)) = idlest else {
            return false;
        };
        // Removed now, so it is not chosen twice; its task drops its slot as it ends.
        if let Some((_, notify)) = inner.conns.remove(&id) {
            notify.notify_one();
        }
        true
    }
}

/// Connections over the cap answered at once (the rest are closed unanswered).
const MAX_REFUSALS: usize = 64;

/// The answer to a plain-HTTP connection over the cap: `/healthz` is answered as usual
/// (monitoring must tell "full" from "down"), anything else `503`. The request line must
/// arrive within 500 ms; nothing else of the request is read.
async fn refusal(app: &AppRef, stream: &mut tokio::net::TcpStream, cap: usize) -> String {
    use tokio::io::AsyncReadExt;
    let mut head = [0u8; 16];
    let mut got = 0;
    let read = async {
        while got < head.len() {
            match stream.read(&mut head[got..]).await {
                Ok(0) | Err(_) => break,
                Ok(n) => got += n,
            }
        }
    };
    let _ = tokio::time::timeout(Duration::from_millis(500), read).await;
    let head = &head[..got];
    if head.starts_with(b"GET /healthz ") || head.starts_with(b"HEAD /healthz ") {
        let resp = crate::routes::admin::healthz(app).await;
        let status = resp.status();
        let body = axum::body::to_bytes(resp.into_body(), 1 << 10)
            .await
            .unwrap_or_default();
        let body = if head.starts_with(b"HEAD") {
            String::new()
        } else {
            String::from_utf8_lossy(&body).into_owned()
        };
        return format!(
            "HTTP/1.1 {} {}\r\nContent-Type: text/plain\r\nConnection: close\r\nContent-Length: {}\r\n\r\n{body}",
            status.as_u16(),
            status.canonical_reason().unwrap_or(""),
            body.len()
        );
    }
    let body = format!("tarn serve: too many connections (at most {cap}); retry later\n");
    format!(
        "HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\nRetry-After: 1\r\nConnection: close\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
}

/// How many connections to serve at once: `max_connections`, but well below the
/// file-descriptor limit (after raising it), leaving room for spool files, storage and the
/// refusals themselves.
fn connection_cap(cfg: &crate::config::ServerConfig) -> usize {
    let want = cfg.max_connections.max(1);
    match raise_fd_limit() {
        Some(fds) => {
            let reserve = 64 + 4 * cfg.max_concurrent_uploads as u64;
            let room = fds.saturating_sub(reserve).max(16);
            want.min(room as usize)
        }
        None => want,
    }
}

/// Raises this process's soft file-descriptor limit to the hard one; returns the soft limit
/// in force (`None` where it cannot be read). The server calls it as it starts; public for
/// the binary's test holding many sockets (`tarn-cli/tests/hostile_load.rs`).
#[cfg(unix)]
pub fn raise_fd_limit() -> Option<u64> {
    let mut r = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit only read and write the struct passed by pointer.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut r) != 0 {
            return None;
        }
        if r.rlim_cur < r.rlim_max {
            let raised = libc::rlimit {
                rlim_cur: r.rlim_max,
                rlim_max: r.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                r = raised;
            }
        }
    }
    #[allow(clippy::unnecessary_cast)]
    Some(r.rlim_cur as u64)
}

/// Raises this process's soft file-descriptor limit (nothing to do here).
#[cfg(not(unix))]
pub fn raise_fd_limit() -> Option<u64> {
    None
}

/// When a connection last moved a byte, and whether it has answered a request yet.
#[derive(Clone)]
struct Activity {
    last_ms: Arc<AtomicU64>,
    answered: Arc<AtomicBool>,
    /// Requests being handled: a connection waiting on the server itself is never idle.
    busy: Arc<AtomicUsize>,
    /// Bytes handed to the kernel for the client.
    written: Arc<AtomicU64>,
}

/// Counts a request as in flight while alive.
struct Busy(Arc<AtomicUsize>);

impl Busy {
    fn enter(n: Arc<AtomicUsize>) -> Busy {
        n.fetch_add(1, Relaxed);
        Busy(n)
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Relaxed);
    }
}

impl Activity {
    fn new() -> Activity {
        Activity {
            last_ms: Arc::new(AtomicU64::new(now_ms())),
            answered: Arc::new(AtomicBool::new(false)),
            busy: Arc::new(AtomicUsize::new(0)),
            written: Arc::new(AtomicU64::new(0)),
        }
    }

    /// Resolves once the connection should close: silent too long (`first` before it has
    /// answered anything, a client that connects and never sends a request; `idle`
    /// afterwards), or its client reading a reply slower than `floor`.
    ///
    /// What the client has taken is what the kernel has handed over: the bytes written less
    /// those still queued unacknowledged (`SIOCOUTQ`). A reply waiting on its client (bytes
    /// queued) must have taken `floor.min_rate` bytes a second over each `floor.window`,
    /// and a client taking bytes is never idle, however rarely the server's writes wake up.
    async fn watch(
        &self,
        fd: Option<RawFd>,
        first: Duration,
        idle: Duration,
        floor: SendFloor,
    ) -> Closing {
        let mut taken_before = 0u64;
        // While bytes wait on the client: when the window started and what it had taken.
        let mut window: Option<(u64, u64)> = None;
        loop {
            let now = now_ms();
            if self.busy.load(Relaxed) > 0 {
                self.last_ms.store(now, Relaxed);
            }
            if let Some(queued) = fd.and_then(unsent_bytes) {
                let taken = self.written.load(Relaxed).saturating_sub(queued);
                if taken != taken_before {
                    self.last_ms.store(now, Relaxed);
                    taken_before = taken;
                }
                if queued == 0 || floor.min_rate == 0 {
                    window = None;
                } else {
                    let (since, at) = *window.get_or_insert((now, taken));
                    let waited = now.saturating_sub(since);
                    if waited >= floor.window.as_millis() as u64 {
                        if (taken - at).saturating_mul(1000) < floor.min_rate.saturating_mul(waited)
                        {
                            return Closing::SlowReader;
                        }
                        window = Some((now, taken));
                    }
                }
            }
            let limit = if self.answered.load(Relaxed) {
                idle
            } else {
                first
            };
            let quiet = Duration::from_millis(now.saturating_sub(self.last_ms.load(Relaxed)));
            if quiet >= limit {
                return Closing::Idle;
            }
            let next = (limit - quiet).clamp(Duration::from_millis(50), SEND_CHECK_EVERY);
            tokio::time::sleep(next).await;
        }
    }
}

/// How often a connection's reply is checked against the minimum send rate.
const SEND_CHECK_EVERY: Duration = Duration::from_millis(500);

/// The slowest a client may take a reply: `min_rate` bytes a second over each `window`
/// during which bytes wait on it (0 = no minimum).
#[derive(Clone, Copy)]
struct SendFloor {
    window: Duration,
    min_rate: u64,
}

/// Why the watcher ends a connection.
enum Closing {
    /// Silent too long.
    Idle,
    /// Reading its reply slower than the [`SendFloor`].
    SlowReader,
}

#[cfg(unix)]
type RawFd = std::os::fd::RawFd;
#[cfg(not(unix))]
type RawFd = i32;

/// The socket's descriptor, for [`unsent_bytes`].
#[cfg(unix)]
fn raw_fd(stream: &tokio::net::TcpStream) -> Option<RawFd> {
    use std::os::fd::AsRawFd;
    Some(stream.as_raw_fd())
}

#[cfg(not(unix))]
fn raw_fd(_: &tokio::net::TcpStream) -> Option<RawFd> {
    None
}

/// Bytes written to the socket the client has not acknowledged yet (Linux `SIOCOUTQ`);
/// `None` elsewhere (no minimum send rate there).
#[cfg(target_os = "linux")]
fn unsent_bytes(fd: RawFd) -> Option<u64> {
    let mut queued: libc::c_int = 0;
    // SAFETY: the descriptor is the connection's socket, open while its task runs (the
    // watcher runs inside that task); SIOCOUTQ writes one int.
    let r = unsafe { libc::ioctl(fd, libc::TIOCOUTQ, &mut queued) };
    (r == 0 && queued >= 0).then_some(queued as u64)
}

#[cfg(not(target_os = "linux"))]
fn unsent_bytes(_: RawFd) -> Option<u64> {
    None
}

/// Makes the socket reset when it is closed, dropping the bytes still queued for a client
/// that would not take them (`SO_LINGER` 0).
#[cfg(unix)]
fn reset_on_close(fd: RawFd) {
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: as in `unsent_bytes`; setsockopt reads the struct passed by pointer.
    unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            &linger as *const libc::linger as *const libc::c_void,
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        );
    }
}

#[cfg(not(unix))]
fn reset_on_close(_: RawFd) {}

fn now_ms() -> u64 {
    START.get_or_init(Instant::now).elapsed().as_millis() as u64
}

/// A socket that records its activity (see [`Activity`]).
struct Watched<T> {
    inner: T,
    activity: Activity,
}

impl<T> Watched<T> {
    fn new(inner: T, activity: Activity) -> Watched<T> {
        Watched { inner, activity }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Watched<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.activity.last_ms.store(now_ms(), Relaxed);
        }
        r
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Watched<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write(cx, buf);
        if let Poll::Ready(Ok(n @ 1..)) = r {
            self.activity.written.fetch_add(n as u64, Relaxed);
            self.activity.last_ms.store(now_ms(), Relaxed);
            self.activity.answered.store(true, Relaxed);
        }
        r
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if let Poll::Ready(Ok(n @ 1..)) = r {
            self.activity.written.fetch_add(n as u64, Relaxed);
            self.activity.last_ms.store(now_ms(), Relaxed);
            self.activity.answered.store(true, Relaxed);
        }
        r
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

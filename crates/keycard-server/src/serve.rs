//! Accepting and serving connections (HTTP/1.1, plain or over TLS) with bounded idleness and a
//! bounded number of connections, so that sockets which send nothing cannot use up the server.
//!
//! Every connection is in one of three states, each with its own limit:
//! - **reading a request's headers**: from the accept (or the end of the TLS handshake) for a new
//!   connection, from the first byte of the next request on a kept-alive one, the headers must
//!   arrive within [`ConnectionLimits::header_read_timeout`]; a TLS handshake gets as long. A
//!   silent socket, a partial request line, headers trickled a line at a time: closed after it.
//! - **idle** between requests on a kept-alive connection: closed after
//!   [`ConnectionLimits::idle_timeout`]. A response the client does not read is given up after as
//!   long.
//! - **busy**, a request in the handler: bounded by the request timeout (408), not here.
//!
//! **Caps**: at most [`ConnectionLimits::max_connections`] connections in all, and at most
//! [`ConnectionLimits::max_connections_per_client`] from one peer address (not counted for the
//! trusted proxies when a client-address header is configured: behind a proxy every
//! connection comes from it). A connection over a cap **closes the least recently active
//! connection that has no request in flight** (of that client, for the per-client cap) to make
//! room; only when every one of them is busy is the newcomer refused (plain HTTP gets a `503`
//! first, TLS just the close). So sockets that merely sit open never lock anyone out: a health
//! check on a fresh connection gets in as long as any connection is idle. The total is also kept
//! below the process's file-descriptor limit with room to spare for the database and logs, and
//! when `accept` fails for want of descriptors (`EMFILE`) the idlest connection is closed and
//! accepting resumes after a short pause instead of spinning.
//!
//! **Shutdown**: the listener closes at once; idle connections (no request in flight, nothing
//! left to write) close at once; connections with a request in flight finish it (answered with
//! `Connection: close`), within the grace period given to [`serve`].
//!
//! Handlers see the peer address as `ConnectInfo<SocketAddr>`, as with axum's
//! `into_make_service_with_connect_info`.

use std::collections::HashMap;
use std::future::{Future, poll_fn};
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use anyhow::Context as _;
use axum::Router;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use parking_lot::Mutex;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, watch};
use tokio::task::JoinSet;
use tokio::time::{Instant, Sleep};
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt;

use crate::client::ClientIpConfig;
use crate::settings::{ConnectionLimits, TlsFiles};

/// File descriptors kept out of the connection budget: database files and connections, Redis,
/// the listener, logs.
const FD_RESERVE: u64 = 256;
/// Pause after `accept` failed for a reason other than the one connection (e.g. `EMFILE`).
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);
/// At most one warning about refused connections or failing accepts this often.
const WARN_EVERY: Duration = Duration::from_secs(10);
/// What a plain-HTTP connection refused at the cap reads before the close.
const REFUSED_RESPONSE: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\n\
content-length: 30\r\nconnection: close\r\nretry-after: 1\r\n\r\n{\"msg\":\"Too many connections\"}";

/// The process's open-file limits after [`raise_fd_limit`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FdLimits {
    /// Soft limit before.
    pub soft_before: u64,
    /// Soft limit now.
    pub soft: u64,
    /// Hard limit.
    pub hard: u64,
}

/// Raises the soft limit on open files to the hard limit and logs both (connections are files).
pub fn raise_fd_limit() -> io::Result<FdLimits> {
    let (soft_before, hard) = rlimit::Resource::NOFILE.get()?;
    let result = rlimit::increase_nofile_limit(u64::MAX);
    let (soft, hard) = rlimit::Resource::NOFILE.get().unwrap_or((soft_before, hard));
    match result {
        Ok(_) => tracing::info!(soft, hard, soft_before, "open file limit"),
        Err(e) => tracing::warn!(soft, hard, error = %e, "cannot raise the open file limit"),
    }
    Ok(FdLimits { soft_before, soft, hard })
}

/// The connection cap actually applied: `wanted`, lowered to leave [`FD_RESERVE`] descriptors
/// of the soft limit free (at least half of it for connections).
fn connection_budget(wanted: usize) -> usize {
    let Ok((soft, _)) = rlimit::Resource::NOFILE.get() else { return wanted };
    let budget = soft.saturating_sub(FD_RESERVE).max(soft / 2).max(1);
    let budget = usize::try_from(budget).unwrap_or(usize::MAX);
    if budget < wanted {
        tracing::warn!(
            max_connections = budget,
            configured = wanted,
            open_file_limit = soft,
            "max connections lowered to fit the open file limit"
        );
    }
    wanted.min(budget)
}

/// Reads a PEM certificate chain and private key into a TLS acceptor (HTTP/1.1 by ALPN).
pub fn load_tls(files: &TlsFiles) -> anyhow::Result<TlsAcceptor> {
    use tokio_rustls::rustls::pki_types::pem::PemObject;
    use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
    use tokio_rustls::rustls::{ServerConfig, crypto::aws_lc_rs};

    let (cert, key) = (files.cert.display(), files.key.display());
    let chain = CertificateDer::pem_file_iter(&files.cert)
        .and_then(Iterator::collect::<Result<Vec<_>, _>>)
        .with_context(|| format!("reading the TLS certificate {cert}"))?;
    if chain.is_empty() {
        anyhow::bail!("no certificate in {cert}");
    }
    let private_key = PrivateKeyDer::from_pem_file(&files.key).with_context(|| format!("reading the TLS key {key}"))?;
    let mut config = ServerConfig::builder_with_provider(Arc::new(aws_lc_rs::default_provider()))
        .with_safe_default_protocol_versions()
        .context("TLS protocol versions")?
        .with_no_client_auth()
        .with_single_cert(chain, private_key)
        .with_context(|| format!("the TLS certificate {cert} and key {key} do not make a valid pair"))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// How a server is served: see the module documentation.
#[derive(Clone)]
pub struct ServeOptions {
    /// Timeouts and caps.
    pub limits: ConnectionLimits,
    /// Serve HTTPS with this.
    pub tls: Option<TlsAcceptor>,
    /// Where client addresses come from: trusted proxies are not capped per client.
    pub client_ip: Arc<ClientIpConfig>,
    /// After `shutdown`, how long requests in flight may take to finish.
    pub grace: Duration,
}

/// Serves `app` on `listener` until `shutdown` completes, then finishes requests in flight
/// (for at most `options.grace`) and returns.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    options: ServeOptions,
    shutdown: impl Future<Output = ()>,
) -> io::Result<()> {
    let limits =
        ConnectionLimits { max_connections: connection_budget(options.limits.max_connections), ..options.limits };
    tracing::info!(
        header_read_timeout = ?limits.header_read_timeout,
        idle_timeout = ?limits.idle_timeout,
        max_connections = limits.max_connections,
        max_connections_per_client = limits.max_connections_per_client,
        "connection limits"
    );
    let registry = Arc::new(Registry::new(&limits, options.client_ip.clone()));
    let (stop, stopped) = watch::channel(false);
    let mut connections = JoinSet::new();
    let mut shutdown = pin!(shutdown);
    let mut refused = Occasional::default();
    let mut failed_accepts = Occasional::default();
    loop {
        let accepted = tokio::select! {
            biased;
            () = &mut shutdown => break,
            accepted = listener.accept() => accepted,
        };
        while connections.try_join_next().is_some() {}
        match accepted {
            Ok((stream, peer)) => match registry.admit(peer.ip()) {
                Ok(ticket) => {
                    let connection = Connection { peer, ticket, app: app.clone(), limits, stopped: stopped.clone() };
                    connections.spawn(connection.run(stream, options.tls.clone()));
                }
                Err(cap) => {
                    if options.tls.is_none() {
                        let _ = stream.try_write(REFUSED_RESPONSE);
                    }
                    drop(stream);
                    if let Some(count) = refused.count() {
                        tracing::warn!(count, %cap, client = %peer.ip(), "connections refused: at the cap and none idle");
                    }
                }
            },
            Err(e) if per_connection_error(&e) => {}
            Err(e) => {
                if out_of_descriptors(&e) {
                    registry.evict_idlest(|_| true);
                }
                if let Some(count) = failed_accepts.count() {
                    tracing::warn!(count, error = %e, "accepting connections failed: pausing");
                }
                tokio::time::sleep(ACCEPT_BACKOFF).await;
            }
        }
    }
    drop(listener);
    let _ = stop.send(true);
    let open = connections.len();
    let finished = tokio::time::timeout(options.grace, async { while connections.join_next().await.is_some() {} });
    if finished.await.is_err() {
        tracing::warn!(connections = connections.len(), of = open, grace = ?options.grace, "requests still running after the grace period: closed");
        connections.shutdown().await;
    }
    Ok(())
}

/// Errors of `accept` that concern only the connection being accepted.
fn per_connection_error(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionRefused
            | io::ErrorKind::Interrupted
    )
}

/// `EMFILE` / `ENFILE`: no descriptor for the new connection.
fn out_of_descriptors(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(23 | 24))
}

/// Counts events and says when to log them: at the first, then at most once per [`WARN_EVERY`]
/// with the number since the last time.
#[derive(Default)]
struct Occasional {
    count: u64,
    last: Option<Instant>,
}

impl Occasional {
    fn count(&mut self) -> Option<u64> {
        self.count += 1;
        let now = Instant::now();
        if self.last.is_some_and(|last| now.duration_since(last) < WARN_EVERY) {
            return None;
        }
        self.last = Some(now);
        Some(std::mem::take(&mut self.count))
    }
}

/// What the server knows of one connection's use, shared by its IO, its requests and the
/// registry. Atomics: cheap, and the registry reads them from the accept loop.
#[derive(Debug)]
struct Activity {
    /// Requests in the handler.
    in_flight: AtomicU32,
    /// Requests whose handler has finished.
    done: AtomicU64,
    /// Bytes received.
    bytes_read: AtomicU64,
    /// A write is waiting for the client to read (not yet flushed).
    write_blocked: AtomicBool,
    /// When a request last started or finished (or the connection opened), in milliseconds
    /// since `epoch`.
    last_active: AtomicU64,
    epoch: Instant,
}

impl Activity {
    fn new(epoch: Instant) -> Self {
        let activity = Self {
            in_flight: AtomicU32::new(0),
            done: AtomicU64::new(0),
            bytes_read: AtomicU64::new(0),
            write_blocked: AtomicBool::new(false),
            last_active: AtomicU64::new(0),
            epoch,
        };
        activity.touch();
        activity
    }

    fn touch(&self) {
        let millis = u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_active.store(millis, Ordering::Relaxed);
    }

    /// No request in flight and nothing waiting to be written: closing loses nothing.
    fn is_idle(&self) -> bool {
        self.in_flight.load(Ordering::Relaxed) == 0 && !self.write_blocked.load(Ordering::Relaxed)
    }

    fn start_request(self: &Arc<Self>) -> InFlight {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        self.touch();
        InFlight(self.clone())
    }
}

/// One request in the handler; dropped when it finished (or was cancelled).
struct InFlight(Arc<Activity>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.done.fetch_add(1, Ordering::Relaxed);
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
        self.0.touch();
    }
}

/// The open connections, for the caps.
struct Registry {
    conns: Mutex<Conns>,
    max_total: usize,
    max_per_client: usize,
    client_ip: Arc<ClientIpConfig>,
    epoch: Instant,
}

#[derive(Default)]
struct Conns {
    next_id: u64,
    open: HashMap<u64, Entry>,
    per_client: HashMap<IpAddr, usize>,
}

struct Entry {
    /// The address counted against the per-client cap, if it is.
    client: Option<IpAddr>,
    activity: Arc<Activity>,
    close: Arc<Notify>,
}

/// Which cap refused a connection.
#[derive(Debug, Clone, Copy)]
enum Cap {
    Total,
    PerClient,
}

impl std::fmt::Display for Cap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Cap::Total => "max_connections",
            Cap::PerClient => "max_connections_per_client",
        })
    }
}

impl Registry {
    fn new(limits: &ConnectionLimits, client_ip: Arc<ClientIpConfig>) -> Self {
        Self {
            conns: Mutex::new(Conns::default()),
            max_total: limits.max_connections,
            max_per_client: limits.max_connections_per_client,
            client_ip,
            epoch: Instant::now(),
        }
    }

    /// Whether connections from `ip` count against the per-client cap: not when they come from a
    /// trusted proxy that names the client in a header.
    fn capped_per_client(&self, ip: IpAddr) -> bool {
        self.max_per_client > 0 && !(self.client_ip.header.is_some() && self.client_ip.trusted_proxies.contains(&ip))
    }

    /// Makes room for a connection from `ip` (closing idle ones if need be) and registers it.
    fn admit(self: &Arc<Self>, ip: IpAddr) -> Result<Ticket, Cap> {
        let ip = ip.to_canonical();
        let client = self.capped_per_client(ip).then_some(ip);
        let mut conns = self.conns.lock();
        if let Some(ip) = client
            && conns.per_client.get(&ip).copied().unwrap_or(0) >= self.max_per_client
            && !conns.evict_idlest(|entry| entry.client == Some(ip))
        {
            return Err(Cap::PerClient);
        }
        if conns.open.len() >= self.max_total && !conns.evict_idlest(|_| true) {
            return Err(Cap::Total);
        }
        let id = conns.next_id;
        conns.next_id += 1;
        let activity = Arc::new(Activity::new(self.epoch));
        let close = Arc::new(Notify::new());
        if let Some(ip) = client {
            *conns.per_client.entry(ip).or_default() += 1;
        }
        conns.open.insert(id, Entry { client, activity: activity.clone(), close: close.clone() });
        Ok(Ticket { registry: self.clone(), id, activity, close })
    }

    /// Closes the least recently active idle connection that `filter` accepts, if any.
    fn evict_idlest(&self, filter: impl Fn(&Entry) -> bool) -> bool {
        self.conns.lock().evict_idlest(filter)
    }
}

impl Conns {
    fn evict_idlest(&mut self, filter: impl Fn(&Entry) -> bool) -> bool {
        let idlest = self
            .open
            .iter()
            .filter(|(_, entry)| filter(entry) && entry.activity.is_idle())
            .min_by_key(|(id, entry)| (entry.activity.last_active.load(Ordering::Relaxed), **id))
            .map(|(id, _)| *id);
        let Some(entry) = idlest.and_then(|id| self.remove(id)) else { return false };
        entry.close.notify_one();
        tracing::debug!("closed an idle connection to make room");
        true
    }

    fn remove(&mut self, id: u64) -> Option<Entry> {
        let entry = self.open.remove(&id)?;
        if let Some(ip) = entry.client
            && let Some(count) = self.per_client.get_mut(&ip)
        {
            *count -= 1;
            if *count == 0 {
                self.per_client.remove(&ip);
            }
        }
        Some(entry)
    }
}

/// A registered connection; unregisters it when dropped.
struct Ticket {
    registry: Arc<Registry>,
    id: u64,
    activity: Arc<Activity>,
    /// Notified when the registry closed this connection to make room.
    close: Arc<Notify>,
}

impl Drop for Ticket {
    fn drop(&mut self) {
        self.registry.conns.lock().remove(self.id);
    }
}

/// One accepted connection and what it needs to be served.
struct Connection {
    peer: SocketAddr,
    ticket: Ticket,
    app: Router,
    limits: ConnectionLimits,
    stopped: watch::Receiver<bool>,
}

impl Connection {
    async fn run(mut self, stream: TcpStream, tls: Option<TlsAcceptor>) {
        let io = Metered { inner: stream, activity: self.ticket.activity.clone() };
        let Some(acceptor) = tls else { return self.serve_http(io).await };
        let handshake = tokio::time::timeout(self.limits.header_read_timeout, acceptor.accept(io));
        let close = self.ticket.close.clone();
        let tls = tokio::select! {
            handshake = handshake => handshake,
            () = close.notified() => return,
            _ = self.stopped.wait_for(|stopped| *stopped) => return,
        };
        match tls {
            Ok(Ok(stream)) => self.serve_http(stream).await,
            Ok(Err(e)) => tracing::debug!(peer = %self.peer, error = %e, "TLS handshake failed"),
            Err(_) => tracing::debug!(peer = %self.peer, "TLS handshake timed out"),
        }
    }

    async fn serve_http<I>(mut self, io: I)
    where
        I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let activity = self.ticket.activity.clone();
        let (peer, app) = (self.peer, self.app.clone());
        let requests = activity.clone();
        let service = hyper::service::service_fn(move |mut request: axum::http::Request<Incoming>| {
            // Counted here, synchronously, so the request is in flight from the moment hyper has
            // read its head.
            let in_flight = requests.start_request();
            request.extensions_mut().insert(ConnectInfo(peer));
            let app = app.clone();
            async move {
                let response = app.oneshot(request).await;
                drop(in_flight);
                response
            }
        });
        let mut builder = hyper::server::conn::http1::Builder::new();
        // Header and idle timeouts are kept here (hyper's counts idle time as header time).
        builder.header_read_timeout(None);
        let mut connection = pin!(builder.serve_connection(TokioIo::new(io), service));
        let mut timeouts = Timeouts::new(activity, self.limits);
        let mut sleep = pin!(tokio::time::sleep(self.limits.header_read_timeout));
        let close = self.ticket.close.clone();
        let mut stopping = false;
        loop {
            tokio::select! {
                // The connection first: what it does in this poll (a response written, a request
                // read) is then visible to the checks below.
                biased;
                result = connection.as_mut() => {
                    if let Err(e) = result {
                        tracing::debug!(peer = %peer, error = %e, "connection ended with an error");
                    }
                    return;
                }
                () = close.notified() => return,
                _ = self.stopped.wait_for(|stopped| *stopped), if !stopping => {
                    stopping = true;
                    connection.as_mut().graceful_shutdown();
                }
                () = poll_fn(|cx| timeouts.poll_expired(cx, sleep.as_mut(), stopping)) => {
                    tracing::debug!(peer = %peer, "connection closed: timed out or shutting down");
                    return;
                }
            }
        }
    }
}

/// The header-read and idle deadlines of one connection, recomputed from its [`Activity`]
/// whenever the connection's task wakes (every byte read, every request finished wakes it).
struct Timeouts {
    activity: Arc<Activity>,
    limits: ConnectionLimits,
    /// `activity.done` when last looked at.
    done: u64,
    /// No request has finished yet: the connection is new.
    new: bool,
    /// Since when the connection waits for a request.
    waiting_since: Instant,
    /// `activity.bytes_read` then.
    read_then: u64,
    /// When the first byte of the next request came.
    head_started: Option<Instant>,
    /// When a write was first seen waiting for the client.
    blocked_since: Option<Instant>,
    /// The deadline `sleep` is set to.
    armed: Option<Instant>,
}

impl Timeouts {
    fn new(activity: Arc<Activity>, limits: ConnectionLimits) -> Self {
        let read_then = activity.bytes_read.load(Ordering::Relaxed);
        Self {
            activity,
            limits,
            done: 0,
            new: true,
            waiting_since: Instant::now(),
            read_then,
            head_started: None,
            blocked_since: None,
            armed: None,
        }
    }

    /// Ready when the connection should close: a deadline passed, or `stopping` and it is idle.
    fn poll_expired(&mut self, cx: &mut Context<'_>, mut sleep: Pin<&mut Sleep>, stopping: bool) -> Poll<()> {
        let activity = &self.activity;
        if activity.in_flight.load(Ordering::Relaxed) > 0 {
            // The request timeout bounds the handler; the next wake-up comes from it.
            self.blocked_since = None;
            return Poll::Pending;
        }
        let now = Instant::now();
        let done = activity.done.load(Ordering::Relaxed);
        let read = activity.bytes_read.load(Ordering::Relaxed);
        if done != self.done {
            // A request finished: wait for the next one.
            (self.done, self.new, self.waiting_since, self.read_then, self.head_started) =
                (done, false, now, read, None);
        } else if read != self.read_then && self.head_started.is_none() {
            self.head_started = Some(now);
        }
        let deadline = if activity.write_blocked.load(Ordering::Relaxed) {
            *self.blocked_since.get_or_insert(now) + self.limits.idle_timeout
        } else {
            self.blocked_since = None;
            if stopping {
                return Poll::Ready(());
            }
            match self.head_started {
                Some(started) => started + self.limits.header_read_timeout,
                None if self.new => self.waiting_since + self.limits.header_read_timeout,
                None => self.waiting_since + self.limits.idle_timeout,
            }
        };
        if self.armed != Some(deadline) {
            sleep.as_mut().reset(deadline);
            self.armed = Some(deadline);
        }
        sleep.poll(cx)
    }
}

/// A stream that records bytes read and writes left waiting in its connection's [`Activity`].
struct Metered<S> {
    inner: S,
    activity: Arc<Activity>,
}

impl<S: AsyncRead + Unpin> AsyncRead for Metered<S> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        let read = buf.filled().len().saturating_sub(before);
        if read > 0 {
            self.activity.bytes_read.fetch_add(read as u64, Ordering::Relaxed);
        }
        polled
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Metered<S> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write(cx, buf);
        self.note_write(&polled);
        polled
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        self.note_write(&polled);
        polled
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let polled = Pin::new(&mut self.inner).poll_flush(cx);
        if let Poll::Ready(Ok(())) = polled {
            self.activity.write_blocked.store(false, Ordering::Relaxed);
        }
        polled
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

impl<S> Metered<S> {
    fn note_write(&self, polled: &Poll<io::Result<usize>>) {
        if polled.is_pending() {
            self.activity.write_blocked.store(true, Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn registry(total: usize, per_client: usize) -> Arc<Registry> {
        let limits =
            ConnectionLimits { max_connections: total, max_connections_per_client: per_client, ..Default::default() };
        Arc::new(Registry::new(&limits, Arc::new(ClientIpConfig::default())))
    }

    const A: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 1));
    const B: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 2));

    #[test]
    fn at_the_per_client_cap_the_clients_idlest_connection_makes_room() {
        let registry = registry(100, 2);
        let first = registry.admit(A).unwrap();
        let _second = registry.admit(A).unwrap();
        let other = registry.admit(B).unwrap();
        let _third = registry.admit(A).unwrap();
        // The first connection of A was told to close; B's was not.
        assert!(!registry.conns.lock().open.contains_key(&first.id));
        assert!(registry.conns.lock().open.contains_key(&other.id));
        assert_eq!(registry.conns.lock().per_client[&A], 2);
    }

    #[test]
    fn busy_connections_are_never_closed_to_make_room() {
        let registry = registry(2, 0);
        let busy: Vec<_> = (0..2).map(|_| registry.admit(A).unwrap()).collect();
        let requests: Vec<_> = busy.iter().map(|t| t.activity.start_request()).collect();
        assert!(matches!(registry.admit(B), Err(Cap::Total)));
        drop(requests);
        assert!(registry.admit(B).is_ok());
    }

    #[test]
    fn dropped_tickets_free_their_place() {
        let registry = registry(1, 1);
        drop(registry.admit(A).unwrap());
        let _again = registry.admit(A).unwrap();
        assert_eq!(registry.conns.lock().open.len(), 1);
        assert_eq!(registry.conns.lock().per_client[&A], 1);
    }

    #[test]
    fn trusted_proxies_are_not_capped_per_client_when_they_name_the_client() {
        let limits = ConnectionLimits { max_connections_per_client: 1, ..Default::default() };
        let proxy = ClientIpConfig { header: Some("x-forwarded-for".parse().unwrap()), trusted_proxies: vec![A] };
        let registry = Arc::new(Registry::new(&limits, Arc::new(proxy)));
        // Idle, yet none is closed for the next: the proxy is not one client.
        let _tickets: Vec<_> = (0..5).map(|_| registry.admit(A).unwrap()).collect();
        assert_eq!(registry.conns.lock().open.len(), 5);
    }
}

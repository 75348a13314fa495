//! Connections that send nothing, too little or too slowly are closed on time; the connection
//! caps make room by closing idle connections; shutdown does not wait for idle connections.
//! Raw TCP sockets, short timeouts (1-2 s) so the whole file runs in a few seconds.

use std::time::{Duration, Instant};

use keycard_server::settings::ConnectionLimits;
use reqwest::StatusCode;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::helpers::*;

const HEADER_TIMEOUT: Duration = Duration::from_secs(1);
const IDLE_TIMEOUT: Duration = Duration::from_secs(2);
/// Scheduling slack allowed on top of a timeout.
const SLACK: Duration = Duration::from_millis(1500);

fn limits(max_connections: usize, max_connections_per_client: usize) -> ConnectionLimits {
    ConnectionLimits {
        header_read_timeout: HEADER_TIMEOUT,
        idle_timeout: IDLE_TIMEOUT,
        max_connections,
        max_connections_per_client,
    }
}

async fn spawn_with_limits(limits: ConnectionLimits) -> TestApp {
    spawn_app_with(|s| s.connections = limits).await
}

fn host_port(app: &TestApp) -> String {
    app.address.trim_start_matches("http://").to_owned()
}

async fn connect(app: &TestApp) -> TcpStream {
    TcpStream::connect(host_port(app)).await.unwrap()
}

/// Reads until the server closes the connection (EOF or reset); returns what was read and when
/// the close came. Panics if the connection is still open after `limit`.
async fn read_until_closed(stream: &mut TcpStream, limit: Duration) -> (String, Instant) {
    let mut all = Vec::new();
    let mut buf = [0u8; 4096];
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return (String::from_utf8_lossy(&all).into_owned(), Instant::now()),
            Ok(Ok(n)) => all.extend_from_slice(&buf[..n]),
            Err(_) => panic!("still open after {limit:?}; read so far: {:?}", String::from_utf8_lossy(&all)),
        }
    }
}

/// Reads one whole response (headers and a `content-length` body) from a kept-alive connection.
async fn read_response(stream: &mut TcpStream) -> String {
    let mut all = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf)).await.unwrap().unwrap();
        assert!(n > 0, "closed before a whole response: {:?}", String::from_utf8_lossy(&all));
        all.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&all).into_owned();
        if let Some(end) = text.find("\r\n\r\n") {
            let length = text[..end]
                .lines()
                .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().to_owned()))
                .and_then(|v| v.parse::<usize>().ok())
                .unwrap_or(0);
            if all.len() >= end + 4 + length {
                return text;
            }
        }
    }
}

/// A client that opens a fresh connection for every request.
fn fresh_client() -> reqwest::Client {
    reqwest::Client::builder().pool_max_idle_per_host(0).build().unwrap()
}

async fn healthz(app: &TestApp) -> StatusCode {
    fresh_client().get(app.url("/healthz")).send().await.unwrap().status()
}

fn assert_closed_between(opened: Instant, closed: Instant, timeout: Duration) {
    let after = closed - opened;
    assert!(after >= timeout - Duration::from_millis(100), "closed after {after:?}, before the {timeout:?} timeout");
    assert!(after <= timeout + SLACK, "closed after {after:?}, long past the {timeout:?} timeout");
}

#[tokio::test]
async fn a_connection_that_sends_nothing_is_closed_after_the_header_read_timeout() {
    let app = spawn_with_limits(limits(100, 100)).await;
    let mut stream = connect(&app).await;
    let opened = Instant::now();
    let (_, closed) = read_until_closed(&mut stream, HEADER_TIMEOUT + SLACK).await;
    assert_closed_between(opened, closed, HEADER_TIMEOUT);
}

#[tokio::test]
async fn a_partial_request_line_is_closed_after_the_header_read_timeout() {
    let app = spawn_with_limits(limits(100, 100)).await;
    let mut stream = connect(&app).await;
    let opened = Instant::now();
    stream.write_all(b"GET /heal").await.unwrap();
    let (_, closed) = read_until_closed(&mut stream, HEADER_TIMEOUT + SLACK).await;
    assert_closed_between(opened, closed, HEADER_TIMEOUT);
}

#[tokio::test]
async fn headers_trickled_a_line_at_a_time_are_cut_off_at_the_header_read_timeout() {
    let app = spawn_with_limits(limits(100, 100)).await;
    let mut stream = connect(&app).await;
    let opened = Instant::now();
    stream.write_all(b"GET /healthz HTTP/1.1\r\nhost: x\r\n").await.unwrap();
    let (mut reader, mut writer) = stream.into_split();
    // A header line every 300 ms, for longer than the timeout: activity alone does not keep it open.
    let trickle = tokio::spawn(async move {
        for i in 0..20 {
            tokio::time::sleep(Duration::from_millis(300)).await;
            if writer.write_all(format!("x-slow-{i}: 1\r\n").as_bytes()).await.is_err() {
                return;
            }
        }
    });
    let mut buf = [0u8; 1024];
    let read = tokio::time::timeout(HEADER_TIMEOUT + SLACK, reader.read(&mut buf)).await;
    let closed = Instant::now();
    assert!(matches!(read, Ok(Ok(0)) | Ok(Err(_))), "expected the server to close: {read:?}");
    assert_closed_between(opened, closed, HEADER_TIMEOUT);
    trickle.abort();
}

#[tokio::test]
async fn an_idle_kept_alive_connection_is_closed_after_the_idle_timeout_not_the_header_timeout() {
    let app = spawn_with_limits(limits(100, 100)).await;
    let mut stream = connect(&app).await;
    stream.write_all(b"GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n").await.unwrap();
    assert!(read_response(&mut stream).await.starts_with("HTTP/1.1 200"));
    let answered = Instant::now();
    let (rest, closed) = read_until_closed(&mut stream, IDLE_TIMEOUT + SLACK).await;
    assert_eq!(rest, "");
    // Longer than the header timeout: waiting for the next request is not reading headers.
    assert_closed_between(answered, closed, IDLE_TIMEOUT);
}

#[tokio::test]
async fn a_kept_alive_connection_in_steady_use_stays_open_past_both_timeouts() {
    let app = spawn_with_limits(limits(100, 100)).await;
    let mut stream = connect(&app).await;
    let started = Instant::now();
    let mut answered = 0;
    while started.elapsed() < IDLE_TIMEOUT + HEADER_TIMEOUT {
        stream.write_all(b"GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n").await.unwrap();
        assert!(read_response(&mut stream).await.starts_with("HTTP/1.1 200"));
        answered += 1;
        tokio::time::sleep(Duration::from_millis(400)).await;
    }
    assert!(answered >= 6, "{answered}");
}

#[tokio::test]
async fn two_thousand_idle_sockets_neither_stop_the_server_nor_outlive_the_timeout() {
    // Client and server share this process: 4,000 descriptors and then some.
    let _ = keycard_server::serve::raise_fd_limit();
    let app = spawn_with_limits(limits(5_000, 5_000)).await;
    let opened = Instant::now();
    let mut sockets = Vec::with_capacity(2_000);
    for _ in 0..2_000 {
        sockets.push(connect(&app).await);
    }
    let all_open = Instant::now();
    assert_eq!(healthz(&app).await, StatusCode::OK);

    let limit = HEADER_TIMEOUT + SLACK + (all_open - opened);
    let closed = futures::future::join_all(sockets.iter_mut().map(|s| read_until_closed(s, limit))).await;
    let last = closed.iter().map(|(_, at)| *at).max().unwrap();
    assert!(
        last - all_open <= HEADER_TIMEOUT + SLACK,
        "the last socket closed {:?} after the others opened",
        last - all_open
    );
    assert_eq!(healthz(&app).await, StatusCode::OK);
}

#[tokio::test]
async fn at_the_per_client_cap_a_new_connection_closes_the_clients_idlest_one() {
    let app = spawn_with_limits(limits(100, 3)).await;
    let mut first = connect(&app).await;
    tokio::time::sleep(Duration::from_millis(20)).await;
    let _others = [connect(&app).await, connect(&app).await];
    // The fourth connection (a health check) gets in; the oldest idle one makes room.
    assert_eq!(healthz(&app).await, StatusCode::OK);
    let (_, closed) = read_until_closed(&mut first, Duration::from_millis(500)).await;
    assert!(closed.elapsed() < HEADER_TIMEOUT);
}

/// A connection with a request in the handler: `POST /register` whose body has not arrived.
async fn busy_connection(app: &TestApp) -> TcpStream {
    let mut stream = connect(app).await;
    stream
        .write_all(
            b"POST /register HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 64\r\n\r\n",
        )
        .await
        .unwrap();
    stream
}

#[tokio::test]
async fn at_the_total_cap_with_every_connection_busy_a_new_one_is_refused_with_503() {
    let app = spawn_with_limits(limits(2, 0)).await;
    let _busy = [busy_connection(&app).await, busy_connection(&app).await];
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut refused = connect(&app).await;
    let (answer, _) = read_until_closed(&mut refused, Duration::from_millis(500)).await;
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer:?}");
    assert!(answer.contains("Too many connections"), "{answer:?}");
}

#[tokio::test]
async fn busy_connections_outlast_the_header_timeout_and_idle_ones_make_room_at_the_cap() {
    let app = spawn_with_limits(limits(2, 0)).await;
    let mut busy = busy_connection(&app).await;
    let mut idle = connect(&app).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    // The idle one is closed for the health check, the busy one is not.
    assert_eq!(healthz(&app).await, StatusCode::OK);
    read_until_closed(&mut idle, Duration::from_millis(500)).await;
    // Past the header timeout the request is still in the handler, waiting for its body.
    tokio::time::sleep(HEADER_TIMEOUT + Duration::from_millis(200)).await;
    let body = format!("{:<64}", r#"{"username":"slow","password":"correct horse battery"}"#);
    busy.write_all(body.as_bytes()).await.unwrap();
    assert!(read_response(&mut busy).await.starts_with("HTTP/1.1 201"));
}

#[tokio::test]
async fn shutdown_closes_idle_connections_at_once_and_lets_requests_in_flight_finish() {
    let mut app = spawn_app_with(|s| {
        s.connections = ConnectionLimits { header_read_timeout: Duration::from_secs(30), ..limits(100, 100) }
    })
    .await;
    let mut silent = connect(&app).await;
    let mut busy = busy_connection(&app).await;
    tokio::time::sleep(Duration::from_millis(100)).await;

    let started = Instant::now();
    let finish_request = async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let body = format!("{:<64}", r#"{"username":"late","password":"correct horse battery"}"#);
        busy.write_all(body.as_bytes()).await.unwrap();
        read_response(&mut busy).await
    };
    let (response, (), (_, silent_closed)) =
        tokio::join!(finish_request, app.stop(), read_until_closed(&mut silent, Duration::from_secs(2)));
    assert!(response.starts_with("HTTP/1.1 201"), "{response}");
    assert!(response.to_ascii_lowercase().contains("connection: close"), "{response}");
    assert!(silent_closed - started < Duration::from_millis(300), "idle connection kept {:?}", silent_closed - started);
    assert!(started.elapsed() < Duration::from_secs(3), "shutdown took {:?}", started.elapsed());
}

//! A TCP proxy in front of PostgreSQL or Redis that a test can break: the server "stops"
//! (connections closed, new ones dropped at once) or becomes "unreachable" (connections stall,
//! nothing answers), then comes back, all without touching the real server other tests share.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Forward both ways.
    Up,
    /// Close every connection; accept and close new ones at once (a stopped server).
    Stopped,
    /// Stall every connection; accept new ones and never answer (a dead network path).
    Unreachable,
}

pub struct FaultyProxy {
    pub addr: SocketAddr,
    mode: Arc<watch::Sender<Mode>>,
    task: tokio::task::JoinHandle<()>,
}

impl FaultyProxy {
    /// Listens on a free local port and forwards to `upstream` (`host:port`).
    pub async fn start(upstream: &str) -> FaultyProxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (mode, _) = watch::channel(Mode::Up);
        let mode = Arc::new(mode);
        let upstream = upstream.to_owned();
        let shared = mode.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((client, _)) = listener.accept().await else { continue };
                tokio::spawn(serve(client, upstream.clone(), shared.subscribe()));
            }
        });
        FaultyProxy { addr, mode, task }
    }

    pub fn set(&self, mode: Mode) {
        self.mode.send_replace(mode);
    }

    /// `url` with its `host:port` replaced by this proxy's.
    pub fn url_for(&self, url: &str, upstream: &str) -> String {
        assert!(url.contains(upstream), "{url} does not name {upstream}");
        url.replacen(upstream, &self.addr.to_string(), 1)
    }
}

impl Drop for FaultyProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve(mut client: TcpStream, upstream: String, mut mode: watch::Receiver<Mode>) {
    let current = *mode.borrow_and_update();
    match current {
        Mode::Stopped => {
            let _ = client.shutdown().await;
            return;
        }
        Mode::Unreachable => {
            // Hold the connection, say nothing, until the path is back; then drop it.
            let _ = mode.wait_for(|m| *m != Mode::Unreachable).await;
            return;
        }
        Mode::Up => {}
    }
    let Ok(mut server) = TcpStream::connect(&upstream).await else { return };
    let broken = tokio::select! {
        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => None,
        changed = mode.wait_for(|m| *m != Mode::Up) => changed.ok().map(|m| *m),
    };
    if broken == Some(Mode::Unreachable) {
        // Keep both ends open and silent until the path is back.
        let _ = mode.wait_for(|m| *m != Mode::Unreachable).await;
    }
}

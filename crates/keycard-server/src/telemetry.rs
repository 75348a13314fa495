//! Logging with `tracing`: human-readable or JSON lines on stderr, filtered by `RUST_LOG`.
//!
//! A log that cannot be written never takes the server down: stderr goes through
//! [`LossyWriter`], which drops a line it cannot write (a full disk, `2>/dev/full`, a closed
//! pipe), counts it, and, once writing works again, first writes one line saying how many were
//! lost. Left to itself, `tracing-subscriber` reports a failed write with `eprintln!`, which
//! panics when stderr is the thing that failed: that was the exit 101 at start and the dropped
//! connections under a full disk.

use std::io::{self, IsTerminal, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;

/// Default filter: keycard's own INFO events (start-up, configuration, security events) and
/// warnings from everything else. `RUST_LOG=keycard_server=debug` adds one line per request.
pub const DEFAULT_FILTER: &str =
    "warn,keycard=info,keycard_server=info,keycard_store=info,keycard_axum=info,keycard_token=info";

/// Output format of log lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

/// Installs the global subscriber (once; later calls are no-ops).
pub fn init(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(DEFAULT_FILTER));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(LossyWriter::new(io::stderr, format))
        // Our writer never fails; should anything else, tracing-subscriber must not `eprintln!`.
        .log_internal_errors(false)
        .with_ansi(io::stderr().is_terminal());
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
}

/// A [`MakeWriter`] whose writers never fail: a line the inner writer refuses is dropped and
/// counted, and the first line written after a loss is preceded by one line (in the log's
/// format) giving the number lost. Each log line reaches it as one `write`.
#[derive(Debug, Clone)]
pub struct LossyWriter<M> {
    inner: M,
    format: LogFormat,
    lost: Arc<AtomicU64>,
}

impl<M> LossyWriter<M> {
    /// Wraps `inner` (e.g. `std::io::stderr`); `format` is that of the loss notices.
    pub fn new(inner: M, format: LogFormat) -> Self {
        Self { inner, format, lost: Arc::new(AtomicU64::new(0)) }
    }

    /// Lines dropped and not yet reported.
    pub fn lost(&self) -> u64 {
        self.lost.load(Ordering::Relaxed)
    }
}

impl<'a, M: MakeWriter<'a>> MakeWriter<'a> for LossyWriter<M> {
    type Writer = Lossy<'a, M::Writer>;

    fn make_writer(&'a self) -> Self::Writer {
        Lossy { inner: self.inner.make_writer(), format: self.format, lost: &self.lost }
    }
}

/// The writer of one log line; see [`LossyWriter`].
#[derive(Debug)]
pub struct Lossy<'a, W> {
    inner: W,
    format: LogFormat,
    lost: &'a AtomicU64,
}

impl<W: Write> Write for Lossy<'_, W> {
    fn write(&mut self, line: &[u8]) -> io::Result<usize> {
        let lost = self.lost.load(Ordering::Relaxed);
        if lost > 0 {
            if self.inner.write_all(loss_notice(self.format, lost).as_bytes()).is_err() {
                self.lost.fetch_add(1, Ordering::Relaxed);
                return Ok(line.len());
            }
            // Lines lost meanwhile by other threads stay counted for the next notice.
            self.lost.fetch_sub(lost, Ordering::Relaxed);
        }
        if self.inner.write_all(line).is_err() {
            self.lost.fetch_add(1, Ordering::Relaxed);
        }
        Ok(line.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        let _ = self.inner.flush();
        Ok(())
    }
}

/// The line that reports `lost` dropped lines.
fn loss_notice(format: LogFormat, lost: u64) -> String {
    let now =
        time::OffsetDateTime::now_utc().format(&time::format_description::well_known::Rfc3339).unwrap_or_default();
    let message = format!("{lost} log lines could not be written and were dropped");
    match format {
        LogFormat::Text => format!("{now}  WARN keycard_server::telemetry: {message} lost={lost}\n"),
        LogFormat::Json => format!(
            "{}\n",
            serde_json::json!({
                "timestamp": now,
                "level": "WARN",
                "message": message,
                "lost": lost,
                "target": "keycard_server::telemetry",
            })
        ),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;

    /// Fails every write while `failing`, else appends to `out`.
    #[derive(Clone, Default)]
    struct Flaky {
        failing: Arc<std::sync::atomic::AtomicBool>,
        out: Arc<Mutex<Vec<u8>>>,
    }

    impl Write for Flaky {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            if self.failing.load(Ordering::Relaxed) {
                return Err(io::Error::from_raw_os_error(28)); // ENOSPC
            }
            self.out.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    fn written(flaky: &Flaky) -> String {
        String::from_utf8(flaky.out.lock().unwrap().clone()).unwrap()
    }

    #[test]
    fn lines_that_cannot_be_written_are_dropped_counted_and_reported_once_writing_works() {
        let flaky = Flaky::default();
        let sink = flaky.clone();
        let writer = LossyWriter::new(move || sink.clone(), LogFormat::Text);

        writer.make_writer().write_all(b"first\n").unwrap();
        flaky.failing.store(true, Ordering::Relaxed);
        for _ in 0..3 {
            // Never an error for the caller.
            writer.make_writer().write_all(b"lost\n").unwrap();
        }
        assert_eq!(writer.lost(), 3);
        assert_eq!(written(&flaky), "first\n");

        flaky.failing.store(false, Ordering::Relaxed);
        writer.make_writer().write_all(b"second\n").unwrap();
        writer.make_writer().write_all(b"third\n").unwrap();
        let out = written(&flaky);
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 4, "{out}");
        assert_eq!(lines[0], "first");
        assert!(lines[1].contains("WARN") && lines[1].contains("3 log lines could not be written"), "{out}");
        assert_eq!(&lines[2..], ["second", "third"]);
        assert_eq!(writer.lost(), 0);
    }

    #[test]
    fn the_json_loss_notice_is_one_json_object() {
        let flaky = Flaky { failing: Arc::new(true.into()), ..Default::default() };
        let sink = flaky.clone();
        let writer = LossyWriter::new(move || sink.clone(), LogFormat::Json);
        writer.make_writer().write_all(b"{}\n").unwrap();
        flaky.failing.store(false, Ordering::Relaxed);
        writer.make_writer().write_all(b"{}\n").unwrap();
        let out = written(&flaky);
        let notice: serde_json::Value = serde_json::from_str(out.lines().next().unwrap()).unwrap();
        assert_eq!((notice["level"].as_str(), notice["lost"].as_u64()), (Some("WARN"), Some(1)));
    }

    #[test]
    fn a_subscriber_writing_to_dev_full_neither_panics_nor_errors() {
        let full = || std::fs::OpenOptions::new().write(true).open("/dev/full").unwrap();
        let writer = LossyWriter::new(full, LogFormat::Text);
        let subscriber = tracing_subscriber::fmt().with_writer(writer.clone()).finish();
        tracing::subscriber::with_default(subscriber, || {
            tracing::info!("into the void");
            tracing::warn!("and again");
        });
        assert_eq!(writer.lost(), 2);
    }
}

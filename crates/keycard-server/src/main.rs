//! The `keycard` binary: parses the command line and runs it.

use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use keycard_server::cli::{Cli, StdoutClosed, run};

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            // Not `eprintln!`: it panics when stderr cannot be written (`2>/dev/full`).
            let _ = writeln!(std::io::stderr(), "error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(run(cli));
    // Everything that matters (requests in flight, the audit queue, the database) is finished
    // when `run` returns: do not let a lingering blocking thread hold the exit up.
    runtime.shutdown_timeout(RUNTIME_SHUTDOWN);
    match result {
        Ok(()) => ExitCode::SUCCESS,
        // `keycard audit | head -n 1`: the reader has all it wanted.
        Err(e) if e.chain().any(|cause| cause.is::<StdoutClosed>()) => ExitCode::SUCCESS,
        Err(e) => {
            let _ = writeln!(std::io::stderr(), "error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Longest wait for the runtime's threads at exit.
const RUNTIME_SHUTDOWN: Duration = Duration::from_millis(100);

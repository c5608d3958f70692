//! The `sift` command: `serve`, `demo`, `import`, `export`, `backup`,
//! `restore`, `check` and `bench`.
//!
//! Exit codes: 0 success, 1 the input was wrong (a bad condition, bad rows),
//! 2 Sift itself failed (cannot open the data directory, bind the port...).

mod backup;
mod bench;
mod bench_burst;
mod bench_cluster;
mod bench_duckdb;
mod bench_events;
mod bench_facebook;
mod bench_load;
mod bench_merge;
mod bench_state;
mod bench_state_kept;
mod bench_state_server;
mod bench_streams;
mod bench_webhooks;
mod bench_workflows;
mod cli;
#[cfg(feature = "cluster")]
mod cluster;
mod export;
mod generate;
mod import;
mod import_events;
mod run;

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::Parser;

// glibc's allocator stalls for tens of milliseconds consolidating the many
// small blocks a bulk load frees; mimalloc keeps per-thread free lists instead.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// mimalloc returns freed memory to the system only when the thread that
/// freed it next allocates, after a delay (10 ms): a server whose loading
/// threads go idle after a start keeps what the start decoded and dropped
/// (about a quarter of its RSS after loading a checkpoint). Its options are
/// read from the environment before `main`, so `sift serve` sets a delay of
/// zero (free memory at once) by starting itself again with it, unless the
/// variable is already set. The process keeps its id: `exec` replaces it.
const PURGE_DELAY: &str = "MIMALLOC_PURGE_DELAY";

fn purge_freed_memory_at_once() {
    use std::os::unix::process::CommandExt;
    let mut args = std::env::args_os();
    let _program = args.next();
    if std::env::var_os(PURGE_DELAY).is_some() || args.next().is_none_or(|first| first != "serve") {
        return;
    }
    // A binary replaced or deleted since it started cannot be run again.
    let Some(exe) = std::env::current_exe().ok().filter(|exe| exe.is_file()) else {
        return;
    };
    // Only returns on failure; the server then runs with the default delay
    // (and, as `exec` leaves it, SIGPIPE at its default: a closed log pipe
    // would end it).
    let _ = std::process::Command::new(exe)
        .args(std::env::args_os().skip(1))
        .env(PURGE_DELAY, "0")
        .exec();
}

fn main() -> ExitCode {
    purge_freed_memory_at_once();
    let args = cli::Args::parse();
    let filter = tracing_subscriber::EnvFilter::try_from_env("SIFT_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // Colour codes only help a person at a terminal; in a log file or a
    // pipe they are noise that breaks grep.
    let colour = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(colour)
        .with_writer(std::io::stderr);
    if std::env::var_os("SIFT_LOG_JSON").is_some() {
        builder.json().init();
    } else {
        builder.init();
    }
    match run::run(args) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("sift: {error:#}");
            ExitCode::from(2)
        }
    }
}

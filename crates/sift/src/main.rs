//! The `sift` command: `serve`, `demo`, `import`, `export`, `backup`,
//! `restore`, `check` and `bench`.
//!
//! Exit codes: 0 success, 1 the input was wrong (a bad condition, bad rows),
//! 2 Sift itself failed (cannot open the data directory, bind the port...).

mod backup;
mod bench;
mod bench_duckdb;
mod bench_events;
mod bench_facebook;
mod bench_merge;
mod bench_state;
mod bench_streams;
mod bench_webhooks;
mod bench_workflows;
mod cli;
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

fn main() -> ExitCode {
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

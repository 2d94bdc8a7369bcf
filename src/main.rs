use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    // A missing .env is normal; settings may come from the environment alone.
    let _ = dotenvy::dotenv();
    let _log_guard = wxportal::telemetry::init();
    let cli = wxportal::cli::Cli::parse();
    let runtime = tokio::runtime::Runtime::new().expect("the async runtime starts");
    runtime.block_on(wxportal::cli::run(cli))
}

// glibc's allocator was a tenth of the webhook's CPU time under load and fragments under many threads.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::process::ExitCode;

fn main() -> ExitCode {
    wxportal::cli::main()
}

// glibc's allocator was a tenth of the webhook's CPU time under load and fragments under many threads.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

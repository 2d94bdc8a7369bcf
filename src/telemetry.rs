//! Logging: `RUST_LOG` filters (default `info`) by level and target (`warn,wxportal=debug`),
//! `WXPORTAL_LOG_FORMAT=json` for one JSON object per line.

use std::io::IsTerminal;

use tracing_appender::non_blocking::WorkerGuard;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// Installs the global subscriber; logs go to standard error from a background thread, so a request never
/// waits on a write. That thread writes what is queued in one go and flushes once the queue is empty (a
/// system call per burst, not per line). Keep the returned guard alive until exit: dropping it flushes
/// what is queued.
pub fn init() -> WorkerGuard {
    let (writer, guard) =
        tracing_appender::non_blocking(std::io::BufWriter::new(std::io::stderr()));
    // The builder's own filter (info, unless told otherwise) would stand under `RUST_LOG`'s: every level
    // passes it, and the directives decide.
    let builder = tracing_subscriber::fmt()
        .with_writer(writer)
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(std::io::stderr().is_terminal());
    let filter = filter(std::env::var("RUST_LOG").ok().as_deref());
    if std::env::var("WXPORTAL_LOG_FORMAT").is_ok_and(|f| f == "json") {
        builder
            .json()
            .flatten_event(true)
            .finish()
            .with(filter)
            .init();
    } else {
        builder.finish().with(filter).init();
    }
    guard
}

/// `RUST_LOG`'s directives (`LEVEL`, `TARGET=LEVEL`, comma-separated); unset or unreadable, `info`.
/// (Per-span and per-field directives are not taken: they cost a regular expression engine in the
/// build, for filters nobody here writes.)
fn filter(directives: Option<&str>) -> Targets {
    let default = || Targets::new().with_default(tracing::Level::INFO);
    match directives.map(str::trim).filter(|d| !d.is_empty()) {
        None => default(),
        Some(directives) => directives.parse().unwrap_or_else(|e| {
            eprintln!("RUST_LOG={directives} is not understood ({e}); logging at info");
            default()
        }),
    }
}

#[cfg(test)]
mod tests {
    use tracing::Level;

    use super::filter;

    #[test]
    fn rust_log_picks_levels_per_target() {
        let f = filter(Some("warn,wxportal=debug,tower_http=off"));
        assert!(f.would_enable("wxportal::web", &Level::DEBUG));
        assert!(!f.would_enable("wxportal::web", &Level::TRACE));
        assert!(f.would_enable("sqlx::query", &Level::WARN));
        assert!(!f.would_enable("sqlx::query", &Level::INFO));
        assert!(!f.would_enable("tower_http::trace", &Level::ERROR));
        // Unset, empty or garbled: info.
        for f in [
            filter(None),
            filter(Some(" ")),
            filter(Some("wxportal=loud")),
        ] {
            assert!(f.would_enable("wxportal", &Level::INFO));
            assert!(!f.would_enable("wxportal", &Level::DEBUG));
        }
    }
}

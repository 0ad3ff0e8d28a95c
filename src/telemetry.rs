//! Logging setup. Tests pass a sink so that their output stays quiet.

use tracing_subscriber::{EnvFilter, fmt::MakeWriter};

/// Installs the global subscriber; `RUST_LOG` wins over `filter`. A second call
/// (several apps in one test process) leaves the first subscriber in place.
pub fn init<W>(filter: &str, writer: W)
where
    W: for<'a> MakeWriter<'a> + Send + Sync + 'static,
{
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(filter));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();
}

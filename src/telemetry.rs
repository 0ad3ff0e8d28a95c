//! Logging setup. Tests pass a sink so that their output stays quiet.

use tracing_subscriber::{EnvFilter, fmt::MakeWriter};

use crate::config::LogFormat;

/// Installs the global subscriber in text format; `RUST_LOG` wins over `filter`. A
/// second call (several apps in one test process) leaves the first subscriber in place.
pub fn init<W>(filter: &str, writer: W)
where
    W: for<'a> MakeWriter<'a> + Send + Sync + 'static,
{
    init_with_format(filter, LogFormat::Text, writer);
}

/// Installs the global subscriber in the given format. In JSON, each line is one
/// object whose `span` holds the request's fields (request id, method, path, grant
/// type, client id) and whose `fields` hold the event's (status, latency).
pub fn init_with_format<W>(filter: &str, format: LogFormat, writer: W)
where
    W: for<'a> MakeWriter<'a> + Send + Sync + 'static,
{
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(filter));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer);
    let _ = match format {
        LogFormat::Text => builder
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .try_init(),
        LogFormat::Json => builder
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .try_init(),
    };
}

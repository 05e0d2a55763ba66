//! The daemon's logs: `tracing` events with fields, written to stderr as text lines or, with
//! `--log-format json`, one JSON object per line (for log shippers). The level comes from
//! `--log-level` (an `EnvFilter` directive such as `info` or `rvs=debug`), else `RVS_LOG`,
//! else `info`. Nothing on the packet path logs: it counts.

use tracing_subscriber::EnvFilter;

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

impl LogFormat {
    /// The format of a `--log-format` argument.
    pub fn from_name(s: &str) -> Option<LogFormat> {
        match s {
            "text" => Some(LogFormat::Text),
            "json" => Some(LogFormat::Json),
            _ => None,
        }
    }
}

/// Install the global subscriber. `level` overrides `RVS_LOG`.
pub fn init(format: LogFormat, level: Option<&str>) -> Result<(), String> {
    let directive = level
        .map(str::to_string)
        .or_else(|| std::env::var("RVS_LOG").ok())
        .unwrap_or_else(|| "info".to_string());
    let filter =
        EnvFilter::try_new(&directive).map_err(|e| format!("log level {directive:?}: {e}"))?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false);
    let r = match format {
        LogFormat::Text => builder.with_ansi(false).try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
    r.map_err(|e| format!("logging: {e}"))
}

//! The server's log: `tracing` to standard error, filtered by `RUST_LOG` (default `info`), as
//! lines for people (`text`) or one JSON object per line (`json`). Every line written while a
//! request is served carries the request's id (its `request` span).
//!
//! A client's malformed request is the client's mistake, not the server's: the HTTP layer
//! reports a request it cannot parse (a URL over 64 KiB, broken framing) at ERROR, and those
//! lines are written at INFO here, so that ERROR stays for what an operator must look at.

use std::fmt;

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Metadata, Subscriber};
use tracing_subscriber::fmt::format::{Format, Full, Writer};
use tracing_subscriber::fmt::time::{FormatTime, SystemTime};
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

/// Whether an event may be the HTTP layer's report of a request it could not read (its
/// message says for sure: see [`CLIENT_FAULT`]).
fn may_be_client_fault(meta: &Metadata<'_>) -> bool {
    *meta.level() == Level::ERROR && meta.target().starts_with("actix_http::h1")
}

/// How the HTTP layer's report of an unreadable request begins; its other errors (a failed
/// response stream, an upgrade handler) are the server's and stay at ERROR.
const CLIENT_FAULT: &str = "stream error: request parse error";

#[derive(Default)]
struct Message(String);

impl Visit for Message {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if field.name() == "message" {
            self.0 = format!("{value:?}");
        }
    }
}

/// A format, but client faults written at INFO.
#[derive(Debug, Default)]
pub struct ClientFaultsAsInfo<F = Format<Full>> {
    inner: F,
    json: bool,
}

impl<S, N, F> FormatEvent<S, N> for ClientFaultsAsInfo<F>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
    F: FormatEvent<S, N>,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        if !may_be_client_fault(event.metadata()) {
            return self.inner.format_event(ctx, writer, event);
        }
        let mut message = Message::default();
        event.record(&mut message);
        if !message.0.starts_with(CLIENT_FAULT) {
            return self.inner.format_event(ctx, writer, event);
        }
        if self.json {
            let mut at = String::new();
            SystemTime.format_time(&mut Writer::new(&mut at))?;
            let line = serde_json::json!({
                "timestamp": at,
                "level": "INFO",
                "fields": {"message": format!("refused a request it could not read: {}", message.0)},
                "target": event.metadata().target(),
            });
            return writeln!(writer, "{line}");
        }
        SystemTime.format_time(&mut writer)?;
        writeln!(
            writer,
            "  INFO {}: refused a request it could not read: {}",
            event.metadata().target(),
            message.0
        )
    }
}

/// Installs the log for the `shipshape` binary.
pub fn init(format: crate::config::LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    match format {
        crate::config::LogFormat::Text => tracing_subscriber::fmt()
            .with_env_filter(filter)
            .event_format(ClientFaultsAsInfo::<Format<Full>>::default())
            .with_writer(std::io::stderr)
            .init(),
        crate::config::LogFormat::Json => tracing_subscriber::fmt()
            .json()
            .with_env_filter(filter)
            .event_format(ClientFaultsAsInfo {
                inner: tracing_subscriber::fmt::format()
                    .json()
                    .with_current_span(true)
                    .with_span_list(false),
                json: true,
            })
            .with_writer(std::io::stderr)
            .init(),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;

    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Buffer {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0
                .lock()
                .map_err(|_| std::io::ErrorKind::Other)?
                .extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_malformed_request_is_logged_at_info_and_a_server_fault_still_at_error() {
        let buffer = Buffer::default();
        let writer = buffer.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_ansi(false)
            .event_format(ClientFaultsAsInfo::<Format<Full>>::default())
            .with_writer(move || writer.clone())
            .finish();
        tracing::subscriber::with_default(subscriber, || {
            tracing::error!(
                target: "actix_http::h1::dispatcher",
                "stream error: request parse error: URI error: uri too long"
            );
            tracing::error!(
                target: "actix_http::h1::dispatcher",
                "Response payload stream error: broken"
            );
            tracing::error!(error = "disk full", "internal error");
        });
        let log = String::from_utf8(buffer.0.lock().map(|b| b.clone()).unwrap_or_default())
            .unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        assert_eq!(lines.len(), 3, "{log}");
        assert!(
            lines[0].contains(" INFO ")
                && lines[0].contains("uri too long")
                && !lines[0].contains("ERROR"),
            "{}",
            lines[0]
        );
        assert!(
            lines[1].contains("ERROR") && lines[1].contains("payload stream"),
            "the server's own stream errors stay at ERROR: {}",
            lines[1]
        );
        assert!(
            lines[2].contains("ERROR") && lines[2].contains("disk full"),
            "{}",
            lines[2]
        );
    }
}

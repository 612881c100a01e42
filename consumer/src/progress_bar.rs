//! Progress bars for long runs (`generate`, `consume --once` / `storage-consumer --once`,
//! `verify`, `bench`, `demo`), and the log writer that keeps log lines out of them.
//!
//! Invariants:
//! * A bar draws only for a person: stderr is a terminal, `TERM` is not `dumb`, and `--quiet`
//!   was not given ([`wanted`]). Otherwise it is hidden and writes no byte, so logs, pipes and
//!   CI output carry no escape codes or carriage returns.
//! * A log line never lands inside a bar: [`LogWriter`] (the `tracing` writer of both
//!   binaries) writes each whole line while every live bar is suspended (cleared, then
//!   redrawn below the line).
//! * Bars cost nothing on hot paths: callers set positions (atomic stores); drawing is
//!   rate-limited by indicatif (at most 20 times a second).

use crate::metrics::Metrics;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::{IsTerminal, Write};
use std::sync::Mutex;
use std::time::Duration;

/// Bars drawing now (usually one); log lines suspend them all.
static LIVE: Mutex<Vec<ProgressBar>> = Mutex::new(Vec::new());

/// True when bars should draw: stderr is a terminal, `TERM` is not `dumb`, and not `quiet`.
pub fn wanted(quiet: bool) -> bool {
    !quiet && std::io::stderr().is_terminal() && std::env::var("TERM").map_or(true, |t| t != "dumb")
}

/// A progress bar on stderr, hidden unless [`wanted`]; log lines written through
/// [`LogWriter`] while it lives go above it.
pub struct Bar {
    pb: ProgressBar,
}

impl Bar {
    /// A bar of `len` steps counting `unit` (e.g. `txns`, `files`, `tables`) with a prefix
    /// naming the job, its rate and ETA.
    pub fn new(quiet: bool, len: u64, prefix: &str, unit: &str) -> Bar {
        let pb = if wanted(quiet) {
            ProgressBar::with_draw_target(Some(len), ProgressDrawTarget::stderr())
        } else {
            ProgressBar::hidden()
        };
        let template = format!(
            "{{prefix:>9}} [{{bar:36}}] {{pos}}/{{len}} {unit} {{msg}} ({{per_sec}}, ETA {{eta}})"
        );
        pb.set_style(
            ProgressStyle::with_template(&template)
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
        );
        pb.set_prefix(prefix.to_string());
        if !pb.is_hidden() {
            pb.enable_steady_tick(Duration::from_millis(250));
            if let Ok(mut live) = LIVE.lock() {
                live.push(pb.clone());
            }
        }
        Bar { pb }
    }

    /// True when the bar draws (a terminal, not `--quiet`).
    pub fn is_drawn(&self) -> bool {
        !self.pb.is_hidden()
    }

    /// Sets the position.
    pub fn set_position(&self, n: u64) {
        self.pb.set_position(n);
    }

    /// Sets the length (work found while running).
    pub fn set_length(&self, n: u64) {
        self.pb.set_length(n);
    }

    /// Sets the text after the counts.
    pub fn set_message(&self, msg: String) {
        self.pb.set_message(msg);
    }

    /// Prints a line above the bar (or plainly on stderr when the bar is hidden).
    pub fn println(&self, line: &str) {
        if self.pb.is_hidden() {
            eprintln!("{line}");
        } else {
            self.pb.println(line);
        }
    }

    /// Draws the final state with `msg` and leaves it on screen (later updates are ignored).
    pub fn finish(&self, msg: &str) {
        self.pb.finish_with_message(msg.to_string());
    }

    /// Leaves the bar where it stopped with `msg` (a failed job: the counts stay as they were,
    /// not filled up as [`Bar::finish`] does).
    pub fn fail(&self, msg: &str) {
        self.pb.abandon_with_message(msg.to_string());
    }
}

impl Drop for Bar {
    fn drop(&mut self) {
        if !self.pb.is_finished() {
            self.pb.abandon();
        }
        if let Ok(mut live) = LIVE.lock() {
            live.retain(|b| !b.is_finished());
        }
    }
}

/// `--once`'s bar: data files applied out of those found (applied + `files_pending`), rows
/// applied and their rate, read from the consumer's metrics four times a second.
pub struct ReplayBar {
    bar: std::sync::Arc<Bar>,
    ticker: tokio::task::JoinHandle<()>,
    metrics: Metrics,
    start: (u64, u64, std::time::Instant),
}

impl ReplayBar {
    /// Starts the bar and its ticker; `None` when bars are not [`wanted`].
    pub fn start(metrics: &Metrics, quiet: bool) -> Option<ReplayBar> {
        if !wanted(quiet) {
            return None;
        }
        let bar = std::sync::Arc::new(Bar::new(quiet, 0, "replay", "files"));
        let start = (
            metrics.files_applied.get(),
            metrics.rows_applied.get(),
            std::time::Instant::now(),
        );
        let (b, m) = (std::sync::Arc::clone(&bar), metrics.clone());
        let ticker = tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(250));
            loop {
                tick.tick().await;
                Self::update(&b, &m, start);
            }
        });
        Some(ReplayBar {
            bar,
            ticker,
            metrics: metrics.clone(),
            start,
        })
    }

    fn update(bar: &Bar, m: &Metrics, (files0, rows0, t0): (u64, u64, std::time::Instant)) {
        let files = m.files_applied.get().saturating_sub(files0);
        let rows = m.rows_applied.get().saturating_sub(rows0);
        let pending = m.files_pending.get().max(0) as u64;
        bar.set_length(files + pending);
        bar.set_position(files);
        if files + pending == 0 {
            bar.set_message("listing storage".to_string());
            return;
        }
        let secs = t0.elapsed().as_secs_f64().max(1e-3);
        bar.set_message(format!(
            "{pending} pending, {rows} rows ({:.0} rows/s)",
            rows as f64 / secs
        ));
    }

    /// Stops the ticker and leaves the final state on screen.
    pub fn finish(self, ok: bool) {
        self.ticker.abort();
        Self::update(&self.bar, &self.metrics, self.start);
        // the aborted ticker may still hold its clone for a moment: finish through the share
        if ok {
            self.bar.finish("done");
        } else {
            self.bar.fail("failed");
        }
    }
}

/// The `tracing` writer of the binaries: stderr, with each line written while the live bars
/// are suspended, so a log line is never drawn into a bar.
#[derive(Clone, Copy, Debug, Default)]
pub struct LogWriter;

/// One log event's bytes, written out in one piece when the event is complete.
pub struct LogLine {
    buf: Vec<u8>,
}

impl Write for LogLine {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(b);
        Ok(b.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for LogLine {
    fn drop(&mut self) {
        let write = || {
            let mut err = std::io::stderr().lock();
            let _ = err.write_all(&self.buf);
            let _ = err.flush();
        };
        let live: Vec<ProgressBar> = LIVE.lock().map(|l| l.clone()).unwrap_or_default();
        match live.iter().find(|b| !b.is_finished()) {
            Some(bar) => bar.suspend(write),
            None => write(),
        }
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for LogWriter {
    type Writer = LogLine;

    fn make_writer(&'a self) -> LogLine {
        LogLine {
            buf: Vec::with_capacity(256),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quiet_hides_the_bar() {
        let b = Bar::new(true, 10, "test", "steps");
        assert!(!b.is_drawn());
        assert!(!wanted(true));
    }
}

//! Everything users see on a terminal: the [`Printer`] decides between progress bars (TTY), plain
//! one-line events (not a TTY, or `CI` set) and JSON lines (`--json`); tables and coloured log
//! prefixes live here too. Commands never print on their own.

pub mod logs;
mod progress;
pub mod table;
pub mod traces;
pub mod waterfall;

use std::io::{IsTerminal, Write};
use std::sync::{Arc, Mutex};

use owo_colors::OwoColorize;

use crate::events::{Event, EventSink};

/// How output is shaped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// indicatif bars and colours.
    Terminal,
    /// One line per event, no escape codes.
    Plain,
    /// One JSON object per line.
    Json,
}

/// The one place that writes to stdout/stderr for users.
#[derive(Clone)]
pub struct Printer {
    mode: Mode,
    colour: bool,
    progress: Arc<Mutex<Option<progress::Bars>>>,
}

impl Printer {
    /// Picks the mode from the flags and the environment: `--json` wins; `CI`, `SANDBOX_NO_PROGRESS`
    /// or a non-terminal stderr give plain lines. `NO_COLOR` turns colours off.
    pub fn from_environment(json: bool) -> Self {
        let terminal = std::io::stderr().is_terminal();
        let ci = std::env::var_os("CI").is_some_and(|value| !value.is_empty() && value != "false");
        let no_progress = std::env::var_os("SANDBOX_NO_PROGRESS").is_some();
        let mode = if json {
            Mode::Json
        } else if terminal && !ci && !no_progress {
            Mode::Terminal
        } else {
            Mode::Plain
        };
        let colour = std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none();
        Printer {
            mode,
            colour,
            progress: Arc::new(Mutex::new(None)),
        }
    }

    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// An [`EventSink`] that renders events as this printer's mode says.
    pub fn event_sink(&self) -> EventSink {
        let printer = self.clone();
        EventSink::new(move |event| printer.event(&event))
    }

    /// Renders one event.
    pub fn event(&self, event: &Event) {
        match self.mode {
            Mode::Json => {
                if let Ok(line) = serde_json::to_string(event) {
                    self.stdout_line(&line);
                }
            }
            Mode::Plain => {
                if let Some(line) = progress::plain_line(event) {
                    self.stderr_line(&line);
                }
            }
            Mode::Terminal => {
                let mut bars = self
                    .progress
                    .lock()
                    .unwrap_or_else(|poison| poison.into_inner());
                bars.get_or_insert_with(progress::Bars::new).event(event);
            }
        }
    }

    /// Ends progress bars so that plain output (logs) can follow.
    pub fn finish_progress(&self) {
        let mut bars = self
            .progress
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        if let Some(bars) = bars.take() {
            bars.finish();
        }
    }

    /// A line of a command's result (tables, config) on stdout.
    pub fn stdout_line(&self, line: &str) {
        let mut stdout = std::io::stdout().lock();
        let _ = writeln!(stdout, "{line}");
    }

    /// Raw text on stdout (already terminated).
    pub fn stdout_text(&self, text: &str) {
        let mut stdout = std::io::stdout().lock();
        let _ = stdout.write_all(text.as_bytes());
        let _ = stdout.flush();
    }

    /// A message for the user on stderr (notes, hints).
    pub fn stderr_line(&self, line: &str) {
        let suspended = self
            .progress
            .lock()
            .ok()
            .and_then(|bars| bars.as_ref().map(|bars| bars.suspend_handle()));
        let write = || {
            let mut stderr = std::io::stderr().lock();
            let _ = writeln!(stderr, "{line}");
        };
        match suspended {
            Some(bars) => bars.suspend(write),
            None => write(),
        }
    }

    /// An error report on stderr: `error: ...` with the rest of the report as it is.
    pub fn error(&self, message: &str) {
        self.finish_progress();
        if self.mode == Mode::Json {
            let line = serde_json::json!({"event": "error", "message": message});
            self.stdout_line(&line.to_string());
            return;
        }
        let message = message.strip_prefix("error: ").unwrap_or(message);
        if self.colour {
            self.stderr_line(&format!("{} {message}", "error:".red().bold()));
        } else {
            self.stderr_line(&format!("error: {message}"));
        }
    }

    /// One line of container output with a coloured `service-1 |` prefix.
    pub fn log_line(&self, prefix: &str, width: usize, colour_index: usize, text: &str) {
        let padded = format!("{prefix:<width$} |");
        let line = if self.colour {
            format!("{} {text}", paint(&padded, colour_index))
        } else {
            format!("{padded} {text}")
        };
        self.stdout_line(&line);
    }

    /// Whether stdout gets colours.
    pub fn colour(&self) -> bool {
        self.colour
    }
}

fn paint(text: &str, index: usize) -> String {
    match index % 6 {
        0 => text.cyan().to_string(),
        1 => text.yellow().to_string(),
        2 => text.green().to_string(),
        3 => text.magenta().to_string(),
        4 => text.blue().to_string(),
        _ => text.bright_red().to_string(),
    }
}

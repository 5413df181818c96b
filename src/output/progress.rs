//! Progress rendering: one indicatif line per service/replica on a terminal, one plain line per
//! event elsewhere.

use std::collections::BTreeMap;
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::events::{Event, Step};

/// Bars on a terminal, keyed by `service` or `service-replica`.
pub struct Bars {
    multi: MultiProgress,
    bars: BTreeMap<String, ProgressBar>,
}

impl Bars {
    pub fn new() -> Self {
        Bars {
            multi: MultiProgress::with_draw_target(ProgressDrawTarget::stderr()),
            bars: BTreeMap::new(),
        }
    }

    pub fn suspend_handle(&self) -> MultiProgress {
        self.multi.clone()
    }

    pub fn event(&mut self, event: &Event) {
        match event {
            Event::Service {
                service,
                replica,
                step,
                detail,
                elapsed_ms,
            } => {
                let key = subject(service, *replica);
                let bar = self.bar(&key);
                let time = format_elapsed(*elapsed_ms);
                let detail = if detail.is_empty() { String::new() } else { format!(" {detail}") };
                let message = format!("{:<10} {time:>6}{detail}", step.label());
                if step.is_final() {
                    let mark = if *step == Step::Failed { "✘" } else { "✔" };
                    bar.set_style(ProgressStyle::with_template(&format!(" {mark} {{prefix:<24}} {{msg}}")).unwrap_or_else(|_| ProgressStyle::default_spinner()));
                    bar.finish_with_message(message);
                } else {
                    bar.set_message(message);
                }
            }
            Event::PullProgress { service, current, total, .. } => {
                let bar = self.bar(&subject(service, 0));
                if *total > 0 {
                    bar.set_message(format!("pulling    {:>5.1}%", *current as f64 * 100.0 / *total as f64));
                }
            }
            Event::Resource { .. } | Event::Note { .. } | Event::Ready { .. } | Event::Failed { .. } => {
                if let Some(line) = plain_line(event) {
                    let _ = self.multi.println(line);
                }
            }
        }
    }

    fn bar(&mut self, key: &str) -> ProgressBar {
        if let Some(bar) = self.bars.get(key) {
            return bar.clone();
        }
        let bar = self.multi.add(ProgressBar::new_spinner());
        bar.set_style(
            ProgressStyle::with_template(" {spinner} {prefix:<24} {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_spinner())
                .tick_chars("⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏ "),
        );
        bar.set_prefix(key.to_string());
        bar.enable_steady_tick(Duration::from_millis(100));
        self.bars.insert(key.to_string(), bar.clone());
        bar
    }

    pub fn finish(self) {
        for bar in self.bars.values() {
            if !bar.is_finished() {
                bar.finish();
            }
        }
    }
}

impl Default for Bars {
    fn default() -> Self {
        Self::new()
    }
}

fn subject(service: &str, replica: u32) -> String {
    if replica == 0 {
        service.to_string()
    } else {
        format!("{service}-{replica}")
    }
}

fn format_elapsed(milliseconds: u64) -> String {
    format!("{:.1}s", milliseconds as f64 / 1000.0)
}

/// The one-line form of an event (CI logs, pipes); `None` for events too chatty for a log.
pub fn plain_line(event: &Event) -> Option<String> {
    Some(match event {
        Event::Service {
            service,
            replica,
            step,
            detail,
            elapsed_ms,
        } => {
            let detail = if detail.is_empty() { String::new() } else { format!(": {detail}") };
            format!("{} {}{detail} ({})", subject(service, *replica), step.label(), format_elapsed(*elapsed_ms))
        }
        Event::Resource { kind, name, action } => format!("{kind} {name} {action}"),
        Event::PullProgress { .. } => return None,
        Event::Note { message } => message.clone(),
        Event::Ready {
            gateway,
            zipkin,
            elapsed_ms,
        } => {
            let mut line = format!("ready in {}", format_elapsed(*elapsed_ms));
            if let Some(gateway) = gateway {
                line.push_str(&format!(" · gateway {gateway}"));
            }
            if let Some(zipkin) = zipkin {
                line.push_str(&format!(" · zipkin {zipkin}"));
            }
            line
        }
        Event::Failed { .. } => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_lines_name_the_replica_step_and_time() {
        let event = Event::Service {
            service: "user".into(),
            replica: 1,
            step: Step::Healthy,
            detail: String::new(),
            elapsed_ms: 1234,
        };
        assert_eq!(plain_line(&event).unwrap(), "user-1 healthy (1.2s)");
        let event = Event::Service {
            service: "user".into(),
            replica: 0,
            step: Step::Building,
            detail: "Step 1/3 : FROM scratch".into(),
            elapsed_ms: 50,
        };
        assert_eq!(plain_line(&event).unwrap(), "user building: Step 1/3 : FROM scratch (0.1s)");
    }
}

//! An image's `HEALTHCHECK` as sandbox's probe: what a [`HealthProbe::Image`] healthcheck becomes
//! once the image is on the engine. Pure; the engine's answer comes from
//! [`Docker::image_healthcheck`](super::Docker::image_healthcheck).

use std::time::Duration;

use crate::manifest::{HealthProbe, HealthTiming, Healthcheck};

/// An image's `HEALTHCHECK` as the engine stores it (`Config.Healthcheck`): durations in
/// nanoseconds, 0 meaning unset; `test` empty when the image has none.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ImageHealthcheck {
    /// `["CMD", ...]`, `["CMD-SHELL", "..."]` or `["NONE"]`.
    pub test: Vec<String>,
    /// The image's `SHELL` (empty: `/bin/sh -c`), which runs a `CMD-SHELL` test.
    pub shell: Vec<String>,
    pub interval: i64,
    pub timeout: i64,
    pub retries: i64,
    pub start_period: i64,
    pub start_interval: i64,
}

impl ImageHealthcheck {
    /// The command the engine would run; `None` when the image has no health check (no
    /// `HEALTHCHECK`, or `HEALTHCHECK NONE`).
    pub fn command(&self) -> Option<Vec<String>> {
        match self.test.split_first()? {
            (first, rest) if first == "CMD" && !rest.is_empty() => Some(rest.to_vec()),
            (first, [script]) if first == "CMD-SHELL" => {
                let mut command = if self.shell.is_empty() {
                    vec!["/bin/sh".to_string(), "-c".to_string()]
                } else {
                    self.shell.clone()
                };
                command.push(script.clone());
                Some(command)
            }
            _ => None,
        }
    }
}

/// `healthcheck` with the image's command as its probe and the image's timings where the file
/// left them out (and the image sets them). `None` when the image has no health check. A
/// healthcheck whose probe is not [`HealthProbe::Image`] is returned as it is.
pub fn resolve(healthcheck: &Healthcheck, image: &ImageHealthcheck) -> Option<Healthcheck> {
    if healthcheck.probe != HealthProbe::Image {
        return Some(healthcheck.clone());
    }
    let mut resolved = Healthcheck {
        probe: HealthProbe::Command(image.command()?),
        from_image: Vec::new(),
        ..healthcheck.clone()
    };
    let taken = |timing| healthcheck.from_image(timing);
    if let (true, Some(interval)) = (taken(HealthTiming::Interval), nanoseconds(image.interval)) {
        resolved.interval = interval;
    }
    if let (true, Some(timeout)) = (taken(HealthTiming::Timeout), nanoseconds(image.timeout)) {
        resolved.timeout = timeout;
    }
    if let (true, Ok(retries @ 1..)) = (taken(HealthTiming::Retries), u32::try_from(image.retries))
    {
        resolved.retries = retries;
    }
    if let (true, Some(period)) = (
        taken(HealthTiming::StartPeriod),
        nanoseconds(image.start_period),
    ) {
        resolved.start_period = period;
    }
    if taken(HealthTiming::StartInterval) {
        resolved.start_interval = nanoseconds(image.start_interval).or(resolved.start_interval);
    }
    Some(resolved)
}

/// A duration the engine gives in nanoseconds; `None` for 0 (unset) or a negative value.
fn nanoseconds(value: i64) -> Option<Duration> {
    u64::try_from(value)
        .ok()
        .filter(|nanos| *nanos > 0)
        .map(Duration::from_nanos)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECOND: i64 = 1_000_000_000;

    fn from_image(written: &[HealthTiming]) -> Healthcheck {
        Healthcheck {
            probe: HealthProbe::Image,
            interval: Duration::from_secs(1),
            timeout: Duration::from_secs(2),
            retries: 9,
            start_period: Duration::from_secs(4),
            start_interval: None,
            from_image: [
                HealthTiming::Interval,
                HealthTiming::Timeout,
                HealthTiming::Retries,
                HealthTiming::StartPeriod,
                HealthTiming::StartInterval,
            ]
            .into_iter()
            .filter(|timing| !written.contains(timing))
            .collect(),
        }
    }

    fn image(test: &[&str]) -> ImageHealthcheck {
        ImageHealthcheck {
            test: test.iter().map(|word| word.to_string()).collect(),
            interval: 30 * SECOND,
            timeout: 3 * SECOND,
            retries: 5,
            start_period: 10 * SECOND,
            start_interval: SECOND / 2,
            ..ImageHealthcheck::default()
        }
    }

    fn words(words: &[&str]) -> Vec<String> {
        words.iter().map(|word| word.to_string()).collect()
    }

    #[test]
    fn cmd_is_run_as_it_is_and_cmd_shell_by_the_image_shell() {
        assert_eq!(
            image(&["CMD", "pg_isready", "-q"]).command(),
            Some(words(&["pg_isready", "-q"]))
        );
        assert_eq!(
            image(&[
                "CMD-SHELL",
                "wget -q -O /dev/null http://127.0.0.1:8080/ || exit 1"
            ])
            .command(),
            Some(words(&[
                "/bin/sh",
                "-c",
                "wget -q -O /dev/null http://127.0.0.1:8080/ || exit 1"
            ]))
        );
        let powershell = ImageHealthcheck {
            shell: words(&["pwsh", "-Command"]),
            ..image(&["CMD-SHELL", "exit 0"])
        };
        assert_eq!(
            powershell.command(),
            Some(words(&["pwsh", "-Command", "exit 0"]))
        );
    }

    #[test]
    fn no_healthcheck_none_and_malformed_tests_give_no_command() {
        assert_eq!(image(&[]).command(), None);
        assert_eq!(image(&["NONE"]).command(), None);
        assert_eq!(image(&["CMD"]).command(), None);
        assert_eq!(image(&["CMD-SHELL"]).command(), None);
        assert_eq!(resolve(&from_image(&[]), &image(&["NONE"])), None);
    }

    #[test]
    fn the_image_timings_fill_what_the_file_left_out() {
        let resolved = resolve(&from_image(&[]), &image(&["CMD", "true"])).unwrap();
        assert_eq!(resolved.probe, HealthProbe::Command(words(&["true"])));
        assert_eq!(resolved.interval, Duration::from_secs(30));
        assert_eq!(resolved.timeout, Duration::from_secs(3));
        assert_eq!(resolved.retries, 5);
        assert_eq!(resolved.start_period, Duration::from_secs(10));
        assert_eq!(resolved.start_interval, Some(Duration::from_millis(500)));
        assert!(resolved.from_image.is_empty());
    }

    #[test]
    fn timings_the_file_wrote_win_over_the_image() {
        let written = from_image(&[HealthTiming::Interval, HealthTiming::Retries]);
        let resolved = resolve(&written, &image(&["CMD", "true"])).unwrap();
        assert_eq!(resolved.interval, Duration::from_secs(1));
        assert_eq!(resolved.retries, 9);
        assert_eq!(resolved.timeout, Duration::from_secs(3));
    }

    #[test]
    fn timings_the_image_leaves_unset_keep_the_defaults() {
        let bare = ImageHealthcheck {
            test: words(&["CMD", "true"]),
            ..ImageHealthcheck::default()
        };
        let resolved = resolve(&from_image(&[]), &bare).unwrap();
        assert_eq!(resolved.interval, Duration::from_secs(1));
        assert_eq!(resolved.retries, 9);
        assert_eq!(resolved.start_interval, None);
    }

    #[test]
    fn a_written_probe_is_kept() {
        let written = Healthcheck {
            probe: HealthProbe::Tcp,
            ..from_image(&[])
        };
        assert_eq!(
            resolve(&written, &image(&["CMD", "true"])),
            Some(written.clone())
        );
    }
}

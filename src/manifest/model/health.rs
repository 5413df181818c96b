//! How a [`Healthcheck`] is shown (`sandbox config --json`): a probe taken from the image reads
//! `probe: image`, with only the timings the file wrote; the others come from the image at `up`.

use serde::ser::{Serialize, SerializeMap, Serializer};

use super::duration_text::format;
use super::{HealthProbe, Healthcheck};

/// A timing of a health check, as the file names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum HealthTiming {
    Interval,
    Timeout,
    Retries,
    StartPeriod,
    StartInterval,
}

impl Healthcheck {
    /// Whether `timing` is still to come from the image's `HEALTHCHECK`.
    pub fn from_image(&self, timing: HealthTiming) -> bool {
        self.probe == HealthProbe::Image && self.from_image.contains(&timing)
    }
}

impl Serialize for Healthcheck {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(None)?;
        map.serialize_entry("probe", &self.probe)?;
        let durations = [
            (HealthTiming::Interval, "interval", self.interval),
            (HealthTiming::Timeout, "timeout", self.timeout),
        ];
        for (timing, key, value) in durations {
            if !self.from_image(timing) {
                map.serialize_entry(key, &format(value))?;
            }
        }
        if !self.from_image(HealthTiming::Retries) {
            map.serialize_entry("retries", &self.retries)?;
        }
        if !self.from_image(HealthTiming::StartPeriod) {
            map.serialize_entry("start_period", &format(self.start_period))?;
        }
        if let Some(start_interval) = self.start_interval {
            map.serialize_entry("start_interval", &format(start_interval))?;
        }
        map.end()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn a_probe_from_the_image_shows_only_the_timings_the_file_wrote() {
        let check = Healthcheck {
            probe: HealthProbe::Image,
            interval: Duration::from_secs(5),
            timeout: Duration::from_secs(2),
            retries: 7,
            start_period: Duration::ZERO,
            start_interval: None,
            from_image: vec![
                HealthTiming::Interval,
                HealthTiming::Timeout,
                HealthTiming::StartPeriod,
                HealthTiming::StartInterval,
            ],
        };
        assert_eq!(
            serde_json::to_value(&check).unwrap(),
            serde_json::json!({"probe": "image", "retries": 7})
        );
        let written = Healthcheck {
            probe: HealthProbe::Tcp,
            from_image: Vec::new(),
            ..check
        };
        assert_eq!(
            serde_json::to_value(&written).unwrap(),
            serde_json::json!({"probe": "tcp", "interval": "5s", "timeout": "2s", "retries": 7, "start_period": "0s"})
        );
    }
}

//! The service keys that tune the container's cgroup beyond the common limits: the CFS and
//! real-time CPU settings, `mem_swappiness`, `blkio_config` and `gpus` (a device request, as
//! compose sends it).

use super::super::super::model::{Blkio, BlkioRate, BlkioWeight, DeviceRequest, Resources};
use super::super::super::node::{Node, Value};
use super::super::check::{describe, join, Checker, Fields, Kind};
use super::deploy::device_requests;
use super::values::size;
use crate::manifest::parse_duration;

const BLKIO_KEYS: &[&str] = &[
    "weight",
    "weight_device",
    "device_read_bps",
    "device_read_iops",
    "device_write_bps",
    "device_write_iops",
];
const WEIGHT_DEVICE_KEYS: &[&str] = &["path", "weight"];
const RATE_KEYS: &[&str] = &["path", "rate"];

/// Reads the CPU, swappiness, block IO and GPU keys of the service map at `field` into
/// `resources`.
pub fn read(
    checker: &mut Checker<'_>,
    fields: &Fields<'_>,
    field: &str,
    resources: &mut Resources,
) {
    let key = |key: &str| join(field, key);
    let microseconds = |checker: &mut Checker<'_>, name: &str| {
        fields
            .get(name)
            .and_then(|node| read_microseconds(checker, node, &key(name)))
    };
    resources.cpu_period = microseconds(checker, "cpu_period");
    resources.cpu_quota = microseconds(checker, "cpu_quota");
    resources.cpu_rt_period = microseconds(checker, "cpu_rt_period");
    resources.cpu_rt_runtime = microseconds(checker, "cpu_rt_runtime");
    resources.memory_swappiness = fields
        .get("mem_swappiness")
        .and_then(|node| checker.integer_in(node, &key("mem_swappiness"), 0..=100));
    if let Some(node) = fields.get("blkio_config") {
        resources.blkio = read_blkio(checker, node, &key("blkio_config"));
    }
    if let Some(node) = fields.get("gpus") {
        resources
            .device_requests
            .extend(read_gpus(checker, node, &key("gpus")));
    }
}

/// A count of microseconds, or a duration (`100ms`); `-1` (no limit) passes as written.
fn read_microseconds(checker: &mut Checker<'_>, node: &Node, field: &str) -> Option<i64> {
    let scalar = checker.scalar(node, field, "microseconds or a duration")?;
    let parsed = match scalar.kind {
        Kind::Integer(value) => Some(value),
        _ => scalar.text.trim().parse::<i64>().ok().or_else(|| {
            parse_duration(&scalar.text)
                .and_then(|duration| i64::try_from(duration.as_micros()).ok())
        }),
    };
    if parsed.is_none() {
        checker.error_with_hint(
            node,
            field,
            format!("`{}` is neither microseconds nor a duration", scalar.text),
            "write a number of microseconds like `100000`, or a duration like `100ms`",
        );
    }
    parsed
}

/// `gpus: all`, or a list of device requests (the form of `deploy.resources.reservations.devices`,
/// with `capabilities` defaulting to `[gpu]`).
fn read_gpus(checker: &mut Checker<'_>, node: &Node, field: &str) -> Vec<DeviceRequest> {
    if let Value::Scalar { .. } = node.value {
        return match checker.string(node, field).as_deref() {
            Some("all") => vec![gpu_request(Some(-1))],
            Some(other) => {
                checker.error_with_hint(
                    node,
                    field,
                    format!("`gpus: {other}` is not a GPU request"),
                    "write `gpus: all`, or a list like `gpus: [{driver: nvidia, count: 1}]`",
                );
                Vec::new()
            }
            None => Vec::new(),
        };
    }
    device_requests(checker, node, field, Some("gpu"))
}

fn gpu_request(count: Option<i64>) -> DeviceRequest {
    DeviceRequest {
        count,
        capabilities: vec!["gpu".to_string()],
        ..DeviceRequest::default()
    }
}

fn read_blkio(checker: &mut Checker<'_>, node: &Node, field: &str) -> Blkio {
    let mut blkio = Blkio::default();
    let Some(fields) = checker.fields(node, field, "`blkio_config`", BLKIO_KEYS) else {
        return blkio;
    };
    let key = |key: &str| join(field, key);
    blkio.weight = fields
        .get("weight")
        .and_then(|node| checker.integer_in(node, &key("weight"), 10..=1000))
        .and_then(|weight| u16::try_from(weight).ok());
    if let Some(node) = fields.get("weight_device") {
        for (item, item_field) in items(checker, node, &key("weight_device")) {
            let Some(entry) = checker.fields(
                item,
                &item_field,
                "a weight_device entry",
                WEIGHT_DEVICE_KEYS,
            ) else {
                continue;
            };
            let path = required(checker, item, &item_field, entry.get("path"), "path")
                .and_then(|path| checker.string(path, &join(&item_field, "path")));
            let weight = required(checker, item, &item_field, entry.get("weight"), "weight")
                .and_then(|weight| {
                    checker.integer_in(weight, &join(&item_field, "weight"), 10..=1000)
                })
                .and_then(|weight| u16::try_from(weight).ok());
            if let (Some(path), Some(weight)) = (path, weight) {
                blkio.weight_device.push(BlkioWeight { path, weight });
            }
        }
    }
    let mut rates = |name: &str, bytes: bool| -> Vec<BlkioRate> {
        let Some(node) = fields.get(name) else {
            return Vec::new();
        };
        let mut rates = Vec::new();
        for (item, item_field) in items(checker, node, &key(name)) {
            let Some(entry) = checker.fields(item, &item_field, "a block IO limit", RATE_KEYS)
            else {
                continue;
            };
            let path = required(checker, item, &item_field, entry.get("path"), "path")
                .and_then(|path| checker.string(path, &join(&item_field, "path")));
            let rate_field = join(&item_field, "rate");
            let rate =
                required(checker, item, &item_field, entry.get("rate"), "rate").and_then(|rate| {
                    if bytes {
                        size(checker, rate, &rate_field)
                    } else {
                        checker
                            .integer_in(rate, &rate_field, 0..=i64::MAX)
                            .and_then(|rate| u64::try_from(rate).ok())
                    }
                });
            if let (Some(path), Some(rate)) = (path, rate) {
                rates.push(BlkioRate { path, rate });
            }
        }
        rates
    };
    blkio.device_read_bps = rates("device_read_bps", true);
    blkio.device_write_bps = rates("device_write_bps", true);
    blkio.device_read_iops = rates("device_read_iops", false);
    blkio.device_write_iops = rates("device_write_iops", false);
    blkio
}

/// The items of a list with their fields; reports anything else.
fn items<'n>(checker: &mut Checker<'_>, node: &'n Node, field: &str) -> Vec<(&'n Node, String)> {
    let Value::Sequence(items) = &node.value else {
        let found = describe(node);
        checker.error_with_hint(
            node,
            field,
            format!("expected a list, found {found}"),
            "write one `- path: /dev/sda` entry per device",
        );
        return Vec::new();
    };
    items
        .iter()
        .enumerate()
        .map(|(index, item)| (item.as_ref(), format!("{field}[{index}]")))
        .collect()
}

fn required<'n>(
    checker: &mut Checker<'_>,
    item: &Node,
    field: &str,
    value: Option<&'n Node>,
    name: &str,
) -> Option<&'n Node> {
    if value.is_none() {
        checker.error(item, field, format!("missing field `{name}`"));
    }
    value
}

#[cfg(test)]
mod tests {
    use crate::manifest::{load, LoadOptions, Resources};

    /// The resources of service `app` written with `keys` (one per line), or the error messages.
    fn resources(keys: &str) -> Result<Resources, Vec<String>> {
        let folder = tempfile::tempdir().expect("temporary folder");
        let indented: String = keys.lines().map(|line| format!("    {line}\n")).collect();
        let text = format!("services:\n  app:\n    image: busybox\n{indented}");
        std::fs::write(folder.path().join("compose.yaml"), text).expect("write");
        let options = LoadOptions {
            files: vec!["compose.yaml".into()],
            working_dir: folder.path().to_path_buf(),
            ..LoadOptions::default()
        };
        match load(&options) {
            Ok(manifest) => Ok(manifest.services["app"].container.resources.clone()),
            Err(errors) => Err(errors
                .errors
                .into_iter()
                .map(|error| error.message)
                .collect()),
        }
    }

    #[test]
    fn cpu_settings_take_microseconds_or_durations() {
        let resources = resources(
            "cpu_period: 100ms\ncpu_quota: 50000\ncpu_rt_runtime: '400ms'\ncpu_rt_period: 1s",
        )
        .expect("loads");
        assert_eq!(resources.cpu_period, Some(100_000));
        assert_eq!(resources.cpu_quota, Some(50_000));
        assert_eq!(resources.cpu_rt_runtime, Some(400_000));
        assert_eq!(resources.cpu_rt_period, Some(1_000_000));
    }

    #[test]
    fn blkio_rates_are_sizes_and_counts() {
        let resources = resources(
            "blkio_config:\n  weight: 300\n  weight_device: [{path: /dev/sda, weight: 400}]\n  device_read_bps: [{path: /dev/sdb, rate: '12mb'}]\n  device_write_iops: [{path: /dev/sdb, rate: 30}]",
        )
        .expect("loads");
        assert_eq!(resources.blkio.weight, Some(300));
        assert_eq!(resources.blkio.weight_device[0].weight, 400);
        assert_eq!(resources.blkio.device_read_bps[0].rate, 12 << 20);
        assert_eq!(resources.blkio.device_write_iops[0].rate, 30);
    }

    #[test]
    fn bad_values_are_errors() {
        let errors = resources(
            "cpu_period: soon\nmem_swappiness: 101\nblkio_config: {weight: 5, device_read_bps: [{path: /dev/sda}]}\ngpus: some",
        )
        .expect_err("refused");
        assert_eq!(errors.len(), 5, "{errors:?}");
    }

    #[test]
    fn gpus_ask_for_gpu_devices() {
        let all = resources("gpus: all").expect("loads");
        assert_eq!(all.device_requests[0].count, Some(-1));
        assert_eq!(all.device_requests[0].capabilities, vec!["gpu"]);
        let one = resources("gpus: [{driver: nvidia, count: 1}]").expect("loads");
        assert_eq!(one.device_requests[0].count, Some(1));
        assert_eq!(one.device_requests[0].capabilities, vec!["gpu"]);
    }
}

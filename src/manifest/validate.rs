//! Checks across services: dependencies exist, no cycles, `healthy` only on services that can have
//! a health check (one that writes none gets its image's, see [`HealthProbe::Image`]), named
//! volumes declared, no host port published twice.

use std::collections::{BTreeMap, BTreeSet};

#[cfg(doc)]
use super::model::HealthProbe;
use super::model::{DependencyCondition, PortPublish, VolumeSpec};
use super::schema::smoke::CheckDraft;
use super::schema::{Checker, Place, ServiceDraft};
use super::suggest;

/// Runs every check, reporting into `checker`.
pub fn validate(
    checker: &mut Checker<'_>,
    services: &mut [ServiceDraft],
    volumes: &BTreeMap<String, VolumeSpec>,
    smoke: &[CheckDraft],
    disabled: &BTreeMap<String, Vec<String>>,
) {
    let from_image = check_dependencies(checker, services, disabled);
    for draft in services.iter_mut() {
        if from_image.contains(&draft.service.name) {
            draft.service.healthcheck = Some(super::schema::healthcheck_from_image());
        }
    }
    check_cycles(checker, services);
    check_volumes(checker, services, volumes);
    check_host_ports(checker, services);
    check_smoke_targets(checker, services, smoke);
}

/// A check sent straight to a service needs that service, with an HTTP `port`.
fn check_smoke_targets(checker: &mut Checker<'_>, services: &[ServiceDraft], smoke: &[CheckDraft]) {
    let names: Vec<&str> = services
        .iter()
        .map(|draft| draft.service.name.as_str())
        .collect();
    for draft in smoke {
        let (crate::smoke::Target::Service(service), Some(place)) =
            (&draft.check.target, &draft.service_place)
        else {
            continue;
        };
        match services.iter().find(|other| &other.service.name == service) {
            None => {
                let hint = match suggest::did_you_mean(service, names.iter().copied()) {
                    Some(suggestion) => format!("did you mean `{suggestion}`?"),
                    None => format!("the services are: {}", suggest::list(&names)),
                };
                report(
                    checker,
                    place,
                    format!(
                        "smoke check `{}` targets unknown service `{service}`",
                        draft.check.name
                    ),
                    Some(hint),
                );
            }
            Some(other) if other.service.port.is_none() => report(
                checker,
                place,
                format!(
                    "smoke check `{}` targets service `{service}`, which has no `port`",
                    draft.check.name
                ),
                Some(format!(
                    "set `port:` on service `{service}` to the HTTP port it listens on"
                )),
            ),
            Some(_) => {}
        }
    }
}

fn report(checker: &mut Checker<'_>, place: &Place, message: String, hint: Option<String>) {
    checker.error_at(Some(place.span), &place.field, message, hint);
}

/// Returns the services that a dependent waits `healthy` for and that write no healthcheck: they
/// get their image's.
fn check_dependencies(
    checker: &mut Checker<'_>,
    services: &[ServiceDraft],
    disabled: &BTreeMap<String, Vec<String>>,
) -> BTreeSet<String> {
    let mut from_image = BTreeSet::new();
    let names: Vec<&str> = services
        .iter()
        .map(|draft| draft.service.name.as_str())
        .collect();
    for draft in services {
        for (dependency, place) in &draft.dependencies {
            let service = &draft.service.name;
            let Some(target) = services
                .iter()
                .find(|other| &other.service.name == dependency)
            else {
                if let Some(profiles) = disabled.get(dependency) {
                    let message = format!("service `{service}` depends on `{dependency}`, which is not enabled: it is only in profile {}", profiles.iter().map(|profile| format!("`{profile}`")).collect::<Vec<_>>().join(", "));
                    let hint = format!("enable it with `--profile {}` (or `COMPOSE_PROFILES`), or give `{service}` the same profile", profiles.first().map(String::as_str).unwrap_or_default());
                    report(checker, &place.place, message, Some(hint));
                    continue;
                }
                let hint = match suggest::did_you_mean(dependency, names.iter().copied()) {
                    Some(name) => format!("did you mean `{name}`?"),
                    None => format!("services in this manifest: {}", suggest::list(&names)),
                };
                let message = format!(
                    "service `{service}` depends on `{dependency}`, which is not a service"
                );
                report(checker, &place.place, message, Some(hint));
                continue;
            };
            let healthy =
                draft.service.depends_on.get(dependency) == Some(&DependencyCondition::Healthy);
            if !healthy || target.service.healthcheck.is_some() {
                continue;
            }
            let target = &target.service;
            let (why, fix) = if target.healthcheck_disabled {
                (
                    format!("`{dependency}` has its healthcheck disabled"),
                    format!("give `{dependency}` a probe (like `http: /health`) in place of `disable: true` / `test: [\"NONE\"]`"),
                )
            } else if target.external.is_some() {
                (
                    format!("`{dependency}` is a process on the host (`external:`), with no image to take a healthcheck from"),
                    format!("add a `healthcheck:` with a probe to `{dependency}` (like `http: /health`)"),
                )
            } else {
                from_image.insert(dependency.clone());
                continue;
            };
            let message =
                format!("service `{service}` waits for `{dependency}` to be healthy, but {why}");
            let hint = format!("{fix}, or use `condition: service_started`");
            report(
                checker,
                place.condition.as_ref().unwrap_or(&place.place),
                message,
                Some(hint),
            );
        }
    }
    from_image
}

/// Every cycle once, named whole (`user → item → user`), reported at the edge that closes it.
fn check_cycles(checker: &mut Checker<'_>, services: &[ServiceDraft]) {
    let graph: BTreeMap<&str, Vec<&str>> = services
        .iter()
        .map(|draft| {
            (
                draft.service.name.as_str(),
                draft
                    .service
                    .depends_on
                    .keys()
                    .map(String::as_str)
                    .collect(),
            )
        })
        .collect();
    for cycle in find_cycles(&graph) {
        let (Some(first), Some(second)) = (cycle.first(), cycle.get(1)) else {
            continue;
        };
        let Some(place) = services
            .iter()
            .find(|draft| draft.service.name == *first)
            .and_then(|draft| draft.dependencies.get(*second))
        else {
            continue;
        };
        let message = if cycle.len() == 2 {
            format!("service `{first}` depends on itself")
        } else {
            format!("dependency cycle: {}", cycle.join(" → "))
        };
        let hint = "remove one of these `depends_on` entries".to_string();
        report(checker, &place.place, message, Some(hint));
    }
}

/// Cycles of `graph` (edges to unknown nodes ignored), each as a path that ends where it starts,
/// starting at its smallest name; sorted, no duplicates.
pub fn find_cycles<'a>(graph: &BTreeMap<&'a str, Vec<&'a str>>) -> Vec<Vec<&'a str>> {
    let mut cycles = BTreeSet::new();
    let mut done: BTreeSet<&str> = BTreeSet::new();
    for &start in graph.keys() {
        if done.contains(start) {
            continue;
        }
        // Iterative depth-first search: (node, index of the next edge to follow).
        let mut path: Vec<(&str, usize)> = vec![(start, 0)];
        while let Some((node, next)) = path.last().copied() {
            let edges = graph.get(node).map(Vec::as_slice).unwrap_or_default();
            let Some(&target) = edges.get(next) else {
                done.insert(node);
                path.pop();
                continue;
            };
            if let Some(last) = path.last_mut() {
                last.1 += 1;
            }
            if !graph.contains_key(target) || done.contains(target) {
                continue;
            }
            if let Some(position) = path.iter().position(|(on_path, _)| *on_path == target) {
                cycles.insert(rotate(
                    path[position..].iter().map(|(name, _)| *name).collect(),
                ));
            } else {
                path.push((target, 0));
            }
        }
    }
    cycles.into_iter().collect()
}

/// `[b, c, a]` → `[a, b, c, a]`.
fn rotate(mut cycle: Vec<&str>) -> Vec<&str> {
    let smallest = (0..cycle.len())
        .min_by_key(|index| cycle[*index])
        .unwrap_or(0);
    cycle.rotate_left(smallest);
    if let Some(first) = cycle.first().copied() {
        cycle.push(first);
    }
    cycle
}

fn check_volumes(
    checker: &mut Checker<'_>,
    services: &[ServiceDraft],
    volumes: &BTreeMap<String, VolumeSpec>,
) {
    for draft in services {
        for (name, place) in &draft.named_volumes {
            if volumes.contains_key(name) {
                continue;
            }
            let message = format!(
                "service `{}` uses volume `{name}`, which is not declared",
                draft.service.name
            );
            let hint = match suggest::did_you_mean(name, volumes.keys().map(String::as_str)) {
                Some(declared) => format!("did you mean `{declared}`?"),
                None => format!("declare it at the top level: `volumes: {{{name}: {{}}}}`; or write `./{name}` for a folder beside the manifest"),
            };
            report(checker, place, message, Some(hint));
        }
    }
}

/// Two publishes collide when protocol and port match and the addresses overlap (`0.0.0.0` and `::`
/// overlap every address).
fn collide(first: &PortPublish, second: &PortPublish) -> bool {
    let wildcard = |ip: &str| ip == "0.0.0.0" || ip == "::";
    first.host_port.is_some()
        && first.host_port == second.host_port
        && first.protocol == second.protocol
        && (first.host_ip == second.host_ip
            || wildcard(&first.host_ip)
            || wildcard(&second.host_ip))
}

fn check_host_ports(checker: &mut Checker<'_>, services: &[ServiceDraft]) {
    let mut seen: Vec<(&PortPublish, &str, &Place)> = Vec::new();
    for draft in services {
        let service = draft.service.name.as_str();
        for (port, place) in draft.service.ports.iter().zip(&draft.ports) {
            // A host range lets the engine pick a free port of it for each replica.
            let (Some(host_port), None) = (port.host_port, port.host_port_end) else {
                continue;
            };
            if draft.service.replicas > 1 {
                let message = format!("service `{service}` has {} replicas but publishes the fixed host port {host_port}", draft.service.replicas);
                let hint = format!("write only the container port (`- \"{}\"`) so each replica gets a free host port", port.container_port);
                report(checker, place, message, Some(hint));
            }
            if let Some((other_port, other, other_place)) =
                seen.iter().find(|(seen_port, ..)| collide(seen_port, port))
            {
                let message = format!(
                    "host port {host_port}/{} is published twice: on {} by `{service}` and on {} by `{other}`",
                    port.protocol, port.host_ip, other_port.host_ip
                );
                let hint = format!(
                    "the other publish is `{}` on line {}; choose another host port",
                    other_place.field, other_place.span.line
                );
                report(checker, place, message, Some(hint));
            }
            seen.push((port, service, place));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn graph<'a>(edges: &[(&'a str, &[&'a str])]) -> BTreeMap<&'a str, Vec<&'a str>> {
        edges
            .iter()
            .map(|(node, targets)| (*node, targets.to_vec()))
            .collect()
    }

    #[test]
    fn no_cycles_in_a_dag() {
        let dag = graph(&[("user", &["item", "db"]), ("item", &["db"]), ("db", &[])]);
        assert!(find_cycles(&dag).is_empty());
    }

    #[test]
    fn finds_a_cycle_once_starting_at_its_smallest_name() {
        let cyclic = graph(&[
            ("user", &["item"]),
            ("item", &["stock"]),
            ("stock", &["user"]),
        ]);
        assert_eq!(
            find_cycles(&cyclic),
            vec![vec!["item", "stock", "user", "item"]]
        );
    }

    #[test]
    fn finds_self_dependencies_and_separate_cycles() {
        let cyclic = graph(&[
            ("a", &["a"]),
            ("b", &["c"]),
            ("c", &["b"]),
            ("d", &["b", "missing"]),
        ]);
        assert_eq!(
            find_cycles(&cyclic),
            vec![vec!["a", "a"], vec!["b", "c", "b"]]
        );
    }

    #[test]
    fn wildcard_addresses_collide_with_any_address() {
        let port =
            |ip: &str, host: u16, protocol: &str| PortPublish::new(ip, Some(host), 80, protocol);
        assert!(collide(
            &port("127.0.0.1", 80, "tcp"),
            &port("127.0.0.1", 80, "tcp")
        ));
        assert!(collide(
            &port("0.0.0.0", 80, "tcp"),
            &port("127.0.0.1", 80, "tcp")
        ));
        assert!(!collide(
            &port("127.0.0.1", 80, "tcp"),
            &port("127.0.0.2", 80, "tcp")
        ));
        assert!(!collide(
            &port("127.0.0.1", 80, "tcp"),
            &port("127.0.0.1", 80, "udp")
        ));
        assert!(!collide(
            &port("127.0.0.1", 80, "tcp"),
            &port("127.0.0.1", 81, "tcp")
        ));
    }
}

//! What to do to get from the containers the engine has to the ones the manifest wants. Pure: no I/O,
//! so it carries most of the engine's unit tests.

use std::collections::{BTreeMap, BTreeSet};

use super::docker::ObservedContainer;
use super::spec::ContainerSpec;

/// The action for one replica.
#[derive(Debug, Clone, PartialEq)]
pub enum ReplicaAction {
    /// No container yet.
    Create(ContainerSpec),
    /// The container's config hash or image changed: replace it.
    Recreate {
        old: ObservedContainer,
        spec: ContainerSpec,
    },
    /// The container matches; start it if it is not running.
    Keep {
        container: ObservedContainer,
        spec: ContainerSpec,
    },
}

/// What happens to one service.
#[derive(Debug, Clone, PartialEq)]
pub struct ServicePlan {
    pub service: String,
    pub replicas: Vec<ReplicaAction>,
    /// Replicas above the wanted count (scale down) and duplicates.
    pub remove: Vec<ObservedContainer>,
}

/// The whole plan.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Plan {
    pub services: BTreeMap<String, ServicePlan>,
    /// Containers of services the manifest no longer has.
    pub orphans: Vec<ObservedContainer>,
}

impl Plan {
    /// Whether applying the plan changes nothing on the engine (every replica kept and running).
    pub fn is_noop(&self) -> bool {
        self.orphans.is_empty()
            && self.services.values().all(|plan| {
                plan.remove.is_empty()
                    && plan.replicas.iter().all(|action| {
                        matches!(action, ReplicaAction::Keep { container, .. } if container.state == "running")
                    })
            })
    }
}

/// Plans `desired` (per service, one spec per replica, hash label set) against `observed`.
/// `image_ids` maps each desired image to its current id so a rebuilt image recreates its
/// containers. `all_services` is every service in the manifest: containers of other services are
/// orphans; containers of manifest services that were not selected are left alone.
pub fn plan(
    desired: &BTreeMap<String, Vec<ContainerSpec>>,
    observed: &[ObservedContainer],
    image_ids: &BTreeMap<String, String>,
    all_services: &BTreeSet<String>,
) -> Plan {
    let mut result = Plan::default();
    for container in observed {
        if !all_services.contains(&container.service) {
            result.orphans.push(container.clone());
        }
    }
    for (service, specs) in desired {
        let mut existing: Vec<&ObservedContainer> = observed
            .iter()
            .filter(|container| &container.service == service)
            .collect();
        // Newest first, so the freshest container of a replica is the one kept.
        existing.sort_by_key(|container| std::cmp::Reverse(container.created));
        let mut service_plan = ServicePlan {
            service: service.clone(),
            replicas: Vec::new(),
            remove: Vec::new(),
        };
        let mut claimed = BTreeSet::new();
        for spec in specs {
            let current = existing.iter().find(|container| {
                container.replica == spec.replica && !claimed.contains(&container.id)
            });
            let action = match current {
                None => ReplicaAction::Create(spec.clone()),
                Some(container) => {
                    claimed.insert(container.id.clone());
                    let wanted_hash = spec.labels.get(super::labels::CONFIG_HASH);
                    let image_changed = image_ids.get(&spec.image).is_some_and(|id| {
                        !container.image_id.is_empty() && id != &container.image_id
                    });
                    if wanted_hash == Some(&container.config_hash) && !image_changed {
                        ReplicaAction::Keep {
                            container: (*container).clone(),
                            spec: spec.clone(),
                        }
                    } else {
                        ReplicaAction::Recreate {
                            old: (*container).clone(),
                            spec: spec.clone(),
                        }
                    }
                }
            };
            service_plan.replicas.push(action);
        }
        service_plan.remove = existing
            .into_iter()
            .filter(|container| !claimed.contains(&container.id))
            .cloned()
            .collect();
        result.services.insert(service.clone(), service_plan);
    }
    result
}

/// Plans the mesh forwarders like replicas: `desired` holds one spec (replica 0) per meshed
/// service. A forwarder whose service is neither meshed now nor `untouched` (a service this `up`
/// leaves alone) is an orphan: its service opted out, lost its port or left the manifest.
pub fn forwarders(
    desired: &BTreeMap<String, Vec<ContainerSpec>>,
    observed: &[ObservedContainer],
    untouched: BTreeSet<String>,
) -> Plan {
    let mut kept = untouched;
    kept.extend(desired.keys().cloned());
    // The forwarder image's tag names its binary: a new one is a new spec, hence a new hash.
    plan(desired, observed, &BTreeMap::new(), &kept)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::labels;
    use crate::manifest::RestartPolicy;

    fn spec(service: &str, replica: u32, hash: &str) -> ContainerSpec {
        ContainerSpec {
            name: labels::container_name("p", service, replica),
            service: service.to_string(),
            replica,
            hostname: String::new(),
            image: "demo:1".to_string(),
            command: None,
            entrypoint: None,
            environment: vec![],
            labels: BTreeMap::from([(labels::CONFIG_HASH.to_string(), hash.to_string())]),
            publishes: vec![],
            volumes: vec![],
            network_mode: "p_default".to_string(),
            networks: vec![],
            links: vec![],
            restart: RestartPolicy::No,
            working_dir: None,
            user: None,
            extra_hosts: vec![],
            files: vec![],
            container: Default::default(),
            healthcheck_disabled: false,
            exposed: vec![],
            volumes_from: vec![],
        }
    }

    fn observed(service: &str, replica: u32, hash: &str, id: &str) -> ObservedContainer {
        ObservedContainer {
            id: id.to_string(),
            name: labels::container_name("p", service, replica),
            service: service.to_string(),
            replica,
            config_hash: hash.to_string(),
            image_id: "sha256:aaa".to_string(),
            state: "running".to_string(),
            status: "Up".to_string(),
            created: 1,
            ip: None,
            addresses: vec![],
            ports: vec![],
            labels: Default::default(),
        }
    }

    fn services(names: &[&str]) -> BTreeSet<String> {
        names.iter().map(|name| name.to_string()).collect()
    }

    fn images() -> BTreeMap<String, String> {
        BTreeMap::from([("demo:1".to_string(), "sha256:aaa".to_string())])
    }

    #[test]
    fn a_fresh_project_creates_every_replica() {
        let desired = BTreeMap::from([(
            "web".to_string(),
            vec![spec("web", 1, "h"), spec("web", 2, "h")],
        )]);
        let plan = plan(&desired, &[], &images(), &services(&["web"]));
        assert!(matches!(
            plan.services["web"].replicas[..],
            [ReplicaAction::Create(_), ReplicaAction::Create(_)]
        ));
        assert!(!plan.is_noop());
    }

    #[test]
    fn unchanged_running_containers_are_kept_and_the_plan_is_a_noop() {
        let desired = BTreeMap::from([("web".to_string(), vec![spec("web", 1, "h")])]);
        let plan = plan(
            &desired,
            &[observed("web", 1, "h", "c1")],
            &images(),
            &services(&["web"]),
        );
        assert!(matches!(
            plan.services["web"].replicas[0],
            ReplicaAction::Keep { .. }
        ));
        assert!(plan.is_noop());
    }

    #[test]
    fn a_changed_hash_recreates_only_that_service() {
        let desired = BTreeMap::from([
            ("web".to_string(), vec![spec("web", 1, "new")]),
            ("db".to_string(), vec![spec("db", 1, "h")]),
        ]);
        let observed = [
            observed("web", 1, "old", "c1"),
            observed("db", 1, "h", "c2"),
        ];
        let plan = plan(&desired, &observed, &images(), &services(&["web", "db"]));
        assert!(matches!(
            plan.services["web"].replicas[0],
            ReplicaAction::Recreate { .. }
        ));
        assert!(matches!(
            plan.services["db"].replicas[0],
            ReplicaAction::Keep { .. }
        ));
    }

    #[test]
    fn a_rebuilt_image_recreates_its_containers() {
        let desired = BTreeMap::from([("web".to_string(), vec![spec("web", 1, "h")])]);
        let new_image = BTreeMap::from([("demo:1".to_string(), "sha256:bbb".to_string())]);
        let plan = plan(
            &desired,
            &[observed("web", 1, "h", "c1")],
            &new_image,
            &services(&["web"]),
        );
        assert!(matches!(
            plan.services["web"].replicas[0],
            ReplicaAction::Recreate { .. }
        ));
    }

    #[test]
    fn scaling_down_removes_the_extra_replicas_and_keeps_the_rest() {
        let desired = BTreeMap::from([("web".to_string(), vec![spec("web", 1, "h")])]);
        let observed = [
            observed("web", 1, "h", "c1"),
            observed("web", 2, "h", "c2"),
            observed("web", 3, "h", "c3"),
        ];
        let plan = plan(&desired, &observed, &images(), &services(&["web"]));
        assert!(matches!(
            plan.services["web"].replicas[0],
            ReplicaAction::Keep { .. }
        ));
        let removed: Vec<&str> = plan.services["web"]
            .remove
            .iter()
            .map(|c| c.id.as_str())
            .collect();
        assert_eq!(removed, ["c2", "c3"]);
    }

    #[test]
    fn containers_of_removed_services_are_orphans_but_unselected_services_are_left_alone() {
        let desired = BTreeMap::from([("web".to_string(), vec![spec("web", 1, "h")])]);
        let observed = [
            observed("web", 1, "h", "c1"),
            observed("old", 1, "h", "c2"),
            observed("db", 1, "h", "c3"),
        ];
        let plan = plan(&desired, &observed, &images(), &services(&["web", "db"]));
        assert_eq!(plan.orphans.len(), 1);
        assert_eq!(plan.orphans[0].service, "old");
        assert!(!plan.services.contains_key("db"));
    }

    fn forwarder(service: &str, hash: &str, id: &str) -> ObservedContainer {
        ObservedContainer {
            name: labels::forwarder_name("p", service),
            replica: 0,
            ..observed(service, 0, hash, id)
        }
    }

    #[test]
    fn forwarders_are_kept_recreated_when_changed_and_removed_when_their_service_leaves_the_mesh() {
        let mut item = spec("item", 0, "h");
        item.name = labels::forwarder_name("p", "item");
        let mut user = spec("user", 0, "new");
        user.name = labels::forwarder_name("p", "user");
        let desired = BTreeMap::from([
            ("item".to_string(), vec![item]),
            ("user".to_string(), vec![user]),
        ]);
        let observed = [
            forwarder("item", "h", "f1"),
            forwarder("user", "old", "f2"),
            forwarder("private", "h", "f3"),
            forwarder("gone", "h", "f4"),
            forwarder("later", "h", "f5"),
        ];
        let plan = forwarders(&desired, &observed, services(&["later"]));
        assert!(matches!(
            plan.services["item"].replicas[..],
            [ReplicaAction::Keep { .. }]
        ));
        assert!(matches!(
            plan.services["user"].replicas[..],
            [ReplicaAction::Recreate { .. }]
        ));
        let removed: Vec<&str> = plan.orphans.iter().map(|c| c.id.as_str()).collect();
        assert_eq!(
            removed,
            ["f3", "f4"],
            "opted out and removed services lose their forwarders; unselected ones keep them"
        );
    }

    #[test]
    fn a_stopped_matching_container_is_kept_but_the_plan_is_not_a_noop() {
        let desired = BTreeMap::from([("web".to_string(), vec![spec("web", 1, "h")])]);
        let mut stopped = observed("web", 1, "h", "c1");
        stopped.state = "exited".to_string();
        let plan = plan(&desired, &[stopped], &images(), &services(&["web"]));
        assert!(matches!(
            plan.services["web"].replicas[0],
            ReplicaAction::Keep { .. }
        ));
        assert!(!plan.is_noop());
    }
}

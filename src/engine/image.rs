//! Getting every image a sandbox needs onto the engine, as each service's `pull_policy` says:
//! `missing` (the default) uses the engine's copy, else builds from `build:`, else pulls; `always`
//! pulls; `never` never pulls; `build` builds; `daily`/`weekly`/`every_<duration>` pull when the copy
//! is older. Each distinct image is handled once, all in parallel.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use futures_util::StreamExt;

use super::docker::{BuildOutput, Docker};
use super::error::EngineError;
use super::image_health;
use crate::events::{Event, EventSink, Step};
use crate::manifest::{
    Build, DependencyCondition, HealthProbe, HealthTiming, Healthcheck, Manifest, PullPolicy,
    Service,
};

/// How many lines of build output an error report keeps.
const BUILD_OUTPUT_KEPT: usize = 30;

/// What to do for one image, decided from its pull policy and what the engine has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ImageStep {
    /// Run the image the engine has.
    Use,
    Build,
    Pull,
    /// `pull_policy: never` and the engine lacks the image.
    Refuse,
}

/// One image to get: the service that reports it, its build and policy.
struct ImageJob {
    service: String,
    build: Option<Build>,
    policy: PullPolicy,
}

/// The manifest completed from the images on the engine, the one place where what a compose user
/// leaves to the image is filled in:
/// - the HTTP port of each container service that has none: its image's first exposed TCP port
///   (`EXPOSE 8080`);
/// - a healthcheck whose probe is the image's ([`HealthProbe::Image`]): its `HEALTHCHECK` command,
///   with the image's timings where the file gives none.
///
/// Images that are not on the engine are passed over. A service of `checked` (all when empty)
/// whose image has no `HEALTHCHECK` to take is an error.
pub async fn from_images(
    docker: &Docker,
    manifest: &Manifest,
    checked: &[String],
) -> Result<Manifest, EngineError> {
    let mut updated = manifest.clone();
    for service in updated.services.values_mut() {
        if service.external.is_some() || service.image.is_empty() {
            continue;
        }
        if service.port.is_none() {
            port_from_image(docker, service).await;
        }
        let Some(healthcheck) = &service.healthcheck else {
            continue;
        };
        if healthcheck.probe != HealthProbe::Image {
            continue;
        }
        let Some(image) = docker.image_healthcheck(&service.image).await? else {
            continue;
        };
        match image_health::resolve(healthcheck, &image) {
            Some(resolved) => service.healthcheck = Some(resolved),
            None if checked.is_empty() || checked.contains(&service.name) => {
                return Err(EngineError::NoImageHealthcheck {
                    service: service.name.clone(),
                    image: service.image.clone(),
                    waiting: waiting_for(manifest, &service.name, healthcheck),
                });
            }
            None => {}
        }
    }
    Ok(updated)
}

/// Sets `service.port` from its image's first exposed TCP port, if any.
async fn port_from_image(docker: &Docker, service: &mut Service) {
    let exposed = match docker.image_exposed_ports(&service.image).await {
        Ok(exposed) => exposed,
        Err(error) => {
            tracing::warn!(service = %service.name, %error, "cannot read the image's exposed ports");
            return;
        }
    };
    if let Some((port, _)) = exposed.iter().find(|(_, protocol)| protocol == "tcp") {
        service.port = Some(*port);
        service.port_from = Some(crate::manifest::PortSource::Image);
    }
}

/// For a healthcheck the file does not write (every timing from the image), the service that
/// waits for `service` to be healthy, to name in the error.
fn waiting_for(manifest: &Manifest, service: &str, healthcheck: &Healthcheck) -> Option<String> {
    let timings = [
        HealthTiming::Interval,
        HealthTiming::Timeout,
        HealthTiming::Retries,
        HealthTiming::StartPeriod,
        HealthTiming::StartInterval,
    ];
    if !timings
        .into_iter()
        .all(|timing| healthcheck.from_image(timing))
    {
        return None;
    }
    manifest
        .services
        .values()
        .find(|other| other.depends_on.get(service) == Some(&DependencyCondition::Healthy))
        .map(|other| other.name.clone())
}

/// Ensures the images of `services` exist; returns image → image id. `rebuild` builds images that
/// have a `build:` section even when present (`up --build`). Each service's `pull_policy` decides
/// between the engine's copy, a pull and a build, as compose does.
pub async fn ensure_images(
    docker: &Docker,
    manifest: &Manifest,
    services: &[String],
    rebuild: bool,
    events: &EventSink,
) -> Result<BTreeMap<String, String>, EngineError> {
    // One job per distinct image; the first service that builds it (else names it) reports it.
    let mut jobs: BTreeMap<String, ImageJob> = BTreeMap::new();
    for name in services {
        let service = &manifest.services[name];
        let job = jobs
            .entry(service.image.clone())
            .or_insert_with(|| ImageJob {
                service: service.name.clone(),
                build: None,
                policy: service.pull_policy,
            });
        if job.build.is_none() && service.build.is_some() {
            *job = ImageJob {
                service: service.name.clone(),
                build: service.build.clone(),
                policy: service.pull_policy,
            };
        }
    }
    let tasks = jobs.into_iter().map(|(image, job)| {
        let project = manifest.project.clone();
        async move {
            let id = ensure_image(docker, &project, &image, &job, rebuild, events).await?;
            Ok::<_, EngineError>((image, id))
        }
    });
    let results = futures_util::future::join_all(tasks).await;
    results.into_iter().collect()
}

/// The step for an image: `tagged_age` is how long ago the engine's copy was pulled or built
/// (`Some(None)`: present, age unknown; `None`: absent).
fn decide(
    policy: PullPolicy,
    has_build: bool,
    rebuild: bool,
    tagged_age: Option<Option<Duration>>,
) -> ImageStep {
    let present = tagged_age.is_some();
    let missing = if has_build {
        ImageStep::Build
    } else {
        ImageStep::Pull
    };
    match policy {
        _ if rebuild && has_build => ImageStep::Build,
        PullPolicy::Build => ImageStep::Build,
        PullPolicy::Always => ImageStep::Pull,
        PullPolicy::Never if present => ImageStep::Use,
        PullPolicy::Never if has_build => ImageStep::Build,
        PullPolicy::Never => ImageStep::Refuse,
        PullPolicy::Missing if present => ImageStep::Use,
        PullPolicy::Missing => missing,
        PullPolicy::Every(period) => match tagged_age {
            Some(Some(age)) if age < period => ImageStep::Use,
            Some(_) => ImageStep::Pull,
            None => missing,
        },
    }
}

async fn ensure_image(
    docker: &Docker,
    project: &str,
    image: &str,
    job: &ImageJob,
    rebuild: bool,
    events: &EventSink,
) -> Result<String, EngineError> {
    let started = Instant::now();
    let service = job.service.as_str();
    let record = docker.image_record(image).await?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs() as i64);
    let tagged_age = record.as_ref().map(|(_, tagged)| {
        tagged.map(|tagged| Duration::from_secs(now.saturating_sub(tagged).max(0) as u64))
    });
    let step = decide(job.policy, job.build.is_some(), rebuild, tagged_age);
    match (step, &job.build) {
        (ImageStep::Use, _) => {
            if let Some((id, _)) = record {
                return Ok(id);
            }
        }
        (ImageStep::Build, Some(build)) => {
            events.step(service, 0, Step::Building, image, started.elapsed());
            build_image(docker, project, service, image, build, events).await?;
            events.step(service, 0, Step::Built, image, started.elapsed());
        }
        (ImageStep::Refuse, _) | (ImageStep::Build, None) => {
            return Err(EngineError::ImageNotFound {
                image: image.to_string(),
                service: service.to_string(),
                reason: "`pull_policy: never` forbids pulling it".to_string(),
            })
        }
        (ImageStep::Pull, _) => {
            events.step(service, 0, Step::Pulling, image, started.elapsed());
            let pulled = docker
                .pull_image(image, |current, total| {
                    events.emit(Event::PullProgress {
                        service: service.to_string(),
                        image: image.to_string(),
                        current,
                        total,
                    })
                })
                .await;
            if let Err(reason) = pulled {
                return Err(match (record.is_some(), job.policy) {
                    (false, PullPolicy::Missing) => EngineError::ImageNotFound {
                        image: image.to_string(),
                        service: service.to_string(),
                        reason,
                    },
                    (_, policy) => EngineError::PullFailed {
                        image: image.to_string(),
                        service: service.to_string(),
                        policy: policy_name(policy),
                        reason,
                    },
                });
            }
            events.step(service, 0, Step::Pulled, image, started.elapsed());
        }
    }
    docker
        .image_id(image)
        .await?
        .ok_or_else(|| EngineError::ImageNotFound {
            image: image.to_string(),
            service: service.to_string(),
            reason: "the engine does not list the image after getting it".to_string(),
        })
}

/// The policy as the manifest spells it.
fn policy_name(policy: PullPolicy) -> String {
    match policy {
        PullPolicy::Missing => "missing".to_string(),
        PullPolicy::Always => "always".to_string(),
        PullPolicy::Never => "never".to_string(),
        PullPolicy::Build => "build".to_string(),
        PullPolicy::Every(period) => {
            format!("every_{}", crate::manifest::duration_text::format(period))
        }
    }
}

/// Name of the Dockerfile added to the context tar for `dockerfile_inline` (or for a Dockerfile
/// outside the context folder).
const INLINE_DOCKERFILE: &str = ".sandbox-inline.Dockerfile";

async fn build_image(
    docker: &Docker,
    project: &str,
    service: &str,
    image: &str,
    build: &Build,
    events: &EventSink,
) -> Result<(), EngineError> {
    let failed = |output: Vec<String>| EngineError::BuildFailed {
        service: service.to_string(),
        image: image.to_string(),
        output,
    };
    let (dockerfile, inline) = dockerfile_of(build).map_err(|error| failed(vec![error]))?;
    let context = tokio::task::spawn_blocking({
        let directory = build.context.clone();
        move || context_tar(&directory, inline.as_deref())
    })
    .await
    .map_err(|error| failed(vec![error.to_string()]))?
    .map_err(|error| {
        failed(vec![format!(
            "reading build context {}: {error}",
            build.context.display()
        )])
    })?;
    let mut stream = Box::pin(docker.build_image(image, &dockerfile, build, context, project));
    let mut kept: Vec<String> = Vec::new();
    let started = Instant::now();
    while let Some(output) = stream.next().await {
        match output {
            BuildOutput::Line(line) => {
                // The classic builder's bookkeeping says nothing about the user's build.
                if line.starts_with(" ---> ") || line.starts_with("Removing intermediate container")
                {
                    continue;
                }
                if line.starts_with("Step ") {
                    events.step(service, 0, Step::Building, line.clone(), started.elapsed());
                }
                kept.push(line);
                if kept.len() > BUILD_OUTPUT_KEPT {
                    kept.remove(0);
                }
            }
            BuildOutput::Error(message) => {
                kept.push(format!("error: {message}"));
                return Err(failed(last_step(kept)));
            }
        }
    }
    Ok(())
}

/// The Dockerfile's path in the context tar, and its text when it must be added to the tar
/// (`dockerfile_inline`, or a Dockerfile outside the context folder).
fn dockerfile_of(build: &Build) -> Result<(String, Option<String>), String> {
    if let Some(text) = &build.dockerfile_inline {
        return Ok((INLINE_DOCKERFILE.to_string(), Some(text.clone())));
    }
    let path = build.context.join(&build.dockerfile);
    let inside = match (path.canonicalize(), build.context.canonicalize()) {
        (Ok(path), Ok(context)) => path.starts_with(context),
        // A missing Dockerfile: let the builder say so.
        _ => true,
    };
    if inside {
        return Ok((build.dockerfile.clone(), None));
    }
    let text = std::fs::read_to_string(&path)
        .map_err(|error| format!("reading Dockerfile {}: {error}", path.display()))?;
    Ok((INLINE_DOCKERFILE.to_string(), Some(text)))
}

/// The output from the last `Step N/M` line on: the failing step and what it said.
fn last_step(lines: Vec<String>) -> Vec<String> {
    match lines.iter().rposition(|line| line.starts_with("Step ")) {
        Some(start) => lines[start..].to_vec(),
        None => lines,
    }
}

/// The build context as a tar stream, leaving out what `.dockerignore` names; `dockerfile` is added
/// as [`INLINE_DOCKERFILE`] when given.
fn context_tar(directory: &Path, dockerfile: Option<&str>) -> std::io::Result<Vec<u8>> {
    let ignore = DockerIgnore::read(directory);
    let mut builder = tar::Builder::new(Vec::new());
    builder.follow_symlinks(false);
    if let Some(text) = dockerfile {
        let mut header = tar::Header::new_gnu();
        header.set_size(text.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        builder.append_data(&mut header, INLINE_DOCKERFILE, text.as_bytes())?;
    }
    let mut pending = vec![directory.to_path_buf()];
    while let Some(folder) = pending.pop() {
        let mut entries: Vec<_> = std::fs::read_dir(&folder)?.collect::<Result<_, _>>()?;
        entries.sort_by_key(|entry| entry.file_name());
        for entry in entries {
            let path = entry.path();
            let relative = path.strip_prefix(directory).unwrap_or(&path);
            let relative_text = relative.to_string_lossy().replace('\\', "/");
            if ignore.excludes(&relative_text) {
                continue;
            }
            let file_type = entry.file_type()?;
            if file_type.is_dir() {
                builder.append_dir(relative, &path)?;
                pending.push(path);
            } else {
                builder.append_path_with_name(&path, relative)?;
            }
        }
    }
    builder.into_inner()
}

/// `.dockerignore` patterns (`*`, `**`, `?`, `!` exceptions; last match wins).
struct DockerIgnore {
    rules: Vec<(regex::Regex, bool)>,
}

impl DockerIgnore {
    fn read(directory: &Path) -> Self {
        let text = std::fs::read_to_string(directory.join(".dockerignore")).unwrap_or_default();
        let rules = text
            .lines()
            .map(str::trim)
            .filter(|line| !line.is_empty() && !line.starts_with('#'))
            .filter_map(|line| {
                let (include, pattern) = match line.strip_prefix('!') {
                    Some(rest) => (true, rest.trim()),
                    None => (false, line),
                };
                let pattern = pattern.trim_start_matches("./").trim_matches('/');
                glob_regex(pattern).map(|regex| (regex, !include))
            })
            .collect();
        DockerIgnore { rules }
    }

    fn excludes(&self, path: &str) -> bool {
        // The Dockerfile and .dockerignore are always sent, as the Docker CLI does.
        let mut excluded = false;
        for (regex, exclude) in &self.rules {
            if regex.is_match(path) {
                excluded = *exclude;
            }
        }
        excluded
    }
}

fn glob_regex(pattern: &str) -> Option<regex::Regex> {
    let mut regex = String::from("^");
    let mut characters = pattern.chars().peekable();
    while let Some(character) = characters.next() {
        match character {
            '*' if characters.peek() == Some(&'*') => {
                characters.next();
                if characters.peek() == Some(&'/') {
                    characters.next();
                }
                regex.push_str("(.*/)?");
                if characters.peek().is_none() {
                    regex.push_str(".*");
                }
            }
            '*' => regex.push_str("[^/]*"),
            '?' => regex.push_str("[^/]"),
            other => regex.push_str(&regex::escape(&other.to_string())),
        }
    }
    // A pattern naming a folder excludes everything below it.
    regex.push_str("(/.*)?$");
    regex::Regex::new(&regex).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dockerignore_patterns_match_like_docker() {
        let ignore = DockerIgnore {
            rules: ["target", "*.log", "**/tmp", "!keep.log"]
                .iter()
                .map(|pattern| match pattern.strip_prefix('!') {
                    Some(rest) => (glob_regex(rest).unwrap(), false),
                    None => (glob_regex(pattern).unwrap(), true),
                })
                .collect(),
        };
        assert!(ignore.excludes("target"));
        assert!(ignore.excludes("target/debug/x"));
        assert!(ignore.excludes("a.log"));
        assert!(!ignore.excludes("keep.log"));
        assert!(ignore.excludes("deep/down/tmp"));
        assert!(!ignore.excludes("src/main.rs"));
    }

    #[test]
    fn the_failing_step_is_what_a_build_error_shows() {
        let lines = [
            "Step 1/2 : FROM scratch",
            " ---> ok",
            "Step 2/2 : COPY x /x",
            "error: x not found",
        ]
        .map(String::from)
        .to_vec();
        assert_eq!(
            last_step(lines),
            ["Step 2/2 : COPY x /x", "error: x not found"]
        );
    }

    #[test]
    fn the_context_tar_holds_the_files_but_not_the_ignored_ones() {
        let directory = tempfile::tempdir().unwrap();
        std::fs::write(directory.path().join("Dockerfile"), "FROM scratch").unwrap();
        std::fs::write(directory.path().join(".dockerignore"), "*.tmp").unwrap();
        std::fs::write(directory.path().join("junk.tmp"), "x").unwrap();
        std::fs::create_dir(directory.path().join("bin")).unwrap();
        std::fs::write(directory.path().join("bin/app"), "binary").unwrap();
        let tar = context_tar(directory.path(), Some("FROM scratch\n")).unwrap();
        let mut archive = tar::Archive::new(&tar[..]);
        let names: Vec<String> = archive
            .entries()
            .unwrap()
            .map(|entry| {
                entry
                    .unwrap()
                    .path()
                    .unwrap()
                    .to_string_lossy()
                    .into_owned()
            })
            .collect();
        assert!(names.contains(&"Dockerfile".to_string()));
        assert!(names.contains(&INLINE_DOCKERFILE.to_string()));
        assert!(names.contains(&"bin/app".to_string()));
        assert!(!names.iter().any(|name| name.contains("junk")));
    }
}

#[cfg(test)]
mod policy_tests {
    use super::*;

    const HOUR: Duration = Duration::from_secs(3600);

    #[test]
    fn missing_uses_the_engine_copy_else_builds_else_pulls() {
        let present = Some(Some(HOUR));
        assert_eq!(
            decide(PullPolicy::Missing, false, false, present),
            ImageStep::Use
        );
        assert_eq!(
            decide(PullPolicy::Missing, true, false, None),
            ImageStep::Build
        );
        assert_eq!(
            decide(PullPolicy::Missing, false, false, None),
            ImageStep::Pull
        );
        assert_eq!(
            decide(PullPolicy::Missing, true, true, present),
            ImageStep::Build
        );
    }

    #[test]
    fn always_never_and_build() {
        let present = Some(None);
        assert_eq!(
            decide(PullPolicy::Always, false, false, present),
            ImageStep::Pull
        );
        assert_eq!(
            decide(PullPolicy::Always, true, false, present),
            ImageStep::Pull
        );
        assert_eq!(
            decide(PullPolicy::Never, false, false, present),
            ImageStep::Use
        );
        assert_eq!(
            decide(PullPolicy::Never, false, false, None),
            ImageStep::Refuse
        );
        assert_eq!(
            decide(PullPolicy::Never, true, false, None),
            ImageStep::Build
        );
        assert_eq!(
            decide(PullPolicy::Build, true, false, present),
            ImageStep::Build
        );
    }

    #[test]
    fn periodic_policies_pull_an_old_copy() {
        let daily = PullPolicy::Every(24 * HOUR);
        assert_eq!(
            decide(daily, false, false, Some(Some(HOUR))),
            ImageStep::Use
        );
        assert_eq!(
            decide(daily, false, false, Some(Some(25 * HOUR))),
            ImageStep::Pull
        );
        assert_eq!(decide(daily, false, false, Some(None)), ImageStep::Pull);
        assert_eq!(decide(daily, false, false, None), ImageStep::Pull);
    }
}

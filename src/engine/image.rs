//! Getting every image a sandbox needs onto the engine: used as is when present, else built from
//! `build:`, else pulled. Each distinct image is handled once, all in parallel.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::time::Instant;

use futures_util::StreamExt;

use super::docker::{BuildOutput, Docker};
use super::error::EngineError;
use crate::events::{Event, EventSink, Step};
use crate::manifest::{Build, Manifest};

/// How many lines of build output an error report keeps.
const BUILD_OUTPUT_KEPT: usize = 30;

/// Ensures the images of `services` exist; returns image → image id. `rebuild` builds images that
/// have a `build:` section even when present (`up --build`).
pub async fn ensure_images(
    docker: &Docker,
    manifest: &Manifest,
    services: &[String],
    rebuild: bool,
    events: &EventSink,
) -> Result<BTreeMap<String, String>, EngineError> {
    // One job per distinct image; the first service naming it reports its progress.
    let mut jobs: BTreeMap<String, (String, Option<Build>)> = BTreeMap::new();
    for name in services {
        let service = &manifest.services[name];
        let entry = jobs
            .entry(service.image.clone())
            .or_insert_with(|| (service.name.clone(), None));
        if entry.1.is_none() && service.build.is_some() {
            *entry = (service.name.clone(), service.build.clone());
        }
    }
    let tasks = jobs.into_iter().map(|(image, (service, build))| {
        let project = manifest.project.clone();
        async move {
            let id = ensure_image(docker, &project, &service, &image, build.as_ref(), rebuild, events).await?;
            Ok::<_, EngineError>((image, id))
        }
    });
    let results = futures_util::future::join_all(tasks).await;
    results.into_iter().collect()
}

async fn ensure_image(
    docker: &Docker,
    project: &str,
    service: &str,
    image: &str,
    build: Option<&Build>,
    rebuild: bool,
    events: &EventSink,
) -> Result<String, EngineError> {
    let started = Instant::now();
    if !(rebuild && build.is_some()) {
        if let Some(id) = docker.image_id(image).await? {
            return Ok(id);
        }
    }
    match build {
        Some(build) => {
            events.step(service, 0, Step::Building, image, started.elapsed());
            build_image(docker, project, service, image, build, events).await?;
            events.step(service, 0, Step::Built, image, started.elapsed());
        }
        None => {
            events.step(service, 0, Step::Pulling, image, started.elapsed());
            docker
                .pull_image(image, |current, total| {
                    events.emit(Event::PullProgress {
                        service: service.to_string(),
                        image: image.to_string(),
                        current,
                        total,
                    })
                })
                .await
                .map_err(|reason| EngineError::ImageNotFound {
                    image: image.to_string(),
                    service: service.to_string(),
                    reason,
                })?;
            events.step(service, 0, Step::Pulled, image, started.elapsed());
        }
    }
    docker.image_id(image).await?.ok_or_else(|| EngineError::ImageNotFound {
        image: image.to_string(),
        service: service.to_string(),
        reason: "the engine does not list the image after getting it".to_string(),
    })
}

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
    let context = tokio::task::spawn_blocking({
        let directory = build.context.clone();
        move || context_tar(&directory)
    })
    .await
    .map_err(|error| failed(vec![error.to_string()]))?
    .map_err(|error| failed(vec![format!("reading build context {}: {error}", build.context.display())]))?;
    let args: HashMap<String, String> = build.args.clone().into_iter().collect();
    let mut stream = Box::pin(docker.build_image(
        image,
        &build.dockerfile,
        build.target.as_deref(),
        &args,
        context,
        project,
    ));
    let mut kept: Vec<String> = Vec::new();
    let started = Instant::now();
    while let Some(output) = stream.next().await {
        match output {
            BuildOutput::Line(line) => {
                // The classic builder's bookkeeping says nothing about the user's build.
                if line.starts_with(" ---> ") || line.starts_with("Removing intermediate container") {
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

/// The output from the last `Step N/M` line on: the failing step and what it said.
fn last_step(lines: Vec<String>) -> Vec<String> {
    match lines.iter().rposition(|line| line.starts_with("Step ")) {
        Some(start) => lines[start..].to_vec(),
        None => lines,
    }
}

/// The build context as a tar stream, leaving out what `.dockerignore` names.
fn context_tar(directory: &Path) -> std::io::Result<Vec<u8>> {
    let ignore = DockerIgnore::read(directory);
    let mut builder = tar::Builder::new(Vec::new());
    builder.follow_symlinks(false);
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
        let lines = ["Step 1/2 : FROM scratch", " ---> ok", "Step 2/2 : COPY x /x", "error: x not found"]
            .map(String::from)
            .to_vec();
        assert_eq!(last_step(lines), ["Step 2/2 : COPY x /x", "error: x not found"]);
    }

    #[test]
    fn the_context_tar_holds_the_files_but_not_the_ignored_ones() {
        let directory = tempfile::tempdir().unwrap();
        std::fs::write(directory.path().join("Dockerfile"), "FROM scratch").unwrap();
        std::fs::write(directory.path().join(".dockerignore"), "*.tmp").unwrap();
        std::fs::write(directory.path().join("junk.tmp"), "x").unwrap();
        std::fs::create_dir(directory.path().join("bin")).unwrap();
        std::fs::write(directory.path().join("bin/app"), "binary").unwrap();
        let tar = context_tar(directory.path()).unwrap();
        let mut archive = tar::Archive::new(&tar[..]);
        let names: Vec<String> = archive
            .entries()
            .unwrap()
            .map(|entry| entry.unwrap().path().unwrap().to_string_lossy().into_owned())
            .collect();
        assert!(names.contains(&"Dockerfile".to_string()));
        assert!(names.contains(&"bin/app".to_string()));
        assert!(!names.iter().any(|name| name.contains("junk")));
    }
}

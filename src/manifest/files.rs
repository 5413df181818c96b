//! Which files make the project, and the variables each is interpolated with.
//!
//! Without `-f`, compose's rules: `COMPOSE_FILE` (from the environment or `.env`), else the first of
//! [`DEFAULT_FILE_NAMES`] found in the working folder or the nearest parent that has one, plus its
//! override file beside it. The project folder is the first file's folder; `.env` there (or the
//! `--env-file` files) gives defaults that the process environment overrides.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use super::error::ManifestError;
use super::interpolate;
use super::schema::normalise_path;
use super::{read_bounded, LoadOptions};

/// File names looked for when no `-f` is given, in order: sandbox's own, then compose's.
pub const DEFAULT_FILE_NAMES: [&str; 6] = [
    "sandbox.yaml",
    "sandbox.yml",
    "compose.yaml",
    "compose.yml",
    "docker-compose.yaml",
    "docker-compose.yml",
];

/// One file read into the project, in the loader's file table (a node's `span.file` indexes it).
#[derive(Debug, Clone)]
pub struct SourceFile {
    /// As the user would write it (relative to the working folder when it is under it), for messages.
    pub display: PathBuf,
    /// Absolute path.
    pub path: PathBuf,
    /// Relative paths written in this file resolve against this folder: the project folder for the
    /// `-f` files, the file's own project folder for `include` and `extends`.
    pub directory: PathBuf,
    /// The variables its values are interpolated with.
    pub variables: Rc<BTreeMap<String, String>>,
}

/// Files as (display, absolute path), and a note about them.
pub type Located = (Vec<(PathBuf, PathBuf)>, Option<String>);

/// The files the options name, as (display, absolute path), plus a warning when discovery found
/// several candidates. An empty folder is an error naming every name looked for.
pub fn locate(options: &LoadOptions, working_dir: &Path) -> Result<Located, Box<ManifestError>> {
    let named: Vec<PathBuf> = if !options.files.is_empty() {
        options.files.clone()
    } else {
        compose_file_variable(options, working_dir)
    };
    if !named.is_empty() {
        let files = named
            .into_iter()
            .map(|file| {
                let path = normalise_path(&working_dir.join(&file));
                (file, path)
            })
            .collect();
        return Ok((files, None));
    }
    let mut folder = Some(working_dir);
    while let Some(current) = folder {
        let found: Vec<&str> = DEFAULT_FILE_NAMES
            .iter()
            .copied()
            .filter(|name| current.join(name).is_file())
            .collect();
        if let Some(first) = found.first() {
            let path = current.join(first);
            let mut files = vec![(display_of(&path, working_dir), path)];
            if let Some(override_path) = override_beside(current, first) {
                files.push((display_of(&override_path, working_dir), override_path));
            }
            // sandbox's own file beside a compose file is the usual way to wrap it (`include:`);
            // several names of one family is the ambiguity compose warns about too.
            let family = |name: &&str| name.starts_with("sandbox");
            let same_family: Vec<&str> = found
                .iter()
                .copied()
                .filter(|name| family(name) == family(first))
                .collect();
            let found = same_family;
            let warning = (found.len() > 1).then(|| {
                format!(
                    "found {} in `{}`; using `{first}`",
                    found
                        .iter()
                        .map(|name| format!("`{name}`"))
                        .collect::<Vec<_>>()
                        .join(" and "),
                    display_of(current, working_dir).display()
                )
            });
            return Ok((files, warning));
        }
        folder = current.parent();
    }
    Err(Box::new(ManifestError {
        file: PathBuf::from(DEFAULT_FILE_NAMES[0]),
        line: None,
        column: None,
        field: String::new(),
        message: format!(
            "no manifest in `{}` or its parents: looked for {}",
            working_dir.display(),
            DEFAULT_FILE_NAMES
                .map(|name| format!("`{name}`"))
                .join(", ")
        ),
        hint: Some(
            "run `sandbox init` to create one, or pass -f FILE (several -f files are merged)"
                .into(),
        ),
    }))
}

/// `COMPOSE_FILE`, split on `COMPOSE_PATH_SEPARATOR` (default `:`), from the environment or from
/// `.env` in the working folder (compose reads it there too).
fn compose_file_variable(options: &LoadOptions, working_dir: &Path) -> Vec<PathBuf> {
    let dotenv = || {
        let bytes = std::fs::File::open(working_dir.join(".env"))
            .and_then(read_bounded)
            .ok()?;
        interpolate::parse_env_file(&String::from_utf8_lossy(&bytes))
            .ok()
            .map(|entries| {
                entries
                    .into_iter()
                    .filter_map(|(key, value)| Some((key, value?)))
                    .collect::<BTreeMap<_, _>>()
            })
    };
    let lookup = |key: &str, dotenv: &Option<BTreeMap<String, String>>| {
        options
            .environment
            .get(key)
            .cloned()
            .or_else(|| dotenv.as_ref()?.get(key).cloned())
    };
    if !options.environment.contains_key("COMPOSE_FILE") && !working_dir.join(".env").is_file() {
        return Vec::new();
    }
    let dotenv = dotenv();
    let Some(value) = lookup("COMPOSE_FILE", &dotenv) else {
        return Vec::new();
    };
    let separator = lookup("COMPOSE_PATH_SEPARATOR", &dotenv).unwrap_or_else(|| ":".into());
    value
        .split(separator.as_str())
        .filter(|part| !part.is_empty())
        .map(PathBuf::from)
        .collect()
}

/// The override file compose merges over a discovered file (`compose.override.yaml` beside
/// `compose.yaml`, and so on).
fn override_beside(folder: &Path, name: &str) -> Option<PathBuf> {
    let candidates: &[&str] = if name.starts_with("sandbox") {
        &["sandbox.override.yaml", "sandbox.override.yml"]
    } else {
        &[
            "compose.override.yaml",
            "compose.override.yml",
            "docker-compose.override.yaml",
            "docker-compose.override.yml",
        ]
    };
    candidates
        .iter()
        .map(|candidate| folder.join(candidate))
        .find(|path| path.is_file())
}

/// `path` relative to the working folder when it is inside it or a parent of it (`../compose.yaml`).
pub fn display_of(path: &Path, working_dir: &Path) -> PathBuf {
    if let Ok(relative) = path.strip_prefix(working_dir) {
        return if relative.as_os_str().is_empty() {
            PathBuf::from(".")
        } else {
            relative.to_path_buf()
        };
    }
    let mut up = PathBuf::new();
    let mut base = working_dir;
    while let Some(parent) = base.parent() {
        up.push("..");
        if let Ok(relative) = path.strip_prefix(parent) {
            return up.join(relative);
        }
        base = parent;
    }
    path.to_path_buf()
}

/// The variables of a project folder: the env files (`.env` there when none is named), each
/// overridden by `overrides` (the process environment, or the including project's variables).
/// Problems in an env file are pushed to `errors`.
pub fn variables(
    env_files: &[(PathBuf, PathBuf)],
    directory: &Path,
    overrides: &BTreeMap<String, String>,
    errors: &mut Vec<ManifestError>,
) -> BTreeMap<String, String> {
    let default_file = [(PathBuf::from(".env"), directory.join(".env"))];
    let (files, required) = if env_files.is_empty() {
        (&default_file[..], false)
    } else {
        (env_files, true)
    };
    let mut variables = BTreeMap::new();
    for (display, path) in files {
        let bytes = match std::fs::File::open(path).and_then(read_bounded) {
            Ok(bytes) => bytes,
            Err(error) if required => {
                errors.push(ManifestError {
                    file: display.clone(),
                    line: None,
                    column: None,
                    field: String::new(),
                    message: format!("cannot read env file `{}`: {error}", display.display()),
                    hint: Some(
                        "check the `--env-file` path (relative to the working folder)".into(),
                    ),
                });
                continue;
            }
            Err(_) => continue,
        };
        let text = String::from_utf8_lossy(&bytes);
        match interpolate::parse_env_file(&text) {
            Ok(entries) => {
                for (key, value) in entries {
                    // `KEY` alone takes the value from the environment, when it has one.
                    let value = value.or_else(|| overrides.get(&key).cloned());
                    if let Some(value) = value {
                        // Later entries may refer to earlier ones, as compose's `.env` allows.
                        let value = interpolate::interpolate(&value, &variables).unwrap_or(value);
                        variables.insert(key, value);
                    }
                }
            }
            Err(error) => errors.push(ManifestError {
                file: display.clone(),
                line: Some(error.line),
                column: Some(1),
                field: String::new(),
                message: error.message,
                hint: Some("an env file holds `KEY=VALUE` lines and `#` comments".into()),
            }),
        }
    }
    variables.extend(overrides.clone());
    variables
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(files: &[&str], environment: &[(&str, &str)]) -> LoadOptions {
        LoadOptions {
            files: files.iter().map(PathBuf::from).collect(),
            environment: environment
                .iter()
                .map(|(key, value)| (key.to_string(), value.to_string()))
                .collect(),
            ..LoadOptions::default()
        }
    }

    fn names(files: &[(PathBuf, PathBuf)]) -> Vec<String> {
        files
            .iter()
            .map(|(display, _)| display.display().to_string())
            .collect()
    }

    #[test]
    fn compose_names_are_found_with_their_override_and_a_note_when_several_exist() {
        let folder = tempfile::tempdir().unwrap();
        std::fs::write(folder.path().join("docker-compose.yml"), "").unwrap();
        let (files, warning) = locate(&options(&[], &[]), folder.path()).unwrap();
        assert_eq!(names(&files), ["docker-compose.yml"]);
        assert_eq!(warning, None);

        std::fs::write(folder.path().join("compose.yaml"), "").unwrap();
        std::fs::write(folder.path().join("docker-compose.override.yml"), "").unwrap();
        let (files, warning) = locate(&options(&[], &[]), folder.path()).unwrap();
        assert_eq!(
            names(&files),
            ["compose.yaml", "docker-compose.override.yml"]
        );
        assert!(warning.unwrap().contains("using `compose.yaml`"));

        std::fs::write(folder.path().join("sandbox.yaml"), "").unwrap();
        let (files, _) = locate(&options(&[], &[]), folder.path()).unwrap();
        assert_eq!(names(&files), ["sandbox.yaml"], "sandbox's own name first");
    }

    #[test]
    fn parents_are_searched_and_shown_relative() {
        let folder = tempfile::tempdir().unwrap();
        std::fs::write(folder.path().join("compose.yml"), "").unwrap();
        let inner = folder.path().join("src/app");
        std::fs::create_dir_all(&inner).unwrap();
        let (files, _) = locate(&options(&[], &[]), &inner).unwrap();
        assert_eq!(names(&files), ["../../compose.yml"]);
    }

    #[test]
    fn flags_win_over_compose_file_which_wins_over_discovery() {
        let folder = tempfile::tempdir().unwrap();
        std::fs::write(folder.path().join("compose.yaml"), "").unwrap();
        let environment = [("COMPOSE_FILE", "a.yaml:b.yaml")];
        let (files, _) = locate(&options(&[], &environment), folder.path()).unwrap();
        assert_eq!(names(&files), ["a.yaml", "b.yaml"]);
        let (files, _) = locate(&options(&["c.yaml"], &environment), folder.path()).unwrap();
        assert_eq!(names(&files), ["c.yaml"]);
        let environment = [
            ("COMPOSE_FILE", "a.yaml;b.yaml"),
            ("COMPOSE_PATH_SEPARATOR", ";"),
        ];
        let (files, _) = locate(&options(&[], &environment), folder.path()).unwrap();
        assert_eq!(names(&files), ["a.yaml", "b.yaml"]);
        std::fs::write(
            folder.path().join(".env"),
            "COMPOSE_FILE=from-dotenv.yaml\n",
        )
        .unwrap();
        let (files, _) = locate(&options(&[], &[]), folder.path()).unwrap();
        assert_eq!(names(&files), ["from-dotenv.yaml"]);
    }

    #[test]
    fn an_empty_folder_names_every_file_looked_for() {
        let folder = tempfile::tempdir().unwrap();
        let error = locate(&options(&[], &[]), folder.path()).unwrap_err();
        assert!(
            error.message.contains("`compose.yaml`"),
            "{}",
            error.message
        );
        assert!(error.message.contains("`sandbox.yaml`"));
    }

    #[test]
    fn env_files_give_defaults_the_environment_overrides() {
        let folder = tempfile::tempdir().unwrap();
        std::fs::write(
            folder.path().join(".env"),
            "A=from-file\nB=${A}-b\nC=c\nD\n",
        )
        .unwrap();
        let overrides: BTreeMap<String, String> = [("C", "env"), ("D", "env-d")]
            .into_iter()
            .map(|(key, value)| (key.to_string(), value.to_string()))
            .collect();
        let mut errors = Vec::new();
        let found = variables(&[], folder.path(), &overrides, &mut errors);
        assert!(errors.is_empty());
        assert_eq!(found["A"], "from-file");
        assert_eq!(found["B"], "from-file-b");
        assert_eq!(found["C"], "env");
        assert_eq!(found["D"], "env-d");
        let missing = [(PathBuf::from("nope.env"), folder.path().join("nope.env"))];
        variables(&missing, folder.path(), &overrides, &mut errors);
        assert_eq!(errors.len(), 1, "a named env file must exist");
    }
}

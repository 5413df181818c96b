//! `sandbox config --format compose`: the resolved project written back as one compose file that
//! `docker compose` accepts.
//!
//! It is the assembled tree (files merged, `include` and `extends` resolved, profiles applied),
//! with every value interpolated (a literal `$` written `$$` again), relative paths made absolute
//! (they were relative to different files), sandbox's own keys moved under `x-sandbox`, and
//! sandbox's short forms written as compose's (`condition: healthy` → `service_healthy`).

use std::path::Path;

use serde_yaml_ng::{Mapping, Value as Yaml};

use super::assemble::{self, PROJECT_EXTENSION_KEYS, SERVICE_EXTENSION_KEYS};
use super::error::{ManifestError, ManifestErrors};
use super::files::SourceFile;
use super::interpolate::interpolate;
use super::node::{Node, Value};
use super::LoadOptions;

/// Options for [`to_compose`].
#[derive(Debug, Clone, Copy, Default)]
pub struct ExportOptions {
    /// Print secret-looking values as they are (else `********`).
    pub show_secrets: bool,
}

/// The project `options` describe, as compose YAML. Errors are those loading reports (the
/// project is validated first, so what is written is what `sandbox up` would run).
pub fn to_compose(options: &LoadOptions, export: ExportOptions) -> Result<String, ManifestErrors> {
    let working_dir = super::absolute(&options.working_dir);
    let assembled = assemble::assemble(options, &working_dir);
    let manifest = super::validate_assembled(options, &working_dir, &assembled)?;
    let Some(root) = &assembled.root else {
        return Err(ManifestErrors::new(
            manifest.file.clone(),
            vec![ManifestError {
                file: manifest.file.clone(),
                line: None,
                column: None,
                field: String::new(),
                message: "the project has no content to write".into(),
                hint: None,
            }],
        ));
    };
    let writer = Writer {
        sources: &assembled.sources,
        export,
    };
    let mut document = match writer.value(root, &[]) {
        Yaml::Mapping(mapping) => mapping,
        _ => Mapping::new(),
    };
    document.insert(Yaml::from("name"), Yaml::from(manifest.project.clone()));
    move_extensions(&mut document, PROJECT_EXTENSION_KEYS);
    if let Some(Yaml::Mapping(services)) = document.get_mut("services") {
        for (_, service) in services.iter_mut() {
            if let Yaml::Mapping(service) = service {
                write_service(service);
            }
        }
    }
    serde_yaml_ng::to_string(&Yaml::Mapping(document))
        .map(|text| quote_yaml11_booleans(&text))
        .map_err(|error| {
            ManifestErrors::new(
                manifest.file.clone(),
                vec![ManifestError {
                    file: manifest.file.clone(),
                    line: None,
                    column: None,
                    field: String::new(),
                    message: format!("cannot write the project as YAML: {error}"),
                    hint: None,
                }],
            )
        })
}

/// sandbox's forms in one service rewritten as compose's, its own keys under `x-sandbox`.
fn write_service(service: &mut Mapping) {
    // `healthcheck` is compose's key too: it moves only when it holds sandbox's own probes.
    let mut extension_keys: Vec<&str> = SERVICE_EXTENSION_KEYS
        .iter()
        .copied()
        .filter(|key| *key != "healthcheck")
        .collect();
    if let Some(Yaml::Mapping(healthcheck)) = service.get_mut("healthcheck") {
        if let Some(command) = healthcheck.remove("cmd") {
            let mut test = vec![Yaml::from("CMD")];
            match command {
                Yaml::Sequence(words) => test.extend(words),
                Yaml::String(line) => test = vec![Yaml::from("CMD-SHELL"), Yaml::from(line)],
                other => test.push(other),
            }
            healthcheck.insert(Yaml::from("test"), Yaml::Sequence(test));
        }
        if ["http", "tcp", "grpc"]
            .iter()
            .any(|key| healthcheck.contains_key(*key))
        {
            // Probes the control plane makes itself: compose has no words for them.
            extension_keys.push("healthcheck");
        }
    }
    if let Some(Yaml::Mapping(dependencies)) = service.get_mut("depends_on") {
        for (_, dependency) in dependencies.iter_mut() {
            if let Yaml::Mapping(dependency) = dependency {
                if let Some(Yaml::String(condition)) = dependency.get_mut("condition") {
                    if !condition.starts_with("service_") {
                        *condition = match condition.as_str() {
                            "completed" => "service_completed_successfully".into(),
                            other => format!("service_{other}"),
                        };
                    }
                }
            }
        }
    }
    move_extensions(service, &extension_keys);
}

/// Moves `keys` of `mapping` into its `x-sandbox` map.
fn move_extensions(mapping: &mut Mapping, keys: &[&str]) {
    let mut extension = Mapping::new();
    for key in keys {
        if let Some(value) = mapping.remove(*key) {
            extension.insert(Yaml::from(*key), value);
        }
    }
    if !extension.is_empty() {
        mapping.insert(Yaml::from("x-sandbox"), Yaml::Mapping(extension));
    }
}

struct Writer<'a> {
    sources: &'a [SourceFile],
    export: ExportOptions,
}

impl Writer<'_> {
    /// The node as YAML; `path` is where it sits (`["services", "web", "build"]`).
    fn value(&self, node: &Node, path: &[&str]) -> Yaml {
        match &node.value {
            Value::Mapping(entries) => {
                let mut mapping = Mapping::new();
                for (key, value) in entries {
                    let name = key.scalar_text().unwrap_or_default();
                    let mut inner = path.to_vec();
                    inner.push(name);
                    let mut written = self.value(value, &inner);
                    if let (true, Yaml::Number(number)) = (is_duration_field(&inner), &written) {
                        written = Yaml::from(format!("{number}s"));
                    }
                    if is_path_field(&inner) {
                        written = self.absolute(value, written);
                    }
                    if self.is_secret(&inner) {
                        written = Yaml::from("********");
                    }
                    mapping.insert(Yaml::from(name), written);
                }
                Yaml::Mapping(mapping)
            }
            Value::Sequence(items) => Yaml::Sequence(
                items
                    .iter()
                    .map(|item| {
                        let written = self.value(item, path);
                        match path {
                            ["services", _, "volumes"] => self.absolute_volume(item, written),
                            ["services", _, "env_file" | "label_file"] => {
                                self.absolute(item, written)
                            }
                            ["services", _, "environment" | "build"]
                            | ["services", _, "build", "args"] => self.mask_item(written),
                            _ => written,
                        }
                    })
                    .collect(),
            ),
            Value::Scalar { text, quoted } => self.scalar(node, text, *quoted),
        }
    }

    fn scalar(&self, node: &Node, text: &str, quoted: bool) -> Yaml {
        let interpolated = if text.contains('$') {
            let variables = &self.sources[node.span.file].variables;
            interpolate(text, variables).unwrap_or_else(|_| text.to_string())
        } else {
            text.to_string()
        };
        if quoted || text.contains('$') {
            // A `$` that is left must stay literal when docker compose interpolates it again.
            return match (quoted, interpolated.parse::<i64>()) {
                (false, Ok(number)) => Yaml::from(number),
                _ => Yaml::from(interpolated.replace('$', "$$")),
            };
        }
        core_schema(text)
    }

    /// A path written relative to its own file, made absolute.
    fn absolute(&self, node: &Node, written: Yaml) -> Yaml {
        match written {
            Yaml::String(text) if is_relative_path(&text) => {
                Yaml::from(self.resolve(node, &text).display().to_string())
            }
            Yaml::Mapping(mut mapping) => {
                if let Some(Yaml::String(path)) = mapping.get("path").cloned() {
                    if is_relative_path(&path) {
                        let resolved = self.resolve(node, &path).display().to_string();
                        mapping.insert(Yaml::from("path"), Yaml::from(resolved));
                    }
                }
                if let Some(Yaml::String(context)) = mapping.get("context").cloned() {
                    if is_relative_path(&context) {
                        let resolved = self.resolve(node, &context).display().to_string();
                        mapping.insert(Yaml::from("context"), Yaml::from(resolved));
                    }
                }
                Yaml::Mapping(mapping)
            }
            other => other,
        }
    }

    /// A volume whose source is a relative host path (`./data:/data`, or long syntax), made absolute.
    fn absolute_volume(&self, node: &Node, written: Yaml) -> Yaml {
        match written {
            Yaml::String(text) => match text.split_once(':') {
                Some((source, rest)) if is_relative(source) => {
                    Yaml::from(format!("{}:{rest}", self.resolve(node, source).display()))
                }
                _ => Yaml::from(text),
            },
            Yaml::Mapping(mut mapping) => {
                let bind = mapping.get("type").and_then(Yaml::as_str) == Some("bind");
                if let Some(Yaml::String(source)) = mapping.get("source").cloned() {
                    if bind || source.starts_with('.') || source.starts_with('~') {
                        let resolved = self.resolve(node, &source).display().to_string();
                        mapping.insert(Yaml::from("source"), Yaml::from(resolved));
                    }
                }
                Yaml::Mapping(mapping)
            }
            other => other,
        }
    }

    fn resolve(&self, node: &Node, written: &str) -> std::path::PathBuf {
        let source = &self.sources[node.span.file];
        let written = match written.strip_prefix("~/") {
            Some(rest) => match source.variables.get("HOME") {
                Some(home) => Path::new(home).join(rest),
                None => Path::new(written).to_path_buf(),
            },
            None => Path::new(written).to_path_buf(),
        };
        super::schema::normalise_path(&source.directory.join(written))
    }

    fn is_secret(&self, path: &[&str]) -> bool {
        !self.export.show_secrets
            && matches!(
                path,
                ["services", _, "environment", name] | ["services", _, "build", "args", name]
                    if crate::manifest::is_secret_name(name)
            )
    }

    /// A `KEY=VALUE` item with a secret-looking key, masked.
    fn mask_item(&self, written: Yaml) -> Yaml {
        match &written {
            Yaml::String(text) if !self.export.show_secrets => match text.split_once('=') {
                Some((key, value)) if crate::manifest::is_secret_name(key) && !value.is_empty() => {
                    Yaml::from(format!("{key}=********"))
                }
                _ => written,
            },
            _ => written,
        }
    }
}

/// Words YAML 1.1 readers (docker-compose 1.x, PyYAML) take as booleans.
const YAML11_BOOLEANS: &[&str] = &[
    "y", "Y", "yes", "Yes", "YES", "n", "N", "no", "No", "NO", "on", "On", "ON", "off", "Off",
    "OFF",
];

/// Quotes plain scalars that YAML 1.1 readers would take as booleans (`restart: no`), so every
/// compose reader sees the string the project means. Lines inside block scalars are left alone.
fn quote_yaml11_booleans(text: &str) -> String {
    let mut output = String::with_capacity(text.len());
    let mut block_indent: Option<usize> = None;
    for line in text.lines() {
        let indent = line.len() - line.trim_start().len();
        if let Some(block) = block_indent {
            if line.trim().is_empty() || indent > block {
                output.push_str(line);
                output.push('\n');
                continue;
            }
            block_indent = None;
        }
        let (head, value) = match line.rsplit_once(": ") {
            Some((head, value)) => (format!("{head}: "), value),
            None => match line.trim_start().strip_prefix("- ") {
                Some(value) => (format!("{}- ", &line[..indent]), value),
                None => (String::new(), line),
            },
        };
        if YAML11_BOOLEANS.contains(&value) {
            output.push_str(&format!("{head}'{value}'"));
        } else {
            output.push_str(line);
        }
        output.push('\n');
        if matches!(value.trim_end().chars().next(), Some('|' | '>')) {
            block_indent = Some(indent);
        }
    }
    output
}

/// A plain scalar typed by the YAML 1.2 core schema, as compose reads it (`no` and `on` stay
/// strings).
fn core_schema(text: &str) -> Yaml {
    match text {
        "" | "~" | "null" | "Null" | "NULL" => Yaml::Null,
        "true" | "True" | "TRUE" => Yaml::Bool(true),
        "false" | "False" | "FALSE" => Yaml::Bool(false),
        _ => {
            // A leading zero is octal to compose's reader (`mode: 0440`); written in decimal, every
            // reader agrees.
            let octal = text
                .strip_prefix("0o")
                .or_else(|| text.strip_prefix('0').filter(|rest| !rest.is_empty()));
            if let Some(number) = octal.and_then(|digits| i64::from_str_radix(digits, 8).ok()) {
                Yaml::from(number)
            } else if let Ok(number) = text.parse::<i64>() {
                Yaml::from(number)
            } else if text.starts_with(|character: char| {
                character.is_ascii_digit() || matches!(character, '-' | '+' | '.')
            }) && text.parse::<f64>().is_ok()
            {
                serde_yaml_ng::from_str(text).unwrap_or_else(|_| Yaml::from(text.to_string()))
            } else {
                Yaml::from(text.to_string())
            }
        }
    }
}

/// Duration fields: the schema wants text, and sandbox reads a bare number as seconds.
fn is_duration_field(path: &[&str]) -> bool {
    matches!(
        path.last(),
        Some(&("stop_grace_period" | "interval" | "timeout" | "start_period" | "start_interval"))
    ) && matches!(path.first(), Some(&"services"))
}

/// Fields that hold a path relative to the file they are written in.
fn is_path_field(path: &[&str]) -> bool {
    matches!(
        path,
        ["services", _, "build"]
            | ["services", _, "build", "context"]
            | ["services", _, "env_file" | "label_file"]
            | ["secrets" | "configs", _, "file"]
    )
}

/// A path that is not absolute (nor a URL, as a build context may be).
fn is_relative_path(text: &str) -> bool {
    !Path::new(text).is_absolute() && !text.contains("://")
}

/// A relative host path, as compose tells one from a volume name: it starts with `.` or `~`.
fn is_relative(text: &str) -> bool {
    text.starts_with('.') || text.starts_with('~')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn export(files: &[(&str, &str)], options: impl FnOnce(&mut LoadOptions)) -> String {
        let folder = tempfile::tempdir().unwrap();
        for (name, text) in files {
            let path = folder.path().join(name);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        }
        let mut load = LoadOptions {
            working_dir: folder.path().to_path_buf(),
            ..LoadOptions::default()
        };
        options(&mut load);
        to_compose(&load, ExportOptions::default())
            .unwrap_or_else(|errors| panic!("{errors}"))
            .replace(&folder.path().display().to_string(), "<dir>")
    }

    #[test]
    fn sandbox_keys_go_under_x_sandbox_and_values_are_resolved() {
        let text = export(
            &[
                (
                    "compose.yaml",
                    "name: shop\ngateway: {port: 0}\nservices:\n  web:\n    image: nginx:${TAG:-1.27}\n    port: 80\n    replicas: 2\n    environment: {API_TOKEN: hunter2, PRICE: $$5}\n    healthcheck: {http: /health}\n    depends_on: {db: {condition: healthy}}\n    volumes: [./html:/usr/share/nginx/html:ro]\n  db:\n    image: busybox\n    healthcheck: {cmd: [true]}\n",
                ),
                ("html/index.html", "hi"),
            ],
            |_| {},
        );
        let document: Yaml = serde_yaml_ng::from_str(&text).unwrap();
        assert_eq!(document["name"], Yaml::from("shop"));
        assert_eq!(document["x-sandbox"]["gateway"]["port"], Yaml::from(0));
        let web = &document["services"]["web"];
        assert_eq!(web["image"], Yaml::from("nginx:1.27"));
        assert_eq!(web["x-sandbox"]["port"], Yaml::from(80));
        assert_eq!(web["x-sandbox"]["replicas"], Yaml::from(2));
        assert_eq!(
            web["x-sandbox"]["healthcheck"]["http"],
            Yaml::from("/health")
        );
        assert_eq!(web["environment"]["API_TOKEN"], Yaml::from("********"));
        assert_eq!(web["environment"]["PRICE"], Yaml::from("$$5"));
        assert_eq!(
            web["depends_on"]["db"]["condition"],
            Yaml::from("service_healthy")
        );
        assert_eq!(
            web["volumes"][0],
            Yaml::from("<dir>/html:/usr/share/nginx/html:ro")
        );
        assert_eq!(
            document["services"]["db"]["healthcheck"]["test"],
            serde_yaml_ng::from_str::<Yaml>("[CMD, true]").unwrap()
        );
    }

    #[test]
    fn a_grpc_probe_is_kept_under_x_sandbox() {
        let text = export(
            &[(
                "compose.yaml",
                "name: rpc\nservices:\n  echo:\n    image: grpc-peer:1\n    port: 50051\n    http2: true\n    healthcheck: {grpc: demo.Echo, interval: 1s}\n",
            )],
            |_| {},
        );
        let document: Yaml = serde_yaml_ng::from_str(&text).unwrap();
        let echo = &document["services"]["echo"];
        assert_eq!(
            echo["x-sandbox"]["healthcheck"]["grpc"],
            Yaml::from("demo.Echo"),
            "{text}"
        );
        assert_eq!(
            echo["x-sandbox"]["healthcheck"]["interval"],
            Yaml::from("1s")
        );
        assert!(
            echo.get("healthcheck").is_none(),
            "compose has no gRPC probe: {text}"
        );
    }

    #[test]
    fn words_yaml_1_1_reads_as_booleans_are_quoted_outside_block_scalars() {
        let text = "restart: no\nlist:\n- yes\n- keep\nscript: |-\n  no\n  on\nafter: off\n";
        assert_eq!(
            quote_yaml11_booleans(text),
            "restart: 'no'\nlist:\n- 'yes'\n- keep\nscript: |-\n  no\n  on\nafter: 'off'\n"
        );
    }

    #[test]
    fn the_export_loads_again_as_the_same_project() {
        let files = [
            (
                "compose.yaml",
                "services:\n  api:\n    image: busybox\n    port: 8080\n    environment: [A=1]\n    build: ./api\n",
            ),
            ("compose.override.yaml", "services:\n  api:\n    environment: {B: 2}\n"),
            ("api/Dockerfile", "FROM scratch\n"),
        ];
        let text = export(&files, |_| {});
        let folder = tempfile::tempdir().unwrap();
        let directory = folder.path().join("api");
        std::fs::create_dir_all(&directory).unwrap();
        let text = text.replace("<dir>", &folder.path().display().to_string());
        std::fs::write(folder.path().join("exported.yaml"), text).unwrap();
        let manifest = super::super::load(&LoadOptions {
            files: vec!["exported.yaml".into()],
            working_dir: folder.path().to_path_buf(),
            ..LoadOptions::default()
        })
        .unwrap_or_else(|errors| panic!("{errors}"));
        let api = &manifest.services["api"];
        assert_eq!(api.port, Some(8080));
        assert_eq!(api.environment["A"], "1");
        assert_eq!(api.environment["B"], "2");
    }
}

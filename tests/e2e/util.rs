//! Test harness: a temporary project folder with its own project name and state folder, the
//! `sandbox` binary run against the real Docker engine, images built by the tests themselves, and
//! cleanup of everything labelled with the project, even when the test fails.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

pub const BINARY: &str = env!("CARGO_BIN_EXE_sandbox");

/// Fails loudly (never skips) when no engine answers.
pub fn require_docker() {
    let output = Command::new("docker")
        .args(["version", "--format", "{{.Server.Version}}"])
        .output();
    match output {
        Ok(output) if output.status.success() => {}
        Ok(output) => panic!(
            "these tests need a running Docker engine; `docker version` said: {}",
            String::from_utf8_lossy(&output.stderr)
        ),
        Err(error) => panic!("these tests need the docker CLI and a running engine: {error}"),
    }
}

/// A test project: folder, name, state folder. Dropping it removes every container, network and
/// volume labelled with its name.
pub struct Project {
    pub name: String,
    pub dir: tempfile::TempDir,
    pub state: tempfile::TempDir,
    /// The engine's `DOCKER_HOST` for sandbox and the docker CLI, when not the default one
    /// (Podman's API in `podman.rs`).
    pub docker_host: Option<String>,
}

static COUNTER: AtomicU32 = AtomicU32::new(0);

impl Project {
    /// A fresh project; `tag` names the test in the project name.
    pub fn new(tag: &str) -> Project {
        Project::named(format!(
            "t{}-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::SeqCst),
            tag.replace('_', "-")
        ))
    }

    /// A fresh project with exactly this name.
    pub fn named(name: String) -> Project {
        require_docker();
        Project {
            name,
            dir: tempfile::tempdir().expect("temp dir"),
            state: tempfile::tempdir().expect("temp dir"),
            docker_host: None,
        }
    }

    /// A fresh project on the engine at `docker_host` (the caller checked that it answers).
    pub fn on_engine(tag: &str, docker_host: &str) -> Project {
        Project {
            name: format!(
                "t{}-{}-{}",
                std::process::id(),
                COUNTER.fetch_add(1, Ordering::SeqCst),
                tag.replace('_', "-")
            ),
            dir: tempfile::tempdir().expect("temp dir"),
            state: tempfile::tempdir().expect("temp dir"),
            docker_host: Some(docker_host.to_string()),
        }
    }

    /// The docker CLI, on this project's engine.
    pub fn docker(&self) -> Command {
        let mut command = Command::new("docker");
        if let Some(host) = &self.docker_host {
            command.env("DOCKER_HOST", host);
        }
        command
    }

    pub fn path(&self, relative: &str) -> PathBuf {
        self.dir.path().join(relative)
    }

    /// Writes `sandbox.yaml` (with `name:` set to the project name prepended).
    pub fn manifest(&self, body: &str) {
        std::fs::write(
            self.path("sandbox.yaml"),
            format!("name: {}\n{body}", self.name),
        )
        .expect("write manifest");
    }

    pub fn write(&self, relative: &str, content: &str) {
        let path = self.path(relative);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(path, content).expect("write");
    }

    /// A `sandbox` command in the project folder, isolated state, plain output.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(BINARY);
        command
            .args(args)
            .current_dir(self.dir.path())
            .env("SANDBOX_STATE_DIR", self.state.path())
            .env("CI", "true")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null());
        if let Some(host) = &self.docker_host {
            command.env("DOCKER_HOST", host);
        }
        command
    }

    /// Starts `sandbox ARGS` in the background with its output discarded (for signal tests).
    pub fn spawn_quiet(&self, args: &[&str]) -> std::process::Child {
        self.command(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start sandbox")
    }

    /// Runs `sandbox ARGS` to completion.
    pub fn run(&self, args: &[&str]) -> Run {
        self.run_with(self.command(args))
    }

    pub fn run_with(&self, mut command: Command) -> Run {
        let output = command.output().expect("run sandbox");
        Run::from(
            output,
            format!("sandbox {:?}", command.get_args().collect::<Vec<_>>()),
        )
    }

    /// The project's service containers, ids by name (via the docker CLI, independent of
    /// sandbox); its mesh forwarders are left out.
    pub fn containers(&self) -> Vec<(String, String)> {
        let output = self
            .docker()
            .args([
                "ps",
                "-a",
                "--filter",
                &format!("label=dev.sandbox.project={}", self.name),
                "--format",
                "{{.Names}} {{.ID}} {{.Label \"dev.sandbox.role\"}}",
            ])
            .output()
            .expect("docker ps");
        let mut containers: Vec<(String, String)> = String::from_utf8_lossy(&output.stdout)
            .lines()
            .filter_map(|line| {
                let mut fields = line.split(' ');
                let (name, id) = (fields.next()?, fields.next()?);
                // The services' containers, not the mesh's forwarders.
                (fields.next().unwrap_or("").is_empty()).then(|| (name.to_string(), id.to_string()))
            })
            .collect();
        containers.sort();
        containers
    }

    /// Everything of the project still on the engine: containers, networks, volumes.
    pub fn leftovers(&self) -> Vec<String> {
        let label = format!("label=dev.sandbox.project={}", self.name);
        let mut found = Vec::new();
        for (kind, args) in [
            (
                "container",
                vec!["ps", "-a", "-q", "--filter", label.as_str()],
            ),
            (
                "network",
                vec!["network", "ls", "-q", "--filter", label.as_str()],
            ),
            (
                "volume",
                vec!["volume", "ls", "-q", "--filter", label.as_str()],
            ),
        ] {
            let output = self.docker().args(&args).output().expect("docker");
            for id in String::from_utf8_lossy(&output.stdout).lines() {
                found.push(format!("{kind} {id}"));
            }
        }
        found
    }
}

impl Drop for Project {
    fn drop(&mut self) {
        let _ = self
            .command(&["-p", &self.name, "down", "-v", "-t", "0"])
            .output();
        // Belt and braces: whatever sandbox did not remove, the docker CLI does.
        let label = format!("label=dev.sandbox.project={}", self.name);
        let ids = |args: &[&str]| -> Vec<String> {
            self.docker()
                .args(args)
                .output()
                .map(|output| {
                    String::from_utf8_lossy(&output.stdout)
                        .lines()
                        .map(String::from)
                        .collect()
                })
                .unwrap_or_default()
        };
        for id in ids(&["ps", "-a", "-q", "--filter", &label]) {
            let _ = self.docker().args(["rm", "-f", "-v", &id]).output();
        }
        for id in ids(&["network", "ls", "-q", "--filter", &label]) {
            let _ = self.docker().args(["network", "rm", &id]).output();
        }
        for id in ids(&["volume", "ls", "-q", "--filter", &label]) {
            let _ = self.docker().args(["volume", "rm", "-f", &id]).output();
        }
        // Images tagged with this project's name, or named after it (`<project>-web:1`), are its
        // own; shared test images stay. The untagged
        // parents (the build cache of steps other tests share) stay too: pruning them while another
        // test builds on them fails that build ("failed to get digest").
        let images = ids(&[
            "images",
            "--format",
            "{{.Repository}}:{{.Tag}}",
            "--filter",
            &label,
        ]);
        for image in images {
            let own = image.ends_with(&format!(":{}", self.name))
                || image.starts_with(&format!("{}-", self.name));
            if own {
                let _ = self.docker().args(["rmi", "--no-prune", &image]).output();
            }
        }
    }
}

/// A finished `sandbox` run.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
    pub description: String,
}

impl Run {
    fn from(output: Output, description: String) -> Run {
        Run {
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
            description,
        }
    }

    /// Panics with the whole output unless the exit code is `code`.
    pub fn expect_code(&self, code: i32) -> &Run {
        assert_eq!(
            self.code, code,
            "{} exited {} (wanted {code})\n--- stdout\n{}\n--- stderr\n{}",
            self.description, self.code, self.stdout, self.stderr
        );
        self
    }

    pub fn success(&self) -> &Run {
        self.expect_code(0)
    }
}

/// The busybox-static binary from Debian's package.
pub fn busybox() -> PathBuf {
    let path = PathBuf::from("/bin/busybox");
    assert!(
        path.exists(),
        "these tests need Debian's busybox-static (/bin/busybox): apt-get install busybox-static (.ci/run does this)"
    );
    path
}

/// Writes a build context for a `FROM scratch` busybox image into `dir`; returns the image tag,
/// which is derived from the context's content so a stale image is never reused.
pub fn busybox_context(dir: &Path) -> String {
    std::fs::create_dir_all(dir).expect("mkdir");
    std::fs::copy(busybox(), dir.join("busybox")).expect("copy busybox");
    let dockerfile = "FROM scratch\nCOPY busybox /bin/busybox\nRUN [\"/bin/busybox\", \"--install\", \"-s\", \"/bin\"]\n";
    std::fs::write(dir.join("Dockerfile"), dockerfile).expect("write Dockerfile");
    let size = std::fs::metadata(busybox()).expect("busybox").len();
    format!("sandbox-test-busybox:{size:x}-1")
}

/// A service block (YAML, indented for `services:`) running busybox httpd on 8080 with a
/// `/health` file, built from the project's `bb/` context.
pub fn httpd_service(project: &Project, name: &str, extra: &str) -> String {
    let image = busybox_context(&project.path("bb"));
    format!(
        "  {name}:\n    image: {image}\n    build: ./bb\n    command: [\"sh\", \"-c\", \"mkdir -p /www && echo ok > /www/health && echo {name} serving && exec httpd -f -vv -p 8080 -h /www\"]\n    port: 8080\n{extra}"
    )
}

/// A service block (YAML, indented for `services:`) running busybox httpd on 8080 with a
/// `/health` file and one CGI program, `/cgi-bin/{cgi}`, written by `printf '{script}'` (so `\n`
/// ends its lines and `$$` is a `$`), built from the project's `bb/` context; `extra` is added to
/// the block.
pub fn cgi_service(project: &Project, name: &str, cgi: &str, script: &str, extra: &str) -> String {
    let image = busybox_context(&project.path("bb"));
    format!(
        r#"  {name}:
    image: {image}
    build: ./bb
    port: 8080
{extra}    command:
      - sh
      - -c
      - |
        mkdir -p /www/cgi-bin
        echo ok > /www/health
        printf '{script}' > /www/cgi-bin/{cgi}
        chmod +x /www/cgi-bin/{cgi}
        exec httpd -f -p 8080 -h /www
"#
    )
}

/// Parses `sandbox ps --json`.
pub fn ps_json(project: &Project) -> serde_json::Value {
    let run = project.run(&["--json", "ps"]);
    run.success();
    serde_json::from_str(&run.stdout)
        .unwrap_or_else(|error| panic!("ps --json is not JSON ({error}): {}", run.stdout))
}

/// Builds the static demo binary (demo/build.sh) and copies its image context into the project's
/// `demo/image`; returns an image tag of the project's own.
pub fn demo_context(project: &Project) -> String {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let status = Command::new("sh")
        .arg(root.join("demo/build.sh"))
        .stdout(Stdio::null())
        .status()
        .expect("run demo/build.sh");
    assert!(status.success(), "demo/build.sh failed");
    let image = project.path("demo/image");
    std::fs::create_dir_all(&image).expect("mkdir");
    for file in ["Dockerfile", "sandbox-demo"] {
        std::fs::copy(root.join("demo/image").join(file), image.join(file))
            .expect("copy demo image context");
    }
    format!("sandbox-demo:{}", project.name)
}

/// The demo chain (`user` → `item`) as manifest services, built from the project's `demo/image`.
pub fn demo_chain(project: &Project) -> String {
    let image = demo_context(project);
    format!(
        r#"services:
  user:
    image: {image}
    build: ./demo/image
    port: 8080
    environment:
      SERVICE_NAME: user
      ROUTES: "GET /users/{{id}} => call $${{ITEM_URL:-http://item:8080}}/items/{{id}} as item"
    depends_on: {{item: {{condition: healthy}}}}
    healthcheck: {{http: /health}}
  item:
    image: {image}
    build: ./demo/image
    port: 8080
    environment:
      SERVICE_NAME: item
      ROUTES: 'GET /items/{{id}} => json {{"id": "{{id}}", "name": "item {{id}}"}}'
    healthcheck: {{http: /health}}
"#
    )
}

/// A port that was free a moment ago on 127.0.0.1 (for listeners that need a fixed port).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("bind a free port")
        .port()
}

/// The host port published for `replica` of `service`, from `ps --json`.
pub fn replica_port(status: &serde_json::Value, service: &str, replica: u64) -> u16 {
    status["services"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|entry| entry["service"] == service && entry["replica"] == replica)
        .and_then(|entry| entry["ports"][0]["host_port"].as_u64())
        .and_then(|port| u16::try_from(port).ok())
        .unwrap_or_else(|| panic!("ps --json publishes {service}-{replica}: {status}"))
}

/// Calls `probe` until it gives a value; panics naming `what` after `timeout`.
pub fn wait_until<T>(
    what: &str,
    timeout: std::time::Duration,
    mut probe: impl FnMut() -> Option<T>,
) -> T {
    let deadline = std::time::Instant::now() + timeout;
    loop {
        if let Some(value) = probe() {
            return value;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "timed out after {timeout:?} waiting until {what}"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

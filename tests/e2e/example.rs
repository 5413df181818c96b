//! The shipped example: the demo chain from `sandbox.yaml.example`, built from this repository.

use std::io::{Read, Write};
use std::path::Path;

use crate::util::{demo_context, Project};

fn get(port: u16, path: &str) -> String {
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    answer
}

#[test]
fn the_example_chain_answers_through_user_and_item() {
    let project = Project::new("example");
    demo_context(&project);
    let example =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("sandbox.yaml.example"))
            .unwrap();
    // Same manifest, but this test's own project, image tag and a free host port.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let manifest = example
        .replace("name: example\n", "")
        .replace(
            "sandbox-demo:latest",
            &format!("sandbox-demo:{}", project.name),
        )
        .replace("\"8080:8080\"", &format!("\"{port}:8080\""));
    project.manifest(&manifest);
    project.run(&["up", "--wait"]).success();

    let answer = get(port, "/users/7");
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(
        answer.contains(r#"{"service":"user","id":"7","item":{"id": "7", "name": "item 7"}}"#),
        "{answer}"
    );
    let logs = project.run(&["logs", "item"]);
    assert!(logs.stdout.contains("GET /items/7 200"), "{}", logs.stdout);

    // The demo services report to the sandbox's trace server through the injected ZIPKIN_ENDPOINT.
    let status = crate::util::ps_json(&project);
    let zipkin = status["zipkin"]
        .as_str()
        .expect("ps --json names the trace server")
        .to_string();
    let zipkin_port: u16 = zipkin.rsplit(':').next().unwrap().parse().unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    let trace = loop {
        // The demo reports in the background, so poll (the trace server itself stores on POST).
        let answer = get(
            zipkin_port,
            "/api/v2/traces?serviceName=user&spanName=get%20/users/%7Bid%7D&limit=1",
        );
        let body = answer.split("\r\n\r\n").nth(1).unwrap_or("").to_string();
        if body.contains("\"item\"") && body.matches("\"traceId\"").count() >= 3
            || std::time::Instant::now() > deadline
        {
            break body;
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    };
    assert!(trace.contains(r#""name":"get /users/{id}""#), "{trace}");
    assert!(
        trace.contains(r#""remoteEndpoint":{"serviceName":"item"}"#),
        "{trace}"
    );
    assert!(
        trace.contains(r#""localEndpoint":{"serviceName":"item"}"#),
        "{trace}"
    );
    let dependencies = get(
        zipkin_port,
        &format!(
            "/api/v2/dependencies?endTs={}",
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_millis()
        ),
    );
    assert!(
        dependencies.contains(r#"{"parent":"user","child":"item","callCount":1"#),
        "{dependencies}"
    );

    project.run(&["down"]).success();
    assert!(project.leftovers().is_empty());
    let _ = std::process::Command::new("docker")
        .args(["rmi", &format!("sandbox-demo:{}", project.name)])
        .output();
}

#[test]
fn init_writes_a_template_that_validates_and_refuses_to_overwrite() {
    let project = Project::new("init");
    project.run(&["init", "--template", "basic"]).success();
    assert!(project.path("sandbox.yaml").exists());
    project.run(&["validate"]).success();
    let again = project.run(&["init"]);
    again.expect_code(1);
    assert!(again.stderr.contains("--force"), "{}", again.stderr);
    project
        .run(&["init", "--force", "--template", "basic"])
        .success();
    let list = project.run(&["init", "--list"]);
    assert!(
        list.stdout.contains("basic") && list.stdout.contains("chain"),
        "{}",
        list.stdout
    );
}

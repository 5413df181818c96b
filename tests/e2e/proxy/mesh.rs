//! The mesh: caller identity, `external:` services.

use super::*;

// ---------------------------------------------------------------------------------------------
// The mesh

#[test]
fn mesh_calls_are_attributed_to_the_calling_service() {
    let project = Project::new("proxy-mesh-caller");
    let image = demo_context(&project);
    let manifest = format!(
        "gateway: {{port: 0}}\nservices:\n{}{}",
        demo(
            &image,
            "user",
            "GET /users/{id} => call $${ITEM_URL}/items/{id} as item; GET /slow => call $${ITEM_URL}/delay/3000 as item",
            &format!("{HEALTH}    depends_on: {{item: {{condition: healthy}}}}\n")
        ),
        demo(
            &image,
            "item",
            r#"GET /items/{id} => json {"id": "{id}"}"#,
            &format!("{HEALTH}    timeout: 300ms\n")
        ),
    );
    let sandbox = Sandbox::up(project, &manifest, &[("SANDBOX_LOG", "sandbox=info")]);

    let answer = sandbox.get("/user/users/5");
    assert_eq!(answer.status, 200, "{answer:?}");
    assert_eq!(answer.json()["item"]["id"], "5", "{answer:?}");
    let trace_id = answer.header("x-sandbox-trace-id").expect("a trace id");
    // The proxy's spans are ingested off the request path: wait for both hops.
    let spans = sandbox.trace(trace_id, |spans| {
        has_span(spans, "CLIENT", "user", "item") && has_span(spans, "CLIENT", "gateway", "user")
    });
    let trace = serde_json::to_string(&spans).unwrap();
    let mesh = spans
        .iter()
        .find(|span| {
            span["kind"] == "CLIENT"
                && span["localEndpoint"]["serviceName"] == "user"
                && span["tags"]["sandbox.route"] == "mesh"
        })
        .unwrap_or_else(|| panic!("the mesh's client span for user → item: {trace}"));
    assert_eq!(mesh["remoteEndpoint"]["serviceName"], "item", "{trace}");
    assert!(has_span(&spans, "SERVER", "item", "user"), "{trace}");
    assert!(has_span(&spans, "CLIENT", "gateway", "user"), "{trace}");

    let metrics = sandbox.metrics();
    assert!(
        metrics.contains(
            r#"sandbox_proxy_requests_total{route="mesh",service="item",status="200"} 1"#
        ),
        "{metrics}"
    );
    // The access log (the control plane's log file) names the caller of the mesh request.
    let log = sandbox
        .project
        .state
        .path()
        .join(format!("{}.log", sandbox.project.name));
    let access = wait_until(
        "the access log has the mesh call",
        Duration::from_secs(5),
        || {
            let log = plain(&std::fs::read_to_string(&log).ok()?);
            log.lines()
                .find(|line| line.contains("route=mesh") && line.contains("path=/items/5"))
                .map(str::to_string)
        },
    );
    assert!(access.contains("caller=user"), "{access}");
    assert!(access.contains("status=200"), "{access}");

    // The service's own policy applies to mesh calls: `item` answers within 300 ms or `user`
    // gets the proxy's 504 (and passes it on).
    let slow = sandbox.get("/user/slow");
    assert_eq!(slow.status, 504, "{slow:?}");
    assert!(slow.elapsed < Duration::from_secs(2), "{slow:?}");
    assert!(
        slow.body.contains("`item` did not answer within 300ms"),
        "{slow:?}"
    );
}

/// The demo binary running on the host (killed on drop).
struct HostProcess(Child);

impl Drop for HostProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn external_services_are_reached_from_the_gateway_and_through_the_mesh() {
    let project = Project::new("proxy-external");
    let image = demo_context(&project);
    // The very binary the images run (static), here on the host.
    let port = free_port();
    let _legacy = HostProcess(
        Command::new(project.path("demo/image/sandbox-demo"))
            .env("PORT", port.to_string())
            .env("SERVICE_NAME", "legacy")
            .env(
                "ROUTES",
                r#"GET /things/{id} => json {"id": "{id}", "from": "host"}"#,
            )
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start the demo on the host"),
    );
    wait_until("the host demo listens", Duration::from_secs(10), || {
        TcpStream::connect(("127.0.0.1", port)).ok()
    });
    let manifest = format!(
        "gateway: {{port: 0}}\nservices:\n  legacy:\n    external: http://127.0.0.1:{port}\n{}",
        demo(
            &image,
            "user",
            "GET /users/{id} => call $${LEGACY_URL}/things/{id} as legacy",
            &format!("{HEALTH}    depends_on: [legacy]\n")
        ),
    );
    let sandbox = Sandbox::up(project, &manifest, &[]);

    let direct = sandbox.get("/legacy/things/7");
    assert_eq!(
        (direct.status, direct.upstream()),
        (200, "legacy-external"),
        "{direct:?}"
    );
    assert_eq!(direct.json()["from"], "host");

    let through_mesh = sandbox.get("/user/users/8");
    assert_eq!(through_mesh.status, 200, "{through_mesh:?}");
    assert_eq!(
        through_mesh.json()["legacy"]["from"],
        "host",
        "{through_mesh:?}"
    );
    assert_eq!(through_mesh.json()["legacy"]["id"], "8");
    let metrics = sandbox.metrics();
    assert!(
        metrics.contains(
            r#"sandbox_proxy_requests_total{route="mesh",service="legacy",status="200"} 1"#
        ),
        "{metrics}"
    );
}

/// Issue 11: with every service `external:` there is no container whose end would end `up`; the
/// foreground gateway serves until Ctrl-C.
#[test]
fn a_foreground_up_of_external_services_only_serves_until_interrupted() {
    let project = Project::new("external-only");
    let upstream = std::net::TcpListener::bind("127.0.0.1:0").expect("bind the host server");
    let upstream_port = upstream.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for mut connection in upstream.incoming().flatten() {
            let mut request = [0u8; 4096];
            let _ = connection.read(&mut request);
            let _ = connection.write_all(
                b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\nConnection: close\r\n\r\nfrom host",
            );
        }
    });
    let gateway = free_port();
    project.manifest(&format!(
        "gateway: {{port: {gateway}}}\nservices:\n  legacy:\n    external: http://127.0.0.1:{upstream_port}\n"
    ));
    let mut child = project.spawn_quiet(&["up"]);
    let request = b"GET /legacy/ HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n";
    let first = wait_until("the gateway answers", Duration::from_secs(30), || {
        exchange(gateway, request).ok()
    });
    assert_eq!(
        (first.status, first.body.as_str()),
        (200, "from host"),
        "{first:?}"
    );
    // Still serving a while later: nothing ended it.
    std::thread::sleep(Duration::from_secs(3));
    assert!(child.try_wait().unwrap().is_none(), "up exited on its own");
    let later = exchange(gateway, request).expect("the gateway still answers");
    assert_eq!(later.status, 200, "{later:?}");

    // SAFETY: signalling our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130), "an interrupted up exits 130");
    assert!(
        TcpStream::connect(("127.0.0.1", gateway)).is_err(),
        "the gateway still listens"
    );
    assert!(
        project.leftovers().is_empty(),
        "left behind: {:?}",
        project.leftovers()
    );
    assert!(crate::util::ps_json(&project)["pid"].is_null());
}

//! Routing: matches, default routes, rewrite, header edits.

use super::*;

// ---------------------------------------------------------------------------------------------
// Routing

#[test]
fn gateway_routes_match_by_path_method_header_and_query_first_match_wins_and_edit_headers() {
    let project = Project::new("proxy-routing");
    let image = demo_context(&project);
    let manifest = format!(
        r#"gateway:
  port: 0
  routes:
    - match: {{exact: /exact}}
      service: cart
      rewrite: /echo/exact
    - match: {{prefix: /api/, method: POST}}
      service: cart
      rewrite: /echo/
    - match: {{prefix: /api/, headers: {{x-canary: {{exact: "yes"}}}}}}
      service: cart
      rewrite: /echo/
    - match: {{prefix: /api/, query: {{v: "2"}}}}
      service: cart
      rewrite: /echo/
    - match: {{exact: /items/0}}
      service: cart
    - match: {{regex: "/items/[0-9]+"}}
      service: item
    - match: {{prefix: /api/}}
      service: item
      rewrite: /echo/
      request_headers: {{add: {{x-from: gateway}}, remove: [cookie]}}
      response_headers: {{add: {{x-served-by: sandbox}}, remove: [content-type]}}
services:
{cart}{item}"#,
        cart = demo(
            &image,
            "cart",
            r#"GET /items/{id} => json {"cart": "{id}"}"#,
            HEALTH
        ),
        item = demo(
            &image,
            "item",
            r#"GET /items/{id} => json {"item": "{id}"}"#,
            HEALTH
        ),
    );
    let sandbox = Sandbox::up(project, &manifest, &[]);

    // exact: only the very path, rewritten whole.
    let exact = sandbox.get("/exact");
    assert_eq!(
        (exact.status, exact.upstream()),
        (200, "cart-1"),
        "{exact:?}"
    );
    assert_eq!(exact.json()["path"], "/echo/exact");
    let not_exact = sandbox.send("GET", "/exact/more", &[("accept", "application/json")]);
    assert_eq!(not_exact.status, 404, "{not_exact:?}");
    assert_eq!(not_exact.json()["error"], "no route matches `/exact/more`");

    // method, header and query conditions pick `cart`; without them the catch-all picks `item`.
    let post = sandbox.send("POST", "/api/orders", &[]);
    assert_eq!((post.status, post.upstream()), (200, "cart-1"), "{post:?}");
    assert_eq!(post.json()["method"], "POST");
    assert_eq!(post.json()["path"], "/echo/orders");
    let canary = sandbox.send("GET", "/api/orders", &[("x-canary", "yes")]);
    assert_eq!(canary.upstream(), "cart-1", "{canary:?}");
    let not_canary = sandbox.send("GET", "/api/orders", &[("x-canary", "no")]);
    assert_eq!(not_canary.upstream(), "item-1", "{not_canary:?}");
    let query = sandbox.get("/api/orders?v=2");
    assert_eq!(query.upstream(), "cart-1", "{query:?}");
    assert_eq!(
        query.json()["query"],
        "v=2",
        "the query survives the rewrite"
    );
    assert_eq!(sandbox.get("/api/orders?v=3").upstream(), "item-1");

    // regex matches the whole path; an earlier exact route wins over it.
    let first = sandbox.get("/items/0");
    assert_eq!(first.upstream(), "cart-1", "{first:?}");
    assert_eq!(first.json()["cart"], "0");
    let regex = sandbox.get("/items/42");
    assert_eq!(regex.upstream(), "item-1", "{regex:?}");
    assert_eq!(regex.json()["item"], "42");
    assert_eq!(sandbox.get("/items/42x").status, 404, "anchored regex");

    // Header edits: added and removed on the way in and on the way out.
    let edited = sandbox.send(
        "GET",
        "/api/anything",
        &[("cookie", "session=1"), ("x-keep", "kept")],
    );
    assert_eq!(edited.status, 200, "{edited:?}");
    let seen = &edited.json()["headers"];
    assert_eq!(seen["x-from"], "gateway", "{seen}");
    assert_eq!(seen["x-keep"], "kept", "{seen}");
    assert!(seen.get("cookie").is_none(), "cookie removed: {seen}");
    assert_eq!(edited.header("x-served-by"), Some("sandbox"), "{edited:?}");
    assert_eq!(edited.header("content-type"), None, "{edited:?}");
    assert!(
        post.header("x-served-by").is_none(),
        "edits belong to their route"
    );
}

#[test]
fn without_gateway_routes_every_service_is_served_under_its_name() {
    let project = Project::new("proxy-default-routes");
    let image = demo_context(&project);
    let manifest = format!(
        "gateway: {{port: 0}}\nservices:\n{}{}",
        demo(&image, "cart", "", HEALTH),
        demo(&image, "item", "", HEALTH)
    );
    let sandbox = Sandbox::up(project, &manifest, &[]);

    let item = sandbox.get("/item/echo/deeper?x=1");
    assert_eq!((item.status, item.upstream()), (200, "item-1"), "{item:?}");
    assert_eq!(item.json()["path"], "/echo/deeper", "prefix replaced by /");
    assert_eq!(item.json()["query"], "x=1");
    let cart = sandbox.get("/cart/echo");
    assert_eq!((cart.status, cart.upstream()), (200, "cart-1"), "{cart:?}");
    let bare = sandbox.get("/cart");
    assert_eq!(bare.upstream(), "cart-1", "{bare:?}");
    assert!(
        bare.json()["builtin"].is_array(),
        "`/cart` is the service's `/`"
    );
    let unknown = sandbox.send("GET", "/nothing/here", &[("accept", "application/json")]);
    assert_eq!(unknown.status, 404, "{unknown:?}");
    assert!(
        unknown.json()["next"]
            .as_str()
            .is_some_and(|next| next.contains("/__sandbox/routes")),
        "{unknown:?}"
    );
    let routes = sandbox.get("/__sandbox/routes").body;
    assert!(
        routes.contains("prefix:/cart/") && routes.contains("prefix:/item/"),
        "{routes}"
    );
}

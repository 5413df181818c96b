//! `sandbox init` templates: each loads without errors; writing refuses to overwrite.

use sandbox::manifest::{load, templates, write_template, InitError};

use crate::util::options;

#[test]
fn every_template_loads() {
    assert!(templates().iter().any(|template| template.name == "basic"));
    assert!(templates().iter().any(|template| template.name == "chain"));
    for template in templates() {
        let directory = tempfile::tempdir().expect("temp dir");
        std::fs::create_dir_all(directory.path().join("demo/image")).expect("build context");
        write_template(template.name, &directory.path().join("sandbox.yaml"), false)
            .expect("writes");
        let manifest = load(&options(directory.path(), "sandbox.yaml"))
            .unwrap_or_else(|errors| panic!("template `{}`:\n{errors}", template.name));
        assert!(!manifest.services.is_empty());
        assert!(!template.description.is_empty());
    }
}

#[test]
fn chain_template_is_the_classic_chain() {
    let directory = tempfile::tempdir().expect("temp dir");
    std::fs::create_dir_all(directory.path().join("demo/image")).expect("build context");
    write_template("chain", &directory.path().join("sandbox.yaml"), false).expect("writes");
    let manifest = load(&options(directory.path(), "sandbox.yaml")).expect("loads");
    let names: Vec<&str> = manifest
        .start_order()
        .iter()
        .map(|service| service.name.as_str())
        .collect();
    assert_eq!(names, ["item", "user"]);
    assert_eq!(
        manifest.services["user"].environment["SERVICE_NAME"],
        "user"
    );
}

#[test]
fn refuses_to_overwrite_unless_forced() {
    let directory = tempfile::tempdir().expect("temp dir");
    let path = directory.path().join("sandbox.yaml");
    std::fs::write(&path, "mine").expect("write");
    let error = write_template("basic", &path, false).expect_err("exists");
    assert!(matches!(error, InitError::AlreadyExists { .. }));
    assert_eq!(std::fs::read_to_string(&path).expect("read"), "mine");
    write_template("basic", &path, true).expect("forced");
    assert_ne!(std::fs::read_to_string(&path).expect("read"), "mine");
}

#[test]
fn unknown_template_lists_the_available_ones() {
    let directory = tempfile::tempdir().expect("temp dir");
    let error =
        write_template("nope", &directory.path().join("sandbox.yaml"), false).expect_err("unknown");
    insta::assert_snapshot!("unknown_template", error.to_string());
}

//! The three descriptions of the API agree: `template.yaml` (what is deployed), the cargo-lambda
//! router in `Cargo.toml` (what runs locally) and `docs/openapi.yaml` (what users read).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeSet;
use std::path::PathBuf;

use naksha_local::template::{Template, router_path};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Template routes with API Gateway's greedy `{name+}` written as OpenAPI's `{name}`.
fn template_routes() -> BTreeSet<(String, String)> {
    let t = Template::load(&root().join("template.yaml")).unwrap();
    t.routes().unwrap().into_iter().map(|r| (r.method, r.path.replace("+}", "}"))).collect()
}

#[test]
fn every_deployed_route_is_documented_in_openapi_and_nothing_else_is() {
    let doc: serde_yaml::Value =
        serde_yaml::from_str(&std::fs::read_to_string(root().join("docs/openapi.yaml")).unwrap()).unwrap();
    let mut documented = BTreeSet::new();
    for (path, ops) in doc["paths"].as_mapping().unwrap() {
        const METHODS: &[&str] = &["get", "put", "post", "delete", "patch", "head", "options"];
        for (method, _) in ops.as_mapping().unwrap() {
            let method = method.as_str().unwrap();
            if METHODS.contains(&method) {
                documented.insert((method.to_uppercase(), path.as_str().unwrap().to_owned()));
            }
        }
    }
    assert_eq!(documented, template_routes());
}

#[test]
fn the_local_router_mirrors_the_template() {
    let cargo: toml_like::Router = toml_like::parse(&std::fs::read_to_string(root().join("Cargo.toml")).unwrap());
    let t = Template::load(&root().join("template.yaml")).unwrap();
    let wanted: BTreeSet<(String, String, String)> =
        t.routes().unwrap().into_iter().map(|r| (r.method, router_path(&r.path), r.binary)).collect();
    assert_eq!(cargo, wanted);
}

#[test]
fn every_function_binary_exists_in_a_crate() {
    let t = Template::load(&root().join("template.yaml")).unwrap();
    for f in t.functions().unwrap() {
        let found = std::fs::read_dir(root().join("functions"))
            .unwrap()
            .filter_map(Result::ok)
            .any(|crate_dir| crate_dir.path().join(format!("src/bin/{}.rs", f.binary)).is_file());
        assert!(found, "{} names binary {} but no functions/*/src/bin/{}.rs exists", f.logical_id, f.binary, f.binary);
    }
}

/// Just enough of the router table to read `"<path>" = [{ method = "M", function = "F" }, …]`.
mod toml_like {
    use std::collections::BTreeSet;

    pub type Router = BTreeSet<(String, String, String)>;

    pub fn parse(cargo: &str) -> Router {
        let section = cargo.split("[workspace.metadata.lambda.watch.router]").nth(1).expect("a router section");
        let section = section.split("\n[").next().unwrap();
        let mut out = BTreeSet::new();
        for line in section.lines().filter(|l| l.starts_with('"')) {
            let (path, rest) = line.split_once('=').unwrap();
            let path = path.trim().trim_matches('"').to_owned();
            for entry in rest.split('{').skip(1) {
                let field = |name: &str| entry.split(name).nth(1).unwrap().split('"').nth(1).unwrap().to_owned();
                out.insert((field("method"), path.clone(), field("function")));
            }
        }
        out
    }
}

//! `naksha-local`: provision, serve, mint tokens, check routes. Called by the Makefile.

use std::process::ExitCode;

use aws_sdk_kinesis::types::ShardIteratorType;
use naksha_local::devauth::DevKey;
use naksha_local::poller::{self, Mapping};
use naksha_local::stack::{self, API_URL, JWKS_ADDR, LocalStack, Paths};
use naksha_local::template::Template;

const USAGE: &str = "usage:
  naksha-local provision [--backend moto|localstack]   create tables, streams, keys from template.yaml
  naksha-local serve                                   serve the dev JWKS and fire the schedules
  naksha-local pollers                                 poll the streams into their functions (checkpointed)
  naksha-local token --tenant T --sub S --roles a,b [--ttl SECONDS]
  naksha-local routes [--check]                        the API routes as a cargo-lambda router; --check compares with Cargo.toml
  naksha-local policy-check                            fail on what breaks P-1..P-6 in template.yaml, the routes and the shipped WPKs";

fn flag(args: &[String], name: &str) -> Option<String> {
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).cloned()
}

#[tokio::main]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("provision") => provision(&args).await,
        Some("serve") => serve().await,
        Some("pollers") => pollers().await,
        Some("token") => token(&args),
        Some("routes") => routes(&args),
        Some("policy-check") => policy_check(),
        _ => Err(USAGE.to_owned()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("naksha-local: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn provision(args: &[String]) -> Result<(), String> {
    let backend = flag(args, "--backend").unwrap_or_else(|| "moto".into());
    let paths = Paths::discover().map_err(|e| e.to_string())?;
    let template = Template::load(&paths.template()).map_err(|e| e.to_string())?;
    let stack = stack::provision(&template, &backend).await.map_err(|e| e.to_string())?;
    stack.save(&paths).map_err(|e| e.to_string())?;
    let mut env = stack.function_env(&template).map_err(|e| e.to_string())?;
    // Local only: where a test drops a file to crash a worker mid-step (see the chaos worker).
    env.insert("NAKSHA_CRASH_DIR".into(), paths.local().join("crash").display().to_string());
    // The harness fires the exporter more often than the cloud's every minute: tell it how often.
    let periods = naksha_local::schedules::overrides(&std::env::var("NAKSHA_SCHEDULE_PERIODS").unwrap_or_default());
    if let Some(tick) = periods.get("SimExporterFunction") {
        env.insert("SIM_EXPORTER_TICK_S".into(), tick.as_secs().to_string());
    }
    stack::write_env_file(&paths.env_file(), &env).map_err(|e| e.to_string())?;
    DevKey::load_or_create(&paths.dev_key()).map_err(|e| e.to_string())?;
    for (id, name) in &stack.context.physical {
        println!("  {id:<28} {name}");
    }
    Ok(())
}

fn loaded() -> Result<(Paths, LocalStack, Template, reqwest::Client), String> {
    let paths = Paths::discover().map_err(|e| e.to_string())?;
    let stack = LocalStack::load(&paths).map_err(|e| e.to_string())?;
    let template =
        Template::load(&paths.template()).and_then(|t| t.for_context(&stack.context)).map_err(|e| e.to_string())?;
    let http =
        reqwest::Client::builder().timeout(std::time::Duration::from_secs(600)).build().map_err(|e| e.to_string())?;
    Ok((paths, stack, template, http))
}

/// Lambda's event source mappings: a process of its own, so a test can kill it and start it again.
async fn pollers() -> Result<(), String> {
    naksha_core::logging::init();
    let (paths, stack, template, http) = loaded()?;
    let config = stack::emulator_config().await;
    let kinesis = aws_sdk_kinesis::Client::new(&config);
    let mut tasks = tokio::task::JoinSet::new();
    for m in template.stream_mappings().map_err(|e| e.to_string())? {
        let function = stack.name(&m.function_logical_id).map_err(|e| e.to_string())?.to_owned();
        let mapping = Mapping {
            invoke_url: format!("{API_URL}/2015-03-31/functions/{function}/invocations"),
            // The function's timeout, and time for `cargo lambda watch` to start an instance.
            invoke_timeout: std::time::Duration::from_secs(m.function_timeout_s + 30),
            function,
            stream: stack.name(&m.stream_logical_id).map_err(|e| e.to_string())?.to_owned(),
            stream_arn: stack.arn(&m.stream_logical_id).map_err(|e| e.to_string())?.to_owned(),
            batch_size: m.batch_size,
            starting_position: ShardIteratorType::from(m.starting_position.as_str()),
            max_retries: if m.maximum_retry_attempts < 0 { 10 } else { m.maximum_retry_attempts as u32 },
            bisect_on_error: m.bisect_on_error,
            report_batch_item_failures: m.report_batch_item_failures,
            failures_file: paths.failures(),
            checkpoints: paths.checkpoints(),
            invocations_file: paths.invocations(),
        };
        tracing::info!(function = %mapping.function, stream = %mapping.stream, "polling");
        tasks.spawn(poller::run(kinesis.clone(), http.clone(), mapping));
    }
    while tasks.join_next().await.is_some() {}
    Err("every poller stopped".into())
}

async fn serve() -> Result<(), String> {
    naksha_core::logging::init();
    let (paths, _stack, template, http) = loaded()?;
    let key = DevKey::load_or_create(&paths.dev_key()).map_err(|e| e.to_string())?;
    let jwks = key.jwks().map_err(|e| e.to_string())?.to_string();
    let listener = tokio::net::TcpListener::bind(JWKS_ADDR).await.map_err(|e| format!("binding {JWKS_ADDR}: {e}"))?;
    let local_periods =
        naksha_local::schedules::overrides(&std::env::var("NAKSHA_SCHEDULE_PERIODS").unwrap_or_default());
    for f in template.functions().map_err(|e| e.to_string())? {
        for s in &f.schedules {
            let period = naksha_local::schedules::period(&s.expression)
                .map(|p| local_periods.get(&f.logical_id).copied().unwrap_or(p));
            match period {
                Some(period) if naksha_local::schedules::enabled(s.enabled.as_ref()) => {
                    let url = format!("{API_URL}/2015-03-31/functions/{}/invocations", f.binary);
                    let rule = format!("{}{}", f.logical_id, s.name);
                    tracing::info!(function = %f.binary, every_s = period.as_secs(), "firing a schedule");
                    tokio::spawn(naksha_local::schedules::run(
                        http.clone(),
                        url,
                        f.binary.clone(),
                        rule,
                        s.input.clone(),
                        period,
                    ));
                }
                _ => tracing::info!(function = %f.binary, expression = %s.expression, "schedule not fired locally"),
            }
        }
    }
    tracing::info!(jwks = %format!("http://{JWKS_ADDR}/.well-known/jwks.json"), "local harness serving");
    naksha_local::jwks::serve(listener, jwks).await.map_err(|e| e.to_string())
}

fn token(args: &[String]) -> Result<(), String> {
    let tenant = flag(args, "--tenant").ok_or("--tenant is required")?;
    let sub = flag(args, "--sub").ok_or("--sub is required")?;
    let roles = flag(args, "--roles").unwrap_or_default();
    let ttl: i64 = flag(args, "--ttl").map_or(Ok(3600), |t| t.parse()).map_err(|_| "--ttl must be seconds")?;
    let roles: Vec<&str> = roles.split(',').map(str::trim).filter(|r| !r.is_empty()).collect();
    let paths = Paths::discover().map_err(|e| e.to_string())?;
    let key = DevKey::load_or_create(&paths.dev_key()).map_err(|e| e.to_string())?;
    println!("{}", key.token(&tenant, &sub, &roles, ttl).map_err(|e| e.to_string())?);
    Ok(())
}

/// The router `cargo lambda watch` needs, derived from the template's HttpApi events.
fn router_toml(template: &Template) -> Result<String, String> {
    let mut by_path: std::collections::BTreeMap<String, Vec<(String, String)>> = Default::default();
    for r in template.routes().map_err(|e| e.to_string())? {
        by_path.entry(naksha_local::template::router_path(&r.path)).or_default().push((r.method, r.binary));
    }
    let mut out = String::from("[workspace.metadata.lambda.watch.router]\n");
    for (path, methods) in by_path {
        let entries: Vec<String> =
            methods.iter().map(|(m, f)| format!("{{ method = \"{m}\", function = \"{f}\" }}")).collect();
        out.push_str(&format!("\"{path}\" = [{}]\n", entries.join(", ")));
    }
    Ok(out)
}

fn routes(args: &[String]) -> Result<(), String> {
    let paths = Paths::discover().map_err(|e| e.to_string())?;
    let template = Template::load(&paths.template()).map_err(|e| e.to_string())?;
    let wanted = router_toml(&template)?;
    if !args.iter().any(|a| a == "--check") {
        print!("{wanted}");
        return Ok(());
    }
    let cargo = std::fs::read_to_string(paths.root.join("Cargo.toml")).map_err(|e| e.to_string())?;
    if !cargo.contains(&wanted) {
        return Err(format!("Cargo.toml's router does not mirror template.yaml; it should contain:\n{wanted}"));
    }
    println!("the cargo-lambda router in Cargo.toml mirrors template.yaml");
    // Every HttpApi route is in the OpenAPI document (and with the same path parameters).
    let openapi: serde_yaml::Value = serde_yaml::from_str(
        &std::fs::read_to_string(paths.root.join("docs/openapi.yaml"))
            .map_err(|e| format!("docs/openapi.yaml: {e}"))?,
    )
    .map_err(|e| format!("docs/openapi.yaml: {e}"))?;
    let mut missing = Vec::new();
    for r in template.routes().map_err(|e| e.to_string())? {
        let path = r.path.replace("+}", "}");
        let method = r.method.to_ascii_lowercase();
        if openapi["paths"][path.as_str()][method.as_str()].is_null() {
            missing.push(format!("{} {path}", r.method));
        }
    }
    if missing.is_empty() {
        println!("every route of template.yaml is in docs/openapi.yaml");
        Ok(())
    } else {
        Err(format!("docs/openapi.yaml lacks: {}", missing.join(", ")))
    }
}

fn policy_check() -> Result<(), String> {
    let root = std::env::current_dir().map_err(|e| e.to_string())?;
    let violations = naksha_local::policy_check::check_repo(&root)?;
    if violations.is_empty() {
        println!("policy-check: template.yaml, the routes and the shipped WPKs keep P-1..P-6");
        return Ok(());
    }
    for v in &violations {
        eprintln!("{v}");
    }
    Err(format!("{} policy violation(s)", violations.len()))
}

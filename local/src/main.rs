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
  naksha-local policy-check                            fail on what breaks P-1..P-6 in template.yaml, the routes and the shipped WPKs
  naksha-local coldstart --bin-dir DIR [--runs N] [--python PY] --out FILE
                                                       every function's init against a stub Runtime API (make coldstart)";

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
        Some("coldstart") => coldstart(&args),
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

/// `make coldstart`: each function of template.yaml started `--runs` times from `--bin-dir` against
/// a stub Runtime API (with the local stack's environment, so the emulator is what it reaches),
/// and the seed's stack in Python doing the same work; the table goes to `--out`.
fn coldstart(args: &[String]) -> Result<(), String> {
    use naksha_local::coldstart::{Sample, measure, summarise};
    use std::time::Duration;
    let paths = Paths::discover().map_err(|e| e.to_string())?;
    let bin_dir = std::path::PathBuf::from(flag(args, "--bin-dir").ok_or("--bin-dir DIR is required")?);
    let out = flag(args, "--out").ok_or("--out FILE is required")?;
    let runs: usize = flag(args, "--runs").map_or(Ok(5), |v| v.parse()).map_err(|_| "--runs takes a number")?;
    let template = Template::load(&paths.template()).map_err(|e| e.to_string())?;
    let env_text = std::fs::read_to_string(paths.env_file())
        .map_err(|e| format!("{}: {e} (start the stack: make up)", paths.env_file().display()))?;
    let base: std::collections::BTreeMap<String, String> = env_text
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    let lambda_env = |name: &str, memory: u64| {
        let mut env = base.clone();
        for (k, v) in [
            ("AWS_LAMBDA_FUNCTION_NAME", name.to_owned()),
            ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", memory.to_string()),
            ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST".to_owned()),
            ("AWS_LAMBDA_LOG_GROUP_NAME", format!("/aws/lambda/{name}")),
            ("AWS_LAMBDA_LOG_STREAM_NAME", "coldstart".to_owned()),
        ] {
            env.insert(k.to_owned(), v);
        }
        env
    };
    let timeout = Duration::from_secs(30);
    let run = |program: &std::path::Path, argv: &[&str], env: &std::collections::BTreeMap<String, String>| {
        (0..runs).map(|_| measure(program, argv, env, timeout)).collect::<Result<Vec<Sample>, String>>()
    };
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let mib = |kib: u64| kib as f64 / 1024.0;
    let mut rows = Vec::new();
    let (mut http_cpu, mut http_rss) = (Duration::ZERO, 0u64);
    let mut functions = template.functions().map_err(|e| e.to_string())?;
    functions.sort_by(|a, b| (a.routes.is_empty(), &a.binary).cmp(&(b.routes.is_empty(), &b.binary)));
    for f in &functions {
        let program = bin_dir.join(&f.binary);
        let memory = f.memory_mb.unwrap_or(128);
        let s = summarise(&run(&program, &[], &lambda_env(&f.binary, memory))?).ok_or("no runs")?;
        let kind = if !f.routes.is_empty() {
            http_cpu = http_cpu.max(s.cpu);
            http_rss = http_rss.max(s.rss_kib);
            "http"
        } else if !f.schedules.is_empty() {
            "schedule"
        } else {
            "stream"
        };
        let size = std::fs::metadata(&program).map(|m| m.len()).unwrap_or(0);
        eprintln!(
            "coldstart: {:<28} {:>7.1} ms wall {:>7.1} ms CPU {:>6.1} MiB",
            f.binary,
            ms(s.wall),
            ms(s.cpu),
            mib(s.rss_kib)
        );
        rows.push(format!(
            "| `{}` | {kind} | {memory} | {:.1} | {:.1} | {:.1} | {:.1} | {:.1} |",
            f.binary,
            size as f64 / 1_048_576.0,
            ms(s.wall),
            ms(s.cpu),
            mib(s.rss_kib),
            mib(s.hwm_kib)
        ));
    }
    let mut python_line = String::from("Python was not measured (no --python).");
    if let Some(py) = flag(args, "--python") {
        let script = paths.root.join("local/coldstart.py").display().to_string();
        let s = summarise(&run(std::path::Path::new(&py), &[&script], &lambda_env("python-fastapi", 128))?)
            .ok_or("no runs")?;
        eprintln!(
            "coldstart: {:<28} {:>7.1} ms wall {:>7.1} ms CPU {:>6.1} MiB",
            "python",
            ms(s.wall),
            ms(s.cpu),
            mib(s.rss_kib)
        );
        rows.push(format!(
            "| Python 3 + boto3 (DynamoDB, Kinesis, KMS clients) + FastAPI app (`local/coldstart.py`) | reference | 128 | – | {:.1} | {:.1} | {:.1} | {:.1} |",
            ms(s.wall),
            ms(s.cpu),
            mib(s.rss_kib),
            mib(s.hwm_kib)
        ));
        python_line = format!(
            "The same work in Python (the seed's stack): {:.1} ms of CPU and {:.1} MiB resident, {:.0}× and {:.0}× the largest HTTP function's.",
            ms(s.cpu),
            mib(s.rss_kib),
            ms(s.cpu) / ms(http_cpu).max(0.001),
            mib(s.rss_kib) / mib(http_rss).max(0.001)
        );
    }
    let verdict = |ok: bool| if ok { "met" } else { "missed" };
    let commit = std::process::Command::new("git")
        .args(["rev-parse", "--short", "HEAD"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default();
    let text = format!(
        "# Cold starts\n\nWritten by `make coldstart` at commit `{commit}`: each function's release build (x86_64, this machine) \
started {runs} times against a stub Runtime API on localhost, with the local stack's environment (the emulator up); \
init is process start to its first `GET /2018-06-01/runtime/invocation/next`. Wall and CPU (every thread's \
`schedstat`) are medians; resident memory is the largest `VmRSS` at `next` and the largest peak (`VmHWM`). The binary \
is in the page cache after the first start, as on a warm Lambda host; Lambda adds its own sandbox and download time.\n\n\
- HTTP functions, largest init CPU: **{:.1} ms** (goal ≤ 20 ms: {}); largest resident: **{:.1} MiB** (goal ≤ 20 MB: {}).\n\
- {python_line}\n\n\
| function | kind | memory (MB) | binary (MiB) | init wall (ms) | init CPU (ms) | resident at next (MiB) | peak (MiB) |\n\
|---|---|---:|---:|---:|---:|---:|---:|\n{}\n",
        ms(http_cpu),
        verdict(ms(http_cpu) <= 20.0),
        mib(http_rss),
        verdict(http_rss as f64 * 1024.0 <= 20e6),
        rows.join("\n")
    );
    std::fs::write(&out, text).map_err(|e| format!("{out}: {e}"))?;
    println!("coldstart: {} functions, {runs} starts each; {out}", functions.len());
    Ok(())
}

//! `GET /health`: checks every stream, table and key of the deployment (`HEALTH_STREAMS`,
//! `HEALTH_TABLES`, `HEALTH_KEYS`, comma-separated, set from template.yaml).

use naksha_core::config::{ConfigReader, Platform};
use naksha_core::{aws::Aws, http, logging};
use naksha_insight_stream::health::{self, Dependency};

#[global_allocator]
static ALLOC: naksha_core::Allocator = naksha_core::Allocator;

fn list(cfg: &mut ConfigReader, name: &str) -> Vec<String> {
    cfg.required(name).split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned).collect()
}

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    logging::init();
    let mut cfg = ConfigReader::from_env();
    let platform = Platform::from_config(&mut cfg);
    let mut deps: Vec<Dependency> = list(&mut cfg, "HEALTH_STREAMS").into_iter().map(Dependency::Stream).collect();
    deps.extend(list(&mut cfg, "HEALTH_TABLES").into_iter().map(Dependency::Table));
    deps.extend(list(&mut cfg, "HEALTH_KEYS").into_iter().map(Dependency::Key));
    cfg.finish()?;
    http::serve_with((Aws::load().await, platform.backend, deps), |app, _req| async move {
        http::json(200, &health::check(&app.0, app.1, &app.2).await?)
    })
    .await
}

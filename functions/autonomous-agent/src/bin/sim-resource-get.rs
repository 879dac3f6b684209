//! `GET /sim/resources/{resource}` (role admin, simulation mode): read a simulated resource.

use std::sync::Arc;

use naksha_agent::{api, wiring::Boot};
use naksha_core::{config::ConfigReader, http, logging};

#[global_allocator]
static ALLOC: naksha_core::Allocator = naksha_core::Allocator;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    logging::init();
    let mut cfg = ConfigReader::from_env();
    let boot = Boot::read(&mut cfg);
    let (sim_table, state_table) = (cfg.required("SIM_TABLE"), cfg.required("AGENT_STATE_TABLE"));
    cfg.finish()?;
    let ctx = boot.start().await;
    let app = (naksha_agent::store::DynamoSim::new(ctx.aws.dynamodb(), sim_table, state_table), ctx);
    let app = Arc::new(app);
    http::serve(move |req| {
        let app = Arc::clone(&app);
        async move { api::get_sim(&app.1.verifier, &app.0, req).await }
    })
    .await
}

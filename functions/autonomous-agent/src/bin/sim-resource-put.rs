//! `PUT /sim/resources/{resource}` (role admin, simulation mode): create or replace a simulated resource.

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
    http::serve_with(
        (naksha_agent::store::DynamoSim::new(ctx.aws.dynamodb(), sim_table, state_table), ctx),
        |app, req| async move { api::put_sim(&app.1.verifier, &app.0, req).await },
    )
    .await
}

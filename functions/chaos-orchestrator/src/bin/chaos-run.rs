//! `POST /chaos/run` (role admin): start an experiment on a chaos target inside its blast radius.

use std::sync::Arc;

use naksha_chaos::api::{self, ChaosApi};
use naksha_chaos::wiring::ApiApp;
use naksha_core::boot;

#[global_allocator]
static ALLOC: naksha_core::Allocator = naksha_core::Allocator;

#[tokio::main]
async fn main() -> Result<(), boot::BootError> {
    boot::http(|app: Arc<ApiApp>, req| async move {
        let api = ChaosApi {
            world: &app.world,
            runs: &app.chaos,
            halt: &app.views,
            queue: &app.queue,
            http_hosts: &app.http_hosts,
        };
        api::run(&app.verifier, &api, req).await
    })
    .await
}

//! `POST /wpk` (role admin): validate, sign with KMS, store an immutable WPK version.

use naksha_agent::{api, wiring::Boot};
use naksha_core::{config::ConfigReader, http, logging};

#[global_allocator]
static ALLOC: naksha_core::Allocator = naksha_core::Allocator;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    logging::init();
    let mut cfg = ConfigReader::from_env();
    let boot = Boot::read(&mut cfg);
    let key = cfg.required("SIGNING_KEY_ID");
    cfg.finish()?;
    let ctx = boot.start().await;
    let keys = naksha_core::signing::TrustedKeys::load(&ctx.aws.kms(), std::slice::from_ref(&key)).await?;
    http::serve_with((naksha_core::signing::KmsSigner::new(ctx.aws.kms(), key), keys, ctx), |app, req| async move {
        api::register_wpk(&app.2.verifier, &app.2.store, &app.0, &app.1, req).await
    })
    .await
}

//! D.5 chaos-orchestrator: inject a fault into the (simulated) world, let the system notice and
//! heal it by itself, check the steady state, always roll back, and measure how long each part
//! took (docs/chaos.md).
//!
//! - [`specs`]: experiments (fault, steady state, deadline, blast radius, rollbacks); [`import`]:
//!   Chaos Toolkit experiments and AWS FIS templates.
//! - [`run`]: a run's stages, timeline, verdict and figures; [`engine`]: starting a run and
//!   advancing it one step per invocation.
//! - [`api`]: the HTTP routes; [`worker`]: the run worker; [`wiring`]: each Lambda's state.
//! - [`ports`]: the traits it needs; [`store`]: DynamoDB, Kinesis, HTTP; [`memory`]: for tests.

pub mod api;
pub mod engine;
pub mod fuzzing;
pub mod gameday;
pub mod import;
pub mod memory;
pub mod ports;
pub mod run;
pub mod scenario;
pub mod specs;
pub mod store;
pub mod wiring;
pub mod worker;

#[cfg(test)]
mod samples {
    //! The sample events in `events/` stay valid: they are parsed as the functions receive them.
    use serde_json::Value;

    fn sample(name: &str) -> String {
        std::fs::read_to_string(format!("{}/../../events/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap_or_default()
    }

    fn body(name: &str) -> Value {
        let parsed = serde_json::from_str::<lambda_http::request::LambdaRequest>(&sample(name));
        assert!(parsed.is_ok(), "{name}: {parsed:?}");
        let raw: Value = serde_json::from_str(&sample(name)).unwrap_or_default();
        serde_json::from_str(raw["body"].as_str().unwrap_or("null")).unwrap_or_default()
    }

    #[test]
    fn the_sample_events_parse_as_the_functions_receive_them() {
        assert_eq!(body("chaos-run.json")["spec"], "kill-pod");
        let spec = crate::specs::Spec::parse(&body("chaos-specs-add.json"), &[]);
        assert!(spec.is_ok(), "{spec:?}");
        assert_eq!(body("sim-scenario.json"), serde_json::json!({}));
        let raw: Value = serde_json::from_str(&sample("sim-scenario.json")).unwrap_or_default();
        assert_eq!(raw["pathParameters"]["name"], "default");
        let gameday: Value = serde_json::from_str(&sample("chaos-gameday.json")).unwrap_or_default();
        let plan = crate::gameday::parse(&gameday);
        assert!(plan.is_ok(), "{plan:?}");
        let exporter: aws_lambda_events::event::eventbridge::EventBridgeEvent<Value> =
            serde_json::from_str(&sample("sim-exporter.json")).unwrap_or_default();
        assert_eq!(exporter.detail_type, "Scheduled Event");
        let worker: aws_lambda_events::event::kinesis::KinesisEvent =
            serde_json::from_str(&sample("chaos-worker.json")).unwrap_or_default();
        let msg =
            worker.records.first().map(|r| serde_json::from_slice::<crate::ports::ChaosMessage>(&r.kinesis.data.0));
        assert!(matches!(msg, Some(Ok(_))), "{msg:?}");
    }
}

//! D.4 federation-hub: edge nodes register with a token and their own P-256 key, heartbeat, and
//! poll for work; an operator sends a signed WPK trigger to one node or rolls it out to every
//! node with a label at a controlled rate; nodes report results signed with their key.
//!
//! - [`nodes`]: registration, labels, liveness (`online`, `stale`, `offline`).
//! - [`triggers`]: trigger requests, rollouts and their abort rule, executions.
//! - [`hub`]: the use cases (register, heartbeat, send, hand out, report, sweep), over [`ports`].
//! - [`ports`]: the traits the hub needs; [`store`]: DynamoDB and KMS; [`memory`]: for tests.
//! - [`api`]: the HTTP routes; [`wiring`]: each Lambda's state, built once per cold start.
//!
//! The signed records (orders, results, key announcements) and the edge node's checks are
//! naksha-contracts' `edge`.

pub mod api;
pub mod hub;
pub mod memory;
pub mod nodes;
pub mod ports;
pub mod store;
pub mod triggers;
pub mod wiring;

#[cfg(test)]
mod samples {
    //! The sample events in `events/` stay valid: they are parsed as the functions receive them.
    use serde_json::Value;

    fn sample(name: &str) -> String {
        std::fs::read_to_string(format!("{}/../../events/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap_or_default()
    }

    /// The JSON body of an HTTP sample, after checking it is an API Gateway v2 request.
    fn body(name: &str) -> Value {
        let parsed = serde_json::from_str::<lambda_http::request::LambdaRequest>(&sample(name));
        assert!(parsed.is_ok(), "{name}: {parsed:?}");
        let raw: Value = serde_json::from_str(&sample(name)).unwrap_or_default();
        serde_json::from_str(raw["body"].as_str().unwrap_or("null")).unwrap_or_default()
    }

    #[test]
    fn the_sample_events_parse_as_the_functions_receive_them() {
        assert!(crate::nodes::Registration::parse(&body("federation-register.json")).is_ok());
        assert!(crate::triggers::TriggerRequest::parse(&body("federation-trigger-send.json")).is_ok());
        assert_eq!(body("federation-heartbeat.json")["halted"], false);
        let _poll: lambda_http::request::LambdaRequest =
            serde_json::from_str(&sample("federation-triggers-poll.json")).unwrap();
        let sweep: aws_lambda_events::event::eventbridge::EventBridgeEvent<Value> =
            serde_json::from_str(&sample("federation-sweep.json")).unwrap();
        assert_eq!(sweep.detail_type, "Scheduled Event");
    }
}

//! The sample WPKs and events in `events/` stay valid: they are parsed here.

#[cfg(test)]
mod tests {
    use aws_lambda_events::event::kinesis::KinesisEvent;

    use crate::wpk::{Mode, parse};
    use naksha_contracts::runs::RunMessage;

    fn read(rel: &str) -> String {
        std::fs::read_to_string(format!("{}/../../events/{rel}", env!("CARGO_MANIFEST_DIR"))).unwrap()
    }

    #[test]
    fn the_sample_wpks_validate() {
        let restart = parse(&read("wpk/restart-unhealthy.yaml"), true).unwrap();
        assert_eq!((restart.safety.mode, restart.safety.dry_run), (Mode::Manual, true));
        let scale = parse(&read("wpk/scale-up-on-saturation.json"), false).unwrap();
        assert_eq!(scale.safety.mode, Mode::Auto);
        let k8s = parse(&read("wpk/k8s-rollout-restart.yaml"), true).unwrap();
        assert_eq!(k8s.steps[0].adapter, "k8s");
    }

    #[test]
    fn the_sample_worker_event_carries_a_run_message() {
        let event: KinesisEvent = serde_json::from_str(&read("agent-worker.json")).unwrap();
        let msg: RunMessage = serde_json::from_slice(&event.records[0].kinesis.data.0).unwrap();
        assert_eq!(msg.tenant.as_str(), "acme");
    }

    #[test]
    fn the_sample_run_request_is_an_api_gateway_v2_event() {
        let event: lambda_http::request::LambdaRequest = serde_json::from_str(&read("agent-run.json")).unwrap();
        let req: lambda_http::Request = event.into();
        assert_eq!(req.uri().path(), "/agent/run");
    }
}

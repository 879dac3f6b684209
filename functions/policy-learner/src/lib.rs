//! D.6 policy-learner: learn policy from audit logs and approvals, and show where a tenant stands
//! against P-1…P-6 (docs/policies/policy_learning.md).
//!
//! - [`records`]: the three input formats, read into one normalised [`records::Record`].
//! - [`risk`]: rules for risky behaviour; [`suggest`]: autonomy, least-privilege and risk
//!   suggestions with their evidence, the lifecycle states, what enforcing would block.
//! - [`learn`]: the use cases (learn from lines or from the chain; move a suggestion);
//!   [`nightly`]: the schedule's job.
//! - [`compliance`]: the P-1…P-6 matrix from what [`live`] observes.
//! - [`api`]: the HTTP routes; [`wiring`]: each Lambda's state; [`ports`], [`store`] (DynamoDB),
//!   [`memory`] (for tests).

pub mod api;
pub mod compliance;
pub mod fuzzing;
pub mod learn;
pub mod live;
pub mod memory;
pub mod nightly;
pub mod ports;
pub mod records;
pub mod risk;
pub mod store;
pub mod suggest;
pub mod wiring;

#[cfg(test)]
mod samples {
    //! The sample events in `events/` stay valid: they are parsed as the functions receive them.
    use serde_json::Value;

    fn sample(name: &str) -> String {
        std::fs::read_to_string(format!("{}/../../events/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap_or_default()
    }

    #[test]
    fn the_sample_events_parse_as_the_functions_receive_them() {
        for name in ["policy-learn.json", "policy-suggestion-advance.json"] {
            let parsed = serde_json::from_str::<lambda_http::request::LambdaRequest>(&sample(name));
            assert!(parsed.is_ok(), "{name}: {parsed:?}");
        }
        let learn: Value = serde_json::from_str(&sample("policy-learn.json")).unwrap_or_default();
        let key = naksha_core::privacy::PiiKey::from_secret(b"k");
        let tenant = naksha_contracts::TenantId::from_record("acme").unwrap_or_else(|_| unreachable!());
        let p =
            crate::records::parse_lines(learn["body"].as_str().unwrap_or_default(), &tenant, &key.for_tenant("acme"));
        assert!(p.bad.is_empty() && p.records.len() == 2, "{:?}", p.bad);
        let advance: Value = serde_json::from_str(&sample("policy-suggestion-advance.json")).unwrap_or_default();
        assert_eq!(advance["pathParameters"]["id"], "sg-0a1b2c3d4e5f60718293");
        let nightly: Value = serde_json::from_str(&sample("policy-nightly.json")).unwrap_or_default();
        assert_eq!(nightly["detail-type"], "Scheduled Event");
    }
}

//! Each hub Lambda's state, read from the environment and built once per cold start by
//! naksha-core's bootstrap.

use chrono::Duration;
use naksha_core::auth::{AuthConfig, Verifier};
use naksha_core::boot::{BootError, Cold, Function};
use naksha_core::config::ConfigReader;
use naksha_core::signing::{KmsSigner, TrustedKeys, key_ids};

use crate::hub::TriggerKey;
use crate::nodes::Liveness;
use crate::store::keys::KeyRing;
use crate::store::{DynamoFleet, DynamoHalt, DynamoWpks};

/// `POST /federation/register` and `GET /federation/keys`: the nodes, and the keys to hand them.
#[derive(Debug)]
pub struct KeysApp {
    pub verifier: Verifier,
    pub fleet: DynamoFleet,
    pub ring: KeyRing,
    pub db: aws_sdk_dynamodb::Client,
    pub table: String,
}

#[derive(Debug)]
pub struct KeysConfig {
    auth: AuthConfig,
    table: String,
    trigger_keys: Vec<String>,
    wpk_keys: Vec<String>,
}

impl KeysApp {
    /// Trigger keys announced since the first ones (read on every call: rotation needs no cold start).
    pub async fn announced(&self) -> Result<Vec<crate::store::keys::Announced>, naksha_core::StoreError> {
        crate::store::keys::announced(&self.db, &self.table).await
    }
}

impl Function for KeysApp {
    type Config = KeysConfig;

    fn config(r: &mut ConfigReader) -> KeysConfig {
        KeysConfig {
            auth: AuthConfig::from_config(r),
            table: r.required("FEDERATION_TABLE"),
            trigger_keys: key_ids(r, "TRIGGER_KEY_IDS"),
            wpk_keys: key_ids(r, "WPK_KEY_IDS"),
        }
    }

    async fn build(c: KeysConfig, cold: &Cold) -> Result<Self, BootError> {
        Ok(Self {
            ring: KeyRing::load(&cold.aws.kms(), &c.trigger_keys, &c.wpk_keys).await?,
            verifier: cold.verifier(c.auth).await,
            fleet: DynamoFleet::new(cold.aws.dynamodb(), &c.table),
            db: cold.aws.dynamodb(),
            table: c.table,
        })
    }
}

/// Routes that read nodes and the kill switch: heartbeat, the node listing, one node.
#[derive(Debug)]
pub struct NodesApp {
    pub verifier: Verifier,
    pub fleet: DynamoFleet,
    pub halt: DynamoHalt,
}

#[derive(Debug)]
pub struct NodesConfig {
    auth: AuthConfig,
    table: String,
    state: String,
}

impl Function for NodesApp {
    type Config = NodesConfig;

    fn config(r: &mut ConfigReader) -> NodesConfig {
        NodesConfig {
            auth: AuthConfig::from_config(r),
            table: r.required("FEDERATION_TABLE"),
            state: r.required("AGENT_STATE_TABLE"),
        }
    }

    async fn build(c: NodesConfig, cold: &Cold) -> Result<Self, BootError> {
        Ok(Self {
            verifier: cold.verifier(c.auth).await,
            fleet: DynamoFleet::new(cold.aws.dynamodb(), c.table),
            halt: DynamoHalt::new(cold.aws.dynamodb(), c.state),
        })
    }
}

/// `POST /federation/triggers`: the WPK registry (read) and the keys WPKs verify with.
#[derive(Debug)]
pub struct SendApp {
    pub verifier: Verifier,
    pub fleet: DynamoFleet,
    pub wpks: DynamoWpks,
    pub halt: DynamoHalt,
    pub wpk_keys: TrustedKeys,
}

#[derive(Debug)]
pub struct SendConfig {
    auth: AuthConfig,
    table: String,
    state: String,
    wpks: String,
    wpk_keys: Vec<String>,
}

impl Function for SendApp {
    type Config = SendConfig;

    fn config(r: &mut ConfigReader) -> SendConfig {
        SendConfig {
            auth: AuthConfig::from_config(r),
            table: r.required("FEDERATION_TABLE"),
            state: r.required("AGENT_STATE_TABLE"),
            wpks: r.required("WPKS_TABLE"),
            wpk_keys: key_ids(r, "WPK_KEY_IDS"),
        }
    }

    async fn build(c: SendConfig, cold: &Cold) -> Result<Self, BootError> {
        Ok(Self {
            wpk_keys: cold.trusted_keys(&c.wpk_keys).await?,
            verifier: cold.verifier(c.auth).await,
            fleet: DynamoFleet::new(cold.aws.dynamodb(), c.table),
            wpks: DynamoWpks::new(cold.aws.dynamodb(), c.wpks),
            halt: DynamoHalt::new(cold.aws.dynamodb(), c.state),
        })
    }
}

/// `GET /federation/triggers` (a node's poll): hands out work, signing each order with the
/// trigger key.
#[derive(Debug)]
pub struct PollApp {
    pub verifier: Verifier,
    pub fleet: DynamoFleet,
    pub halt: DynamoHalt,
    pub key: TriggerKey<KmsSigner>,
}

#[derive(Debug)]
pub struct PollConfig {
    auth: AuthConfig,
    table: String,
    state: String,
    trigger_keys: Vec<String>,
}

impl Function for PollApp {
    type Config = PollConfig;

    fn config(r: &mut ConfigReader) -> PollConfig {
        PollConfig {
            auth: AuthConfig::from_config(r),
            table: r.required("FEDERATION_TABLE"),
            state: r.required("AGENT_STATE_TABLE"),
            trigger_keys: key_ids(r, "TRIGGER_KEY_IDS"),
        }
    }

    async fn build(c: PollConfig, cold: &Cold) -> Result<Self, BootError> {
        // The first trigger key signs; its ARN (what KMS signatures name) is the order's kid.
        let signing = c.trigger_keys.first().cloned().unwrap_or_default();
        let ring = KeyRing::load(&cold.aws.kms(), std::slice::from_ref(&signing), &[]).await?;
        let kid = ring.signing_kid().unwrap_or(&signing).to_owned();
        Ok(Self {
            verifier: cold.verifier(c.auth).await,
            fleet: DynamoFleet::new(cold.aws.dynamodb(), c.table),
            halt: DynamoHalt::new(cold.aws.dynamodb(), c.state),
            key: TriggerKey { signer: cold.signer(&kid), kid },
        })
    }
}

/// `GET /federation/triggers/{id}` and a node's result.
#[derive(Debug)]
pub struct TriggersApp {
    pub verifier: Verifier,
    pub fleet: DynamoFleet,
}

#[derive(Debug)]
pub struct TriggersConfig {
    auth: AuthConfig,
    table: String,
}

impl Function for TriggersApp {
    type Config = TriggersConfig;

    fn config(r: &mut ConfigReader) -> TriggersConfig {
        TriggersConfig { auth: AuthConfig::from_config(r), table: r.required("FEDERATION_TABLE") }
    }

    async fn build(c: TriggersConfig, cold: &Cold) -> Result<Self, BootError> {
        Ok(Self { verifier: cold.verifier(c.auth).await, fleet: DynamoFleet::new(cold.aws.dynamodb(), c.table) })
    }
}

/// The scheduled sweep: liveness and expiry.
#[derive(Debug)]
pub struct SweepApp {
    pub fleet: DynamoFleet,
    pub liveness: Liveness,
}

#[derive(Debug)]
pub struct SweepConfig {
    table: String,
    liveness: Liveness,
}

impl Function for SweepApp {
    type Config = SweepConfig;

    fn config(r: &mut ConfigReader) -> SweepConfig {
        let d = Liveness::default();
        let stale = r.parsed("NODE_STALE_SECONDS", d.stale_after.num_seconds());
        let offline = r.parsed("NODE_OFFLINE_SECONDS", d.offline_after.num_seconds());
        if !(1..offline).contains(&stale) {
            r.problem(format!(
                "NODE_STALE_SECONDS ({stale}) must be at least 1 and below NODE_OFFLINE_SECONDS ({offline})"
            ));
        }
        SweepConfig {
            table: r.required("FEDERATION_TABLE"),
            liveness: Liveness { stale_after: Duration::seconds(stale), offline_after: Duration::seconds(offline) },
        }
    }

    async fn build(c: SweepConfig, cold: &Cold) -> Result<Self, BootError> {
        Ok(Self { fleet: DynamoFleet::new(cold.aws.dynamodb(), c.table), liveness: c.liveness })
    }
}

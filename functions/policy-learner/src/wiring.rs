//! Each policy Lambda's state, read from the environment and built once per cold start by
//! naksha-core's bootstrap.

use naksha_agent::api::Approvals;
use naksha_agent::store::{DynamoAgentStore, Tables};
use naksha_core::auth::{AuthConfig, Verifier};
use naksha_core::boot::{BootError, Cold, Function};
use naksha_core::config::ConfigReader;
use naksha_core::privacy::PiiKey;
use naksha_core::signing::{KmsSigner, key_ids};

use crate::api::AgentAutonomy;
use crate::live::{Live, parse_tables};
use crate::store::DynamoPolicies;

/// `GET /policies/suggestions[/{id}]`: the policy table only.
#[derive(Debug)]
pub struct ReadApp {
    pub verifier: Verifier,
    pub store: DynamoPolicies,
}

#[derive(Debug)]
pub struct ReadConfig {
    auth: AuthConfig,
    table: String,
}

impl Function for ReadApp {
    type Config = ReadConfig;

    fn config(r: &mut ConfigReader) -> ReadConfig {
        ReadConfig { auth: AuthConfig::from_config(r), table: r.required("POLICIES_TABLE") }
    }

    async fn build(c: ReadConfig, cold: &Cold) -> Result<Self, BootError> {
        Ok(Self { verifier: cold.verifier(c.auth).await, store: DynamoPolicies::new(cold.aws.dynamodb(), c.table) })
    }
}

/// `POST /learn`: the policy table, the audit chain (read: posted Naksha records are checked
/// against it) and the PII key (source addresses become pseudonyms).
#[derive(Debug)]
pub struct LearnApp {
    pub verifier: Verifier,
    pub store: DynamoPolicies,
    pub chain: DynamoAgentStore,
    pub pii: PiiKey,
}

#[derive(Debug)]
pub struct LearnConfig {
    read: ReadConfig,
    tables: Tables,
    pii_key: String,
}

impl Function for LearnApp {
    type Config = LearnConfig;

    fn config(r: &mut ConfigReader) -> LearnConfig {
        LearnConfig { read: ReadApp::config(r), tables: Tables::from_config(r), pii_key: r.required("PII_KEY_ID") }
    }

    async fn build(c: LearnConfig, cold: &Cold) -> Result<Self, BootError> {
        let read = ReadApp::build(c.read, cold).await?;
        Ok(Self {
            verifier: read.verifier,
            store: read.store,
            chain: DynamoAgentStore::new(cold.aws.dynamodb(), c.tables),
            pii: cold.pii_key(&c.pii_key).await?,
        })
    }
}

/// `POST /policies/suggestions/{id}/advance|reject`: appends to the audit chain, and enforcing
/// an autonomy suggestion signs (or withdraws) a standing approval through the agent's path.
#[derive(Debug)]
pub struct ChangeApp {
    pub verifier: Verifier,
    pub store: DynamoPolicies,
    pub chain: DynamoAgentStore,
    pub autonomy: AgentAutonomy<DynamoAgentStore, KmsSigner>,
}

#[derive(Debug)]
pub struct ChangeConfig {
    read: ReadConfig,
    tables: Tables,
    audit_signing: String,
    wpk_keys: Vec<String>,
    approval_signing: String,
    approval_keys: Vec<String>,
}

impl Function for ChangeApp {
    type Config = ChangeConfig;

    fn config(r: &mut ConfigReader) -> ChangeConfig {
        ChangeConfig {
            read: ReadApp::config(r),
            tables: Tables::from_config(r),
            audit_signing: r.required("AUDIT_SIGNING_KEY_ID"),
            wpk_keys: key_ids(r, "WPK_KEY_IDS"),
            approval_signing: r.required("APPROVAL_SIGNING_KEY_ID"),
            approval_keys: key_ids(r, "APPROVAL_KEY_IDS"),
        }
    }

    async fn build(c: ChangeConfig, cold: &Cold) -> Result<Self, BootError> {
        let read = ReadApp::build(c.read, cold).await?;
        let agent = DynamoAgentStore::new(cold.aws.dynamodb(), c.tables);
        Ok(Self {
            verifier: read.verifier,
            store: read.store,
            chain: agent.clone().with_audit_signer(cold.signer(&c.audit_signing)),
            autonomy: AgentAutonomy {
                store: agent,
                wpk_keys: cold.trusted_keys(&c.wpk_keys).await?,
                approvals: Approvals {
                    signer: cold.signer(&c.approval_signing),
                    keys: cold.trusted_keys(&c.approval_keys).await?,
                },
            },
        })
    }
}

/// `GET /compliance`: read access to every tenant-data table, the registries' trusted keys, and
/// the API address whose `/health` and `/metrics` are checked.
#[derive(Debug)]
pub struct ComplianceApp {
    pub verifier: Verifier,
    pub live: Live,
}

#[derive(Debug)]
pub struct ComplianceConfig {
    auth: AuthConfig,
    agent: Tables,
    tables: String,
    models: String,
    jobs: String,
    wpk_keys: Vec<String>,
    model_keys: Vec<String>,
    audit_keys: Vec<String>,
    api: Option<String>,
}

impl Function for ComplianceApp {
    type Config = ComplianceConfig;

    fn config(r: &mut ConfigReader) -> ComplianceConfig {
        ComplianceConfig {
            auth: AuthConfig::from_config(r),
            agent: Tables::from_config(r),
            tables: r.required("TENANT_TABLES"),
            models: r.required("MODELS_TABLE"),
            jobs: r.required("JOBS_TABLE"),
            wpk_keys: key_ids(r, "WPK_KEY_IDS"),
            model_keys: key_ids(r, "MODEL_KEY_IDS"),
            audit_keys: key_ids(r, "AUDIT_KEY_IDS"),
            api: r.optional("COMPLIANCE_API_URL").filter(|u| !u.trim().is_empty()),
        }
    }

    async fn build(c: ComplianceConfig, cold: &Cold) -> Result<Self, BootError> {
        let db = cold.aws.dynamodb();
        let http = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(5))
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        Ok(Self {
            verifier: cold.verifier(c.auth).await,
            live: Live {
                runs_table: c.agent.runs.clone(),
                agent: DynamoAgentStore::new(db.clone(), c.agent),
                db,
                tables: parse_tables(&c.tables),
                models_table: c.models,
                jobs_table: c.jobs,
                wpk_keys: cold.trusted_keys(&c.wpk_keys).await?,
                model_keys: cold.trusted_keys(&c.model_keys).await?,
                audit_keys: cold.trusted_keys(&c.audit_keys).await?,
                api: c.api,
                http,
            },
        })
    }
}

/// The nightly job: the policy table and every tenant's audit chain.
#[derive(Debug)]
pub struct NightlyApp {
    pub store: DynamoPolicies,
    pub chain: DynamoAgentStore,
    pub db: aws_sdk_dynamodb::Client,
    pub audit_table: String,
}

#[derive(Debug)]
pub struct NightlyConfig {
    table: String,
    tables: Tables,
}

impl Function for NightlyApp {
    type Config = NightlyConfig;

    fn config(r: &mut ConfigReader) -> NightlyConfig {
        NightlyConfig { table: r.required("POLICIES_TABLE"), tables: Tables::from_config(r) }
    }

    async fn build(c: NightlyConfig, cold: &Cold) -> Result<Self, BootError> {
        let db = cold.aws.dynamodb();
        Ok(Self {
            store: DynamoPolicies::new(db.clone(), c.table),
            audit_table: c.tables.audit.clone(),
            chain: DynamoAgentStore::new(db.clone(), c.tables),
            db,
        })
    }
}

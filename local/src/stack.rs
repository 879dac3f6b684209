//! The local stack: where things are, and provisioning the emulator from `template.yaml`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_dynamodb::config::Credentials;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection, ProjectionType,
    ScalarAttributeType, TimeToLiveSpecification,
};
use aws_sdk_kms::types::{KeySpec, KeyUsageType};
use serde::{Deserialize, Serialize};
use serde_yaml::Value;

use crate::template::{Context, Template, ref_target};

/// The emulator (LocalStack or moto), as the SDK reaches it.
pub const EMULATOR_URL: &str = "http://127.0.0.1:4566";
/// `cargo lambda watch`, serving the API routes and the Lambda invoke API.
pub const API_URL: &str = "http://127.0.0.1:9000";
/// Where the harness serves the dev JWKS.
pub const JWKS_ADDR: &str = "127.0.0.1:9001";
pub const REGION: &str = "us-east-1";
pub const STACK_NAME: &str = "naksha-local";
/// Issuer of dev tokens.
pub const LOCAL_ISSUER: &str = "https://naksha.local/dev";

/// Parameter values that differ locally from the template's defaults.
pub fn local_parameter_overrides() -> BTreeMap<String, String> {
    BTreeMap::from([
        ("JwtIssuer".to_owned(), LOCAL_ISSUER.to_owned()),
        ("JwksUrl".to_owned(), format!("http://{JWKS_ADDR}/.well-known/jwks.json")),
        ("SimulationMode".to_owned(), "true".to_owned()),
        // P-4 of GET /compliance checks the local API's own /health and /metrics.
        ("ComplianceApiUrl".to_owned(), API_URL.to_owned()),
    ])
}

#[derive(Debug, thiserror::Error)]
pub enum StackError {
    #[error(transparent)]
    Template(#[from] crate::template::TemplateError),
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("{0}")]
    Json(#[from] serde_json::Error),
    #[error("{0}")]
    Aws(String),
    #[error("{0}")]
    Invalid(String),
}

fn aws_err<E>(what: &str, e: aws_sdk_dynamodb::error::SdkError<E>) -> StackError
where
    E: std::error::Error + aws_sdk_dynamodb::error::ProvideErrorMetadata,
{
    StackError::Aws(format!("{what}: {}", naksha_core::aws::describe_error(&e)))
}

/// Files of the local stack, under `<repo>/.local/`.
#[derive(Debug, Clone)]
pub struct Paths {
    pub root: PathBuf,
}

impl Paths {
    /// The repository root: `NAKSHA_ROOT`, or the nearest directory upwards holding `template.yaml`.
    pub fn discover() -> Result<Self, StackError> {
        if let Ok(root) = std::env::var("NAKSHA_ROOT") {
            return Ok(Self { root: root.into() });
        }
        let mut dir = std::env::current_dir()?;
        loop {
            if dir.join("template.yaml").is_file() {
                return Ok(Self { root: dir });
            }
            if !dir.pop() {
                return Err(StackError::Invalid("no template.yaml in this directory or above".into()));
            }
        }
    }

    pub fn template(&self) -> PathBuf {
        self.root.join("template.yaml")
    }
    pub fn local(&self) -> PathBuf {
        self.root.join(".local")
    }
    pub fn stack(&self) -> PathBuf {
        self.local().join("stack.json")
    }
    pub fn env_file(&self) -> PathBuf {
        self.local().join("functions.env")
    }
    pub fn dev_key(&self) -> PathBuf {
        self.local().join("dev-jwt-key.p8")
    }
    pub fn failures(&self) -> PathBuf {
        self.local().join("on-failure.jsonl")
    }
    /// One JSON line per invocation the pollers made.
    pub fn invocations(&self) -> PathBuf {
        self.local().join("invocations.jsonl")
    }
    /// Where the pollers keep each shard's checkpoint (the last sequence number handled).
    pub fn checkpoints(&self) -> PathBuf {
        self.local().join("checkpoints")
    }
}

/// SDK configuration for the emulator: fixed region, dummy credentials, endpoint override.
pub async fn emulator_config() -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .endpoint_url(EMULATOR_URL)
        .region(Region::new(REGION))
        .credentials_provider(Credentials::new("test", "test", None, None, "naksha-local"))
        .load()
        .await
}

/// What `make up` provisioned: names and ARNs by logical id, and which backend it was.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LocalStack {
    pub backend: String,
    pub context: Context,
    /// Logical id → binary of each function.
    pub functions: BTreeMap<String, String>,
}

impl LocalStack {
    pub fn load(paths: &Paths) -> Result<Self, StackError> {
        let text = std::fs::read_to_string(paths.stack()).map_err(|e| {
            StackError::Invalid(format!("{} is missing ({e}); run `make up` first", paths.stack().display()))
        })?;
        Ok(serde_json::from_str(&text)?)
    }

    pub fn save(&self, paths: &Paths) -> Result<(), StackError> {
        std::fs::create_dir_all(paths.local())?;
        std::fs::write(paths.stack(), serde_json::to_string_pretty(self)?)?;
        Ok(())
    }

    /// The physical name of a resource (what `!Ref` gives).
    pub fn name(&self, logical_id: &str) -> Result<&str, StackError> {
        self.context
            .physical
            .get(logical_id)
            .map(String::as_str)
            .ok_or_else(|| StackError::Invalid(format!("no resource {logical_id} in the local stack")))
    }

    pub fn arn(&self, logical_id: &str) -> Result<&str, StackError> {
        self.context
            .arns
            .get(logical_id)
            .map(String::as_str)
            .ok_or_else(|| StackError::Invalid(format!("no ARN for {logical_id} in the local stack")))
    }

    /// Every function's environment, resolved, merged into one file for `cargo lambda watch`
    /// (which shares one environment across functions). A variable two functions set
    /// differently is an error, not a silent overwrite.
    pub fn function_env(&self, template: &Template) -> Result<BTreeMap<String, String>, StackError> {
        let mut env = BTreeMap::from([
            ("AWS_ENDPOINT_URL".to_owned(), EMULATOR_URL.to_owned()),
            ("AWS_REGION".to_owned(), REGION.to_owned()),
            ("AWS_DEFAULT_REGION".to_owned(), REGION.to_owned()),
            ("AWS_ACCESS_KEY_ID".to_owned(), "test".to_owned()),
            ("AWS_SECRET_ACCESS_KEY".to_owned(), "test".to_owned()),
            ("AWS_LAMBDA_LOG_FORMAT".to_owned(), "JSON".to_owned()),
            ("AWS_LAMBDA_LOG_LEVEL".to_owned(), "INFO".to_owned()),
            ("NAKSHA_BACKEND".to_owned(), self.backend.clone()),
        ]);
        let mut owners: BTreeMap<String, String> = BTreeMap::new();
        for f in template.for_context(&self.context)?.functions()? {
            for (k, v) in &f.environment {
                let value = self.context.resolve(v)?;
                if let Some(previous) = env.get(k)
                    && previous != &value
                    && owners.contains_key(k)
                {
                    return Err(StackError::Invalid(format!(
                        "{k} is {previous:?} for {} but {value:?} for {}; the local stack shares one environment",
                        owners[k], f.logical_id
                    )));
                }
                owners.insert(k.clone(), f.logical_id.clone());
                env.insert(k.clone(), value);
            }
        }
        Ok(env)
    }
}

/// Create (or find) every table, stream and key the template declares.
pub async fn provision(template: &Template, backend: &str) -> Result<LocalStack, StackError> {
    let config = emulator_config().await;
    let mut ctx = Context {
        conditions: BTreeMap::new(),
        region: REGION.to_owned(),
        account: if backend == "localstack" { "000000000000" } else { "123456789012" }.to_owned(),
        stack_name: STACK_NAME.to_owned(),
        parameters: BTreeMap::new(),
        physical: BTreeMap::new(),
        arns: BTreeMap::new(),
    };
    let overrides = local_parameter_overrides();
    for (name, default) in &template.parameters {
        let value = overrides
            .get(name)
            .cloned()
            .or_else(|| default.clone())
            .ok_or_else(|| StackError::Invalid(format!("parameter {name} has no default and no local value")))?;
        ctx.parameters.insert(name.clone(), value);
    }
    for name in template.conditions.keys() {
        let value = ctx.condition(template, name)?;
        ctx.conditions.insert(name.clone(), value);
    }
    let template = &template.for_context(&ctx)?;
    let mut functions = BTreeMap::new();
    for f in template.functions()? {
        ctx.physical.insert(f.logical_id.clone(), f.binary.clone());
        ctx.arns.insert(
            f.logical_id.clone(),
            format!("arn:aws:lambda:{}:{}:function:{}", ctx.region, ctx.account, f.binary),
        );
        functions.insert(f.logical_id.clone(), f.binary);
    }
    name_resources(template, &mut ctx)?;
    provision_keys(template, &config, &mut ctx).await?;
    provision_tables(template, &config, &mut ctx).await?;
    provision_streams(template, &config, &mut ctx).await?;
    Ok(LocalStack { backend: backend.to_owned(), context: ctx, functions })
}

/// Physical names of named resources; repeated until nothing new resolves, since a name may
/// refer to another resource (a log group names its function).
fn name_resources(template: &Template, ctx: &mut Context) -> Result<(), StackError> {
    let name_property = |kind: &str| match kind {
        "AWS::DynamoDB::Table" => Some("TableName"),
        "AWS::Kinesis::Stream" => Some("Name"),
        "AWS::SQS::Queue" => Some("QueueName"),
        "AWS::KMS::Alias" => Some("AliasName"),
        "AWS::Logs::LogGroup" => Some("LogGroupName"),
        _ => None,
    };
    for _ in 0..4 {
        for r in &template.resources {
            if ctx.physical.contains_key(&r.logical_id) {
                continue;
            }
            if r.kind == "AWS::Serverless::HttpApi" {
                ctx.physical.insert(r.logical_id.clone(), "local".into());
                continue;
            }
            let Some(prop) = name_property(&r.kind) else { continue };
            let Some(value) = r.prop(prop) else {
                return Err(StackError::Invalid(format!("{} needs an explicit {prop} to run locally", r.logical_id)));
            };
            if let Ok(name) = ctx.resolve(value) {
                if r.kind == "AWS::SQS::Queue" {
                    ctx.arns.insert(r.logical_id.clone(), format!("arn:aws:sqs:{}:{}:{name}", ctx.region, ctx.account));
                }
                if r.kind == "AWS::Logs::LogGroup" {
                    ctx.arns.insert(
                        r.logical_id.clone(),
                        format!("arn:aws:logs:{}:{}:log-group:{name}", ctx.region, ctx.account),
                    );
                }
                ctx.physical.insert(r.logical_id.clone(), name);
            }
        }
    }
    Ok(())
}

fn prop_str(ctx: &Context, r: &crate::template::Resource, name: &str) -> Result<Option<String>, StackError> {
    r.prop(name).map(|v| ctx.resolve(v)).transpose().map_err(StackError::from)
}

/// Keys are found by their alias so that provisioning twice reuses them.
async fn provision_keys(template: &Template, config: &SdkConfig, ctx: &mut Context) -> Result<(), StackError> {
    let kms = aws_sdk_kms::Client::new(config);
    let mut existing = BTreeMap::new();
    let mut pages = kms.list_aliases().into_paginator().send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| aws_err("ListAliases", e))?;
        for a in page.aliases() {
            if let (Some(name), Some(target)) = (a.alias_name(), a.target_key_id()) {
                existing.insert(name.to_owned(), target.to_owned());
            }
        }
    }
    for key in template.of_kind("AWS::KMS::Key") {
        let alias = template
            .of_kind("AWS::KMS::Alias")
            .find(|a| a.prop("TargetKeyId").and_then(ref_target) == Some(key.logical_id.as_str()))
            .ok_or_else(|| {
                StackError::Invalid(format!(
                    "key {} needs an AWS::KMS::Alias to be provisioned locally",
                    key.logical_id
                ))
            })?;
        let alias_name =
            ctx.physical.get(&alias.logical_id).cloned().ok_or_else(|| StackError::Invalid("alias unnamed".into()))?;
        let key_id = match existing.get(&alias_name) {
            Some(id) => id.clone(),
            None => {
                let spec = prop_str(ctx, key, "KeySpec")?.unwrap_or_else(|| "SYMMETRIC_DEFAULT".into());
                let usage = prop_str(ctx, key, "KeyUsage")?.unwrap_or_else(|| "ENCRYPT_DECRYPT".into());
                let created = kms
                    .create_key()
                    .key_spec(KeySpec::from(spec.as_str()))
                    .key_usage(KeyUsageType::from(usage.as_str()))
                    .set_description(prop_str(ctx, key, "Description")?)
                    .send()
                    .await
                    .map_err(|e| aws_err("CreateKey", e))?;
                let id = created
                    .key_metadata()
                    .map(|m| m.key_id().to_owned())
                    .ok_or_else(|| StackError::Aws("CreateKey returned no key id".into()))?;
                kms.create_alias()
                    .alias_name(&alias_name)
                    .target_key_id(&id)
                    .send()
                    .await
                    .map_err(|e| aws_err("CreateAlias", e))?;
                id
            }
        };
        let meta = kms.describe_key().key_id(&key_id).send().await.map_err(|e| aws_err("DescribeKey", e))?;
        if let Some(arn) = meta.key_metadata().and_then(|m| m.arn()) {
            ctx.arns.insert(key.logical_id.clone(), arn.to_owned());
        }
        ctx.physical.insert(key.logical_id.clone(), key_id);
    }
    Ok(())
}

fn list_of(v: Option<&Value>) -> Vec<&serde_yaml::Mapping> {
    v.and_then(Value::as_sequence).map(|s| s.iter().filter_map(Value::as_mapping).collect()).unwrap_or_default()
}

fn field<'a>(m: &'a serde_yaml::Mapping, name: &str) -> Option<&'a str> {
    m.get(name).and_then(Value::as_str)
}

fn key_element(k: &serde_yaml::Mapping) -> Result<KeySchemaElement, StackError> {
    KeySchemaElement::builder()
        .attribute_name(field(k, "AttributeName").unwrap_or_default())
        .key_type(KeyType::from(field(k, "KeyType").unwrap_or("HASH")))
        .build()
        .map_err(|e| StackError::Invalid(e.to_string()))
}

async fn provision_tables(template: &Template, config: &SdkConfig, ctx: &mut Context) -> Result<(), StackError> {
    let db = aws_sdk_dynamodb::Client::new(config);
    for t in template.of_kind("AWS::DynamoDB::Table") {
        let name =
            ctx.physical.get(&t.logical_id).cloned().ok_or_else(|| StackError::Invalid("table unnamed".into()))?;
        let exists = db.describe_table().table_name(&name).send().await.is_ok();
        if !exists {
            let mut create = db.create_table().table_name(&name).billing_mode(BillingMode::PayPerRequest);
            for a in list_of(t.prop("AttributeDefinitions")) {
                let def = AttributeDefinition::builder()
                    .attribute_name(field(a, "AttributeName").unwrap_or_default())
                    .attribute_type(ScalarAttributeType::from(field(a, "AttributeType").unwrap_or("S")))
                    .build()
                    .map_err(|e| StackError::Invalid(e.to_string()))?;
                create = create.attribute_definitions(def);
            }
            for k in list_of(t.prop("KeySchema")) {
                create = create.key_schema(key_element(k)?);
            }
            for g in list_of(t.prop("GlobalSecondaryIndexes")) {
                let mut index = GlobalSecondaryIndex::builder().index_name(field(g, "IndexName").unwrap_or_default());
                for k in list_of(g.get("KeySchema")) {
                    index = index.key_schema(key_element(k)?);
                }
                let projection = g
                    .get("Projection")
                    .and_then(Value::as_mapping)
                    .and_then(|p| field(p, "ProjectionType"))
                    .unwrap_or("ALL");
                index =
                    index.projection(Projection::builder().projection_type(ProjectionType::from(projection)).build());
                create =
                    create.global_secondary_indexes(index.build().map_err(|e| StackError::Invalid(e.to_string()))?);
            }
            create.send().await.map_err(|e| aws_err(&format!("CreateTable {name}"), e))?;
            if let Some(ttl) = t.prop("TimeToLiveSpecification").and_then(Value::as_mapping)
                && ttl.get("Enabled").and_then(Value::as_bool) == Some(true)
            {
                let spec = TimeToLiveSpecification::builder()
                    .attribute_name(field(ttl, "AttributeName").unwrap_or("expires_at"))
                    .enabled(true)
                    .build()
                    .map_err(|e| StackError::Invalid(e.to_string()))?;
                db.update_time_to_live()
                    .table_name(&name)
                    .time_to_live_specification(spec)
                    .send()
                    .await
                    .map_err(|e| aws_err("UpdateTimeToLive", e))?;
            }
        }
        let described = db.describe_table().table_name(&name).send().await.map_err(|e| aws_err("DescribeTable", e))?;
        if let Some(arn) = described.table().and_then(|t| t.table_arn()) {
            ctx.arns.insert(t.logical_id.clone(), arn.to_owned());
        }
    }
    Ok(())
}

async fn provision_streams(template: &Template, config: &SdkConfig, ctx: &mut Context) -> Result<(), StackError> {
    let kinesis = aws_sdk_kinesis::Client::new(config);
    for s in template.of_kind("AWS::Kinesis::Stream") {
        let name =
            ctx.physical.get(&s.logical_id).cloned().ok_or_else(|| StackError::Invalid("stream unnamed".into()))?;
        if kinesis.describe_stream_summary().stream_name(&name).send().await.is_err() {
            let shards: i32 = prop_str(ctx, s, "ShardCount")?.and_then(|n| n.parse().ok()).unwrap_or(1);
            kinesis
                .create_stream()
                .stream_name(&name)
                .shard_count(shards)
                .send()
                .await
                .map_err(|e| aws_err(&format!("CreateStream {name}"), e))?;
        }
        for _ in 0..60 {
            let summary = kinesis
                .describe_stream_summary()
                .stream_name(&name)
                .send()
                .await
                .map_err(|e| aws_err("DescribeStreamSummary", e))?;
            if let Some(d) = summary.stream_description_summary()
                && d.stream_status().as_str() == "ACTIVE"
            {
                ctx.arns.insert(s.logical_id.clone(), d.stream_arn().to_owned());
                break;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        if !ctx.arns.contains_key(&s.logical_id) {
            return Err(StackError::Aws(format!("stream {name} did not become ACTIVE")));
        }
    }
    Ok(())
}

/// Write `KEY=value` lines for `cargo lambda watch --env-file`.
pub fn write_env_file(path: &Path, env: &BTreeMap<String, String>) -> Result<(), StackError> {
    let mut text = String::from("# Written by `naksha-local provision` from template.yaml; do not edit.\n");
    for (k, v) in env {
        if v.contains('\n') {
            return Err(StackError::Invalid(format!("{k} contains a newline")));
        }
        text.push_str(&format!("{k}={v}\n"));
    }
    std::fs::write(path, text)?;
    Ok(())
}

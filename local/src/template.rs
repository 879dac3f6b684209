//! Reading `template.yaml`: the one description of resources, routes and event sources.
//!
//! The harness understands the subset of CloudFormation this project uses: `!Ref`, `!GetAtt`,
//! `!Sub` (short and long forms), parameters with defaults, SAM `Globals`, functions with their
//! `rust-cargolambda` binary, `HttpApi` and `Schedule` events, and Kinesis event source mappings.

use std::collections::BTreeMap;
use std::path::Path;

use serde_yaml::{Mapping, Value};

#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    #[error("reading the template: {0}")]
    Io(#[from] std::io::Error),
    #[error("parsing the template: {0}")]
    Yaml(#[from] serde_yaml::Error),
    #[error("template: {0}")]
    Invalid(String),
}

fn invalid(msg: impl Into<String>) -> TemplateError {
    TemplateError::Invalid(msg.into())
}

/// A resource as written in the template.
#[derive(Debug, Clone)]
pub struct Resource {
    pub logical_id: String,
    pub kind: String,
    pub properties: Mapping,
    pub metadata: Mapping,
    /// The name of the template condition that decides whether the resource exists.
    pub condition: Option<String>,
}

impl Resource {
    pub fn prop(&self, name: &str) -> Option<&Value> {
        self.properties.get(name)
    }
}

/// A function: its binary, environment, routes and schedules.
#[derive(Debug, Clone)]
pub struct Function {
    pub logical_id: String,
    pub binary: String,
    /// Globals merged with the function's own variables (the function's win).
    pub environment: BTreeMap<String, Value>,
    pub routes: Vec<Route>,
    pub schedules: Vec<Schedule>,
    /// `MemorySize` (or the Globals'), in MB: what an invocation is billed for.
    pub memory_mb: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Route {
    pub method: String,
    pub path: String,
    pub binary: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schedule {
    pub name: String,
    /// `rate(...)` or `cron(...)`.
    pub expression: String,
    pub input: Option<String>,
    /// `Enabled` (or `State`) as written: absent means enabled; anything but a literal is left to
    /// the caller (a parameter or condition).
    pub enabled: Option<Value>,
}

/// A Kinesis event source mapping.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamMapping {
    pub logical_id: String,
    pub stream_logical_id: String,
    pub function_logical_id: String,
    pub batch_size: i32,
    pub starting_position: String,
    pub maximum_retry_attempts: i64,
    pub bisect_on_error: bool,
    pub report_batch_item_failures: bool,
    /// The function's `Timeout` (its own, else `Globals.Function.Timeout`, else Lambda's 3 s).
    pub function_timeout_s: u64,
}

#[derive(Debug, Clone)]
pub struct Template {
    pub parameters: BTreeMap<String, Option<String>>,
    globals_env: Mapping,
    globals_timeout_s: Option<u64>,
    globals_memory_mb: Option<u64>,
    pub resources: Vec<Resource>,
    /// Condition name → expression (`!Equals`, `!Not`, `!And`, `!Or`, `!Condition`).
    pub conditions: BTreeMap<String, Value>,
}

fn scalar(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn mapping(v: Option<&Value>) -> Option<&Mapping> {
    v.and_then(Value::as_mapping)
}

/// The logical id a `!Ref X` or `{"Ref": X}` points at.
pub fn ref_target(v: &Value) -> Option<&str> {
    match v {
        Value::Tagged(t) if t.tag == "Ref" => t.value.as_str(),
        Value::Mapping(m) if m.len() == 1 => m.get("Ref").and_then(Value::as_str),
        _ => None,
    }
}

/// The logical id and attribute of a `!GetAtt X.Attr`.
pub fn getatt_target(v: &Value) -> Option<(String, String)> {
    let raw = match v {
        Value::Tagged(t) if t.tag == "GetAtt" => match &t.value {
            Value::String(s) => s.clone(),
            Value::Sequence(parts) => parts.iter().filter_map(Value::as_str).collect::<Vec<_>>().join("."),
            _ => return None,
        },
        Value::Mapping(m) if m.len() == 1 => match m.get("Fn::GetAtt")? {
            Value::Sequence(parts) => parts.iter().filter_map(Value::as_str).collect::<Vec<_>>().join("."),
            Value::String(s) => s.clone(),
            _ => return None,
        },
        _ => return None,
    };
    let (id, attr) = raw.split_once('.')?;
    Some((id.to_owned(), attr.to_owned()))
}

impl Template {
    pub fn load(path: &Path) -> Result<Self, TemplateError> {
        Self::parse(&std::fs::read_to_string(path)?)
    }

    pub fn parse(text: &str) -> Result<Self, TemplateError> {
        let root: Value = serde_yaml::from_str(text)?;
        let root = root.as_mapping().ok_or_else(|| invalid("the template is not a mapping"))?;
        let mut parameters = BTreeMap::new();
        if let Some(params) = mapping(root.get("Parameters")) {
            for (k, v) in params {
                let name = k.as_str().ok_or_else(|| invalid("parameter names must be strings"))?;
                parameters.insert(name.to_owned(), v.get("Default").and_then(scalar));
            }
        }
        let globals_env = mapping(root.get("Globals"))
            .and_then(|g| mapping(g.get("Function")))
            .and_then(|f| mapping(f.get("Environment")))
            .and_then(|e| mapping(e.get("Variables")))
            .cloned()
            .unwrap_or_default();
        let globals_timeout_s = mapping(root.get("Globals"))
            .and_then(|g| mapping(g.get("Function")))
            .and_then(|f| f.get("Timeout"))
            .and_then(Value::as_u64);
        let globals_memory_mb = mapping(root.get("Globals"))
            .and_then(|g| mapping(g.get("Function")))
            .and_then(|f| f.get("MemorySize"))
            .and_then(Value::as_u64);
        let mut resources = Vec::new();
        for (k, v) in mapping(root.get("Resources")).ok_or_else(|| invalid("no Resources"))? {
            let logical_id = k.as_str().ok_or_else(|| invalid("resource ids must be strings"))?.to_owned();
            let kind =
                v.get("Type").and_then(Value::as_str).ok_or_else(|| invalid(format!("{logical_id} has no Type")))?;
            resources.push(Resource {
                logical_id,
                kind: kind.to_owned(),
                properties: mapping(v.get("Properties")).cloned().unwrap_or_default(),
                metadata: mapping(v.get("Metadata")).cloned().unwrap_or_default(),
                condition: v.get("Condition").and_then(Value::as_str).map(str::to_owned),
            });
        }
        let mut conditions = BTreeMap::new();
        for (k, v) in mapping(root.get("Conditions")).into_iter().flatten() {
            if let Some(name) = k.as_str() {
                conditions.insert(name.to_owned(), v.clone());
            }
        }
        Ok(Self { parameters, globals_env, globals_timeout_s, globals_memory_mb, resources, conditions })
    }

    /// The template with the resources whose condition is false (under `ctx`) removed.
    pub fn for_context(&self, ctx: &Context) -> Result<Self, TemplateError> {
        let mut out = self.clone();
        let mut kept = Vec::new();
        for r in &self.resources {
            let exists = match &r.condition {
                None => true,
                Some(c) => ctx.condition(self, c)?,
            };
            if exists {
                kept.push(r.clone());
            }
        }
        out.resources = kept;
        Ok(out)
    }

    pub fn resource(&self, logical_id: &str) -> Option<&Resource> {
        self.resources.iter().find(|r| r.logical_id == logical_id)
    }

    pub fn of_kind<'a>(&'a self, kind: &'a str) -> impl Iterator<Item = &'a Resource> + 'a {
        self.resources.iter().filter(move |r| r.kind == kind)
    }

    /// Every function with its binary (from `Metadata.BuildProperties.Binary`).
    pub fn functions(&self) -> Result<Vec<Function>, TemplateError> {
        let mut out = Vec::new();
        for r in self.of_kind("AWS::Serverless::Function") {
            let binary = mapping(r.metadata.get("BuildProperties"))
                .and_then(|b| b.get("Binary"))
                .and_then(Value::as_str)
                .ok_or_else(|| invalid(format!("{} has no Metadata.BuildProperties.Binary", r.logical_id)))?
                .to_owned();
            let mut environment = BTreeMap::new();
            for (k, v) in &self.globals_env {
                if let Some(k) = k.as_str() {
                    environment.insert(k.to_owned(), v.clone());
                }
            }
            if let Some(vars) = mapping(r.prop("Environment")).and_then(|e| mapping(e.get("Variables"))) {
                for (k, v) in vars {
                    if let Some(k) = k.as_str() {
                        environment.insert(k.to_owned(), v.clone());
                    }
                }
            }
            let mut routes = Vec::new();
            let mut schedules = Vec::new();
            for (name, event) in mapping(r.prop("Events")).into_iter().flatten() {
                let name = name.as_str().unwrap_or_default().to_owned();
                let props = mapping(event.get("Properties"));
                match event.get("Type").and_then(Value::as_str) {
                    Some("HttpApi") => {
                        let props =
                            props.ok_or_else(|| invalid(format!("{}.{name} has no Properties", r.logical_id)))?;
                        let method = props.get("Method").and_then(Value::as_str).unwrap_or("ANY").to_uppercase();
                        let path = props
                            .get("Path")
                            .and_then(Value::as_str)
                            .ok_or_else(|| invalid(format!("{}.{name} has no Path", r.logical_id)))?;
                        routes.push(Route { method, path: path.to_owned(), binary: binary.clone() });
                    }
                    Some("Schedule") | Some("ScheduleV2") => {
                        let props =
                            props.ok_or_else(|| invalid(format!("{}.{name} has no Properties", r.logical_id)))?;
                        let expression = props
                            .get("Schedule")
                            .or_else(|| props.get("ScheduleExpression"))
                            .and_then(Value::as_str)
                            .ok_or_else(|| invalid(format!("{}.{name} has no schedule expression", r.logical_id)))?;
                        schedules.push(Schedule {
                            name: name.clone(),
                            expression: expression.to_owned(),
                            input: props.get("Input").and_then(Value::as_str).map(str::to_owned),
                            enabled: props.get("Enabled").or_else(|| props.get("State")).cloned(),
                        });
                    }
                    _ => {}
                }
            }
            let memory_mb = r.prop("MemorySize").and_then(Value::as_u64).or(self.globals_memory_mb);
            out.push(Function { logical_id: r.logical_id.clone(), binary, environment, routes, schedules, memory_mb });
        }
        Ok(out)
    }

    /// Every HTTP route, sorted.
    pub fn routes(&self) -> Result<Vec<Route>, TemplateError> {
        let mut routes: Vec<Route> = self.functions()?.into_iter().flat_map(|f| f.routes).collect();
        routes.sort();
        Ok(routes)
    }

    /// Kinesis event source mappings.
    pub fn stream_mappings(&self) -> Result<Vec<StreamMapping>, TemplateError> {
        let mut out = Vec::new();
        for r in self.of_kind("AWS::Lambda::EventSourceMapping") {
            let Some((stream, _)) = r.prop("EventSourceArn").and_then(getatt_target) else { continue };
            if self.resource(&stream).map(|s| s.kind.as_str()) != Some("AWS::Kinesis::Stream") {
                continue;
            }
            let function = r
                .prop("FunctionName")
                .and_then(ref_target)
                .ok_or_else(|| invalid(format!("{}: FunctionName must be a !Ref", r.logical_id)))?
                .to_owned();
            let int = |name: &str, default: i64| r.prop(name).and_then(Value::as_i64).unwrap_or(default);
            let function_timeout_s = self
                .resource(&function)
                .and_then(|f| f.prop("Timeout"))
                .and_then(Value::as_u64)
                .or(self.globals_timeout_s)
                .unwrap_or(3);
            out.push(StreamMapping {
                function_timeout_s,
                logical_id: r.logical_id.clone(),
                stream_logical_id: stream,
                function_logical_id: function,
                batch_size: int("BatchSize", 100) as i32,
                starting_position: r.prop("StartingPosition").and_then(Value::as_str).unwrap_or("LATEST").to_owned(),
                maximum_retry_attempts: int("MaximumRetryAttempts", -1),
                bisect_on_error: r.prop("BisectBatchOnFunctionError").and_then(Value::as_bool).unwrap_or(false),
                report_batch_item_failures: r
                    .prop("FunctionResponseTypes")
                    .and_then(Value::as_sequence)
                    .is_some_and(|s| s.iter().any(|v| v.as_str() == Some("ReportBatchItemFailures"))),
            });
        }
        Ok(out)
    }
}

/// A route path in the syntax of `cargo lambda watch`'s router: API Gateway's greedy
/// `{name+}` is matchit's catch-all `{*name}`.
pub fn router_path(path: &str) -> String {
    path.split('/')
        .map(|seg| match seg.strip_prefix('{').and_then(|s| s.strip_suffix("+}")) {
            Some(name) => format!("{{*{name}}}"),
            None => seg.to_owned(),
        })
        .collect::<Vec<_>>()
        .join("/")
}

/// Values for resolving intrinsics: parameters, pseudo parameters, physical ids and ARNs.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct Context {
    /// Condition name → value, evaluated once parameters are known.
    #[serde(default)]
    pub conditions: BTreeMap<String, bool>,
    pub region: String,
    pub account: String,
    pub stack_name: String,
    pub parameters: BTreeMap<String, String>,
    /// What `!Ref <logical id>` gives.
    pub physical: BTreeMap<String, String>,
    /// What `!GetAtt <logical id>.Arn` gives.
    pub arns: BTreeMap<String, String>,
}

impl Context {
    fn pseudo(&self, name: &str) -> Option<String> {
        match name {
            "AWS::Region" => Some(self.region.clone()),
            "AWS::AccountId" => Some(self.account.clone()),
            "AWS::StackName" => Some(self.stack_name.clone()),
            "AWS::Partition" => Some("aws".into()),
            "AWS::URLSuffix" => Some("amazonaws.com".into()),
            _ => None,
        }
    }

    fn lookup_ref(&self, name: &str) -> Result<String, TemplateError> {
        self.pseudo(name)
            .or_else(|| self.parameters.get(name).cloned())
            .or_else(|| self.physical.get(name).cloned())
            .ok_or_else(|| invalid(format!("cannot resolve !Ref {name} locally")))
    }

    fn lookup_att(&self, id: &str, attr: &str) -> Result<String, TemplateError> {
        match attr {
            "Arn" => self.arns.get(id).cloned(),
            _ => None,
        }
        .ok_or_else(|| invalid(format!("cannot resolve !GetAtt {id}.{attr} locally")))
    }

    fn sub(&self, text: &str, vars: Option<&Mapping>) -> Result<String, TemplateError> {
        let mut out = String::with_capacity(text.len());
        let mut rest = text;
        while let Some(start) = rest.find("${") {
            out.push_str(&rest[..start]);
            let after = &rest[start + 2..];
            let end = after.find('}').ok_or_else(|| invalid(format!("unclosed ${{ in {text:?}")))?;
            let name = &after[..end];
            if let Some(literal) = name.strip_prefix('!') {
                out.push_str("${");
                out.push_str(literal);
                out.push('}');
            } else if let Some(v) = vars.and_then(|m| m.get(name)) {
                out.push_str(&self.resolve(v)?);
            } else if let Some((id, attr)) = name.split_once('.') {
                out.push_str(&self.lookup_att(id, attr)?);
            } else {
                out.push_str(&self.lookup_ref(name)?);
            }
            rest = &after[end + 1..];
        }
        out.push_str(rest);
        Ok(out)
    }

    /// Evaluate a named condition of `template`.
    pub fn condition(&self, template: &Template, name: &str) -> Result<bool, TemplateError> {
        if let Some(v) = self.conditions.get(name) {
            return Ok(*v);
        }
        let expr = template.conditions.get(name).ok_or_else(|| invalid(format!("unknown condition {name}")))?;
        self.eval(template, expr)
    }

    fn eval(&self, template: &Template, expr: &Value) -> Result<bool, TemplateError> {
        let (tag, args) = match expr {
            Value::Tagged(t) => (t.tag.to_string().trim_start_matches('!').to_owned(), t.value.clone()),
            Value::Mapping(m) if m.len() == 1 => {
                let (k, v) = m.iter().next().ok_or_else(|| invalid("empty condition"))?;
                (k.as_str().unwrap_or_default().trim_start_matches("Fn::").to_owned(), v.clone())
            }
            other => return Err(invalid(format!("cannot evaluate condition {other:?}"))),
        };
        let list = args.as_sequence().cloned().unwrap_or_default();
        match tag.as_str() {
            "Equals" if list.len() == 2 => Ok(self.resolve(&list[0])? == self.resolve(&list[1])?),
            "Not" if list.len() == 1 => Ok(!self.eval(template, &list[0])?),
            "And" => list.iter().try_fold(true, |acc, c| Ok(acc && self.eval(template, c)?)),
            "Or" => list.iter().try_fold(false, |acc, c| Ok(acc || self.eval(template, c)?)),
            "Condition" => self.condition(template, args.as_str().unwrap_or_default()),
            other => Err(invalid(format!("unsupported condition function {other}"))),
        }
    }

    /// Resolve a scalar value with intrinsics to its string.
    pub fn resolve(&self, v: &Value) -> Result<String, TemplateError> {
        if let Some(s) = scalar(v) {
            return Ok(s);
        }
        let if_args = match v {
            Value::Tagged(t) if t.tag == "If" => t.value.as_sequence(),
            Value::Mapping(m) if m.len() == 1 => m.get("Fn::If").and_then(Value::as_sequence),
            _ => None,
        };
        if let Some(args) = if_args {
            let name = args.first().and_then(Value::as_str).ok_or_else(|| invalid("!If needs a condition name"))?;
            let chosen =
                if *self.conditions.get(name).ok_or_else(|| invalid(format!("condition {name} not evaluated")))? {
                    args.get(1)
                } else {
                    args.get(2)
                };
            return match chosen {
                Some(v) if ref_target(v) == Some("AWS::NoValue") => Ok(String::new()),
                Some(v) => self.resolve(v),
                None => Err(invalid("!If needs two values")),
            };
        }
        if let Some(id) = ref_target(v) {
            return self.lookup_ref(id);
        }
        if let Some((id, attr)) = getatt_target(v) {
            return self.lookup_att(&id, &attr);
        }
        let sub = match v {
            Value::Tagged(t) if t.tag == "Sub" => Some(&t.value),
            Value::Mapping(m) if m.len() == 1 => m.get("Fn::Sub"),
            _ => None,
        };
        match sub {
            Some(Value::String(s)) => self.sub(s, None),
            Some(Value::Sequence(parts)) if parts.len() == 2 => {
                let text = parts[0].as_str().ok_or_else(|| invalid("!Sub needs a string"))?;
                self.sub(text, parts[1].as_mapping())
            }
            _ => Err(invalid(format!("cannot resolve {v:?} locally"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: &str = r#"
Parameters:
  Prefix: {Type: String, Default: nk}
  Issuer: {Type: String}
Globals:
  Function:
    Environment:
      Variables:
        ISS: !Ref Issuer
        SHARED: global
Resources:
  Stream:
    Type: AWS::Kinesis::Stream
    Properties: {Name: !Sub "${Prefix}.telemetry", ShardCount: 2}
  Fn:
    Type: AWS::Serverless::Function
    Metadata: {BuildProperties: {Binary: ingest}}
    Properties:
      Environment: {Variables: {STREAM: !Ref Stream, SHARED: mine, ARN: !GetAtt Stream.Arn}}
      Events:
        Http: {Type: HttpApi, Properties: {Path: /ingest, Method: post}}
        Hourly: {Type: Schedule, Properties: {Schedule: rate(1 hour)}}
  Esm:
    Type: AWS::Lambda::EventSourceMapping
    Properties:
      EventSourceArn: !GetAtt Stream.Arn
      FunctionName: !Ref Fn
      BatchSize: 7
      StartingPosition: TRIM_HORIZON
      FunctionResponseTypes: [ReportBatchItemFailures]
"#;

    fn ctx() -> Context {
        Context {
            conditions: BTreeMap::new(),
            region: "us-east-1".into(),
            account: "123".into(),
            stack_name: "local".into(),
            parameters: [("Prefix".to_owned(), "nk".to_owned()), ("Issuer".to_owned(), "https://i/".to_owned())].into(),
            physical: [("Stream".to_owned(), "nk.telemetry".to_owned())].into(),
            arns: [("Stream".to_owned(), "arn:aws:kinesis:us-east-1:123:stream/nk.telemetry".to_owned())].into(),
        }
    }

    #[test]
    fn reads_functions_routes_schedules_and_mappings() {
        let t = Template::parse(T).unwrap();
        let f = &t.functions().unwrap()[0];
        assert_eq!(f.binary, "ingest");
        assert_eq!(f.routes, vec![Route { method: "POST".into(), path: "/ingest".into(), binary: "ingest".into() }]);
        assert_eq!(f.schedules[0].expression, "rate(1 hour)");
        assert_eq!(f.environment["SHARED"], Value::String("mine".into()));
        let m = &t.stream_mappings().unwrap()[0];
        assert_eq!((m.stream_logical_id.as_str(), m.function_logical_id.as_str(), m.batch_size), ("Stream", "Fn", 7));
        assert!(m.report_batch_item_failures && !m.bisect_on_error);
        assert_eq!(t.parameters["Issuer"], None);
    }

    #[test]
    fn conditions_decide_which_resources_exist_and_what_if_resolves_to() {
        let t = Template::parse(
            "Parameters:\n  Mode: {Type: String, Default: \"false\"}\nConditions:\n  IsSim: !Equals [!Ref Mode, \"true\"]\n  NotSim: !Not [!Condition IsSim]\nResources:\n  Sim:\n    Type: AWS::DynamoDB::Table\n    Condition: IsSim\n    Properties: {TableName: sim}\n  Always:\n    Type: AWS::DynamoDB::Table\n    Properties: {TableName: always}\n",
        )
        .unwrap();
        let mut c = Context { parameters: [("Mode".to_owned(), "true".to_owned())].into(), ..Context::default() };
        for name in ["IsSim", "NotSim"] {
            let v = c.condition(&t, name).unwrap();
            c.conditions.insert(name.to_owned(), v);
        }
        assert_eq!(c.conditions, [("IsSim".to_owned(), true), ("NotSim".to_owned(), false)].into());
        assert_eq!(t.for_context(&c).unwrap().resources.len(), 2);
        c.conditions.insert("IsSim".into(), false);
        assert_eq!(t.for_context(&c).unwrap().resources.len(), 1);
        let chosen: Value = serde_yaml::from_str("!If [NotSim, yes, !Ref AWS::NoValue]").unwrap();
        c.conditions.insert("NotSim".into(), false);
        assert_eq!(c.resolve(&chosen).unwrap(), "");
    }

    #[test]
    fn resolves_ref_getatt_and_sub() {
        let t = Template::parse(T).unwrap();
        let f = &t.functions().unwrap()[0];
        let c = ctx();
        assert_eq!(c.resolve(&f.environment["ISS"]).unwrap(), "https://i/");
        assert_eq!(c.resolve(&f.environment["STREAM"]).unwrap(), "nk.telemetry");
        assert!(c.resolve(&f.environment["ARN"]).unwrap().ends_with("stream/nk.telemetry"));
        let name = t.resource("Stream").unwrap().prop("Name").unwrap();
        assert_eq!(c.resolve(name).unwrap(), "nk.telemetry");
        let sub: Value = serde_yaml::from_str("!Sub ['${A}-${AWS::Region}-${!Literal}', {A: x}]").unwrap();
        assert_eq!(c.resolve(&sub).unwrap(), "x-us-east-1-${Literal}");
        let unknown: Value = serde_yaml::from_str("!Ref Nope").unwrap();
        assert!(c.resolve(&unknown).is_err());
    }
}

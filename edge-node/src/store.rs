//! The node's state, in one SQLite file under its state directory (WAL, `synchronous=FULL`), so
//! a killed node restarts where it stopped:
//!
//! | table | what |
//! |---|---|
//! | `meta` | the node's key (PKCS#8, never logged), id, tenant, pinned hub keys, WPK keys, `last_seq`, `halted` |
//! | `nonces` | every order nonce accepted (replays are refused) |
//! | `ran` | the highest version of each WPK accepted (downgrades are refused) |
//! | `triggers` | each accepted delivery and its state: `accepted` (to run or resume) or `done` |
//! | `refusals` | deliveries refused, with the reason |
//! | `outbox` | signed results not yet taken by the hub, and those it took |
//! | `world` | the simulated resources the `sim` adapter acts on |
//! | `receipts` | one per act: a step carried out once is never carried out again |
//!
//! Accepting a delivery (nonce, `last_seq`, `ran`, the trigger row) is one transaction; so is
//! finishing one (the trigger's state and its result in the outbox); an act and its receipt are
//! one transaction too.

use std::path::Path;
use std::sync::{Arc, Mutex};

use chrono::Utc;
use naksha_act::sim::{SimResource, SimStore};
use naksha_act::{ActError, Receipts};
use naksha_contracts::TenantId;
use naksha_contracts::edge::{Delivery, EdgeResult, HubKeys, NodeMemory};
use naksha_contracts::signing::{Sealed, TrustedKeys};
use rusqlite::{Connection, OptionalExtension, params};
use serde_json::Value;

#[derive(Debug, thiserror::Error)]
#[error("the node's state store: {0}")]
pub struct StateError(String);

impl From<rusqlite::Error> for StateError {
    fn from(e: rusqlite::Error) -> Self {
        StateError(e.to_string())
    }
}

impl From<serde_json::Error> for StateError {
    fn from(e: serde_json::Error) -> Self {
        StateError(e.to_string())
    }
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS nonces (nonce TEXT PRIMARY KEY, seq INTEGER NOT NULL, at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS ran (wpk_id TEXT PRIMARY KEY, version INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS triggers (
  trigger_id TEXT NOT NULL, seq INTEGER NOT NULL, state TEXT NOT NULL, delivery TEXT NOT NULL,
  status TEXT, reason TEXT, accepted_at TEXT NOT NULL, finished_at TEXT,
  PRIMARY KEY (trigger_id, seq));
CREATE TABLE IF NOT EXISTS refusals (
  id INTEGER PRIMARY KEY AUTOINCREMENT, trigger_id TEXT NOT NULL, seq INTEGER NOT NULL,
  code TEXT NOT NULL, reason TEXT NOT NULL, at TEXT NOT NULL, fingerprint TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS refusals_by_fingerprint ON refusals (fingerprint);
CREATE TABLE IF NOT EXISTS outbox (
  id INTEGER PRIMARY KEY AUTOINCREMENT, trigger_id TEXT NOT NULL, seq INTEGER NOT NULL, status TEXT NOT NULL,
  result TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0, sent_at TEXT, answer TEXT);
CREATE TABLE IF NOT EXISTS world (tenant TEXT NOT NULL, resource TEXT NOT NULL, doc TEXT NOT NULL,
  PRIMARY KEY (tenant, resource));
CREATE TABLE IF NOT EXISTS receipts (tenant TEXT NOT NULL, key TEXT NOT NULL, done INTEGER NOT NULL,
  result TEXT NOT NULL, at TEXT NOT NULL, PRIMARY KEY (tenant, key));
";

/// The node's store; cheap to clone (one connection behind a lock: the node does one thing at a
/// time, and SQLite serialises writers anyway).
#[derive(Debug, Clone)]
pub struct State {
    db: Arc<Mutex<Connection>>,
}

/// A result waiting for the hub.
#[derive(Debug, Clone)]
pub struct Pending {
    pub id: i64,
    pub trigger_id: String,
    pub result: Sealed,
    pub attempts: u32,
}

impl State {
    /// Open (or create) `dir/edge.db`.
    pub fn open(dir: &Path) -> Result<Self, StateError> {
        std::fs::create_dir_all(dir).map_err(|e| StateError(format!("{}: {e}", dir.display())))?;
        let conn = Connection::open(dir.join("edge.db"))?;
        // Statements wait for a lock held by another process (a concurrent `edge-node status`)
        // instead of failing; switching to WAL does not wait, so the setup is retried.
        conn.busy_timeout(std::time::Duration::from_secs(10))?;
        let mut tries = 0;
        loop {
            match Self::setup(&conn) {
                Ok(()) => break,
                Err(rusqlite::Error::SqliteFailure(e, _))
                    if e.code == rusqlite::ErrorCode::DatabaseBusy && tries < 100 =>
                {
                    tries += 1;
                    std::thread::sleep(std::time::Duration::from_millis(50 + fastrand::u64(0..50)));
                }
                Err(e) => return Err(e.into()),
            }
        }
        Ok(Self { db: Arc::new(Mutex::new(conn)) })
    }

    /// WAL (readers never block the node), full syncs (a crash loses nothing committed), the schema.
    fn setup(conn: &Connection) -> Result<(), rusqlite::Error> {
        let mode: String = conn.query_row("PRAGMA journal_mode", [], |r| r.get(0))?;
        if !mode.eq_ignore_ascii_case("wal") {
            conn.pragma_update(None, "journal_mode", "WAL")?;
        }
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.execute_batch(SCHEMA)
    }

    fn with<T>(&self, f: impl FnOnce(&mut Connection) -> Result<T, StateError>) -> Result<T, StateError> {
        let mut conn = self.db.lock().map_err(|_| StateError("lock poisoned".into()))?;
        f(&mut conn)
    }

    pub fn get(&self, k: &str) -> Result<Option<String>, StateError> {
        self.with(|c| Ok(c.query_row("SELECT v FROM meta WHERE k = ?1", [k], |r| r.get(0)).optional()?))
    }

    pub fn set(&self, k: &str, v: &str) -> Result<(), StateError> {
        self.with(|c| {
            c.execute("INSERT INTO meta (k, v) VALUES (?1, ?2) ON CONFLICT(k) DO UPDATE SET v = excluded.v", [k, v])?;
            Ok(())
        })
    }

    pub fn last_seq(&self) -> Result<u64, StateError> {
        Ok(self.get("last_seq")?.and_then(|v| v.parse().ok()).unwrap_or(0))
    }

    pub fn halted(&self) -> Result<bool, StateError> {
        Ok(self.get("halted")?.as_deref() == Some("true"))
    }

    pub fn hub_keys(&self) -> Result<HubKeys, StateError> {
        Ok(match self.get("hub_keys")? {
            Some(j) => serde_json::from_str(&j)?,
            None => HubKeys::default(),
        })
    }

    pub fn set_hub_keys(&self, keys: &HubKeys) -> Result<(), StateError> {
        self.set("hub_keys", &serde_json::to_string(keys)?)
    }

    /// The WPK keys as pinned: `(kid, SubjectPublicKeyInfo DER)`.
    pub fn wpk_keys(&self) -> Result<TrustedKeys, StateError> {
        let pairs: Vec<(String, String)> = match self.get("wpk_keys")? {
            Some(j) => serde_json::from_str(&j)?,
            None => Vec::new(),
        };
        let mut keys = TrustedKeys::default();
        for (kid, pem) in pairs {
            if let Ok(der) = naksha_contracts::edge::p256_spki_from_pem(&pem) {
                keys.insert(&kid, der);
            }
        }
        Ok(keys)
    }

    pub fn set_wpk_keys(&self, pairs: &[(String, String)]) -> Result<(), StateError> {
        self.set("wpk_keys", &serde_json::to_string(pairs)?)
    }

    /// Accept a verified delivery: its nonce, `last_seq`, the WPK version run, and the trigger to
    /// run, together. `false` if it was accepted before (nothing changes).
    pub fn accept(&self, d: &Delivery, nonce: &str, wpk_id: &str, wpk_version: u32) -> Result<bool, StateError> {
        self.with(|c| {
            let tx = c.transaction()?;
            let fresh = tx.execute(
                "INSERT OR IGNORE INTO nonces (nonce, seq, at) VALUES (?1, ?2, ?3)",
                params![nonce, d.seq as i64, Utc::now().to_rfc3339()],
            )? == 1;
            if !fresh {
                return Ok(false);
            }
            tx.execute(
                "INSERT INTO meta (k, v) VALUES ('last_seq', ?1) ON CONFLICT(k) DO UPDATE SET v = excluded.v",
                [d.seq.to_string()],
            )?;
            tx.execute(
                "INSERT INTO ran (wpk_id, version) VALUES (?1, ?2)
                 ON CONFLICT(wpk_id) DO UPDATE SET version = max(version, excluded.version)",
                params![wpk_id, wpk_version],
            )?;
            tx.execute(
                "INSERT INTO triggers (trigger_id, seq, state, delivery, accepted_at) VALUES (?1, ?2, 'accepted', ?3, ?4)",
                params![d.trigger_id, d.seq as i64, serde_json::to_string(d)?, Utc::now().to_rfc3339()],
            )?;
            tx.commit()?;
            Ok(true)
        })
    }

    /// Triggers accepted but not finished (a node that stopped mid-trigger resumes them).
    pub fn unfinished(&self) -> Result<Vec<Delivery>, StateError> {
        self.with(|c| {
            let mut stmt = c.prepare("SELECT delivery FROM triggers WHERE state = 'accepted' ORDER BY seq")?;
            let rows = stmt.query_map([], |r| r.get::<_, String>(0))?;
            let mut out = Vec::new();
            for r in rows {
                out.push(serde_json::from_str(&r?)?);
            }
            Ok(out)
        })
    }

    /// Finish a trigger: its state and its signed result in the outbox, together.
    pub fn finish(&self, result: &EdgeResult, sealed: &Sealed) -> Result<(), StateError> {
        self.with(|c| {
            let tx = c.transaction()?;
            tx.execute(
                "UPDATE triggers SET state = 'done', status = ?3, reason = ?4, finished_at = ?5
                 WHERE trigger_id = ?1 AND seq = ?2 AND state = 'accepted'",
                params![
                    result.trigger_id,
                    result.seq as i64,
                    result.status.as_str(),
                    result.reason,
                    result.finished_at.to_rfc3339()
                ],
            )?;
            tx.execute(
                "INSERT INTO outbox (trigger_id, seq, status, result) VALUES (?1, ?2, ?3, ?4)",
                params![result.trigger_id, result.seq as i64, result.status.as_str(), serde_json::to_string(sealed)?],
            )?;
            tx.commit()?;
            Ok(())
        })
    }

    /// Whether this exact delivery (by `fingerprint`, the sha256 of what was served) was refused
    /// before: it is not judged or reported again.
    pub fn refused(&self, fingerprint: &str) -> Result<bool, StateError> {
        self.with(|c| {
            Ok(c.query_row("SELECT 1 FROM refusals WHERE fingerprint = ?1 LIMIT 1", [fingerprint], |_| Ok(()))
                .optional()?
                .is_some())
        })
    }

    /// Record a refused delivery and its signed `rejected` result, together.
    pub fn refuse(&self, result: &EdgeResult, sealed: &Sealed, fingerprint: &str) -> Result<(), StateError> {
        self.with(|c| {
            let tx = c.transaction()?;
            tx.execute(
                "INSERT INTO refusals (trigger_id, seq, code, reason, at, fingerprint) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![
                    result.trigger_id,
                    result.seq as i64,
                    result.refusal.as_deref().unwrap_or(""),
                    result.reason,
                    result.finished_at.to_rfc3339(),
                    fingerprint
                ],
            )?;
            tx.execute(
                "INSERT INTO outbox (trigger_id, seq, status, result) VALUES (?1, ?2, 'rejected', ?3)",
                params![result.trigger_id, result.seq as i64, serde_json::to_string(sealed)?],
            )?;
            tx.commit()?;
            Ok(())
        })
    }

    /// Results the hub has not taken yet, oldest first.
    pub fn outbox(&self) -> Result<Vec<Pending>, StateError> {
        self.with(|c| {
            let mut stmt =
                c.prepare("SELECT id, trigger_id, result, attempts FROM outbox WHERE sent_at IS NULL ORDER BY id")?;
            let rows = stmt.query_map([], |r| {
                Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?, r.get::<_, String>(2)?, r.get::<_, i64>(3)?))
            })?;
            let mut out = Vec::new();
            for row in rows {
                let (id, trigger_id, result, attempts) = row?;
                out.push(Pending { id, trigger_id, result: serde_json::from_str(&result)?, attempts: attempts as u32 });
            }
            Ok(out)
        })
    }

    /// The hub answered (`answer`: what it said); the result leaves the outbox.
    pub fn sent(&self, id: i64, answer: &str) -> Result<(), StateError> {
        self.with(|c| {
            c.execute(
                "UPDATE outbox SET sent_at = ?2, answer = ?3 WHERE id = ?1",
                params![id, Utc::now().to_rfc3339(), answer],
            )?;
            Ok(())
        })
    }

    pub fn attempted(&self, id: i64) -> Result<(), StateError> {
        self.with(|c| {
            c.execute("UPDATE outbox SET attempts = attempts + 1 WHERE id = ?1", [id])?;
            Ok(())
        })
    }

    /// Put a simulated resource in the world unless it is there already.
    pub fn seed(&self, tenant: &TenantId, resource: &str, r: &SimResource) -> Result<bool, StateError> {
        self.with(|c| {
            Ok(c.execute(
                "INSERT OR IGNORE INTO world (tenant, resource, doc) VALUES (?1, ?2, ?3)",
                params![tenant.as_str(), resource, serde_json::to_string(r)?],
            )? == 1)
        })
    }

    /// Everything, for `edge-node status` (never the private key).
    pub fn status(&self) -> Result<Value, StateError> {
        self.with(|c| {
            let meta = |k: &str| -> Result<Option<String>, StateError> {
                Ok(c.query_row("SELECT v FROM meta WHERE k = ?1", [k], |r| r.get(0)).optional()?)
            };
            let rows = |sql: &str, cols: &[&str]| -> Result<Vec<Value>, StateError> {
                let mut stmt = c.prepare(sql)?;
                let n = cols.len();
                let mapped = stmt.query_map([], |r| {
                    let mut obj = serde_json::Map::new();
                    for (i, name) in cols.iter().enumerate().take(n) {
                        let v: rusqlite::types::Value = r.get(i)?;
                        obj.insert((*name).to_owned(), match v {
                            rusqlite::types::Value::Null => Value::Null,
                            rusqlite::types::Value::Integer(i) => Value::from(i),
                            rusqlite::types::Value::Real(f) => Value::from(f),
                            rusqlite::types::Value::Text(t) => Value::String(t),
                            rusqlite::types::Value::Blob(_) => Value::Null,
                        });
                    }
                    Ok(Value::Object(obj))
                })?;
                Ok(mapped.collect::<Result<Vec<_>, _>>()?)
            };
            let world: Vec<Value> = rows("SELECT resource, doc FROM world ORDER BY resource", &["resource", "doc"])?
                .into_iter()
                .map(|mut v| {
                    if let Some(doc) = v["doc"].as_str().and_then(|d| serde_json::from_str::<Value>(d).ok()) {
                        v["doc"] = doc;
                    }
                    v
                })
                .collect();
            let hub_keys: Value = meta("hub_keys")?.and_then(|j| serde_json::from_str(&j).ok()).unwrap_or(Value::Null);
            Ok(serde_json::json!({
                "node_id": meta("node_id")?,
                "tenant": meta("tenant")?,
                "kid": meta("kid")?,
                "last_seq": meta("last_seq")?.and_then(|s| s.parse::<u64>().ok()).unwrap_or(0),
                "halted": meta("halted")?.as_deref() == Some("true"),
                "hub_keys": hub_keys,
                "triggers": rows("SELECT trigger_id, seq, state, status, reason, accepted_at, finished_at FROM triggers ORDER BY seq",
                    &["trigger_id", "seq", "state", "status", "reason", "accepted_at", "finished_at"])?,
                "refusals": rows("SELECT trigger_id, seq, code, reason, at FROM refusals ORDER BY id", &["trigger_id", "seq", "code", "reason", "at"])?,
                "outbox": rows("SELECT trigger_id, seq, status, attempts, sent_at, answer FROM outbox ORDER BY id",
                    &["trigger_id", "seq", "status", "attempts", "sent_at", "answer"])?,
                "receipts": rows("SELECT key, done, at FROM receipts ORDER BY at", &["key", "done", "at"])?,
                "world": world,
            }))
        })
    }
}

impl NodeMemory for State {
    fn seen_nonce(&self, nonce: &str) -> bool {
        // An unreadable store counts as "seen": refusing is the safe side.
        self.with(|c| {
            Ok(c.query_row("SELECT 1 FROM nonces WHERE nonce = ?1", [nonce], |_| Ok(())).optional()?.is_some())
        })
        .unwrap_or(true)
    }

    fn highest_version(&self, wpk_id: &str) -> Option<u32> {
        self.with(|c| {
            Ok(c.query_row("SELECT version FROM ran WHERE wpk_id = ?1", [wpk_id], |r| r.get(0)).optional()?)
        })
        .unwrap_or(Some(u32::MAX))
    }
}

fn unavailable(e: StateError) -> ActError {
    ActError::Unavailable(e.to_string())
}

impl SimStore for State {
    async fn get(&self, tenant: &TenantId, resource: &str) -> Result<Option<SimResource>, ActError> {
        let doc: Option<String> = self
            .with(|c| {
                Ok(c.query_row(
                    "SELECT doc FROM world WHERE tenant = ?1 AND resource = ?2",
                    [tenant.as_str(), resource],
                    |r| r.get(0),
                )
                .optional()?)
            })
            .map_err(unavailable)?;
        doc.map(|d| serde_json::from_str(&d).map_err(|e| ActError::Refused(format!("{resource} is not readable: {e}"))))
            .transpose()
    }

    async fn put(&self, tenant: &TenantId, resource: &str, r: &SimResource) -> Result<(), ActError> {
        let doc = serde_json::to_string(r).map_err(|e| ActError::Refused(e.to_string()))?;
        self.with(|c| {
            c.execute(
                "INSERT INTO world (tenant, resource, doc) VALUES (?1, ?2, ?3)
                 ON CONFLICT(tenant, resource) DO UPDATE SET doc = excluded.doc",
                params![tenant.as_str(), resource, doc],
            )?;
            Ok(())
        })
        .map_err(unavailable)
    }

    async fn apply(
        &self,
        tenant: &TenantId,
        resource: &str,
        before: &SimResource,
        after: &SimResource,
        key: &str,
        receipt: &Value,
    ) -> Result<(Value, bool), ActError> {
        let before = serde_json::to_string(before).map_err(|e| ActError::Refused(e.to_string()))?;
        let after = serde_json::to_string(after).map_err(|e| ActError::Refused(e.to_string()))?;
        let outcome = self.with(|c| {
            let tx = c.transaction()?;
            let existing: Option<String> = tx
                .query_row("SELECT result FROM receipts WHERE tenant = ?1 AND key = ?2", [tenant.as_str(), key], |r| {
                    r.get(0)
                })
                .optional()?;
            if let Some(r) = existing {
                return Ok(Ok((serde_json::from_str(&r)?, true)));
            }
            let current: Option<String> = tx
                .query_row(
                    "SELECT doc FROM world WHERE tenant = ?1 AND resource = ?2",
                    [tenant.as_str(), resource],
                    |r| r.get(0),
                )
                .optional()?;
            let same = current.as_deref().and_then(|c| serde_json::from_str::<SimResource>(c).ok())
                == serde_json::from_str::<SimResource>(&before).ok();
            if !same {
                return Ok(Err(ActError::Refused("the resource changed while acting".into())));
            }
            tx.execute(
                "UPDATE world SET doc = ?3 WHERE tenant = ?1 AND resource = ?2",
                params![tenant.as_str(), resource, after],
            )?;
            tx.execute(
                "INSERT INTO receipts (tenant, key, done, result, at) VALUES (?1, ?2, 1, ?3, ?4)",
                params![tenant.as_str(), key, serde_json::to_string(receipt)?, Utc::now().to_rfc3339()],
            )?;
            tx.commit()?;
            Ok(Ok((receipt.clone(), false)))
        });
        outcome.map_err(unavailable)?
    }
}

/// Receipts of acts that cannot share a transaction with their target (the k8s adapter).
impl Receipts for State {
    async fn get(&self, tenant: &TenantId, key: &str) -> Result<Option<(bool, Value)>, ActError> {
        let row: Option<(i64, String)> = self
            .with(|c| {
                Ok(c.query_row(
                    "SELECT done, result FROM receipts WHERE tenant = ?1 AND key = ?2",
                    [tenant.as_str(), key],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()?)
            })
            .map_err(unavailable)?;
        Ok(row.map(|(done, r)| (done == 1, serde_json::from_str(&r).unwrap_or(Value::Null))))
    }

    async fn begin(&self, tenant: &TenantId, key: &str) -> Result<bool, ActError> {
        self.with(|c| {
            Ok(c.execute(
                "INSERT OR IGNORE INTO receipts (tenant, key, done, result, at) VALUES (?1, ?2, 0, 'null', ?3)",
                params![tenant.as_str(), key, Utc::now().to_rfc3339()],
            )? == 1)
        })
        .map_err(unavailable)
    }

    async fn finish(&self, tenant: &TenantId, key: &str, result: &Value) -> Result<(), ActError> {
        let r = serde_json::to_string(result).map_err(|e| ActError::Refused(e.to_string()))?;
        self.with(|c| {
            c.execute(
                "UPDATE receipts SET done = 1, result = ?3 WHERE tenant = ?1 AND key = ?2",
                params![tenant.as_str(), key, r],
            )?;
            Ok(())
        })
        .map_err(unavailable)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use naksha_act::sim::SimAdapter;
    use serde_json::{Map, json};

    fn tmp(name: &str) -> std::path::PathBuf {
        let dir =
            std::env::temp_dir().join(format!("edge-node-test-{name}-{}-{}", std::process::id(), fastrand::u64(..)));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    #[tokio::test]
    async fn an_act_happens_once_per_key_even_after_the_store_is_reopened() {
        let dir = tmp("once");
        let tenant = TenantId::from_record("acme").unwrap();
        let state = State::open(&dir).unwrap();
        let r = SimResource::new("deployment", 2, false, "v1");
        assert!(state.seed(&tenant, "deployment/a", &r).unwrap());
        assert!(!state.seed(&tenant, "deployment/a", &r).unwrap(), "seeding never overwrites");
        let sim = SimAdapter { store: state.clone() };
        let (_, reused) = sim.execute(&tenant, "restart", "deployment/a", &Map::new(), "k1").await.unwrap();
        assert!(!reused);
        drop(sim);
        drop(state);
        let again = SimAdapter { store: State::open(&dir).unwrap() };
        let (receipt, reused) = again.execute(&tenant, "restart", "deployment/a", &Map::new(), "k1").await.unwrap();
        assert!(reused);
        assert_eq!(receipt["after"]["restarts"], json!(1));
        assert_eq!(again.describe(&tenant, "deployment/a").await.unwrap().unwrap()["restarts"], json!(1));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_nonce_is_accepted_once_and_the_highest_version_is_kept() {
        let dir = tmp("accept");
        let state = State::open(&dir).unwrap();
        let d = |seq: u64, trigger: &str| Delivery {
            trigger_id: trigger.into(),
            seq,
            order: Sealed { signed: "{}".into(), signature: String::new(), key_id: "k".into() },
            wpk: naksha_contracts::edge::WpkForm {
                id: "w".into(),
                version: 1,
                doc: String::new(),
                sha256: String::new(),
                signature: String::new(),
                key_id: String::new(),
            },
        };
        assert!(state.accept(&d(3, "t1"), "n1", "w", 2).unwrap());
        assert!(!state.accept(&d(3, "t1"), "n1", "w", 2).unwrap());
        assert!(state.seen_nonce("n1") && !state.seen_nonce("n2"));
        assert!(state.accept(&d(4, "t2"), "n2", "w", 1).unwrap());
        assert_eq!((state.last_seq().unwrap(), state.highest_version("w")), (4, Some(2)));
        assert_eq!(state.unfinished().unwrap().len(), 2);
        let _ = std::fs::remove_dir_all(&dir);
    }
}

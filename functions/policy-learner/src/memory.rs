//! The in-memory twin of the policy store, for the use cases' unit tests.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;

use naksha_contracts::TenantId;

use crate::ports::{Policies, StoreError, record_key};
use crate::records::Record;
use crate::suggest::{State, Suggestion};

#[derive(Debug, Default)]
pub struct MemoryPolicies {
    records: Mutex<BTreeMap<(String, String), Record>>,
    suggestions: Mutex<BTreeMap<(String, String), Suggestion>>,
    /// Writes done (records and suggestions), to show that a refused request wrote nothing.
    pub writes: Mutex<usize>,
}

fn poisoned<T>(_: T) -> StoreError {
    StoreError("poisoned".into())
}

impl MemoryPolicies {
    fn count(&self, n: usize) -> Result<(), StoreError> {
        *self.writes.lock().map_err(poisoned)? += n;
        Ok(())
    }
}

impl Policies for MemoryPolicies {
    async fn existing(&self, tenant: &TenantId, keys: &[String]) -> Result<BTreeSet<String>, StoreError> {
        let all = self.records.lock().map_err(poisoned)?;
        Ok(keys.iter().filter(|k| all.contains_key(&(tenant.as_str().to_owned(), (*k).clone()))).cloned().collect())
    }

    async fn put_records(&self, tenant: &TenantId, records: &[Record]) -> Result<(), StoreError> {
        let mut all = self.records.lock().map_err(poisoned)?;
        for r in records {
            all.insert((tenant.as_str().to_owned(), record_key(r)), r.clone());
        }
        drop(all);
        self.count(records.len())
    }

    async fn records(&self, tenant: &TenantId) -> Result<Vec<Record>, StoreError> {
        let all = self.records.lock().map_err(poisoned)?;
        Ok(all.iter().filter(|((t, _), _)| t == tenant.as_str()).map(|(_, r)| r.clone()).collect())
    }

    async fn suggestions(&self, tenant: &TenantId) -> Result<Vec<Suggestion>, StoreError> {
        let all = self.suggestions.lock().map_err(poisoned)?;
        Ok(all.iter().filter(|((t, _), _)| t == tenant.as_str()).map(|(_, s)| s.clone()).collect())
    }

    async fn suggestion(&self, tenant: &TenantId, id: &str) -> Result<Option<Suggestion>, StoreError> {
        let all = self.suggestions.lock().map_err(poisoned)?;
        Ok(all.get(&(tenant.as_str().to_owned(), id.to_owned())).cloned())
    }

    async fn save(&self, s: &Suggestion, seen: Option<State>) -> Result<bool, StoreError> {
        let mut all = self.suggestions.lock().map_err(poisoned)?;
        let key = (s.tenant.as_str().to_owned(), s.draft.id.clone());
        let current = all.get(&key).map(|c| c.state);
        if current != seen {
            return Ok(false);
        }
        all.insert(key, s.clone());
        drop(all);
        self.count(1)?;
        Ok(true)
    }
}

//! The item format of `naksha.wpks`, shared by its writer (the agent) and its reader (the
//! federation hub, which sends WPK versions to edge nodes). Decoding only: nothing read here is
//! trusted until `StoredWpk::verify` has checked it.
//!
//! | attribute | value |
//! |---|---|
//! | `pk` | the tenant |
//! | `sk` | `wpk_sk` (naksha-contracts) = `<id>#<version, 10 digits>` |
//! | `id`, `version`, `doc`, `sha256`, `signature`, `key_id` | the signed document, its digest and signature |
//! | `created_at`, `created_by` | who registered it |
//! | `signals`, `resources` | `match`, copied out for choosing candidates (never trusted for acting) |
//! | `standing_approval` | the signed standing approval (JSON of a `Sealed`) |

use naksha_contracts::wpk::StoredWpk;

use crate::ddb::{Item, get_n, get_s, get_strings};

/// A WPK version as stored; `None` for an item that lacks what a version needs.
pub fn stored_wpk(item: &Item) -> Option<StoredWpk> {
    Some(StoredWpk {
        id: get_s(item, "id")?.to_owned(),
        version: get_n(item, "version")?,
        doc: get_s(item, "doc")?.to_owned(),
        sha256: get_s(item, "sha256")?.to_owned(),
        signature: get_s(item, "signature")?.to_owned(),
        key_id: get_s(item, "key_id")?.to_owned(),
        created_at: get_s(item, "created_at").unwrap_or_default().to_owned(),
        created_by: get_s(item, "created_by").unwrap_or_default().to_owned(),
        standing_approval: get_s(item, "standing_approval").and_then(|j| serde_json::from_str(j).ok()),
        signals: get_strings(item, "signals"),
        resources: get_strings(item, "resources"),
    })
}

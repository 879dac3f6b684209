//! What was wrong with input: one [`FieldError`] per problem, located by a JSON pointer, so a
//! caller (an API client, an edge node, an operator's CLI) learns every problem at once.

use serde::{Deserialize, Serialize};

/// One thing wrong with the input, located by a JSON pointer into the document.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct FieldError {
    pub pointer: String,
    pub detail: String,
}

impl FieldError {
    pub fn new(pointer: impl Into<String>, detail: impl Into<String>) -> Self {
        Self { pointer: pointer.into(), detail: detail.into() }
    }
}

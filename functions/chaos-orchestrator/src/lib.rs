//! D.5 chaos-orchestrator. (Module map filled in as the service grows.)

pub mod import;
pub mod specs;

//! The local stack's crash switch: when `NAKSHA_CRASH_DIR` (set only by the local harness, never
//! by template.yaml) holds a file named `name`, the caller dies there, as a crashed instance
//! would. The file goes first, so it dies once; Lambda (here the harness) delivers the work again.
//! Tests and `make load` drop the file to crash a worker at its most awkward moment.

/// Die here if the local harness asked for it (`what` names the place in the panic message,
/// which `local/stack.sh panics` recognises as deliberate).
#[allow(clippy::panic)] // dying here, as a crashed instance would, is the point
pub fn point(name: &str, what: &str) {
    let Some(dir) = std::env::var_os("NAKSHA_CRASH_DIR") else { return };
    if std::fs::remove_file(std::path::Path::new(&dir).join(name)).is_ok() {
        tracing::error!(what, "crash point reached: dying mid-work");
        panic!("crash point for {what}");
    }
}

//! Several processes open one node's state at once (the node starting while `edge-node status`
//! reads it): none fails with "database is locked".
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::Command;

#[test]
fn many_processes_may_open_a_fresh_store_at_once() {
    for round in 0..5 {
        let dir = std::env::temp_dir().join(format!("edge-open-{}-{round}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let procs: Vec<_> = (0..8)
            .map(|_| {
                Command::new(env!("CARGO_BIN_EXE_edge-node"))
                    .arg("status")
                    .arg("--state")
                    .arg(dir.join("fresh"))
                    .stdout(std::process::Stdio::null())
                    .stderr(std::process::Stdio::piped())
                    .spawn()
                    .unwrap()
            })
            .collect();
        for p in procs {
            let out = p.wait_with_output().unwrap();
            assert!(out.status.success(), "round {round}: {}", String::from_utf8_lossy(&out.stderr));
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}

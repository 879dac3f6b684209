//! Cold starts: a function's init, from process start to its first Runtime API `next`, measured
//! against a stub Runtime API on localhost (`make coldstart`).
//!
//! The stub accepts one connection and reads its request; when that is
//! `GET /2018-06-01/runtime/invocation/next` the init is over: the wall time since spawn is taken,
//! the CPU the process used so far (every thread's `/proc/<pid>/task/*/schedstat`, in ns) and its
//! resident memory (`VmRSS`, `VmHWM`). The request is never answered; the process is killed.

use std::collections::BTreeMap;
use std::io::Read;
use std::net::TcpListener;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// One init.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sample {
    pub wall: Duration,
    pub cpu: Duration,
    /// Resident set at `next`, and its peak during init, in KiB.
    pub rss_kib: u64,
    pub hwm_kib: u64,
}

/// Spawn `program args` with `env` (plus `AWS_LAMBDA_RUNTIME_API` of the stub) and measure its init.
pub fn measure(
    program: &Path,
    args: &[&str],
    env: &BTreeMap<String, String>,
    timeout: Duration,
) -> Result<Sample, String> {
    let listener = TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let got = listener.accept().map_err(|e| e.to_string()).and_then(|(mut conn, _)| {
            let at = Instant::now();
            conn.set_read_timeout(Some(Duration::from_secs(5))).map_err(|e| e.to_string())?;
            let mut head = Vec::new();
            let mut buf = [0u8; 1024];
            while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 16_384 {
                let n = conn.read(&mut buf).map_err(|e| e.to_string())?;
                if n == 0 {
                    break;
                }
                head.extend_from_slice(&buf[..n]);
            }
            let line = String::from_utf8_lossy(&head).lines().next().unwrap_or_default().to_owned();
            // Hold the connection until the measurement is taken (the caller kills the process).
            Ok((at, line, conn))
        });
        let _ = tx.send(got);
    });
    let started = Instant::now();
    let mut child = Command::new(program)
        .args(args)
        .env_clear()
        .envs(env)
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("AWS_LAMBDA_RUNTIME_API", addr.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("{}: {e}", program.display()))?;
    let pid = child.id();
    let result = match rx.recv_timeout(timeout) {
        Ok(Ok((at, line, _conn))) if line.starts_with("GET /2018-06-01/runtime/invocation/next ") => {
            let cpu = cpu_of(pid);
            let (rss_kib, hwm_kib) = memory_of(pid);
            Ok(Sample { wall: at.duration_since(started), cpu, rss_kib, hwm_kib })
        }
        Ok(Ok((_, line, _))) => Err(format!("the first call was {line:?}, not GET …/invocation/next")),
        Ok(Err(e)) => Err(e),
        Err(_) => Err(format!("no call to the Runtime API within {timeout:?}")),
    };
    let _ = child.kill();
    let out = child.wait_with_output().map_err(|e| e.to_string())?;
    result.map_err(|e| {
        let stderr = String::from_utf8_lossy(&out.stderr);
        let tail: Vec<&str> = stderr.lines().rev().take(3).collect();
        format!("{}: {e} (stderr: {})", program.display(), tail.into_iter().rev().collect::<Vec<_>>().join(" | "))
    })
}

/// CPU time of every thread of `pid` so far.
fn cpu_of(pid: u32) -> Duration {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else { return Duration::ZERO };
    let ns: u64 = tasks
        .flatten()
        .filter_map(|t| std::fs::read_to_string(t.path().join("schedstat")).ok())
        .filter_map(|s| s.split_whitespace().next().and_then(|v| v.parse::<u64>().ok()))
        .sum();
    Duration::from_nanos(ns)
}

/// `VmRSS` and `VmHWM` of `pid`, in KiB.
fn memory_of(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// The median of each figure over several inits (memory: the largest).
pub fn summarise(samples: &[Sample]) -> Option<Sample> {
    if samples.is_empty() {
        return None;
    }
    let median = |mut v: Vec<Duration>| {
        v.sort();
        v[v.len() / 2]
    };
    Some(Sample {
        wall: median(samples.iter().map(|s| s.wall).collect()),
        cpu: median(samples.iter().map(|s| s.cpu).collect()),
        rss_kib: samples.iter().map(|s| s.rss_kib).max().unwrap_or(0),
        hwm_kib: samples.iter().map(|s| s.hwm_kib).max().unwrap_or(0),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_process_that_calls_next_is_measured_and_one_that_does_not_is_an_error() {
        let env = BTreeMap::new();
        // curl's GET to the stub is a Runtime API client in miniature.
        let curl = Path::new("/usr/bin/curl");
        if !curl.exists() {
            return;
        }
        let script = "exec /usr/bin/curl -s -m 30 http://$AWS_LAMBDA_RUNTIME_API/2018-06-01/runtime/invocation/next";
        let s = measure(Path::new("/bin/sh"), &["-c", script], &env, Duration::from_secs(20)).unwrap();
        assert!(s.wall > Duration::ZERO && s.wall < Duration::from_secs(20));
        assert!(s.cpu > Duration::ZERO, "{s:?}");
        assert!(s.rss_kib > 0 && s.hwm_kib >= s.rss_kib, "{s:?}");

        let wrong = "exec /usr/bin/curl -s -m 30 -X POST http://$AWS_LAMBDA_RUNTIME_API/2018-06-01/runtime/init/error";
        let e = measure(Path::new("/bin/sh"), &["-c", wrong], &env, Duration::from_secs(20)).unwrap_err();
        assert!(e.contains("not GET"), "{e}");
        let e = measure(Path::new("/bin/sh"), &["-c", "exit 3"], &env, Duration::from_millis(500)).unwrap_err();
        assert!(e.contains("no call"), "{e}");
    }

    #[test]
    fn medians_and_the_largest_memory() {
        let s = |ms: u64, kib: u64| Sample {
            wall: Duration::from_millis(ms),
            cpu: Duration::from_millis(ms / 2),
            rss_kib: kib,
            hwm_kib: kib,
        };
        let m = summarise(&[s(30, 100), s(10, 300), s(20, 200)]).unwrap();
        assert_eq!((m.wall, m.cpu, m.rss_kib), (Duration::from_millis(20), Duration::from_millis(10), 300));
        assert_eq!(summarise(&[]), None);
    }
}

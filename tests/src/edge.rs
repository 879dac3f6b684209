//! Real `edge-node` processes for the federation tests, and what stands between them and the
//! hub: a TCP proxy that can cut the network, and a fake hub that serves what a test wants.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::{Stack, eventually};

/// One edge node: its own state directory, token file and process.
#[derive(Debug)]
pub struct EdgeNode {
    pub id: String,
    pub dir: PathBuf,
    pub token_file: PathBuf,
    pub hub: String,
    pub args: Vec<String>,
    child: Option<Child>,
}

/// Where the edge-node binary is (`make e2e` builds it before the tests).
pub fn edge_binary(root: &Path) -> PathBuf {
    root.join("target/debug/edge-node")
}

impl EdgeNode {
    /// A node of `tenant` named `id`, talking to `hub`, with `world` as its simulated resources.
    pub fn new(stack: &Stack, tenant: &str, id: &str, hub: &str, labels: &str, world: &Value) -> Self {
        let dir = std::env::temp_dir().join(format!("naksha-edge-{}-{id}", crate::unique_tenant("n")));
        std::fs::create_dir_all(&dir).unwrap();
        let token_file = dir.join("token.jwt");
        std::fs::write(&token_file, stack.key.token(tenant, id, &["edge"], 3600).unwrap()).unwrap();
        std::fs::write(dir.join("world.json"), world.to_string()).unwrap();
        let args = vec![
            "--labels".into(),
            labels.into(),
            "--world".into(),
            dir.join("world.json").display().to_string(),
            "--poll-interval-ms".into(),
            "300".into(),
            "--heartbeat-secs".into(),
            "1".into(),
        ];
        Self { id: id.to_owned(), dir, token_file, hub: hub.to_owned(), args, child: None }
    }

    fn state(&self) -> PathBuf {
        self.dir.join("state")
    }

    /// Start the process (again), with `extra` arguments this time.
    pub fn start(&mut self, root: &Path, extra: &[&str]) {
        assert!(self.child.is_none(), "{} is running already", self.id);
        let log = std::fs::OpenOptions::new().create(true).append(true).open(self.dir.join("node.log")).unwrap();
        let child = Command::new(edge_binary(root))
            .arg("--hub")
            .arg(&self.hub)
            .arg("--token-file")
            .arg(&self.token_file)
            .arg("--state")
            .arg(self.state())
            .args(&self.args)
            .args(extra)
            .stdout(Stdio::from(log.try_clone().unwrap()))
            .stderr(Stdio::from(log))
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e} (is target/debug/edge-node built?)", self.id));
        self.child = Some(child);
    }

    /// SIGKILL: no chance to finish anything.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGTERM, and wait for a clean exit; the exit status.
    pub fn terminate(&mut self) -> Option<std::process::ExitStatus> {
        let mut c = self.child.take()?;
        let _ = Command::new("kill").arg("-TERM").arg(c.id().to_string()).status();
        for _ in 0..100 {
            if let Ok(Some(status)) = c.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = c.kill();
        c.wait().ok()
    }

    pub fn running(&mut self) -> bool {
        self.child.as_mut().is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    /// `edge-node status`: what the node holds.
    pub fn status(&self, root: &Path) -> Value {
        let out = Command::new(edge_binary(root)).arg("status").arg("--state").arg(self.state()).output().unwrap();
        assert!(out.status.success(), "status of {}: {}", self.id, String::from_utf8_lossy(&out.stderr));
        serde_json::from_slice(&out.stdout).unwrap()
    }

    /// The node's JSON log lines so far.
    pub fn log(&self) -> Vec<Value> {
        std::fs::read_to_string(self.dir.join("node.log"))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    /// Wait until the node's status satisfies `check`.
    pub async fn until(&self, root: &Path, what: &str, check: impl Fn(&Value) -> bool) -> Value {
        eventually(&format!("{}: {what}", self.id), Duration::from_secs(90), || {
            let s = self.status(root);
            let ok = check(&s);
            async move { ok.then_some(s) }
        })
        .await
    }

    /// Wait until the node has registered (it pinned the hub's keys).
    pub async fn registered(&self, root: &Path) -> Value {
        self.until(root, "registered", |s| s["node_id"].is_string() && !s["hub_keys"].is_null()).await
    }

    /// Refusals the node recorded, by code.
    pub fn refusals(&self, root: &Path) -> Vec<String> {
        self.status(root)["refusals"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["code"].as_str().unwrap().to_owned())
            .collect()
    }
}

impl Drop for EdgeNode {
    fn drop(&mut self) {
        self.kill();
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// A TCP proxy to the API that can cut the network: while down it refuses new connections and
/// severs open ones, as a partition would.
#[derive(Debug, Clone)]
pub struct Proxy {
    pub url: String,
    down: Arc<AtomicBool>,
    epoch: Arc<tokio::sync::watch::Sender<u64>>,
}

impl Proxy {
    pub async fn start(upstream: &str) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let upstream = upstream.trim_start_matches("http://").to_owned();
        let down = Arc::new(AtomicBool::new(false));
        let (epoch, _) = tokio::sync::watch::channel(0u64);
        let epoch = Arc::new(epoch);
        let (d, e) = (Arc::clone(&down), Arc::clone(&epoch));
        tokio::spawn(async move {
            loop {
                let Ok((mut inbound, _)) = listener.accept().await else { return };
                if d.load(Ordering::SeqCst) {
                    drop(inbound);
                    continue;
                }
                let upstream = upstream.clone();
                let mut cut = e.subscribe();
                tokio::spawn(async move {
                    let Ok(mut outbound) = tokio::net::TcpStream::connect(&upstream).await else { return };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                        _ = cut.changed() => {}
                    }
                });
            }
        });
        Self { url, down, epoch }
    }

    /// Cut (or restore) the network between the node and the hub.
    pub fn set_down(&self, down: bool) {
        self.down.store(down, Ordering::SeqCst);
        if down {
            self.epoch.send_modify(|n| *n += 1);
        }
    }
}

/// A fake hub: passes everything to the real API except a node's poll, which it answers with
/// the deliveries the test put in `serve` (once each).
#[derive(Debug, Clone)]
pub struct FakeHub {
    pub url: String,
    pub serve: Arc<std::sync::Mutex<Vec<Value>>>,
}

impl FakeHub {
    pub async fn start(upstream: &str) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let serve: Arc<std::sync::Mutex<Vec<Value>>> = Arc::default();
        let queue = Arc::clone(&serve);
        let upstream = upstream.to_owned();
        let http = reqwest::Client::new();
        tokio::spawn(async move {
            loop {
                let Ok((mut socket, _)) = listener.accept().await else { return };
                let (queue, upstream, http) = (Arc::clone(&queue), upstream.clone(), http.clone());
                tokio::spawn(async move {
                    let Some((method, path, headers, body)) = read_request(&mut socket).await else { return };
                    let (status, text) = if method == "GET" && path.starts_with("/federation/triggers?") {
                        let triggers: Vec<Value> = std::mem::take(&mut *queue.lock().unwrap());
                        (200, serde_json::json!({"halted": false, "triggers": triggers}).to_string())
                    } else {
                        let mut req = http.request(
                            reqwest::Method::from_bytes(method.as_bytes()).unwrap(),
                            format!("{upstream}{path}"),
                        );
                        for (k, v) in &headers {
                            if k == "authorization" || k == "content-type" {
                                req = req.header(k, v);
                            }
                        }
                        match req.body(body).send().await {
                            Ok(r) => (r.status().as_u16(), r.text().await.unwrap_or_default()),
                            Err(_) => (502, String::new()),
                        }
                    };
                    let reply = format!(
                        "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{text}",
                        text.len()
                    );
                    let _ = socket.write_all(reply.as_bytes()).await;
                    let _ = socket.shutdown().await;
                });
            }
        });
        Self { url, serve }
    }
}

async fn read_request(socket: &mut tokio::net::TcpStream) -> Option<(String, String, Vec<(String, String)>, Vec<u8>)> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 65536];
    let head_end = loop {
        let n = socket.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
    let mut lines = head.split("\r\n");
    let mut first = lines.next()?.split(' ');
    let (method, path) = (first.next()?.to_owned(), first.next()?.to_owned());
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':').map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned())))
        .collect();
    let len: usize = headers.iter().find(|(k, _)| k == "content-length").and_then(|(_, v)| v.parse().ok()).unwrap_or(0);
    while buf.len() < head_end + len {
        let n = socket.read(&mut chunk).await.ok()?;
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    Some((method, path, headers, buf[head_end..].to_vec()))
}

/// The chaos tests' edge fleet in `team`'s tenant: the `restart-edge` WPK, a node `store-x`
/// labelled `chaos-target=true` and a bystander `store-y`, both running and seen online.
pub async fn chaos_pair(stack: &Stack, team: &crate::Team) -> (EdgeNode, EdgeNode) {
    let root = stack.paths.root.clone();
    let wpk = serde_json::json!({
        "id": "restart-edge", "version": 1, "title": "restart at the edge",
        "match": {"signals": ["deployment_unhealthy"], "resources": ["deployment/*"]},
        "steps": [{"adapter": "sim", "action": "restart"}], "verify": {"healthy": true}
    });
    assert_eq!(stack.register(team, &wpk).await.status, 201);
    let world =
        serde_json::json!({"deployment/pos": {"kind": "deployment", "replicas": 2, "healthy": true, "version": "v1"}});
    let hub = naksha_local::stack::API_URL;
    let mut target = EdgeNode::new(stack, &team.tenant, "store-x", hub, "site=x,chaos-target=true", &world);
    let mut other = EdgeNode::new(stack, &team.tenant, "store-y", hub, "site=y", &world);
    target.start(&root, &[]);
    other.start(&root, &[]);
    target.registered(&root).await;
    other.registered(&root).await;
    eventually("both nodes online", Duration::from_secs(60), || async {
        let r = stack.get("/federation/nodes", Some(&team.operator)).await.json();
        (r["count"] == 2 && r["nodes"].as_array().unwrap().iter().all(|n| n["status"] == "online")).then_some(())
    })
    .await;
    (target, other)
}

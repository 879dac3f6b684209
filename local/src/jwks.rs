//! A tiny HTTP server for the dev JWKS (`GET /.well-known/jwks.json`).

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// Serve `jwks` until the process ends.
pub async fn serve(listener: TcpListener, jwks: String) -> std::io::Result<()> {
    loop {
        let (mut socket, _) = listener.accept().await?;
        let jwks = jwks.clone();
        tokio::spawn(async move {
            let mut buf = vec![0u8; 8192];
            let mut read = 0;
            // Read until the end of the request head (bodies are not expected).
            while read < buf.len() {
                match socket.read(&mut buf[read..]).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => read += n,
                }
                if buf[..read].windows(4).any(|w| w == b"\r\n\r\n") {
                    break;
                }
            }
            let head = String::from_utf8_lossy(&buf[..read]);
            let line = head.lines().next().unwrap_or_default();
            let (status, body) = if line.starts_with("GET /.well-known/jwks.json ") {
                ("200 OK", jwks.as_str())
            } else {
                ("404 Not Found", "{\"error\":\"not found\"}")
            };
            let response = format!(
                "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = socket.write_all(response.as_bytes()).await;
            let _ = socket.shutdown().await;
        });
    }
}

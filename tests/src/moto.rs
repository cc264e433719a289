//! An S3-compatible object store for tests: `moto_server` (PyPI `moto[server]`) on a free
//! loopback port, with the buckets a test asks for.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::{eventually, free_port};

pub struct Moto {
    child: Child,
    pub endpoint: String,
}

impl Moto {
    /// Starts `moto_server` (its log in `dir/moto.log`) and creates `buckets`.
    pub async fn start(dir: &std::path::Path, buckets: &[&str]) -> Self {
        let port = free_port();
        let log = std::fs::File::create(dir.join("moto.log")).unwrap();
        let child = Command::new("moto_server")
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start moto_server (pip install 'moto[server]')");
        let moto = Self {
            child,
            endpoint: format!("http://127.0.0.1:{port}"),
        };
        let http = reqwest::Client::new();
        for bucket in buckets {
            let url = format!("{}/{bucket}", moto.endpoint);
            eventually(
                "moto_server creates a bucket",
                Duration::from_secs(60),
                || {
                    let put = http.put(&url).send();
                    async move { put.await.ok().filter(|r| r.status().is_success()) }
                },
            )
            .await;
        }
        moto
    }

    /// The keys under `prefix` in `bucket` (ListObjectsV2, first 1000).
    pub async fn keys(&self, bucket: &str, prefix: &str) -> Vec<String> {
        let url = format!("{}/{bucket}?list-type=2&prefix={prefix}", self.endpoint);
        let body = reqwest::get(&url).await.unwrap().text().await.unwrap();
        body.split("<Key>")
            .skip(1)
            .filter_map(|k| k.split("</Key>").next())
            .map(str::to_string)
            .collect()
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

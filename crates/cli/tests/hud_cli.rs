//! The real binaries together: `zelda-rl hud` serving, `zelda-rl rollout --hud` publishing
//! to it and writing segments, then the HUD's API showing the envs, the rooms, the segments
//! and a replay, and its `/metrics` counting the updates.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_zelda-rl");

struct Kill(Child);

impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A minimal HTTP/1.1 GET (the CLI crate has no HTTP client, and needs none).
fn get(addr: &str, path: &str) -> (u16, String) {
    let mut s = TcpStream::connect(addr).unwrap_or_else(|e| panic!("connecting to {addr}: {e}"));
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let text = String::from_utf8_lossy(&raw).to_string();
    let (head, body) = text.split_once("\r\n\r\n").expect("HTTP response");
    let status = head.split_whitespace().nth(1).unwrap().parse().unwrap();
    assert!(
        !head
            .to_ascii_lowercase()
            .contains("transfer-encoding: chunked"),
        "{head}"
    );
    (status, body.to_string())
}

fn get_json(addr: &str, path: &str) -> Value {
    let (status, body) = get(addr, path);
    assert_eq!(status, 200, "GET {path}: {body}");
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("GET {path}: {e}: {body}"))
}

#[test]
fn rollout_publishes_to_the_hud_binary() {
    let dir = std::env::temp_dir().join(format!("zelda-rl-hud-cli-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let store = dir.join("runs");
    let mut hud = Kill(
        Command::new(BIN)
            .args([
                "hud",
                "--store",
                store.to_str().unwrap(),
                "--listen",
                "127.0.0.1:0",
            ])
            .args(["--metrics-addr", "127.0.0.1:0", "--log-format", "json"])
            .env_remove("RUN")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let mut lines = BufReader::new(hud.0.stdout.take().unwrap()).lines();
    let first = lines.next().unwrap().unwrap();
    let url = first
        .strip_prefix("HUD on ")
        .unwrap_or_else(|| panic!("{first}"))
        .trim_end_matches('/')
        .to_string();
    let addr = url.strip_prefix("http://").unwrap().to_string();
    let second = lines.next().unwrap().unwrap();
    let metrics_addr = second
        .strip_prefix("metrics on http://")
        .and_then(|s| s.strip_suffix("/metrics"))
        .unwrap_or_else(|| panic!("{second}"))
        .to_string();
    assert_eq!(get(&addr, "/").0, 200);

    let out = Command::new(BIN)
        .args([
            "rollout",
            "--store",
            store.to_str().unwrap(),
            "--envs",
            "2",
            "--steps",
            "300",
        ])
        .args([
            "--run",
            "cli-hud",
            "--threads",
            "1",
            "--json",
            "--hud",
            &url,
            "--metrics-addr",
            "127.0.0.1:0",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "rollout failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let summary: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        summary["hud_updates_sent"].as_u64().unwrap() >= 1,
        "{summary}"
    );
    assert_eq!(summary["hud_failures"], 0, "{summary}");

    // The snapshot is rebuilt within 100 ms of an update.
    std::thread::sleep(Duration::from_millis(400));
    let state = get_json(&addr, "/api/state");
    assert_eq!(state["totals"]["envs"], 2, "{state}");
    assert_eq!(state["last_run"], "cli-hud");
    assert!(state["totals"]["rooms"].as_u64().unwrap() >= 1);
    assert_eq!(state["totals"]["env_steps"], 600, "{}", state["totals"]);
    for e in state["envs"].as_array().unwrap() {
        assert!(
            e["screen"].as_str().is_some_and(|s| s.len() > 100),
            "env without screen"
        );
        assert_eq!(e["place"]["canvas"], "overworld");
    }

    let segs = get_json(&addr, "/api/segments?run=cli-hud");
    let list = segs["segments"].as_array().unwrap();
    assert_eq!(list.len(), 2, "{segs}");
    let key = list[0]["key"].as_str().unwrap();
    let replay = get_json(&addr, &format!("/api/replay?key={key}"));
    assert_eq!(replay["mode"], "replay", "{}", replay["note"]);
    assert_eq!(replay["frames"].as_array().unwrap().len(), 300);
    let (status, body) = get(&addr, "/api/replay?key=../../etc/passwd");
    assert_eq!(status, 400, "{body}");
    let scores = get_json(&addr, "/api/scores?run=cli-hud");
    assert_eq!(scores["scores"].as_array().unwrap().len(), 0);

    let (status, metrics) = get(&metrics_addr, "/metrics");
    assert_eq!(status, 200);
    let updates = metrics
        .lines()
        .find_map(|l| l.strip_prefix("zelda_rl_hud_updates_total "))
        .unwrap_or_else(|| panic!("{metrics}"));
    assert!(updates.parse::<u64>().unwrap() >= 1, "{updates}");

    // The training loop publishes the same way: its agents and scores show up.
    let cfg = dir.join("small.toml");
    std::fs::write(
        &cfg,
        "[train]\nenvs = 3\nbatch_size = 48\nsteps_per_burst = 96\nbursts = 1\n[segments]\nsteps = 16\n",
    )
    .unwrap();
    let out = Command::new(BIN)
        .args([
            "train",
            "--store",
            store.to_str().unwrap(),
            "--run",
            "cli-train",
        ])
        .arg("--config")
        .arg(&cfg)
        .args(["--hud", &url, "--log-format", "json"])
        .env_remove("GATEWAY")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "train failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::thread::sleep(Duration::from_millis(400));
    let state = get_json(&addr, "/api/state");
    assert_eq!(state["last_run"], "cli-train", "{state}");
    let train_envs: Vec<_> = state["envs"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["run"] == "cli-train")
        .collect();
    assert_eq!(train_envs.len(), 3, "{state}");
    let scores = get_json(&addr, "/api/scores?run=cli-train");
    assert!(!scores["scores"].as_array().unwrap().is_empty(), "{scores}");

    drop(hud);
    let _ = std::fs::remove_dir_all(&dir);
}

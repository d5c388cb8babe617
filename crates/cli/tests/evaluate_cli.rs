//! `zelda-rl rollout` writes real mini-zelda segments, `zelda-rl evaluate` judges them with
//! the offline judge (score and compare modes), and a rerun is a no-op.

use std::process::Command;

use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_zelda-rl");

fn run(args: &[&str]) -> Value {
    let out = Command::new(BIN)
        .args(args)
        .env_remove("GATEWAY")
        .output()
        .expect("run zelda-rl");
    assert!(
        out.status.success(),
        "zelda-rl {args:?} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let last = stdout
        .lines()
        .rev()
        .find(|l| l.starts_with('{'))
        .unwrap_or_else(|| panic!("no JSON: {stdout}"));
    serde_json::from_str(last).unwrap()
}

#[test]
fn evaluate_judges_rollout_segments_offline() {
    let dir = std::env::temp_dir().join(format!("zelda-rl-evaluate-cli-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let store = dir.join("runs");
    let store = store.to_str().unwrap();
    run(&[
        "rollout", "--store", store, "--run", "ev", "--envs", "2", "--steps", "600", "--seed", "5",
        "--json",
    ]);
    let segments: Vec<_> = walk(&dir.join("runs/ev/segments"))
        .into_iter()
        .filter(|p| p.ends_with(".seg"))
        .collect();
    assert!(segments.len() >= 2, "{segments:?}");

    let s = run(&[
        "evaluate",
        "--store",
        store,
        "--run",
        "ev",
        "--offline",
        "--concurrency",
        "3",
    ]);
    assert_eq!(s["items"], segments.len(), "{s}");
    assert_eq!(s["judged"], segments.len(), "{s}");
    assert_eq!(s["invalid"], 0, "{s}");
    assert_eq!(s["out_key"], "ev/scores/scores.jsonl");
    let text = std::fs::read_to_string(dir.join("runs/ev/scores/scores.jsonl")).unwrap();
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), segments.len());
    for l in &lines {
        assert_eq!(l["schema"], "zelda-rl-scores");
        assert_eq!(l["status"], "ok", "{l}");
        assert_eq!(l["judges"]["vision"]["backend"], "offline");
        assert!(l["combined"]["score"].as_f64().unwrap() <= 1.0);
    }

    let again = run(&["evaluate", "--store", store, "--run", "ev", "--offline"]);
    assert_eq!(
        (again["skipped"].as_u64(), again["judged"].as_u64()),
        (Some(segments.len() as u64), Some(0))
    );
    assert_eq!(
        std::fs::read_to_string(dir.join("runs/ev/scores/scores.jsonl")).unwrap(),
        text
    );

    let c = run(&[
        "evaluate",
        "--store",
        store,
        "--run",
        "ev",
        "--offline",
        "--mode",
        "compare",
        "--metrics-addr",
        "127.0.0.1:0",
    ]);
    assert_eq!(c["out_key"], "ev/scores/preferences.jsonl", "{c}");
    assert_eq!(
        c["items"].as_u64().unwrap() * 2 + c["unpaired"].as_u64().unwrap(),
        segments.len() as u64,
        "{c}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

fn walk(dir: &std::path::Path) -> Vec<String> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p.display().to_string());
        }
    }
    out
}

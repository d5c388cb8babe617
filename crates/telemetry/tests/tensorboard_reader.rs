//! The event files are read back by TensorBoard's own reader (the PyPI `tensorboard`
//! package pinned in tests/requirements.txt, in the repository's `.venv`), which checks the
//! TFRecord CRCs and parses the protobufs: what `tensorboard --logdir` shows is what we wrote.

use std::path::Path;
use std::process::Command;

use telemetry::{EventFile, EventWriter};

const READER: &str = r#"
import json, sys
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
acc = EventAccumulator(sys.argv[1], size_guidance={"scalars": 0})
acc.Reload()
out = {tag: [[e.step, e.value] for e in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]}
print(json.dumps(out, sort_keys=True))
"#;

fn python() -> std::path::PathBuf {
    let venv = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.venv/bin/python");
    assert!(
        venv.exists(),
        "{} is missing: create the venv with the pinned tests/requirements.txt (scripts/test does)",
        venv.display()
    );
    venv
}

fn read_back(dir: &Path) -> serde_json::Value {
    let out = Command::new(python())
        .arg("-c")
        .arg(READER)
        .arg(dir)
        .output()
        .expect("running python");
    assert!(
        out.status.success(),
        "TensorBoard's reader failed (is `tensorboard` from tests/requirements.txt installed in .venv?):\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("reader JSON")
}

#[test]
fn tensorboard_reads_what_the_writer_wrote() {
    let dir = tempfile::tempdir().unwrap();
    let mut w = EventWriter::create(dir.path()).unwrap();
    for step in 1..=5i64 {
        w.add_scalars(
            step * 100,
            &[
                ("train/policy_loss", 1.0 / step as f32),
                ("train/entropy", 2.0 - 0.1 * step as f32),
            ],
        );
    }
    w.add_scalar("rollout/episode_return", 700, -1.5);
    w.flush().unwrap();
    drop(w);
    let v = read_back(dir.path());
    let loss = v["train/policy_loss"].as_array().unwrap();
    assert_eq!(loss.len(), 5, "{v}");
    assert_eq!(loss[0][0], 100);
    assert!((loss[4][1].as_f64().unwrap() - 0.2).abs() < 1e-6, "{v}");
    assert_eq!(v["train/entropy"].as_array().unwrap().len(), 5);
    assert_eq!(
        v["rollout/episode_return"][0],
        serde_json::json!([700, -1.5])
    );
}

#[test]
fn an_in_memory_file_reads_the_same() {
    let dir = tempfile::tempdir().unwrap();
    let mut f = EventFile::with_name(
        "events.out.tfevents.1700000000.test".into(),
        1_700_000_000.0,
    );
    f.add_scalars_at(3, &[("eval/score", 0.75)], 1_700_000_001.0);
    std::fs::write(dir.path().join(f.name()), f.as_bytes()).unwrap();
    let v = read_back(dir.path());
    assert_eq!(v["eval/score"][0], serde_json::json!([3, 0.75]));
}

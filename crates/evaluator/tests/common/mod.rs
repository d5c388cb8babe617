//! Segments for the evaluator's tests, written to a store the way rollouts write them.

#![allow(dead_code)]

use bytes::Bytes;
use episodes::segment::{FORMAT_NAME, FORMAT_VERSION, config_hash, segment_key};
use episodes::{EpisodeEnd, Keyframe, Segment, SegmentMeta, Store};
use judges::fixtures::{dungeon, eventful, play_state, png, walk};
use zelda::{EnvConfig, GameState};

/// Which kind of play a test segment holds.
#[derive(Debug, Clone, Copy)]
pub enum Kind {
    /// Rooms, rupees, a key, a dialog box.
    Eventful,
    /// Inside dungeon 1 with a small key.
    Dungeon,
    /// Link walking in one room.
    Idle,
}

/// A segment of `steps` steps for (worker, env, index) in `run`.
pub fn segment(run: &str, worker: u32, env: u32, index: u64, steps: u32, kind: Kind) -> Segment {
    let n = steps as usize;
    let states: Vec<GameState> = match kind {
        Kind::Eventful => eventful(n, (worker * 7 + env) as u8),
        Kind::Dungeon => dungeon(n),
        Kind::Idle => walk(play_state(), n),
    };
    let keyframes: Vec<u32> = (0..steps)
        .filter(|s| s % 16 == 0 || *s == steps - 1)
        .collect();
    Segment {
        meta: SegmentMeta {
            format: FORMAT_NAME.into(),
            version: FORMAT_VERSION,
            run: run.into(),
            burst: 0,
            worker,
            env,
            index,
            episode: 1,
            episode_step: (index * u64::from(steps)) as u32,
            global_step: index * u64::from(steps),
            steps,
            ended: None::<EpisodeEnd>,
            cartridge_sha1: "00".repeat(20),
            cartridge_title: "MINI-ZELDA".into(),
            emulator_version: "test".into(),
            config_hash: config_hash(&EnvConfig::default()),
            env_config: EnvConfig::default(),
            actions: vec!["noop".into(), "right".into()],
            reward_components: vec!["progress".into()],
            keyframe_interval: 16,
            keyframes: keyframes.clone(),
            policy: "random".into(),
            start: states[0],
        },
        start_state: vec![0; 64],
        actions: (0..steps).map(|i| (i % 2) as u8).collect(),
        rewards: (0..steps).map(|i| i as f32 * 0.01).collect(),
        states,
        keyframes: keyframes
            .iter()
            .map(|&step| Keyframe {
                step,
                png: png(160, 144, step as u8),
            })
            .collect(),
    }
}

/// Writes a segment under its key; returns the key.
pub async fn put(store: &Store, seg: &Segment) -> String {
    let key = segment_key(&seg.meta.run, seg.meta.worker, seg.meta.env, seg.meta.index);
    store
        .put_new(&key, Bytes::from(seg.encode().expect("encode")))
        .await
        .expect("put segment");
    key
}

/// Writes `n` segments (worker 0, envs 0..n/4+1, indexes cycling) of mixed kinds.
pub async fn populate(store: &Store, run: &str, n: u32, steps: u32) -> Vec<String> {
    let mut keys = Vec::new();
    for i in 0..n {
        let kind = match i % 3 {
            0 => Kind::Eventful,
            1 => Kind::Dungeon,
            _ => Kind::Idle,
        };
        let seg = segment(run, i / 4, i % 4, u64::from(i / 16), steps, kind);
        keys.push(put(store, &seg).await);
    }
    keys.sort();
    keys
}

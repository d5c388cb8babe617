//! The Ray split of a run (rollout workers + learner), driven in-process the way the Python
//! driver drives it: a worker lost mid-round and a learner restarted mid-burst change
//! nothing, and local and Ray runs refuse to continue each other.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use episodes::Store;
use train::distributed::{Chunk, Learner, LearnerSpec, RolloutWorker, WorkerSpec};
use train::{BurstSummary, NoObserver, Settings, TrainOptions};

mod common;

const WORKERS: usize = 2;
const ENVS_PER_WORKER: usize = 2;

fn settings() -> Settings {
    let mut s = Settings::default();
    s.train.envs = WORKERS * ENVS_PER_WORKER;
    s.train.batch_size = 32;
    s.train.steps_per_burst = 96;
    s.train.bursts = 2;
    s.train.seed = 11;
    s.train.checkpoint_every = 2;
    s.ppo.num_minibatches = 2;
    s.ppo.update_epochs = 1;
    s.segments.steps = 16;
    s.segments.keyframe_interval = 8;
    s.reward_model.min_samples = 2;
    s.reward_model.train.epochs = 2;
    // Short episodes, half of them started from the exploration archive, and two random
    // explorers per vector env, so the archive and the explorers' envs have to travel
    // through checkpoints (and chunks) for the runs to match.
    s.env.max_steps = 10;
    s.env.explore_resets = 0.5;
    s.env.explore_steps = 4;
    s.env.explorers = 2;
    s
}

fn learner(store: &Store, resume: bool, workers: usize) -> Result<Learner, train::TrainError> {
    learner_to(store, resume, workers, None)
}

/// With `restart_to`: the learner that replaces a lost one in a Ray job.
fn learner_to(
    store: &Store,
    resume: bool,
    workers: usize,
    restart_to: Option<u32>,
) -> Result<Learner, train::TrainError> {
    Learner::open(LearnerSpec {
        rom: zelda::MINI_ZELDA.to_vec(),
        store: store.clone(),
        run: "r".into(),
        settings: settings(),
        workers: vec![WORKERS * ENVS_PER_WORKER / workers; workers],
        backend: ppo::Backend::Flex,
        resume,
        add_bursts: None,
        restart_to,
        judges: judges::Judges::offline(),
        eval_concurrency: 4,
        // Event files carry wall-clock times; the runs are compared byte for byte.
        tensorboard: false,
    })
}

/// Worker `w`, continuing from the learner's snapshot of it (as a restarted actor does).
fn worker(store: &Store, learner: &Learner, w: usize) -> RolloutWorker {
    let mut worker = RolloutWorker::new(WorkerSpec {
        rom: zelda::MINI_ZELDA.to_vec(),
        start_state: None,
        store: store.clone(),
        run: "r".into(),
        settings: settings(),
        worker: w as u32,
        envs: ENVS_PER_WORKER,
        threads: 1,
        backend: ppo::Backend::Flex,
    })
    .unwrap();
    if let Some(snapshot) = learner.worker_snapshot(w) {
        worker.restore(snapshot).unwrap();
    }
    worker
}

/// Runs rounds until the run is done or `max_updates` updates have run. With `kill`
/// (burst, update, worker), that worker's answer in that round is thrown away and the
/// worker rebuilt from the learner's snapshot before it answers again.
fn drive(
    store: &Store,
    learner: &mut Learner,
    workers: &mut [RolloutWorker],
    kill: Option<(u32, u64, usize)>,
    max_updates: usize,
) -> Vec<BurstSummary> {
    let mut bursts = Vec::new();
    let mut updates = 0;
    while !learner.status().done && updates < max_updates {
        let Some(req) = learner.next_request() else {
            bursts.push(learner.finish_burst(false).unwrap());
            continue;
        };
        let policy = learner.policy_bytes().unwrap();
        let mut chunks: Vec<Chunk> = Vec::new();
        for (w, wk) in workers.iter_mut().enumerate() {
            let chunk = wk.collect(&req, &policy).unwrap();
            if kill == Some((req.burst, req.update, w)) {
                *wk = worker(store, learner, w);
                let mut again = wk.collect(&req, &policy).unwrap();
                // Everything but the wall-clock time it took.
                again.seconds = chunk.seconds;
                again.act_seconds = chunk.act_seconds;
                again.env_seconds = chunk.env_seconds;
                assert!(
                    again.encode() == chunk.encode(),
                    "a restarted worker answered the round differently"
                );
                chunks.push(again);
            } else {
                chunks.push(chunk);
            }
        }
        // The chunks travel as bytes between Ray actors.
        let chunks: Vec<Chunk> = chunks
            .iter()
            .map(|c| Chunk::decode(&c.encode(), "chunk").unwrap())
            .collect();
        learner.update(&chunks).unwrap();
        updates += 1;
    }
    bursts
}

fn latest(rt: &tokio::runtime::Runtime, s: &Store) -> (String, Vec<u8>) {
    rt.block_on(async {
        let l: train::checkpoint::Latest =
            serde_json::from_slice(&s.get("r/checkpoints/latest.json").await.unwrap()).unwrap();
        (l.key.clone(), s.get(&l.key).await.unwrap().to_vec())
    })
}

#[test]
fn lost_worker_and_restarted_learner_change_nothing() {
    let rt = tokio::runtime::Runtime::new().unwrap();

    let a = Store::open("memory://").unwrap();
    let mut la = learner(&a, false, WORKERS).unwrap();
    let mut wa: Vec<_> = (0..WORKERS).map(|w| worker(&a, &la, w)).collect();
    let bursts = drive(&a, &mut la, &mut wa, None, usize::MAX);
    assert_eq!(bursts.len(), 2);
    assert!(
        bursts
            .iter()
            .all(|b| b.env_steps == 96 && b.segments_written > 0)
    );
    // Both workers' archives, summed; every state kept (far under the cap).
    assert!(
        bursts.iter().all(|b| b.archive.cells >= 2
            && b.archive.states == b.archive.cells
            && b.archive.state_bytes > 1000 * b.archive.states),
        "{:?}",
        bursts.iter().map(|b| b.archive).collect::<Vec<_>>()
    );
    assert!(
        bursts[1].reward_model.is_some(),
        "burst 1 trains a reward model"
    );
    // The job's Prometheus metrics (what the Ray driver serves) count every chunk.
    let metrics = la.metrics().encode();
    let sample = |name: &str| -> f64 {
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
            .unwrap_or_else(|| panic!("no {name} in\n{metrics}"))
    };
    assert_eq!(sample("zelda_rl_env_steps_total"), 192.0);
    assert_eq!(
        sample("zelda_rl_learner_updates_total") as u64,
        la.status().updates_per_burst * 2
    );
    let segments: u64 = bursts.iter().map(|b| b.segments_written).sum();
    assert_eq!(sample("zelda_rl_segments_written_total"), segments as f64);
    let bytes: u64 = bursts.iter().map(|b| b.segment_bytes).sum();
    assert!(bytes > 0);
    assert_eq!(sample("zelda_rl_segment_bytes_total"), bytes as f64);
    assert!(sample("zelda_rl_rooms_visited") >= 1.0);
    assert!(sample("zelda_rl_evaluator_segments_total{outcome=\"ok\"}") > 0.0);
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("zelda_rl_reward_total{")),
        "no reward counts in\n{metrics}"
    );

    // The same job again on the finished run is a no-op: done at once, no learner built.
    let mut again = learner(&a, false, WORKERS).unwrap();
    assert!(again.status().done && again.next_request().is_none());
    let err = again.policy_bytes().unwrap_err();
    assert!(err.to_string().contains("every burst"), "{err}");
    drop(again);

    // B: worker 1 is lost in burst 0's second round; the whole job (learner and workers)
    // is lost after four updates (in burst 1) and a new job resumes the run.
    let b = Store::open("memory://").unwrap();
    let mut lb = learner(&b, false, WORKERS).unwrap();
    let mut wb: Vec<_> = (0..WORKERS).map(|w| worker(&b, &lb, w)).collect();
    drive(&b, &mut lb, &mut wb, Some((0, 1, 1)), 4);
    drop((lb, wb));
    let err = learner(&b, false, WORKERS).err().unwrap();
    assert!(err.to_string().contains("--resume"), "{err}");
    let err = learner(&b, true, 1).err().unwrap();
    assert!(err.to_string().contains("--workers 2"), "{err}");
    let mut lb = learner(&b, true, WORKERS).unwrap();
    assert_eq!(lb.status().burst, 1);
    let mut wb: Vec<_> = (0..WORKERS).map(|w| worker(&b, &lb, w)).collect();
    drive(&b, &mut lb, &mut wb, None, usize::MAX);

    // C: the learner alone is lost twice in one job: after one update (no checkpoint yet:
    // the run starts again, and so do the workers) and after burst 1's first update (back
    // to the checkpoint at the start of burst 1, the workers to its envs).
    let c = Store::open("memory://").unwrap();
    let mut lc = learner(&c, false, WORKERS).unwrap();
    let mut wc: Vec<_> = (0..WORKERS).map(|w| worker(&c, &lc, w)).collect();
    drive(&c, &mut lc, &mut wc, None, 1);
    lc = learner_to(&c, false, WORKERS, Some(2)).unwrap();
    assert_eq!((lc.status().burst, lc.status().update), (0, 0));
    assert!(lc.worker_snapshot(0).is_none());
    wc = (0..WORKERS).map(|w| worker(&c, &lc, w)).collect();
    drive(&c, &mut lc, &mut wc, None, 4);
    assert_eq!((lc.status().burst, lc.status().update), (1, 1));
    lc = learner_to(&c, false, WORKERS, Some(2)).unwrap();
    let st = lc.status();
    assert_eq!((st.burst, st.update, st.target_bursts), (1, 0, 2));
    for (w, wk) in wc.iter_mut().enumerate() {
        wk.restore(lc.worker_snapshot(w).unwrap()).unwrap();
    }
    drive(&c, &mut lc, &mut wc, None, usize::MAX);

    let (ka, ca) = latest(&rt, &a);
    let (kb, cb) = latest(&rt, &b);
    assert_eq!(ka, kb);
    assert!(ca == cb, "final checkpoints differ");
    let (kc, cc) = latest(&rt, &c);
    assert_eq!(ka, kc);
    assert!(
        ca == cc,
        "final checkpoints differ after the learner was replaced"
    );
    let (ca, cb, cc) = rt.block_on(async {
        (
            common::contents(&a).await,
            common::contents(&b).await,
            common::contents(&c).await,
        )
    });
    let keys = |c: &[(String, Vec<u8>)]| c.iter().map(|(k, _)| k.clone()).collect::<Vec<_>>();
    for (name, other) in [("B", &cb), ("C", &cc)] {
        assert_eq!(keys(&ca), keys(other), "run {name}");
        for ((k, x), (_, y)) in ca.iter().zip(other) {
            assert!(x == y, "{k} differs between runs A and {name}");
        }
    }

    // The local loop refuses to continue a Ray run, and says how to.
    let err = train::run(
        TrainOptions {
            rom: zelda::MINI_ZELDA.to_vec(),
            start_state: None,
            store: a.clone(),
            run: "r".into(),
            settings: {
                let mut s = settings();
                s.train.bursts = 3;
                s
            },
            judges: judges::Judges::offline(),
            eval_concurrency: 4,
            resume: true,
            add_bursts: None,
            backend: ppo::Backend::Flex,
            worker: 0,
            stop: Arc::new(AtomicBool::new(false)),
            progress: false,
            judge_sink: None,
        },
        &mut NoObserver,
    )
    .unwrap_err();
    assert!(err.to_string().contains("zelda_rl.ray.train"), "{err}");
}

#[test]
fn bad_chunks_are_refused_with_the_reason() {
    let store = Store::open("memory://").unwrap();
    let mut l = learner(&store, false, WORKERS).unwrap();
    let mut ws: Vec<_> = (0..WORKERS).map(|w| worker(&store, &l, w)).collect();
    let req = l.next_request().unwrap();
    let policy = l.policy_bytes().unwrap();
    let chunks: Vec<Chunk> = ws
        .iter_mut()
        .map(|w| w.collect(&req, &policy).unwrap())
        .collect();

    let mut bytes = chunks[0].encode();
    *bytes.last_mut().unwrap() ^= 1;
    let err = Chunk::decode(&bytes, "worker 0's chunk").unwrap_err();
    assert!(
        err.to_string().contains("worker 0's chunk") && err.to_string().contains("checksum"),
        "{err}"
    );
    let err = Chunk::decode(b"hello", "x").unwrap_err();
    assert!(err.to_string().contains("not a rollout chunk"), "{err}");

    // Out of order, missing, or for another round.
    let swapped = vec![chunks[1].clone(), chunks[0].clone()];
    assert!(
        l.update(&swapped)
            .unwrap_err()
            .to_string()
            .contains("chunk 0 is worker 1")
    );
    assert!(
        l.update(&chunks[..1])
            .unwrap_err()
            .to_string()
            .contains("1 chunks for 2 workers")
    );
    let mut stale = chunks.clone();
    stale[1].request.update = 5;
    assert!(l.update(&stale).is_err());
    // A chunk cut short (bytes decoded, lengths wrong) is refused before anything is used.
    let short = Chunk::decode(&chunks[1].encode(), "x").unwrap();
    let mut short_bytes = serde_json::to_value(&short).unwrap();
    short_bytes["actions"].as_array_mut().unwrap().pop();
    let short: Chunk = serde_json::from_value(short_bytes).unwrap();
    let err = l.update(&[chunks[0].clone(), short]).unwrap_err();
    assert!(
        err.to_string()
            .contains("`actions` holds 15 values, expected 16"),
        "{err}"
    );
    // The good round still goes through after the refusals.
    let report = l.update(&chunks).unwrap();
    assert_eq!(report.env_steps, 32);
    assert_eq!(l.status().update, 1);
}

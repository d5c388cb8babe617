//! A run stopped mid-burst and resumed ends in exactly the state of a run that was never
//! stopped: same learner bytes, same environments, same segments, same scores.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

mod common;

use common::contents;
use episodes::Store;
use rollout::VecEnv;
use train::{NoObserver, Observer, Outcome, Settings, TrainOptions};

fn settings() -> Settings {
    let mut s = Settings::default();
    s.train.envs = 2;
    s.train.batch_size = 32;
    s.train.steps_per_burst = 96;
    s.train.bursts = 2;
    s.train.seed = 7;
    s.train.threads = Some(2);
    s.train.checkpoint_every = 2;
    s.ppo.num_minibatches = 2;
    s.ppo.update_epochs = 1;
    s.segments.steps = 16;
    s.segments.keyframe_interval = 8;
    // Low enough that burst 1 already trains on a learned reward.
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

fn options(store: &Store, resume: bool, stop: Arc<AtomicBool>) -> TrainOptions {
    TrainOptions {
        rom: zelda::MINI_ZELDA.to_vec(),
        start_state: None,
        store: store.clone(),
        run: "r".into(),
        settings: settings(),
        judges: judges::Judges::offline(),
        eval_concurrency: 4,
        resume,
        add_bursts: None,
        backend: ppo::Backend::Flex,
        worker: 0,
        stop,
        progress: false,
        judge_sink: None,
    }
}

/// Asks the loop to stop after `after` env steps.
struct StopAfter {
    after: u64,
    seen: u64,
    stop: Arc<AtomicBool>,
}

impl Observer for StopAfter {
    fn on_step(&mut self, _envs: &VecEnv, _rewards: &[f32]) {
        self.seen += 1;
        if self.seen == self.after {
            self.stop.store(true, Ordering::Relaxed);
        }
    }
}

#[test]
fn stopped_and_resumed_run_equals_uninterrupted_run() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let never = Arc::new(AtomicBool::new(false));

    let a = Store::open("memory://").unwrap();
    // The evaluations' judge calls also reach the process's metrics (`--metrics-addr`).
    let calls = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let mut o = options(&a, false, never.clone());
    let seen = calls.clone();
    o.judge_sink = Some(Arc::new(move |c: &evaluator::JudgeCall<'_>| {
        assert!(c.seconds >= 0.0 && c.error.is_none(), "{c:?}");
        seen.lock().unwrap().push(c.route.to_string());
    }));
    let done = train::run(o, &mut NoObserver).unwrap();
    let calls = calls.lock().unwrap().clone();
    assert!(
        calls.iter().any(|r| r == "vision") && calls.iter().any(|r| r == "state"),
        "{calls:?}"
    );
    let Outcome::Finished(bursts) = done else {
        panic!("run A did not finish")
    };
    assert_eq!(bursts.len(), 2);
    assert!(bursts[0].segments_written > 0);
    assert!(
        bursts
            .iter()
            .all(|b| b.start_episodes > 0 && b.start_episodes < b.episodes),
        "episodes start from both the start state and the archive"
    );
    assert!(bursts.iter().all(|b| b.archive.states > 0), "{bursts:?}");
    // Explorers' episodes (4-step ones from the archive) are counted apart.
    assert!(
        bursts.iter().all(|b| b.explorer_episodes >= b.episodes / 2),
        "{bursts:?}"
    );
    // Every cell lies in some room; 10-step episodes open no chest, door or switch.
    assert!(
        bursts
            .iter()
            .all(|b| b.archive.rooms >= 1 && b.archive.progress == 0),
        "{bursts:?}"
    );
    assert!(
        bursts[1].reward_model.is_some(),
        "burst 1 should train a reward model"
    );

    // B: stopped in the middle of burst 0's second update (step 20 of 3 x 16 per burst),
    // then resumed twice (a resume of a stopped resume works too).
    let b = Store::open("memory://").unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let mut obs = StopAfter {
        after: 20,
        seen: 0,
        stop: stop.clone(),
    };
    let out = train::run(options(&b, false, stop), &mut obs).unwrap();
    let Outcome::Interrupted { checkpoint, .. } = out else {
        panic!("run B was not interrupted")
    };
    assert!(checkpoint.ends_with("b0000-1-u000001.ckpt"), "{checkpoint}");

    // Starting again without --resume is refused and says how to continue.
    let err = train::run(options(&b, false, never.clone()), &mut NoObserver).unwrap_err();
    assert!(err.to_string().contains("--resume"), "{err}");

    let stop = Arc::new(AtomicBool::new(false));
    let mut obs = StopAfter {
        after: 70,
        seen: 0,
        stop: stop.clone(),
    };
    let out = train::run(options(&b, true, stop), &mut obs).unwrap();
    assert!(matches!(out, Outcome::Interrupted { .. }));
    let out = train::run(options(&b, true, never.clone()), &mut NoObserver).unwrap();
    assert!(matches!(out, Outcome::Finished(_)));

    let latest = |s: &Store| {
        rt.block_on(async {
            let l: train::checkpoint::Latest =
                serde_json::from_slice(&s.get("r/checkpoints/latest.json").await.unwrap()).unwrap();
            (l.key.clone(), s.get(&l.key).await.unwrap().to_vec())
        })
    };
    let (ka, ca) = latest(&a);
    let (kb, cb) = latest(&b);
    assert_eq!(ka, kb);
    assert!(ca == cb, "final checkpoints differ");
    let (ca, cb) = rt.block_on(async { (contents(&a).await, contents(&b).await) });
    let keys = |c: &[(String, Vec<u8>)]| c.iter().map(|(k, _)| k.clone()).collect::<Vec<_>>();
    assert_eq!(keys(&ca), keys(&cb));
    for ((k, x), (_, y)) in ca.iter().zip(&cb) {
        assert!(x == y, "{k} differs between the runs");
    }

    // One more burst on top, as a RayJob per burst asks: a third burst runs.
    let mut o = options(&b, false, never.clone());
    o.add_bursts = Some(1);
    let out = train::run(o, &mut NoObserver).unwrap();
    assert!(
        matches!(&out, Outcome::Finished(v) if v.len() == 1 && v[0].burst == 2),
        "{out:?}"
    );

    // Running the finished run again is a no-op.
    let again = train::run(options(&a, false, never.clone()), &mut NoObserver).unwrap();
    assert!(matches!(again, Outcome::Finished(v) if v.is_empty()));
    // A resume with other settings is refused and names the reason.
    let mut o = options(&a, true, never);
    o.settings.ppo.learning_rate = 1e-3;
    o.settings.train.bursts = 3;
    let err = train::run(o, &mut NoObserver).unwrap_err();
    assert!(err.to_string().contains("other settings"), "{err}");
}

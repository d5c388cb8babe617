//! Vector env + segments on mini-zelda: every exported segment replays bit for bit, and
//! the same seed gives the same bytes whatever the thread count.

use episodes::{Segment, Store};
use rollout::{Policy, RandomPolicy, RecorderConfig, SegmentContext, SegmentExporter, VecEnv};
use zelda::{EnvConfig, RewardConfig};

fn ctx() -> SegmentContext {
    let gb = gameboy::GameBoy::new(zelda::MINI_ZELDA.to_vec()).unwrap();
    SegmentContext {
        run: "test".into(),
        burst: 0,
        worker: 3,
        policy: "random".into(),
        cartridge_sha1: hex::encode(gb.rom_sha1()),
        cartridge_title: gb.header().title.clone(),
        config_hash: "h".into(),
    }
}

/// A random rollout's vector env, finished episodes and segments (open ones flushed).
struct Played {
    envs: VecEnv,
    episodes: Vec<rollout::EpisodeStats>,
    explorer_episodes: Vec<rollout::EpisodeStats>,
    segments: Vec<Segment>,
}

/// Plays `steps` random actions in `envs` environments (segments of 64 steps).
fn play(threads: usize, seed: u64, envs: usize, steps: usize, env_cfg: EnvConfig) -> Played {
    play_from(None, threads, seed, envs, steps, env_cfg)
}

/// [`play`] from `start_state` (power-on when `None`).
fn play_from(
    start_state: Option<Vec<u8>>,
    threads: usize,
    seed: u64,
    envs: usize,
    steps: usize,
    env_cfg: EnvConfig,
) -> Played {
    let mut v = VecEnv::new(
        zelda::MINI_ZELDA,
        start_state,
        envs,
        env_cfg,
        RewardConfig::default(),
        threads,
        seed,
        ctx(),
        RecorderConfig {
            steps: 64,
            keyframe_interval: 16,
        },
        true,
    )
    .unwrap();
    let mut policy = RandomPolicy::new(v.n_actions(), seed);
    let mut actions = vec![0; envs];
    let (mut episodes, mut explorer_episodes, mut segments) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..steps {
        policy.act(v.frames(), v.features(), &mut actions);
        v.step(&actions);
        episodes.extend(v.take_episodes());
        explorer_episodes.extend(v.take_explorer_episodes());
        segments.extend(v.take_segments());
    }
    v.flush_segments();
    segments.extend(v.take_segments());
    Played {
        envs: v,
        episodes,
        explorer_episodes,
        segments,
    }
}

/// Runs a rollout and returns the encoded segments by key.
fn rollout(
    threads: usize,
    seed: u64,
    envs: usize,
    steps: usize,
    env_cfg: EnvConfig,
) -> Vec<(String, Vec<u8>)> {
    let segs = play(threads, seed, envs, steps, env_cfg).segments;
    let mut out: Vec<_> = segs
        .into_iter()
        .map(|s| (s.key(), s.encode().unwrap()))
        .collect();
    out.sort();
    out
}

#[test]
fn every_segment_replays_bit_exactly() {
    let cfg = EnvConfig {
        max_steps: 100,
        ..Default::default()
    };
    let segs = rollout(2, 11, 3, 150, cfg);
    // Per env: steps 0..64, 64..100 (episode truncated at 100), then 100..150 flushed at
    // the end: 3 segments each.
    assert_eq!(
        segs.len(),
        9,
        "{:?}",
        segs.iter().map(|s| &s.0).collect::<Vec<_>>()
    );
    let mut steps = 0;
    let mut truncated = 0;
    for (key, bytes) in &segs {
        let seg = Segment::decode(bytes, key).unwrap();
        steps += seg.meta.steps;
        truncated += u32::from(seg.meta.ended == Some(episodes::EpisodeEnd::Truncated));
        let mut frames = 0;
        let report = episodes::replay(&seg, zelda::MINI_ZELDA, |_, _| frames += 1).unwrap();
        assert_eq!(report.steps, seg.meta.steps);
        assert_eq!(report.keyframes as usize, seg.keyframes.len());
        assert_eq!(frames, seg.meta.steps);
    }
    assert_eq!(steps, 450, "no step lost or duplicated");
    assert_eq!(truncated, 3, "one truncated episode per env");
}

#[test]
fn segments_recorded_on_a_cgb_replay_on_a_cgb() {
    let cfg = EnvConfig {
        model: zelda::HardwareChoice::Cgb,
        ..Default::default()
    };
    let segs = rollout(1, 5, 1, 70, cfg);
    assert!(!segs.is_empty());
    for (key, bytes) in &segs {
        let seg = Segment::decode(bytes, key).unwrap();
        assert_eq!(seg.meta.env_config.model, zelda::HardwareChoice::Cgb);
        let report = episodes::replay(&seg, zelda::MINI_ZELDA, |_, _| {}).unwrap();
        assert_eq!(report.steps, seg.meta.steps);
    }
}

#[test]
fn same_seed_same_bytes_for_any_thread_count() {
    let a = rollout(1, 5, 3, 70, EnvConfig::default());
    let b = rollout(2, 5, 3, 70, EnvConfig::default());
    assert_eq!(a, b);
    let c = rollout(2, 6, 3, 70, EnvConfig::default());
    assert_ne!(a, c);
}

#[test]
fn tampered_segments_fail_replay_naming_the_step() {
    let segs = rollout(1, 3, 1, 64, EnvConfig::default());
    let mut seg = Segment::decode(&segs[0].1, &segs[0].0).unwrap();
    seg.states[10].x = seg.states[10].x.wrapping_add(1);
    let err = episodes::replay(&seg, zelda::MINI_ZELDA, |_, _| {}).unwrap_err();
    assert!(err.to_string().contains("diverged at step 10"), "{err}");
    let mut other_rom = zelda::MINI_ZELDA.to_vec();
    other_rom[0x7FFF] ^= 1;
    let err = episodes::replay(&seg, &other_rom, |_, _| {}).unwrap_err();
    assert!(err.to_string().contains("SHA-1"), "{err}");
}

#[test]
fn exporter_writes_once_and_rerun_is_idempotent() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().to_str().unwrap()).unwrap();
    let segs = rollout(2, 9, 2, 64, EnvConfig::default());
    for round in 0..2 {
        let exp = SegmentExporter::spawn(store.clone(), 2);
        for (key, bytes) in &segs {
            exp.submit(Segment::decode(bytes, key).unwrap()).unwrap();
        }
        let stats = exp.finish().unwrap();
        if round == 0 {
            assert_eq!((stats.written, stats.already_present), (2, 0));
        } else {
            assert_eq!((stats.written, stats.already_present), (0, 2));
        }
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let listed = rt.block_on(store.list("test/segments")).unwrap();
    assert_eq!(listed.len(), 2);
    for (key, bytes) in &segs {
        assert_eq!(
            rt.block_on(store.get(key)).unwrap().as_ref(),
            bytes.as_slice()
        );
    }
}

#[test]
fn explore_resets_start_episodes_from_archived_cells() {
    let cfg = EnvConfig {
        max_steps: 60,
        explore_resets: 1.0,
        explore_steps: 30,
        ..Default::default()
    };
    let run = |threads| {
        let p = play(threads, 8, 4, 600, cfg.clone());
        (
            p.envs.snapshot(),
            p.envs.archive().clone(),
            p.episodes,
            p.segments,
        )
    };
    let (snap, archive, episodes, segs) = run(1);
    let (snap2, archive2, ..) = run(2);
    assert_eq!(
        snap, snap2,
        "the archive and every env are the same on 1 or 2 threads"
    );
    assert_eq!(archive, archive2);
    let start_room = 0x21;
    let rooms: Vec<u16> = archive.cells().map(|c| c.room).collect();
    assert!(rooms.len() >= 3 && rooms.contains(&start_room), "{rooms:?}");
    let from_archive: Vec<_> = episodes.iter().filter_map(|e| e.start_cell).collect();
    // The archive is empty only for the first reset of each env.
    assert!(
        from_archive.len() + 4 >= episodes.len() && !from_archive.is_empty(),
        "{} of {}",
        from_archive.len(),
        episodes.len()
    );
    for e in &episodes {
        let limit = if e.start_cell.is_some() { 30 } else { 60 };
        assert!(e.length <= limit, "{e:?}");
    }
    assert!(
        episodes
            .iter()
            .any(|e| e.start_cell.is_some() && e.length == 30)
    );
    assert!(
        from_archive.iter().any(|c| c.room != start_room),
        "episodes start beyond the start room: {from_archive:?}"
    );
    // Episodes started from the archive are recorded like any other: every segment
    // replays from its own start state.
    for seg in &segs {
        episodes::replay(seg, zelda::MINI_ZELDA, |_, _| {}).unwrap();
    }
    assert_eq!(
        archive.held(),
        archive.len(),
        "under the cap every state is kept"
    );

    // With a cap of 4 states the archive still knows every cell reached, keeps 4 states,
    // and stays the same bytes on 1 or 2 threads.
    let capped = EnvConfig {
        explore_cells: 4,
        ..cfg.clone()
    };
    let a = play(1, 8, 4, 600, capped.clone());
    let b = play(2, 8, 4, 600, capped);
    assert_eq!(a.envs.snapshot(), b.envs.snapshot());
    let archive = a.envs.archive();
    assert_eq!(archive.held(), 4);
    assert!(archive.len() > 4, "{}", archive.len());
    assert!(archive.stats().state_bytes > 0);
    let later: Vec<_> = a.episodes[a.episodes.len() / 2..]
        .iter()
        .filter_map(|e| e.start_cell)
        .collect();
    assert!(!later.is_empty(), "episodes still start from the archive");
}

#[test]
fn explorers_grow_the_archive_and_leave_the_policys_envs_alone() {
    let cfg = |explorers| EnvConfig {
        max_steps: 60,
        explore_resets: 0.5,
        explore_steps: 30,
        explorers,
        ..Default::default()
    };
    let plain = play(2, 5, 2, 400, cfg(0));
    let with = play(2, 5, 2, 400, cfg(4));
    let again = play(1, 5, 2, 400, cfg(4));
    assert_eq!(
        with.envs.snapshot(),
        again.envs.snapshot(),
        "explorers step the same on 1 or 2 threads"
    );
    assert_eq!(with.explorer_episodes, again.explorer_episodes);
    // The policy's envs are the same two envs: same observation buffers, their own
    // episodes and segments only.
    assert_eq!(with.envs.len(), 2);
    assert_eq!(with.envs.explorers(), 4);
    assert_eq!(with.envs.frames().len(), plain.envs.frames().len());
    assert!(with.episodes.iter().all(|e| e.env < 2));
    assert!(with.segments.iter().all(|s| s.meta.env < 2));
    let steps: u32 = with.segments.iter().map(|s| s.meta.steps).sum();
    assert_eq!(steps, 2 * 400, "segments hold the policy's steps only");
    // Explorers' episodes: numbered after the policy's envs, every one but each
    // explorer's first started from the archive, at most `explore_steps` long.
    let ex = &with.explorer_episodes;
    // Each explorer's first episode (from the start state) lasts up to 60 steps.
    assert!(ex.len() >= 4 * (400 - 60) / 30, "{}", ex.len());
    assert!(ex.iter().all(|e| (2..6).contains(&e.env)));
    let from_start: Vec<_> = ex.iter().filter(|e| e.start_cell.is_none()).collect();
    assert!(from_start.len() <= 4, "{from_start:?}");
    assert!(
        ex.iter()
            .all(|e| e.length <= if e.start_cell.is_some() { 30 } else { 60 })
    );
    assert!(plain.explorer_episodes.is_empty());
    // Four random explorers on top of two envs reach more of the game.
    assert!(
        with.envs.archive().len() > plain.envs.archive().len(),
        "{} cells with explorers, {} without",
        with.envs.archive().len(),
        plain.envs.archive().len()
    );
}

/// A save state of the reference walkthrough 16 frames before it presses the switch in room
/// 2B (chest and door done: world progress 2; a few steps left presses it: 3).
fn before_the_switch() -> Vec<u8> {
    walkthrough_before(16, |gb| zelda::state::world_progress(gb) >= 3)
}

/// A save state of the reference walkthrough `frames` frames before `done` first holds.
fn walkthrough_before(frames: usize, done: impl Fn(&gameboy::GameBoy) -> bool) -> Vec<u8> {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/reference/scripts/walkthrough.txt"
    ))
    .unwrap();
    let script = gameboy::InputScript::parse(&text).unwrap();
    let mut gb = gameboy::GameBoy::new(zelda::MINI_ZELDA.to_vec()).unwrap();
    let mut frame = 0;
    // The last `frames` frames' states only: the oldest is the one wanted once it holds.
    let mut last = std::collections::VecDeque::with_capacity(frames + 1);
    while !done(&gb) {
        last.push_back(gb.save_state());
        if last.len() > frames {
            last.pop_front();
        }
        gb.set_buttons(script.buttons_at(frame));
        gb.run_frames(1, false);
        frame += 1;
    }
    last.pop_front().expect("it holds later than `frames` in")
}

#[test]
fn the_ladder_starts_the_policy_next_to_the_goal() {
    // Two agent steps before the walkthrough takes the instrument.
    let near = walkthrough_before(2 * 24, |gb| {
        zelda::GameState::read(gb).instrument_count() > 0
    });
    let cfg = EnvConfig {
        max_steps: 64,
        explore_resets: 0.8,
        explore_steps: 12,
        explore_cell_px: 16,
        explorers: 4,
        explore_ladder: 0.75,
        explore_ladder_pass: 0.5,
        ..Default::default()
    };
    let make_with = |threads, cfg: EnvConfig| {
        VecEnv::new(
            zelda::MINI_ZELDA,
            Some(near.clone()),
            4,
            cfg,
            RewardConfig::default(),
            threads,
            13,
            ctx(),
            RecorderConfig {
                steps: 64,
                keyframe_interval: 16,
            },
            false,
        )
        .unwrap()
    };
    let make = |threads| make_with(threads, cfg.clone());
    let (mut a, mut b) = (make(1), make(2));
    let n = a.n_actions();
    let actions = |t: usize| -> Vec<usize> { (0..4).map(|i| (t * 7 + i * 5) % n).collect() };
    let (mut policy_eps, mut explorer_eps) = (Vec::new(), Vec::new());
    for t in 0..800 {
        a.step(&actions(t));
        b.step(&actions(t));
        policy_eps.extend(a.take_episodes());
        explorer_eps.extend(a.take_explorer_episodes());
        b.take_episodes();
        b.take_explorer_episodes();
        if t == 400 {
            // Halfway: a fresh vector env that stepped elsewhere, restored from a snapshot,
            // goes on exactly.
            b = make(2);
            b.step(&[1, 2, 3, 4]);
            b.restore(&a.snapshot()).unwrap();
        }
    }
    assert_eq!(
        a.snapshot(),
        b.snapshot(),
        "1 or 2 threads, restored or not"
    );
    let ladder = a.explore_stats().ladder;
    let won = |eps: &[rollout::EpisodeStats]| eps.iter().filter(|e| e.instruments > 0).count();
    assert!(
        ladder.cells > 0,
        "{ladder:?}: {} of {} explorers' episodes and {} of {} policy episodes won; archive {:?}",
        won(&explorer_eps),
        explorer_eps.len(),
        won(&policy_eps),
        policy_eps.len(),
        a.explore_stats()
    );
    assert!(
        explorer_eps.iter().all(|e| e.ladder_rung.is_none()),
        "explorers never start from the ladder"
    );
    let climbs: Vec<_> = policy_eps
        .iter()
        .filter(|e| e.ladder_rung.is_some())
        .collect();
    assert!(!climbs.is_empty());
    for e in &climbs {
        let cell = e.start_cell.expect("a ladder start is an archive start");
        assert!(a.ladder().rung(cell).is_some(), "{e:?}");
        // Each start cell counts the policy's episodes from it (the last one may still run).
        assert!(a.ladder().tried(cell).is_some_and(|t| t.tries > 0), "{e:?}");
    }
    // Ladder starts last up to max_steps, other archive starts up to explore_steps.
    assert!(
        policy_eps
            .iter()
            .filter(|e| e.start_cell.is_some() && e.ladder_rung.is_none())
            .all(|e| e.length <= 12)
    );
    assert!(climbs.iter().any(|e| e.length > 12), "{climbs:?}");
    // From two steps away, the fixed actions reach the instrument from some rungs.
    let wins = climbs.iter().filter(|e| e.instruments > 0).count();
    assert!(wins > 0, "{} ladder starts, none won", climbs.len());
    // Rungs beyond 0 were found, but these fixed actions win from fewer than half of the
    // ladder starts, so at a pass rate of one half the frontier stays at rung 0.
    assert!(ladder.top > 0, "{ladder:?}");
    assert!(2 * wins < climbs.len(), "{wins} of {}", climbs.len());
    assert_eq!(ladder.frontier, 0);
    assert!(ladder.frontier_tries >= 16, "{ladder:?}");
    // A bar low enough for those few wins moves the frontier back.
    let mut d = make_with(
        2,
        EnvConfig {
            explore_ladder_pass: 0.01,
            ..cfg.clone()
        },
    );
    for t in 0..800 {
        d.step(&actions(t));
        d.take_episodes();
        d.take_explorer_episodes();
    }
    assert!(
        d.explore_stats().ladder.frontier > 0,
        "{:?}",
        d.explore_stats()
    );
    // Focused draws (by each cell's win rate) change which cells start, and stay exact
    // over threads and a restore.
    let focus = EnvConfig {
        explore_ladder_focus: true,
        ..cfg.clone()
    };
    let (mut e, mut f) = (make_with(1, focus.clone()), make_with(2, focus.clone()));
    for t in 0..800 {
        e.step(&actions(t));
        f.step(&actions(t));
        if t == 400 {
            f = make_with(2, focus.clone());
            f.restore(&e.snapshot()).unwrap();
        }
    }
    assert_eq!(
        e.snapshot(),
        f.snapshot(),
        "focused: 1 or 2 threads, restored"
    );
    assert_ne!(e.snapshot(), a.snapshot(), "focus changed no draw");
    // Without the ladder, no episode is a ladder start and the ladder stays empty.
    let mut c = make_with(
        2,
        EnvConfig {
            explore_ladder: 0.0,
            ..cfg.clone()
        },
    );
    for t in 0..200 {
        c.step(&actions(t));
        c.take_explorer_episodes();
    }
    assert!(c.take_episodes().iter().all(|e| e.ladder_rung.is_none()));
    assert!(c.ladder().is_empty());
}

#[test]
fn the_level_weight_starts_archive_episodes_past_the_switch() {
    let cfg = |explore_level_weight| EnvConfig {
        max_steps: 24,
        explore_resets: 1.0,
        explore_steps: 12,
        explore_level_weight,
        ..Default::default()
    };
    let start = before_the_switch();
    // Progress of the cell each archive episode started from, in the order they ended.
    let starts = |w| {
        let p = play_from(Some(start.clone()), 1, 5, 4, 400, cfg(w));
        assert_eq!(
            p.envs.archive().stats().progress,
            3,
            "random presses the switch"
        );
        p.episodes
            .iter()
            .filter_map(|e| e.start_cell.map(|c| c.progress))
            .collect::<Vec<u8>>()
    };
    let after_first_press = |s: &[u8]| {
        let first = s.iter().position(|&p| p == 3).expect("a start past it");
        s[first..].to_vec()
    };
    // Weight 1e-30: once a state past the switch is archived, every archive episode starts
    // past it (the cells before it are 30 orders of magnitude less likely).
    let biased = after_first_press(&starts(1e-30));
    assert!(biased.len() > 20, "{biased:?}");
    assert!(biased.iter().all(|&p| p == 3), "{biased:?}");
    // Weight 1 (the default): the cells before the switch keep their share.
    let plain = after_first_press(&starts(1.0));
    assert!(
        plain.iter().filter(|&&p| p == 2).count() > plain.len() / 4,
        "{plain:?}"
    );
}

#[test]
fn explore_cell_px_sets_the_area_of_a_cell() {
    // Resets so rare that none draws the archive: both runs play the same episodes, and
    // only the cells they file the visited states under differ.
    let cfg = |explore_cell_px| EnvConfig {
        max_steps: 60,
        explore_resets: 1e-12,
        explore_cell_px,
        ..Default::default()
    };
    let coarse = play(1, 8, 4, 400, cfg(32));
    let fine = play(1, 8, 4, 400, cfg(16));
    assert!(coarse.episodes.iter().all(|e| e.start_cell.is_none()));
    assert_eq!(coarse.episodes.len(), fine.episodes.len());
    let coarse: std::collections::BTreeSet<_> = coarse.envs.archive().cells().collect();
    let fine: Vec<_> = fine.envs.archive().cells().collect();
    assert!(
        fine.len() > coarse.len(),
        "{} vs {}",
        fine.len(),
        coarse.len()
    );
    // Each 16-pixel cell lies in the 32-pixel cell the same state was filed under.
    let merged: std::collections::BTreeSet<_> = fine
        .iter()
        .map(|c| rollout::archive::Cell {
            x: c.x / 2,
            y: c.y / 2,
            ..*c
        })
        .collect();
    assert_eq!(merged, coarse);
}

#[test]
fn snapshot_restore_continues_segments_and_observations_exactly() {
    for explore_resets in [0.0, 0.5] {
        snapshot_restore_case(EnvConfig {
            max_steps: 20,
            explore_resets,
            explore_steps: 7,
            ..Default::default()
        });
    }
    // A capped archive holds cells without states: they must survive the round trip.
    snapshot_restore_case(EnvConfig {
        max_steps: 20,
        explore_resets: 0.5,
        explore_steps: 7,
        explore_cells: 2,
        ..Default::default()
    });
    // Explorers' envs, episodes and archive choices are part of the snapshot too.
    snapshot_restore_case(EnvConfig {
        max_steps: 20,
        explore_resets: 0.5,
        explore_steps: 7,
        explorers: 3,
        ..Default::default()
    });
    snapshot_restore_case(EnvConfig::default());
}

fn snapshot_restore_case(cfg: EnvConfig) {
    let make = || {
        VecEnv::new(
            zelda::MINI_ZELDA,
            None,
            2,
            cfg.clone(),
            RewardConfig::default(),
            2,
            21,
            ctx(),
            RecorderConfig {
                steps: 50,
                keyframe_interval: 10,
            },
            true,
        )
        .unwrap()
    };
    let actions = |t: usize| vec![t % 15, (t * 3 + 1) % 15];
    let mut a = make();
    for t in 0..30 {
        a.step(&actions(t));
    }
    let snap = a.snapshot();
    // Segments finished before the snapshot are not part of it.
    a.take_segments();
    let mut b = make();
    b.step(&[1, 2]);
    b.restore(&snap).unwrap();
    b.take_explorer_episodes();
    let explorers = a.take_explorer_episodes().len();
    assert_eq!(explorers > 0, cfg.explorers > 0, "{explorers}");
    assert_eq!(a.frames(), b.frames());
    assert_eq!(a.features(), b.features());
    for t in 30..80 {
        a.step(&actions(t));
        b.step(&actions(t));
        assert_eq!(a.frames(), b.frames());
    }
    a.flush_segments();
    b.flush_segments();
    let enc = |v: Vec<Segment>| {
        v.into_iter()
            .map(|s| s.encode().unwrap())
            .collect::<Vec<_>>()
    };
    assert_eq!(enc(a.take_segments()), enc(b.take_segments()));
    assert_eq!(a.take_explorer_episodes(), b.take_explorer_episodes());
    assert_eq!(a.archive(), b.archive());
    assert_eq!(a.snapshot(), b.snapshot());
    if cfg.explore_resets > 0.0 {
        assert!(!a.archive().is_empty());
        assert!(a.archive().held() <= cfg.explore_cells as usize);
    }
    if cfg.explore_cells == 2 {
        assert!(a.archive().len() > 2, "the cap was reached");
    }
    assert!(
        b.restore(b"garbage")
            .unwrap_err()
            .to_string()
            .contains("snapshot")
    );
}

#[test]
fn novelty_pays_by_the_runs_visits_to_the_cell() {
    let env_cfg = EnvConfig {
        max_steps: 50,
        ..Default::default()
    };
    let run = |threads, novelty| {
        let reward_cfg = RewardConfig {
            novelty,
            ..Default::default()
        };
        let mut v = VecEnv::new(
            zelda::MINI_ZELDA,
            None,
            3,
            env_cfg.clone(),
            reward_cfg,
            threads,
            5,
            ctx(),
            RecorderConfig {
                steps: 64,
                keyframe_interval: 16,
            },
            false,
        )
        .unwrap();
        let mut policy = RandomPolicy::new(v.n_actions(), 5);
        let mut actions = vec![0; 3];
        let mut paid = Vec::new();
        let mut checked = 0;
        for _ in 0..300 {
            policy.act(v.frames(), v.features(), &mut actions);
            let before = v.archive().clone();
            v.step(&actions);
            for i in 0..3 {
                let got = v.reward_components(i)[zelda::reward::NOVELTY];
                paid.push(got);
                if v.terminated(i) || v.truncated(i) {
                    continue;
                }
                let cell = rollout::archive::Cell::of(v.state(i), v.env(i).progress(), 32);
                let want = cell.map_or(0.0, |c| novelty / (1.0 + before.visits(c) as f32).sqrt());
                assert_eq!(got, want, "env {i}");
                checked += usize::from(want > 0.0);
            }
        }
        (paid, v.archive().clone(), checked)
    };
    let (off, archive_off, _) = run(1, 0.0);
    assert!(off.iter().all(|&x| x == 0.0));
    assert!(
        archive_off.is_empty(),
        "no archive without resets or novelty"
    );
    let (one, archive, checked) = run(1, 0.5);
    assert!(checked > 500, "{checked} steps paid");
    assert!(
        !archive.is_empty(),
        "the archive counts visits without resets"
    );
    // Early steps are in new cells; later ones mostly in cells seen many times.
    let mean = |xs: &[f32]| xs.iter().sum::<f32>() / xs.len() as f32;
    let (early, late) = (mean(&one[..30]), mean(&one[one.len() - 300..]));
    assert!(early > 2.0 * late, "early {early}, late {late}");
    let (two, archive_two, _) = run(2, 0.5);
    assert_eq!(one, two, "the same bonus on 1 or 2 threads");
    assert_eq!(archive, archive_two);
}

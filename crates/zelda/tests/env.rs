//! The environment on the mini-zelda cartridge.

use zelda::{Action, EnvConfig, RewardConfig, ZeldaEnv, obs};

fn env(cfg: EnvConfig) -> ZeldaEnv {
    let mut e = ZeldaEnv::new(zelda::MINI_ZELDA.to_vec(), cfg, RewardConfig::default()).unwrap();
    e.reset(7);
    e
}

fn index_of(e: &ZeldaEnv, a: Action) -> usize {
    e.actions().actions().iter().position(|x| *x == a).unwrap()
}

#[test]
fn boots_into_play_in_the_start_room() {
    let e = env(EnvConfig::default());
    let s = e.state();
    assert!(s.in_play(), "{s:?}");
    assert_eq!(s.room.room, 0x21);
    assert!(!s.room.indoor);
    assert_eq!(s.health, 24);
    assert_eq!(s.max_hearts, 3);
    assert_eq!(e.actions().len(), 15);
}

#[test]
fn walking_moves_link_and_changes_rooms_with_rewards() {
    let mut e = env(EnvConfig::default());
    let right = index_of(&e, Action::Right);
    let x0 = e.state().x;
    let r = e.step(right);
    // Held for press_frames (8) frames at 1 px per frame.
    assert_eq!(e.state().x, x0 + 8, "{:?}", e.state());
    let r2 = e.step(right);
    assert_eq!(e.state().x, x0 + 16);
    // Two steps of 8 px from x = 80 cross one 16 px cell boundary.
    assert_eq!(
        r.reward.components[1] + r2.reward.components[1],
        RewardConfig::default().new_cell,
        "stepping on a new cell pays once"
    );
    let start_room = e.state().room;
    let mut new_room_reward = 0.0;
    for _ in 0..40 {
        let r = e.step(right);
        new_room_reward += r.reward.components[0];
        if e.state().room != start_room {
            break;
        }
    }
    assert_ne!(e.state().room, start_room, "walking right leaves the room");
    assert_eq!(new_room_reward, RewardConfig::default().new_room);
    assert_eq!(e.rooms_this_episode(), 2);
}

#[test]
fn truncation_and_observation_layout() {
    let mut e = env(EnvConfig {
        max_steps: 3,
        ..Default::default()
    });
    let noop = index_of(&e, Action::Noop);
    assert!(!e.step(noop).done());
    assert!(!e.step(noop).done());
    let last = e.step(noop);
    assert!(last.truncated && !last.terminated);
    let mut frames = vec![0u8; 4 * obs::FRAME_PIXELS];
    let mut features = vec![0f32; obs::FEATURES];
    e.write_observation(&mut frames, &mut features);
    // The playfield is drawn: the newest frame is neither blank white nor black.
    let newest = &frames[3 * obs::FRAME_PIXELS..];
    let distinct: std::collections::BTreeSet<u8> = newest.iter().copied().collect();
    assert!(
        distinct.len() >= 3,
        "a real screen has several greys: {distinct:?}"
    );
    assert!(features.iter().all(|f| (0.0..=1.0).contains(f)));
    assert_eq!(features[20], 1.0, "episode progress is full at truncation");
}

#[test]
fn same_seed_same_trajectory_different_seed_diverges() {
    let run = |seed: u64| {
        let mut e = env(EnvConfig::default());
        e.reset(seed);
        let mut states = Vec::new();
        for i in 0..30 {
            e.step((i * 7 + 3) % 15);
            states.push(*e.state());
        }
        (states, e.gameboy().save_state())
    };
    assert_eq!(run(1), run(1));
    let (a, _) = run(1);
    let (b, _) = run(2);
    assert_ne!(a, b, "reset jitter differs per seed");
}

#[test]
fn bad_roms_and_states_are_errors() {
    let err = ZeldaEnv::new(vec![0; 100], EnvConfig::default(), RewardConfig::default())
        .err()
        .unwrap();
    assert!(err.to_string().contains("cartridge"), "{err}");
    let err = ZeldaEnv::with_start_state(
        zelda::MINI_ZELDA.to_vec(),
        vec![1, 2, 3],
        EnvConfig::default(),
        RewardConfig::default(),
    )
    .err()
    .unwrap();
    assert!(err.to_string().contains("start state"), "{err}");
    let bad = EnvConfig {
        frame_skip: 0,
        ..Default::default()
    };
    let err = ZeldaEnv::new(zelda::MINI_ZELDA.to_vec(), bad, RewardConfig::default())
        .err()
        .unwrap();
    assert!(err.to_string().contains("frame_skip"), "{err}");
}

#[test]
fn snapshot_restore_continues_exactly() {
    let mut a = env(EnvConfig::default());
    for i in 0..20 {
        a.step(i % 15);
    }
    let snap = a.snapshot();
    let mut b = env(EnvConfig::default());
    b.reset(99);
    b.restore(&snap).unwrap();
    for i in 0..40 {
        let ra = a.step((i * 5 + 1) % 15);
        let rb = b.step((i * 5 + 1) % 15);
        assert_eq!(ra.reward, rb.reward);
        assert_eq!(a.state(), b.state());
    }
    assert_eq!(a.snapshot(), b.snapshot());
}

#[test]
fn model_follows_the_config() {
    use gameboy::Model;
    use zelda::HardwareChoice;
    // The default is a DMG; so is `auto` for mini-zelda, which has no CGB flag.
    let e = env(EnvConfig::default());
    assert_eq!(e.gameboy().model(), Model::Dmg);
    let auto = EnvConfig {
        model: HardwareChoice::Auto,
        ..Default::default()
    };
    assert_eq!(env(auto).gameboy().model(), Model::Dmg);
    // On a CGB it runs in DMG compatibility mode and plays the same way.
    let cgb = EnvConfig {
        model: HardwareChoice::Cgb,
        ..Default::default()
    };
    let mut e = env(cgb.clone());
    assert_eq!(e.gameboy().model(), Model::Cgb);
    assert!(!e.gameboy().cgb_mode());
    let right = index_of(&e, Action::Right);
    let x0 = e.state().x;
    e.step(right);
    assert_eq!(e.state().x, x0 + 8, "{:?}", e.state());
    // A start state from the other model is refused with a message that says so.
    let dmg_state = env(EnvConfig::default()).gameboy().save_state();
    let err = ZeldaEnv::with_start_state(
        zelda::MINI_ZELDA.to_vec(),
        dmg_state,
        cgb,
        RewardConfig::default(),
    )
    .err()
    .unwrap();
    assert!(err.to_string().contains("saved on a DMG"), "{err}");
}

/// The reference walkthrough's input script (it reaches the instrument).
fn walkthrough() -> gameboy::InputScript {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/reference/scripts/walkthrough.txt"
    ))
    .unwrap();
    gameboy::InputScript::parse(&text).unwrap()
}

#[test]
fn world_progress_counts_the_chest_the_door_and_the_switch() {
    let script = walkthrough();
    let mut gb = gameboy::GameBoy::new(zelda::MINI_ZELDA.to_vec()).unwrap();
    // The walkthrough opens the chest, unlocks the door and presses the switch, in that
    // order; nothing else changes a room's status beyond "visited".
    let mut seen = Vec::new();
    for frame in 0..1309u64 {
        gb.set_buttons(script.buttons_at(frame));
        gb.run_frames(1, false);
        let p = zelda::state::world_progress(&gb);
        if seen.last() != Some(&p) {
            seen.push(p);
        }
    }
    assert_eq!(seen, [0, 1, 2, 3], "one step per chest, door and switch");
    assert_eq!(zelda::GameState::read(&gb).instrument_count(), 1);
}

#[test]
fn pressing_the_switch_pays_the_progress_reward_once() {
    let script = walkthrough();
    // The walkthrough up to 40 frames before it presses the switch (door and chest done).
    let play = |frames: u64| {
        let mut gb = gameboy::GameBoy::new(zelda::MINI_ZELDA.to_vec()).unwrap();
        for frame in 0..frames {
            gb.set_buttons(script.buttons_at(frame));
            gb.run_frames(1, false);
        }
        gb
    };
    let pressed = (0..1309u64)
        .scan(
            gameboy::GameBoy::new(zelda::MINI_ZELDA.to_vec()).unwrap(),
            |gb, frame| {
                gb.set_buttons(script.buttons_at(frame));
                gb.run_frames(1, false);
                Some(zelda::state::world_progress(gb))
            },
        )
        .position(|p| p == 3)
        .expect("the walkthrough presses the switch") as u64;
    let before = play(pressed - 40);
    assert_eq!(zelda::state::world_progress(&before), 2);

    let mut e = env(EnvConfig::default());
    e.reset_to(&before.save_state(), 1).unwrap();
    assert_eq!(
        e.progress(),
        2,
        "reset_to reads the restored machine's progress"
    );
    let left = index_of(&e, Action::Left);
    let w = RewardConfig::default();
    let mut paid = Vec::new();
    for _ in 0..12 {
        paid.push(e.step(left).reward.components[8]);
    }
    assert_eq!(e.progress(), 3, "walking left onto the switch presses it");
    assert_eq!(
        paid.iter().filter(|&&p| p != 0.0).collect::<Vec<_>>(),
        [&w.progress],
        "one payment of `progress`, on the step that pressed it: {paid:?}"
    );
    // A snapshot restores the progress it was taken at, so nothing is paid twice.
    let snap = e.snapshot();
    let mut other = env(EnvConfig::default());
    other.restore(&snap).unwrap();
    assert_eq!(other.progress(), 3);
    assert_eq!(other.step(left).reward.components[8], 0.0);
}

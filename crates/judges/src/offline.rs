//! The offline judge: scores from `GameState` changes, with the gateway judges' output types.
//! No model is asked; every record says so (`backend: offline`, `model: offline-heuristic-v1`).

use std::collections::BTreeSet;
use std::time::Instant;

use zelda::GameState;

use crate::judgment::{
    Comparison, DialogAdvice, Input, Preference, PuzzlePlan, StateScore, Subgoal, VisionScore,
};
use crate::{Backend, JudgeRecord, SegmentInput, Status, Task};

/// The model name the offline judge records.
pub const MODEL: &str = "offline-heuristic-v1";

/// What changed over a segment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Delta {
    /// Rooms whose visited bit got set.
    pub new_rooms: u16,
    /// Distinct rooms Link was in.
    pub rooms_seen: usize,
    /// Distinct (room, 16x16 cell) positions.
    pub cells_seen: usize,
    /// Went from the overworld into a dungeon.
    pub entered_dungeon: bool,
    /// Sum of rupee increases.
    pub rupees_gained: u32,
    /// Sum of small-key increases.
    pub keys_gained: u32,
    /// Sum of small-key decreases inside dungeons.
    pub keys_used: u32,
    /// Sum of health increases, eighths of a heart.
    pub healed: u32,
    /// Sum of health decreases, eighths of a heart.
    pub health_lost: u32,
    /// Heart containers added.
    pub heart_containers: u32,
    /// Instruments added.
    pub instruments: u32,
    /// Dialog boxes closed after being open.
    pub dialogs_closed: u32,
    /// Link passed out at some step.
    pub passed_out: bool,
    /// Deaths added.
    pub deaths: u32,
}

fn in_dungeon(s: &GameState) -> bool {
    s.room.indoor && s.room.map <= 0x07
}

/// Sums the changes between consecutive states.
pub fn delta(states: &[GameState]) -> Delta {
    let mut d = Delta::default();
    let (Some(first), Some(last)) = (states.first(), states.last()) else {
        return d;
    };
    d.new_rooms = last.rooms_visited.saturating_sub(first.rooms_visited);
    d.rooms_seen = states.iter().map(|s| s.room).collect::<BTreeSet<_>>().len();
    d.cells_seen = states
        .iter()
        .map(|s| (s.room, s.cell()))
        .collect::<BTreeSet<_>>()
        .len();
    d.heart_containers = u32::from(last.max_hearts.saturating_sub(first.max_hearts));
    d.instruments = (last.instruments & !first.instruments).count_ones();
    d.deaths = u32::from(last.deaths.saturating_sub(first.deaths));
    for w in states.windows(2) {
        let (a, b) = (&w[0], &w[1]);
        if !in_dungeon(a) && in_dungeon(b) {
            d.entered_dungeon = true;
        }
        d.rupees_gained += u32::from(b.rupees.saturating_sub(a.rupees));
        d.keys_gained += u32::from(b.small_keys.saturating_sub(a.small_keys));
        if in_dungeon(a) && in_dungeon(b) && a.room.map == b.room.map {
            d.keys_used += u32::from(a.small_keys.saturating_sub(b.small_keys));
        }
        if a.max_hearts == b.max_hearts {
            d.healed += u32::from(b.health.saturating_sub(a.health));
        }
        d.health_lost += u32::from(a.health.saturating_sub(b.health));
        if a.dialog_open() && !b.dialog_open() {
            d.dialogs_closed += 1;
        }
    }
    d.passed_out = states.iter().any(GameState::passed_out);
    d
}

/// The subgoals a delta shows, in schema order.
pub fn subgoals(d: &Delta) -> Vec<Subgoal> {
    let mut out = Vec::new();
    for (hit, g) in [
        (d.new_rooms > 0, Subgoal::NewRoom),
        (d.entered_dungeon, Subgoal::EnteredDungeon),
        (d.rupees_gained > 0, Subgoal::GotRupees),
        (d.keys_gained > 0, Subgoal::GotSmallKey),
        (d.keys_used > 0, Subgoal::UsedSmallKey),
        (d.healed > 0, Subgoal::Healed),
        (d.heart_containers > 0, Subgoal::GotHeartContainer),
        (d.instruments > 0, Subgoal::GotInstrument),
        (d.dialogs_closed > 0, Subgoal::ReadDialog),
    ] {
        if hit {
            out.push(g);
        }
    }
    out
}

/// Progress 0..=10 on the prompts' rubric: the highest level reached, less for losses.
pub fn progress(d: &Delta) -> u8 {
    let mut p: i32 = if d.instruments > 0 || d.heart_containers > 0 {
        10
    } else if d.keys_gained > 0 || d.keys_used > 0 {
        7 + i32::from(d.new_rooms > 0)
    } else if d.new_rooms > 0 || d.entered_dungeon {
        5 + i32::from(d.new_rooms.min(3)) - 1
    } else if d.rupees_gained > 0 || d.healed > 0 {
        4
    } else if d.cells_seen >= 3 {
        2
    } else {
        0
    };
    if d.health_lost > 0 && d.healed == 0 {
        p -= 1;
    }
    if d.passed_out || d.deaths > 0 {
        p -= 3;
    }
    p.clamp(0, 10) as u8
}

fn novelty(d: &Delta) -> u8 {
    let n: i32 = match d.new_rooms {
        0 => (d.cells_seen as i32 / 8).min(2),
        1 => 5,
        2 => 7,
        _ => 9,
    } + i32::from(d.entered_dungeon);
    n.clamp(0, 10) as u8
}

fn danger(states: &[GameState], d: &Delta) -> u8 {
    let Some(last) = states.last() else { return 0 };
    if d.passed_out || last.passed_out() {
        return 10;
    }
    let max = f32::from(last.max_hearts.max(1)) * 8.0;
    let missing = 1.0 - (f32::from(last.health) / max).clamp(0.0, 1.0);
    let mut v = (6.0 * missing).round() as i32;
    if d.health_lost > 0 {
        v += 2;
    }
    if last.health <= 8 {
        v += 3;
    }
    v.clamp(0, 10) as u8
}

fn events(d: &Delta) -> String {
    let mut parts = Vec::new();
    if d.new_rooms > 0 {
        parts.push(format!("{} new room(s)", d.new_rooms));
    }
    if d.entered_dungeon {
        parts.push("entered a dungeon".to_string());
    }
    if d.rupees_gained > 0 {
        parts.push(format!("+{} rupees", d.rupees_gained));
    }
    if d.keys_gained > 0 {
        parts.push(format!("+{} small key(s)", d.keys_gained));
    }
    if d.keys_used > 0 {
        parts.push(format!("used {} small key(s)", d.keys_used));
    }
    if d.heart_containers > 0 {
        parts.push(format!("+{} heart container(s)", d.heart_containers));
    }
    if d.instruments > 0 {
        parts.push(format!("+{} instrument(s)", d.instruments));
    }
    if d.healed > 0 {
        parts.push(format!(
            "healed {} heart(s)",
            f32::from(d.healed as u16) / 8.0
        ));
    }
    if d.health_lost > 0 {
        parts.push(format!(
            "lost {} heart(s)",
            f32::from(d.health_lost.min(u32::from(u16::MAX)) as u16) / 8.0
        ));
    }
    if d.dialogs_closed > 0 {
        parts.push(format!("read {} dialog(s)", d.dialogs_closed));
    }
    if d.passed_out {
        parts.push("passed out".to_string());
    }
    if parts.is_empty() {
        parts.push(format!(
            "moved over {} position(s) in {} room(s)",
            d.cells_seen, d.rooms_seen
        ));
    }
    parts.join(", ")
}

/// `/vision` from state changes (the keyframes are not looked at).
pub fn vision(input: &SegmentInput<'_>) -> VisionScore {
    let d = delta(input.states);
    let mut summary = format!("offline heuristic: {}", events(&d));
    if summary.chars().count() > crate::judgment::SUMMARY_MAX_CHARS {
        summary = summary
            .chars()
            .take(crate::judgment::SUMMARY_MAX_CHARS - 1)
            .collect::<String>()
            + "…";
    }
    VisionScore {
        summary,
        progress: progress(&d),
        novelty: novelty(&d),
        danger: danger(input.states, &d),
    }
}

/// `/state` from state changes.
pub fn state(input: &SegmentInput<'_>) -> StateScore {
    let d = delta(input.states);
    StateScore {
        subgoals_reached: subgoals(&d),
        progress: progress(&d),
    }
}

/// `/puzzle` from state changes: a generic dungeon plan keyed on the keys held.
pub fn puzzle(input: &SegmentInput<'_>) -> PuzzlePlan {
    let d = delta(input.states);
    let keys = input.states.last().map_or(0, |s| s.small_keys);
    let plan: Vec<String> = if keys > 0 {
        vec![
            "Find a locked door or key block".into(),
            "Open it with the small key".into(),
            "Go through to the next room".into(),
        ]
    } else {
        vec![
            "Defeat every enemy in the room".into(),
            "Open chests and push blocks to find a small key".into(),
            "Leave through a door to an unvisited room".into(),
        ]
    };
    let advanced = d.keys_gained > 0 || d.keys_used > 0 || d.new_rooms > 0 || d.instruments > 0;
    PuzzlePlan {
        plan,
        puzzle_advanced: advanced,
    }
}

/// `/dialog` from state changes: handled when no dialog is open at the end.
pub fn dialog(input: &SegmentInput<'_>) -> DialogAdvice {
    let last = input.states.last();
    let open_at_end = last.is_some_and(GameState::dialog_open);
    let next_input = if open_at_end { Input::A } else { Input::None };
    DialogAdvice {
        handled: input.dialog_seen() && !open_at_end,
        next_input,
    }
}

/// Compare mode from state changes: the higher `/state` progress wins, equal is a tie.
pub fn compare(a: &SegmentInput<'_>, b: &SegmentInput<'_>) -> Comparison {
    let (da, db) = (delta(a.states), delta(b.states));
    let (pa, pb) = (progress(&da), progress(&db));
    let more_progress = match pa.cmp(&pb) {
        std::cmp::Ordering::Greater => Preference::First,
        std::cmp::Ordering::Less => Preference::Second,
        std::cmp::Ordering::Equal => Preference::Tie,
    };
    let mut analysis = format!(
        "offline heuristic: first progress {pa} ({}); second progress {pb} ({})",
        events(&da),
        events(&db)
    );
    if analysis.chars().count() > crate::judgment::ANALYSIS_MAX_CHARS {
        analysis = analysis
            .chars()
            .take(crate::judgment::ANALYSIS_MAX_CHARS - 1)
            .collect::<String>()
            + "…";
    }
    Comparison {
        analysis,
        more_progress,
    }
}

/// Wraps an offline judgment in a record labelled offline.
pub(crate) fn record<T>(task: Task, result: T, started: Instant) -> JudgeRecord<T> {
    JudgeRecord {
        task,
        route: task.route(),
        backend: Backend::Offline,
        model: MODEL.to_string(),
        prompt: MODEL.to_string(),
        status: Status::Ok,
        result: Some(result),
        error: None,
        attempts: 0,
        latency_s: started.elapsed().as_secs_f64(),
        usage: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::{dungeon, eventful, play_state, walk};
    use crate::judgment::Judgment;

    fn seg<'a>(states: &'a [GameState]) -> SegmentInput<'a> {
        SegmentInput {
            id: "t",
            first_step: 0,
            states,
            keyframes: &[],
        }
    }

    #[test]
    fn standing_still_scores_nothing() {
        let states = vec![play_state(); 10];
        let v = vision(&seg(&states));
        assert_eq!((v.progress, v.novelty, v.danger), (0, 0, 0));
        assert!(v.summary.starts_with("offline heuristic"));
        assert_eq!(state(&seg(&states)).subgoals_reached, vec![]);
    }

    #[test]
    fn events_raise_progress_and_are_named() {
        let states = eventful(40, 0);
        let s = state(&seg(&states));
        assert_eq!(
            s.subgoals_reached,
            vec![
                Subgoal::NewRoom,
                Subgoal::GotRupees,
                Subgoal::GotSmallKey,
                Subgoal::ReadDialog
            ]
        );
        assert_eq!(
            s.progress, 7,
            "key + new room = 8, minus 1 for the lost half heart"
        );
        let v = vision(&seg(&states));
        assert_eq!(v.novelty, 5);
        assert!(v.danger >= 2, "{v:?}");
        v.validate().unwrap();
        s.validate().unwrap();
    }

    #[test]
    fn dungeon_keys_advance_the_puzzle() {
        let states = dungeon(30);
        let input = seg(&states);
        assert!(input.in_dungeon());
        let p = puzzle(&input);
        assert!(p.puzzle_advanced);
        p.validate().unwrap();
        assert!(
            state(&input)
                .subgoals_reached
                .contains(&Subgoal::UsedSmallKey)
        );
        let idle = walk(dungeon(1)[0], 5);
        assert!(!puzzle(&seg(&idle)).puzzle_advanced);
    }

    #[test]
    fn dialog_open_at_end_asks_for_a() {
        let mut states = walk(play_state(), 5);
        states[4].dialog = 0x09;
        let d = dialog(&seg(&states));
        assert_eq!(
            d,
            DialogAdvice {
                handled: false,
                next_input: Input::A
            }
        );
        states[4].dialog = 0;
        states[3].dialog = 0x09;
        assert_eq!(
            dialog(&seg(&states)),
            DialogAdvice {
                handled: true,
                next_input: Input::None
            }
        );
    }

    #[test]
    fn compare_prefers_more_progress() {
        let (busy, idle) = (eventful(40, 0), vec![play_state(); 40]);
        assert_eq!(
            compare(&seg(&busy), &seg(&idle)).more_progress,
            Preference::First
        );
        assert_eq!(
            compare(&seg(&idle), &seg(&busy)).more_progress,
            Preference::Second
        );
        let c = compare(&seg(&idle), &seg(&idle));
        assert_eq!(c.more_progress, Preference::Tie);
        c.validate().unwrap();
    }

    #[test]
    fn passing_out_is_maximum_danger() {
        let mut states = walk(play_state(), 4);
        states[3].motion = zelda::ram::MOTION_PASSED_OUT;
        states[3].health = 0;
        let v = vision(&seg(&states));
        assert_eq!(v.danger, 10);
        assert_eq!(v.progress, 0);
    }
}

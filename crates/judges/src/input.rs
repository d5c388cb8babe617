//! What a judge is given: plain types, independent of how segments are stored.

use std::fmt::Write as _;

use zelda::GameState;

/// One rendered frame of a segment.
#[derive(Debug, Clone, Copy)]
pub struct Keyframe<'a> {
    /// The environment step the frame was taken at.
    pub step: u64,
    /// The frame as PNG bytes.
    pub png: &'a [u8],
}

/// One segment of play to judge.
#[derive(Debug, Clone, Copy)]
pub struct SegmentInput<'a> {
    /// Stable identifier (used in prompts, logs and to derive retry jitter).
    pub id: &'a str,
    /// The step of `states[0]`; `states[i]` is at step `first_step + i`.
    pub first_step: u64,
    /// The decoded state after every step of the segment.
    pub states: &'a [GameState],
    /// Keyframes in step order.
    pub keyframes: &'a [Keyframe<'a>],
}

/// The PNG file signature.
const PNG_SIGNATURE: &[u8] = b"\x89PNG\r\n\x1a\n";

impl SegmentInput<'_> {
    /// The step of the last state.
    pub fn last_step(&self) -> u64 {
        self.first_step + (self.states.len() as u64).saturating_sub(1)
    }

    /// Checks the input is judgeable: at least one state, keyframes are PNGs in step order.
    pub fn check(&self) -> Result<(), String> {
        if self.states.is_empty() {
            return Err(format!("segment {}: no states", self.id));
        }
        let mut prev = None;
        for k in self.keyframes {
            if !k.png.starts_with(PNG_SIGNATURE) {
                return Err(format!(
                    "segment {}: keyframe at step {} is not a PNG",
                    self.id, k.step
                ));
            }
            if prev.is_some_and(|p| k.step < p) {
                return Err(format!(
                    "segment {}: keyframe at step {} comes after step {}",
                    self.id,
                    k.step,
                    prev.unwrap_or_default()
                ));
            }
            prev = Some(k.step);
        }
        Ok(())
    }

    /// Some state is inside a dungeon room (maps 0x00-0x07 indoors) in normal play: the
    /// `/puzzle` judge applies.
    pub fn in_dungeon(&self) -> bool {
        self.states
            .iter()
            .any(|s| s.in_play() && s.room.indoor && s.room.map <= 0x07)
    }

    /// A dialog box was open at some step: the `/dialog` judge applies.
    pub fn dialog_seen(&self) -> bool {
        self.states.iter().any(GameState::dialog_open)
    }

    /// Up to `max` keyframes spread evenly over the segment, first and last included.
    pub fn pick_keyframes(&self, max: usize) -> Vec<Keyframe<'_>> {
        spread(self.keyframes, max)
    }
}

/// Up to `max` items spread evenly, first and last included.
fn spread<T: Copy>(items: &[T], max: usize) -> Vec<T> {
    if items.len() <= max {
        return items.to_vec();
    }
    match max {
        0 => Vec::new(),
        1 => vec![items[items.len() - 1]],
        _ => (0..max)
            .map(|i| items[i * (items.len() - 1) / (max - 1)])
            .collect(),
    }
}

/// Describes what changed from `a` to `b`, or `None` when nothing a judge cares about did.
fn changes(a: &GameState, b: &GameState) -> Option<String> {
    let mut parts: Vec<String> = Vec::new();
    if a.mode != b.mode {
        parts.push(if b.in_play() {
            "back in normal play".into()
        } else {
            format!("left normal play (mode {:#04x})", b.mode)
        });
    }
    if a.room != b.room {
        parts.push(format!("moved to {}", b.room.describe()));
    }
    if a.rooms_visited != b.rooms_visited {
        parts.push(format!(
            "rooms visited {} -> {}",
            a.rooms_visited, b.rooms_visited
        ));
    }
    if a.health != b.health {
        parts.push(format!("health {} -> {} hearts", a.hearts(), b.hearts()));
    }
    if a.max_hearts != b.max_hearts {
        parts.push(format!(
            "heart containers {} -> {}",
            a.max_hearts, b.max_hearts
        ));
    }
    if a.rupees != b.rupees {
        parts.push(format!("rupees {} -> {}", a.rupees, b.rupees));
    }
    if a.small_keys != b.small_keys {
        parts.push(format!("small keys {} -> {}", a.small_keys, b.small_keys));
    }
    if a.instruments != b.instruments {
        parts.push(format!(
            "instruments {} -> {}",
            a.instrument_count(),
            b.instrument_count()
        ));
    }
    if a.dialog_open() != b.dialog_open() {
        parts.push(
            if b.dialog_open() {
                "dialog opened"
            } else {
                "dialog closed"
            }
            .into(),
        );
    }
    if !a.passed_out() && b.passed_out() {
        parts.push("Link passed out".into());
    }
    if a.deaths != b.deaths {
        parts.push(format!("deaths {} -> {}", a.deaths, b.deaths));
    }
    (!parts.is_empty()).then(|| parts.join("; "))
}

/// The state sequence as text: the first state in full, one line per step where something
/// changed (at most `max_lines`, spread evenly when there are more), the last state in full.
pub fn states_text(input: &SegmentInput<'_>, max_lines: usize) -> String {
    let mut out = String::new();
    let Some(first) = input.states.first() else {
        return out;
    };
    let _ = writeln!(
        out,
        "step {} (start): {}",
        input.first_step,
        first.describe()
    );
    let events: Vec<(u64, String)> = input
        .states
        .windows(2)
        .enumerate()
        .filter_map(|(i, w)| changes(&w[0], &w[1]).map(|c| (input.first_step + i as u64 + 1, c)))
        .collect();
    let total = events.len();
    let shown = spread(&(0..total).collect::<Vec<_>>(), max_lines);
    for &i in &shown {
        let (step, text) = &events[i];
        let _ = writeln!(out, "step {step}: {text}");
    }
    if shown.len() < total {
        let _ = writeln!(out, "({} more changes not shown)", total - shown.len());
    }
    let last = input.states[input.states.len() - 1];
    let _ = write!(out, "step {} (end): {}", input.last_step(), last.describe());
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::{play_state, walk};

    #[test]
    fn text_lists_changes_between_start_and_end() {
        let mut states = walk(play_state(), 5);
        states[3].rupees += 5;
        states[4].rupees += 5;
        states[4].room.room += 1;
        let input = SegmentInput {
            id: "w0-e0/0",
            first_step: 100,
            states: &states,
            keyframes: &[],
        };
        let text = states_text(&input, 10);
        let lines: Vec<&str> = text.lines().collect();
        assert!(
            lines[0].starts_with("step 100 (start): Mode: playing."),
            "{text}"
        );
        assert_eq!(lines[1], "step 103: rupees 10 -> 15", "{text}");
        assert!(
            lines[2].starts_with("step 104: moved to overworld room 0x13"),
            "{text}"
        );
        assert!(lines[3].starts_with("step 104 (end):"), "{text}");
        assert_eq!(lines.len(), 4);
    }

    #[test]
    fn long_change_lists_are_capped() {
        let mut states = walk(play_state(), 100);
        for (i, s) in states.iter_mut().enumerate() {
            s.rupees = i as u16;
        }
        let input = SegmentInput {
            id: "s",
            first_step: 0,
            states: &states,
            keyframes: &[],
        };
        let text = states_text(&input, 8);
        assert_eq!(
            text.lines()
                .filter(|l| l.contains("rupees ") && l.contains("->"))
                .count(),
            8
        );
        assert!(text.contains("(91 more changes not shown)"), "{text}");
    }

    #[test]
    fn check_rejects_bad_inputs() {
        let states = walk(play_state(), 2);
        let ok = SegmentInput {
            id: "s",
            first_step: 0,
            states: &states,
            keyframes: &[],
        };
        assert!(ok.check().is_ok());
        let empty = SegmentInput { states: &[], ..ok };
        assert!(empty.check().unwrap_err().contains("no states"));
        let frames = [Keyframe {
            step: 3,
            png: b"GIF89a",
        }];
        let bad = SegmentInput {
            keyframes: &frames,
            ..ok
        };
        assert!(bad.check().unwrap_err().contains("step 3 is not a PNG"));
    }

    #[test]
    fn spread_keeps_ends() {
        let v: Vec<u32> = (0..10).collect();
        assert_eq!(spread(&v, 4), vec![0, 3, 6, 9]);
        assert_eq!(spread(&v, 20), v);
        assert_eq!(spread(&v, 1), vec![9]);
    }
}

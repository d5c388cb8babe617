//! The heuristic reward: named components from game-state changes, weighted by
//! [`RewardConfig`].

use std::collections::{HashMap, HashSet};

use crate::config::RewardConfig;
use crate::state::GameState;

/// Number of heuristic reward components.
pub const COMPONENTS: usize = RewardConfig::NAMES.len();

/// Index of the `novelty` component, which [`RewardTracker`] leaves at 0: the count it
/// needs is the whole run's, kept by the rollout worker's vector env, which fills it in.
pub const NOVELTY: usize = COMPONENTS - 1;

/// One step's reward, per component (already weighted) and in total.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct RewardBreakdown {
    /// Weighted components in [`RewardConfig::NAMES`] order.
    pub components: [f32; COMPONENTS],
}

impl RewardBreakdown {
    /// Sum of the components.
    pub fn total(&self) -> f32 {
        self.components.iter().sum()
    }
}

/// Per-episode memory the exploration components need.
#[derive(Debug, Clone, Default)]
pub struct RewardTracker {
    rooms: HashSet<u16>,
    cells: HashMap<(u16, u8, u8), u32>,
}

/// A visited cell `((room, x, y), visits)` in a tracker snapshot.
pub type CellCount = ((u16, u8, u8), u32);

impl RewardTracker {
    /// Forgets the episode; `start` counts as seen.
    pub fn reset(&mut self, start: &GameState) {
        self.rooms.clear();
        self.cells.clear();
        self.visit(start);
    }

    /// Marks a state as seen; returns (new room, new cell).
    fn visit(&mut self, s: &GameState) -> (bool, bool) {
        if !s.in_play() {
            return (false, false);
        }
        let room = s.room.global_index();
        let (cx, cy) = s.cell();
        let new_room = self.rooms.insert(room);
        let count = self.cells.entry((room, cx, cy)).or_insert(0);
        *count += 1;
        (new_room, *count == 1)
    }

    /// Distinct rooms seen this episode.
    pub fn rooms_seen(&self) -> u32 {
        self.rooms.len() as u32
    }

    /// The tracker's contents in a canonical (sorted) form, for snapshots.
    pub fn to_parts(&self) -> (Vec<u16>, Vec<CellCount>) {
        let mut rooms: Vec<u16> = self.rooms.iter().copied().collect();
        rooms.sort_unstable();
        let mut cells: Vec<_> = self.cells.iter().map(|(k, v)| (*k, *v)).collect();
        cells.sort_unstable();
        (rooms, cells)
    }

    /// Rebuilds a tracker from [`RewardTracker::to_parts`].
    pub fn from_parts(rooms: Vec<u16>, cells: Vec<CellCount>) -> Self {
        Self {
            rooms: rooms.into_iter().collect(),
            cells: cells.into_iter().collect(),
        }
    }

    /// Times the current cell of `s` was visited this episode.
    pub fn cell_visits(&self, s: &GameState) -> u32 {
        let (cx, cy) = s.cell();
        self.cells
            .get(&(s.room.global_index(), cx, cy))
            .copied()
            .unwrap_or(0)
    }

    /// Scores the transition `prev -> now`, in which the world progress grew by
    /// `progress` ([`crate::state::world_progress`]), and records `now` as seen.
    pub fn step(
        &mut self,
        prev: &GameState,
        now: &GameState,
        progress: u32,
        w: &RewardConfig,
    ) -> RewardBreakdown {
        let (new_room, new_cell) = self.visit(now);
        let rupees = f32::from(now.rupees.saturating_sub(prev.rupees));
        let keys = f32::from(now.small_keys.saturating_sub(prev.small_keys));
        // Health changes while passed out or on a restart screen are bookkeeping, not play.
        let health = if now.in_play() && prev.in_play() && !now.passed_out() {
            (f32::from(now.health) - f32::from(prev.health)) / 8.0
        } else {
            0.0
        };
        let instruments = now
            .instrument_count()
            .saturating_sub(prev.instrument_count()) as f32;
        let died = now.passed_out() && !prev.passed_out();
        let raw = [
            f32::from(u8::from(new_room)),
            f32::from(u8::from(new_cell)),
            rupees,
            keys,
            health,
            instruments,
            f32::from(u8::from(died)),
            1.0,
            progress as f32,
            0.0,
        ];
        let weights = w.weights();
        let mut components = [0.0; COMPONENTS];
        for i in 0..COMPONENTS {
            components[i] = raw[i] * weights[i];
        }
        RewardBreakdown { components }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ram;

    fn state(pairs: &[(u16, u8)]) -> GameState {
        let mut all = vec![
            (ram::GAME_MODE, 0x0B),
            (ram::HEALTH, 24),
            (ram::MAX_HEARTS, 3),
        ];
        all.extend_from_slice(pairs);
        let mem = move |addr: u16| {
            all.iter()
                .rev()
                .find(|(a, _)| *a == addr)
                .map(|(_, v)| *v)
                .unwrap_or(0)
        };
        GameState::read(&mem)
    }

    #[test]
    fn components_follow_state_changes() {
        let w = RewardConfig::default();
        let mut t = RewardTracker::default();
        let a = state(&[]);
        t.reset(&a);
        // Same place: only the step cost.
        let r = t.step(&a, &a, 0, &w);
        assert_eq!(r.components[7], w.step);
        assert_eq!(r.total(), w.step);
        // New room, new cell, 12 rupees, a key, half a heart lost.
        let b = state(&[
            (ram::MAP_ROOM, 0x01),
            (ram::RUPEES_LOW, 0x12),
            (ram::SMALL_KEYS, 1),
            (ram::HEALTH, 20),
        ]);
        let r = t.step(&a, &b, 0, &w);
        assert_eq!(r.components[0], w.new_room);
        assert_eq!(r.components[1], w.new_cell);
        assert_eq!(r.components[2], 12.0 * w.rupee);
        assert_eq!(r.components[3], w.key);
        assert_eq!(r.components[4], -0.5 * w.health);
        assert_eq!(t.rooms_seen(), 2);
        // Back to the first room: nothing new; spending rupees/keys is free.
        let r = t.step(&b, &a, 0, &w);
        assert_eq!(&r.components[..4], &[0.0, 0.0, 0.0, 0.0]);
        // Instrument and death.
        let c = state(&[
            (ram::INSTRUMENT_FLAGS, 0x02),
            (ram::LINK_MOTION_STATE, 0x07),
        ]);
        let r = t.step(&a, &c, 0, &w);
        assert_eq!(r.components[5], w.instrument);
        assert_eq!(r.components[6], w.death);
        // Still passed out: death counted once.
        let r = t.step(&c, &c, 0, &w);
        assert_eq!(r.components[6], 0.0);
        assert_eq!(r.components[8], 0.0, "no progress without a status bit");
        // A chest opened and a door unlocked in one step.
        let r = t.step(&c, &c, 2, &w);
        assert_eq!(r.components[8], 2.0 * w.progress);
        assert_eq!(r.total(), w.step + 2.0 * w.progress);
    }
}

//! Go-Explore's archive ("first return, then explore"): for every cell the environments of
//! one worker have reached, one save state to start a later episode from, so exploration
//! goes on from the frontier instead of walking there again from the start each episode.
//!
//! A cell is a square area of a room (`env.explore_cell_px` on a side: 32 pixels, 5x4 per
//! screen, by default; 16 gives every metatile its own cell, so that a one-tile corridor
//! between spikes is not merged with the spikes around it) together with the keys and
//! instruments held and the world's progress ([`zelda::state::world_progress`]: chests
//! opened, doors unlocked, switches pressed): the same room before and after the dungeon's
//! key, or before and after its switch, is a different place to explore from, and areas
//! inside a room let the frontier move across a screen between episodes. Per cell the
//! archive keeps the state reached with the most health, then in the fewest steps from the
//! start state. Cells are chosen with weight
//! `1/sqrt(1 + times chosen) + 1/sqrt(1 + times visited)` (Go-Explore's count scores), so
//! rarely seen cells, the frontier, are tried first and no cell is starved. With
//! `env.explore_level_weight` below 1, that weight is multiplied by it once for every unit
//! of world progress a cell is behind the archive's most (Go-Explore's level weight): once
//! one episode gets past a switch or a locked door, most episodes from the archive start
//! past it too, instead of one in as many as there are cells before it.
//!
//! The states are what costs memory (about 3 KB each, carried in every snapshot), so at
//! most `env.explore_cells` of them are kept. When a new cell would go beyond that, the
//! state of the cell with the lowest score (the most chosen and visited: the explored
//! interior, not the frontier) is dropped. The cell itself stays, with its counts and the
//! health and steps of the dropped state, so it is not taken for new when reached again
//! (which would evict another state at once); only a better state brings it back.
//!
//! Every change is made between steps, in env order, so the archive (and every episode
//! that starts from it) is the same bytes whatever the thread count.

use std::collections::BTreeMap;
use std::io::Read;

use serde::{Deserialize, Serialize};
use zelda::GameState;

/// Where an episode can be started from: a room, with what is held.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Cell {
    /// [`zelda::state::RoomKey::global_index`] of the room.
    pub room: u16,
    /// Link's X within the room / `env.explore_cell_px`.
    pub x: u8,
    /// Link's Y within the room / `env.explore_cell_px`.
    pub y: u8,
    /// Small keys held.
    pub keys: u8,
    /// Instruments held.
    pub instruments: u8,
    /// [`zelda::state::world_progress`] (at most 255).
    pub progress: u8,
}

impl Cell {
    /// The cell of `s` in a world with `progress`, with rooms cut into squares of `area_px`
    /// pixels, or `None` where no episode should start (not in play, passed out).
    pub fn of(s: &GameState, progress: u32, area_px: u8) -> Option<Self> {
        (s.in_play() && !s.passed_out()).then(|| Self {
            room: s.room.global_index(),
            x: s.x / area_px,
            y: s.y / area_px,
            keys: s.small_keys,
            instruments: s.instrument_count().min(255) as u8,
            progress: progress.min(255) as u8,
        })
    }
}

/// [`Cell`] as version 2 snapshots stored it, before `progress`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
#[cfg_attr(test, derive(Serialize))]
pub(crate) struct CellV2 {
    room: u16,
    x: u8,
    y: u8,
    keys: u8,
    instruments: u8,
}

impl From<CellV2> for Cell {
    /// Progress was not recorded then: such cells count as progress 0.
    fn from(c: CellV2) -> Self {
        Self {
            room: c.room,
            x: c.x,
            y: c.y,
            keys: c.keys,
            instruments: c.instruments,
            progress: 0,
        }
    }
}

/// A state one environment reached, offered to the archive after the step.
#[derive(Debug, Clone)]
pub(crate) struct Candidate {
    pub(crate) cell: Cell,
    pub(crate) health: u8,
    pub(crate) depth: u32,
    /// zstd-compressed save state (a DMG state of about 40 KB packs to about 3 KB).
    pub(crate) state: Vec<u8>,
}

impl Candidate {
    /// Packs `state`, reached with `health` after `depth` steps from the start state.
    pub(crate) fn new(cell: Cell, health: u8, depth: u32, state: &[u8]) -> Self {
        let state = zstd::bulk::compress(state, 1).expect("compressing to memory cannot fail");
        Self {
            cell,
            health,
            depth,
            state,
        }
    }
}

/// What the archive keeps about one cell ([`Archive::info`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct CellInfo {
    /// Health of the kept state (`wHealth`: eighths of a heart).
    pub health: u8,
    /// Steps from the episode's start to the kept state.
    pub depth: u32,
    /// Episodes started from the cell.
    pub chosen: u32,
    /// Steps counted in the cell.
    pub visits: u32,
    /// Its state is kept (episodes can start there).
    pub held: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Entry {
    health: u8,
    depth: u32,
    chosen: u32,
    visits: u32,
    /// Packed save state; empty once dropped for the cap (the cell is not chosen then).
    state: Vec<u8>,
}

impl Entry {
    fn held(&self) -> bool {
        !self.state.is_empty()
    }

    /// Go-Explore's count score: the chance to be chosen and, lowest first, to be dropped.
    fn weight(&self) -> f64 {
        1.0 / (1.0 + f64::from(self.chosen)).sqrt() + 1.0 / (1.0 + f64::from(self.visits)).sqrt()
    }
}

/// The archive of one vector env (see the module docs).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Archive {
    cells: BTreeMap<Cell, Entry>,
}

/// [`Archive`] as version 2 snapshots stored it.
#[derive(Deserialize)]
#[cfg_attr(test, derive(Serialize))]
pub(crate) struct ArchiveV2 {
    cells: BTreeMap<CellV2, Entry>,
}

impl From<ArchiveV2> for Archive {
    fn from(a: ArchiveV2) -> Self {
        Self {
            cells: a.cells.into_iter().map(|(c, e)| (c.into(), e)).collect(),
        }
    }
}

/// How big an archive is and how far it reaches (over workers on Ray: sizes summed, reach
/// the most of any worker), for metrics and summaries.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArchiveStats {
    /// Cells reached.
    pub cells: u64,
    /// Cells whose state is kept (episodes can start there).
    pub states: u64,
    /// Bytes of those packed states.
    pub state_bytes: u64,
    /// Distinct rooms among the cells.
    pub rooms: u64,
    /// The most world progress any cell holds ([`Cell::progress`]): whether exploration
    /// has got past a chest, a locked door or a switch, even before the policy has.
    pub progress: u64,
    /// The goal ladder (`env.explore_ladder`; all 0 without it).
    pub ladder: crate::ladder::LadderStats,
}

impl std::ops::AddAssign for ArchiveStats {
    fn add_assign(&mut self, o: Self) {
        self.cells += o.cells;
        self.states += o.states;
        self.state_bytes += o.state_bytes;
        // Workers' rooms overlap, so a sum would count shared rooms twice.
        self.rooms = self.rooms.max(o.rooms);
        self.progress = self.progress.max(o.progress);
        self.ladder += o.ladder;
    }
}

/// The state an episode starts from, unpacked from the archive.
pub(crate) struct Start {
    pub(crate) cell: Cell,
    pub(crate) depth: u32,
    pub(crate) state: Vec<u8>,
}

impl Archive {
    /// Cells reached (with a state kept or not).
    pub fn len(&self) -> usize {
        self.cells.len()
    }

    /// No cell yet.
    pub fn is_empty(&self) -> bool {
        self.cells.is_empty()
    }

    /// The cells reached, in order.
    pub fn cells(&self) -> impl Iterator<Item = Cell> + '_ {
        self.cells.keys().copied()
    }

    /// Cells whose state is kept: those episodes can start from (at most `env.explore_cells`).
    pub fn held(&self) -> usize {
        self.stats().states as usize
    }

    /// Cells, states, bytes, rooms and progress in one pass.
    pub fn stats(&self) -> ArchiveStats {
        let mut s = ArchiveStats {
            cells: self.cells.len() as u64,
            ..Default::default()
        };
        let mut last_room = None;
        // Cells sort by room first, so a room's cells are adjacent.
        for (c, e) in &self.cells {
            if last_room != Some(c.room) {
                s.rooms += 1;
                last_room = Some(c.room);
            }
            s.progress = s.progress.max(u64::from(c.progress));
            if e.held() {
                s.states += 1;
                s.state_bytes += e.state.len() as u64;
            }
        }
        s
    }

    /// Whether a state of `cell` with `health` after `depth` steps would be kept: the cell
    /// is new, or this state has more health, or as much in fewer steps.
    pub(crate) fn wants(&self, cell: Cell, health: u8, depth: u32) -> bool {
        self.cells
            .get(&cell)
            .is_none_or(|e| health > e.health || (health == e.health && depth < e.depth))
    }

    /// Keeps `c` if [`Archive::wants`] it; a replaced cell keeps its counts. When that
    /// would hold more than `max_held` states, the lowest-scoring other cell's state is
    /// dropped (ties: the first cell in order).
    pub(crate) fn offer(&mut self, c: Candidate, max_held: usize) {
        if !self.wants(c.cell, c.health, c.depth) {
            return;
        }
        let (chosen, visits, held) = self
            .cells
            .get(&c.cell)
            .map_or((0, 0, false), |e| (e.chosen, e.visits, e.held()));
        if !held && self.held() >= max_held {
            let lowest = self
                .cells
                .iter_mut()
                .filter(|(cell, e)| e.held() && **cell != c.cell)
                .min_by(|(_, a), (_, b)| a.weight().total_cmp(&b.weight()));
            if let Some((_, e)) = lowest {
                e.state = Vec::new();
            }
        }
        self.cells.insert(
            c.cell,
            Entry {
                health: c.health,
                depth: c.depth,
                chosen,
                visits,
                state: c.state,
            },
        );
    }

    /// Picks a cell by its count score (see the module docs) times `level_weight` to the
    /// power of how far its progress is behind the most any held cell has (Go-Explore's
    /// level weight; 1 leaves progress out), from the uniform `draw`, and unpacks its
    /// state. `None` when empty.
    pub(crate) fn choose(&self, draw: u64, level_weight: f64) -> Option<Start> {
        let held = || self.cells.iter().filter(|(_, e)| e.held());
        let top = held().map(|(c, _)| c.progress).max()?;
        // Far behind, a small weight underflows to 0: such cells are never picked, and the
        // cells at the top always keep the total above 0.
        let score =
            |c: &Cell, e: &Entry| e.weight() * level_weight.powi(i32::from(top - c.progress));
        let total: f64 = held().map(|(c, e)| score(c, e)).sum();
        let mut left = unit(draw) * total;
        let mut pick = None;
        for (cell, e) in held() {
            let w = score(cell, e);
            if w > 0.0 {
                pick = Some((cell, e));
            }
            left -= w;
            if left < 0.0 && pick.is_some() {
                break;
            }
        }
        let (cell, e) = pick?;
        Some(Start {
            cell: *cell,
            depth: e.depth,
            state: unpack(&e.state)
                .expect("restore checked every state; the others the archive packed itself"),
        })
    }

    /// Whether the archive holds a state of `cell` (an episode can start there).
    pub fn holds(&self, cell: Cell) -> bool {
        self.cells.get(&cell).is_some_and(Entry::held)
    }

    /// The start at `cell`, if its state is held.
    pub(crate) fn start_at(&self, cell: Cell) -> Option<Start> {
        let e = self.cells.get(&cell).filter(|e| e.held())?;
        Some(Start {
            cell,
            depth: e.depth,
            state: unpack(&e.state)
                .expect("restore checked every state; the others the archive packed itself"),
        })
    }

    /// Every cell held with its unpacked state (for checking an archive read from a
    /// snapshot).
    pub(crate) fn states(&self) -> impl Iterator<Item = (Cell, std::io::Result<Vec<u8>>)> + '_ {
        self.cells
            .iter()
            .filter(|(_, e)| e.held())
            .map(|(c, e)| (*c, unpack(&e.state)))
    }

    /// What the archive keeps about `cell`, if it was reached.
    pub fn info(&self, cell: Cell) -> Option<CellInfo> {
        self.cells.get(&cell).map(|e| CellInfo {
            health: e.health,
            depth: e.depth,
            chosen: e.chosen,
            visits: e.visits,
            held: e.held(),
        })
    }

    /// The unpacked save state kept for `cell`, if one is held.
    pub fn state(&self, cell: Cell) -> Option<std::io::Result<Vec<u8>>> {
        self.cells
            .get(&cell)
            .filter(|e| e.held())
            .map(|e| unpack(&e.state))
    }

    /// Steps counted in `cell` so far (0 for a cell not reached yet).
    pub fn visits(&self, cell: Cell) -> u32 {
        self.cells.get(&cell).map_or(0, |e| e.visits)
    }

    /// Counts one more episode started from `cell`.
    pub(crate) fn mark_chosen(&mut self, cell: Cell) {
        if let Some(e) = self.cells.get_mut(&cell) {
            e.chosen = e.chosen.saturating_add(1);
        }
    }

    /// Counts one more step that ended in `cell` (if the archive holds it).
    pub(crate) fn mark_visited(&mut self, cell: Cell) {
        if let Some(e) = self.cells.get_mut(&cell) {
            e.visits = e.visits.saturating_add(1);
        }
    }
}

fn unpack(packed: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut state = Vec::new();
    zstd::stream::Decoder::new(packed)?.read_to_end(&mut state)?;
    Ok(state)
}

#[cfg(test)]
impl CellV2 {
    /// `c` as version 2 stored it (its progress dropped).
    pub(crate) fn of(c: Cell) -> Self {
        Self {
            room: c.room,
            x: c.x,
            y: c.y,
            keys: c.keys,
            instruments: c.instruments,
        }
    }
}

#[cfg(test)]
impl ArchiveV2 {
    /// `a` as version 2 stored it.
    pub(crate) fn of(a: &Archive) -> Self {
        let cells = a.cells.iter().map(|(c, e)| (CellV2::of(*c), e.clone()));
        Self {
            cells: cells.collect(),
        }
    }
}

#[cfg(test)]
impl Archive {
    /// Replaces the first cell's state with `packed` bytes (tests of bad snapshots).
    pub(crate) fn replace_first_state(&mut self, packed: Vec<u8>) {
        if let Some(e) = self.cells.values_mut().next() {
            e.state = packed;
        }
    }
}

/// A uniform number in [0, 1) from 53 bits of `draw`.
pub(crate) fn unit(draw: u64) -> f64 {
    (draw >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cell(room: u16) -> Cell {
        Cell {
            room,
            x: 0,
            y: 0,
            keys: 0,
            instruments: 0,
            progress: 0,
        }
    }

    #[test]
    fn keeps_the_healthier_then_the_shorter_state() {
        let mut a = Archive::default();
        a.offer(Candidate::new(cell(1), 8, 50, b"first"), 10);
        assert!(!a.wants(cell(1), 8, 50));
        assert!(!a.wants(cell(1), 4, 10));
        assert!(a.wants(cell(1), 8, 49));
        assert!(a.wants(cell(1), 12, 900));
        a.mark_chosen(cell(1));
        a.offer(Candidate::new(cell(1), 8, 20, b"second"), 1);
        assert_eq!(a.len(), 1);
        let s = a.choose(0, 1.0).unwrap();
        assert_eq!(
            (s.cell, s.depth, s.state.as_slice()),
            (cell(1), 20, &b"second"[..])
        );
        assert_eq!(
            a.cells[&cell(1)].chosen,
            1,
            "a better state keeps the count"
        );
    }

    #[test]
    fn stats_count_rooms_and_the_most_progress() {
        let mut a = Archive::default();
        for (room, x, progress) in [(2, 0, 0), (2, 1, 3), (5, 0, 1), (9, 4, 2)] {
            let c = Cell {
                x,
                progress,
                ..cell(room)
            };
            a.offer(Candidate::new(c, 8, 1, b"s"), 3);
        }
        let s = a.stats();
        assert_eq!((s.cells, s.states, s.rooms, s.progress), (4, 3, 3, 3));
        // Over workers: sizes add up, reach is the most of any one.
        let mut sum = s;
        sum += ArchiveStats {
            cells: 1,
            states: 1,
            state_bytes: 10,
            rooms: 1,
            progress: 5,
            ladder: crate::ladder::LadderStats {
                cells: 2,
                top: 1,
                frontier: 1,
                frontier_tries: 20,
                frontier_wins: 3,
            },
        };
        assert_eq!(
            (sum.cells, sum.states, sum.rooms, sum.progress),
            (5, 4, 3, 5)
        );
        assert_eq!(
            (sum.ladder.cells, sum.ladder.top, sum.ladder.frontier),
            (2, 1, 1)
        );
        assert_eq!(
            (sum.ladder.frontier_tries, sum.ladder.frontier_wins),
            (20, 3)
        );
        assert_eq!(sum.state_bytes, s.state_bytes + 10);
    }

    #[test]
    fn choice_follows_the_weights() {
        let mut a = Archive::default();
        assert!(a.choose(7, 1.0).is_none());
        for r in 0..3 {
            a.offer(Candidate::new(cell(r), 8, 1, &[r as u8]), 3);
        }
        // Cell 0 chosen 3 times: weight 1/2 + 1; cell 1 visited 8 times: 1 + 1/3; cell 2:
        // 1 + 1 (total 4.8333).
        for _ in 0..3 {
            a.mark_chosen(cell(0));
        }
        for _ in 0..8 {
            a.mark_visited(cell(1));
        }
        let mut counts = [0u32; 3];
        let n = 100_000u64;
        for i in 0..n {
            let draw = crate::derive_seed(9, &[i]);
            counts[usize::from(a.choose(draw, 1.0).unwrap().cell.room)] += 1;
        }
        let share = |c: u32| f64::from(c) / n as f64;
        let total = 1.5 + 4.0 / 3.0 + 2.0;
        assert!((share(counts[0]) - 1.5 / total).abs() < 0.01, "{counts:?}");
        assert!(
            (share(counts[1]) - 4.0 / 3.0 / total).abs() < 0.01,
            "{counts:?}"
        );
        assert!((share(counts[2]) - 2.0 / total).abs() < 0.01, "{counts:?}");
        assert_eq!(a.choose(u64::MAX, 1.0).unwrap().cell, cell(2));
    }

    #[test]
    fn the_level_weight_favours_the_most_progress() {
        let mut a = Archive::default();
        // Rooms 0 and 1 at progress 2 (the top), room 2 one behind, room 3 two behind; all
        // unchosen and unvisited (count score 2 each).
        for (r, progress) in [(0, 2), (1, 2), (2, 1), (3, 0)] {
            let c = Cell {
                progress,
                ..cell(r)
            };
            a.offer(Candidate::new(c, 8, 1, &[r as u8]), 8);
        }
        let shares = |w: f64| {
            let mut counts = [0u32; 4];
            let n = 100_000u64;
            for i in 0..n {
                let draw = crate::derive_seed(4, &[i]);
                counts[usize::from(a.choose(draw, w).unwrap().cell.room)] += 1;
            }
            counts.map(|c| f64::from(c) / n as f64)
        };
        // 0.1: weights 1, 1, 0.1, 0.01 of 2.11.
        let s = shares(0.1);
        for (r, want) in [1.0, 1.0, 0.1, 0.01].into_iter().enumerate() {
            assert!((s[r] - want / 2.11).abs() < 0.005, "{s:?}");
        }
        // 1: progress does not matter.
        let s = shares(1.0);
        assert!(s.iter().all(|x| (x - 0.25).abs() < 0.01), "{s:?}");
        // So small that two levels behind underflow to 0 (1e-400): room 3, the last in
        // order, is never chosen, not even by the last draw.
        let s = shares(1e-200);
        assert_eq!(s[3], 0.0, "{s:?}");
        assert_ne!(a.choose(u64::MAX, 1e-200).unwrap().cell.room, 3);
    }

    #[test]
    fn the_cap_drops_the_most_explored_state_and_keeps_the_cell() {
        let mut a = Archive::default();
        for r in 0..3 {
            a.offer(Candidate::new(cell(r), 8, 10, &[r as u8]), 3);
        }
        a.mark_chosen(cell(0));
        for _ in 0..4 {
            a.mark_visited(cell(1));
        }
        // Full: a fourth cell drops cell 1's state (weight 1 + 1/sqrt(5), the lowest).
        a.offer(Candidate::new(cell(3), 8, 10, &[3]), 3);
        assert_eq!((a.len(), a.held()), (4, 3));
        assert_eq!(a.cells().count(), 4, "the cell stays, reached");
        let held: Vec<u16> = a.states().map(|(c, _)| c.room).collect();
        assert_eq!(held, [0, 2, 3]);
        for i in 0..2_000u64 {
            assert_ne!(
                a.choose(crate::derive_seed(3, &[i]), 1.0).unwrap().cell,
                cell(1)
            );
        }
        // Reaching it again the same way is not new: nothing changes.
        assert!(!a.wants(cell(1), 8, 10));
        a.offer(Candidate::new(cell(1), 8, 10, &[1]), 3);
        assert_eq!(a.held(), 3);
        // A better state brings it back, with its counts, and drops the next lowest (cell
        // 0, chosen once: 1/sqrt(2) + 1).
        a.mark_visited(cell(1));
        a.offer(Candidate::new(cell(1), 9, 10, &[1]), 3);
        let held: Vec<u16> = a.states().map(|(c, _)| c.room).collect();
        assert_eq!(held, [1, 2, 3]);
        assert_eq!(a.cells[&cell(1)].visits, 5);
        // With every state dropped but one, that one is always chosen.
        let mut b = Archive::default();
        for r in 0..4 {
            b.offer(Candidate::new(cell(r), 8, 10, &[r as u8]), 1);
        }
        assert_eq!((b.len(), b.held()), (4, 1));
        assert_eq!(b.choose(u64::MAX, 1.0).unwrap().cell, cell(3));
        assert_eq!(b.choose(0, 1.0).unwrap().cell, cell(3));
    }
}

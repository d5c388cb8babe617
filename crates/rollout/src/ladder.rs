//! The goal ladder: the backward algorithm (Salimans & Chen 2018, the way Go-Explore's
//! robustification phase trains a policy from its archive's trajectories) over the cells of
//! the exploration archive.
//!
//! An archive start is a cell, not a step of one demonstration, so the ladder counts for each
//! cell the fewest steps to the goal (an instrument, in mini-zelda) any episode has shown
//! from it: an episode that gains an instrument `n` steps after standing on a cell, or
//! stands `n` steps later on a cell the ladder already counts `m` steps from, shows `n` (or
//! `n + m`) for that cell. Rungs are those counts cut into `env.explore_ladder_rung` steps: rung
//! `k` holds the cells `k * rung` to `(k + 1) * rung - 1` steps from the goal. Explorers'
//! episodes find the counts; the policy's climb the rungs. A share `env.explore_ladder` of
//! the policy's archive starts is drawn from the rungs up to the *frontier*, half of them on
//! the frontier itself. Once at least [`MIN_TRIES`] of the policy's episodes from the
//! frontier were tried and a share `env.explore_ladder_pass` of them gained an instrument,
//! the frontier moves to the next rung further from the goal, so the policy learns the end of
//! the way first and then starts ever further back, until the start state's own episodes
//! finish the game. Should the policy win fewer than a quarter of that share from the
//! frontier over [`WINDOW`] tries, the frontier falls back to the next rung nearer the goal:
//! otherwise a frontier that moved on a lucky run would hold most ladder starts where the
//! policy cannot win, and it forgets the end of the way (the start distribution keeps to
//! starts the policy wins sometimes but not always, as in reverse curriculum generation).
//!
//! Counting steps, not archive returns, keeps the rungs fine: a cell one return from the goal
//! can be a whole random walk (`env.explore_steps`) from it, further than the policy learns
//! to go in one move of the frontier.
//!
//! The frontier is always a rung with a cell the archive holds a state of: rungs can be
//! empty (a cell's count only ever drops, and the first counts found need not be
//! consecutive), and the archive drops states past `env.explore_cells`. A frontier on such
//! a rung would get no episodes to count and would never move again, so a frontier whose
//! rung loses its held cells falls to the highest rung below it that has one, and its
//! counts start afresh (they were for the rung above).
//!
//! Episodes from a rung last `env.max_steps`, not `env.explore_steps`: they are meant to
//! get to the goal.
//!
//! Each cell also counts the policy's episodes from it and their wins ([`CELL_WINDOW`]).
//! A rung's cells are far from alike (a cell beside the switch and one across the room
//! share a rung), so a rung's pooled rate hides cells the policy always or never wins.
//! With `env.explore_ladder_focus` a start is drawn in proportion to `p (1 - p)`, where
//! `p` is the cell's win rate with one win and one loss added: reverse curriculum
//! generation's "good starts", the cells the policy wins sometimes but not always, with
//! untried cells first (their `p` is one half).
//!
//! Like the archive, the ladder changes only between steps, in env order.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::archive::Cell;

/// Frontier episodes counted before the frontier may move.
pub const MIN_TRIES: u32 = 16;

/// The success counts are halved when they reach this many tries, so an old run of
/// failures does not hold the frontier back for ever; a frontier this many tries in with
/// too few wins falls back a rung.
pub const WINDOW: u32 = 64;

/// A cell's counts of the policy's episodes from it are halved when they reach this many
/// tries, so they follow the policy as it learns.
pub const CELL_WINDOW: u32 = 32;

/// See the module docs.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Ladder {
    /// Per cell: the fewest steps to the goal shown from it.
    steps: BTreeMap<Cell, u32>,
    frontier: u32,
    /// The policy's episodes from the frontier rung (serialised as the two counts they
    /// were before they had a type, so snapshots keep their bytes).
    at_frontier: Tried,
    /// `env.explore_ladder_rung`, from the config (0 reads as 1).
    #[serde(skip)]
    width: u32,
    /// Per cell: the policy's episodes from it and how many won ([`CELL_WINDOW`]). Left
    /// out of the serde form, which snapshot version 5 fixed; snapshots carry it after it
    /// ([`Ladder::tried`], [`Ladder::set_tried`]).
    #[serde(skip)]
    tried: BTreeMap<Cell, Tried>,
}

/// The policy's episodes from one ladder cell or from the frontier rung, and their wins
/// (halved past a window: [`CELL_WINDOW`], [`WINDOW`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tried {
    /// Episodes started there.
    pub tries: u32,
    /// Of those, episodes that gained an instrument.
    pub wins: u32,
}

impl Tried {
    /// Counts one more episode.
    fn add(&mut self, won: bool) {
        self.tries += 1;
        self.wins += u32::from(won);
    }

    /// Halves both counts once `window` tries are counted.
    fn halve_at(&mut self, window: u32) {
        if self.tries >= window {
            (self.tries, self.wins) = (self.tries / 2, self.wins / 2);
        }
    }

    /// Reverse curriculum generation's weight, `p (1 - p)` with `p = (wins + 1) / (tries +
    /// 2)`, scaled to an integer (untried: 2^20).
    fn weight(self) -> u64 {
        let (w, t) = (u64::from(self.wins) + 1, u64::from(self.tries) + 2);
        ((w * (t - w)) << 22) / (t * t)
    }
}

/// How far the ladder reaches, for metrics and summaries (rungs are
/// `env.explore_ladder_rung` steps wide).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LadderStats {
    /// Cells on some rung.
    pub cells: u64,
    /// The highest rung (0 without cells).
    pub top: u64,
    /// The rung the policy's ladder starts are drawn up to.
    pub frontier: u64,
    /// The policy's episodes from the frontier rung counted so far (the counts are halved
    /// past a window and reset when the frontier moves).
    pub frontier_tries: u64,
    /// How many of them gained an instrument.
    pub frontier_wins: u64,
}

impl std::ops::AddAssign for LadderStats {
    fn add_assign(&mut self, o: Self) {
        self.cells += o.cells;
        self.top = self.top.max(o.top);
        self.frontier = self.frontier.max(o.frontier);
        self.frontier_tries += o.frontier_tries;
        self.frontier_wins += o.frontier_wins;
    }
}

/// What one finished episode tells the ladder.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Report {
    /// Cells it stood on with the steps to the goal it showed from them ([`Ladder::found`]).
    pub(crate) found: Vec<(Cell, u32)>,
    /// The cell and rung it was drawn from, for a policy's ladder start.
    pub(crate) climbed: Option<(Cell, u32)>,
    /// It gained an instrument.
    pub(crate) won: bool,
}

impl Ladder {
    /// An empty ladder with rungs `width` steps wide (`env.explore_ladder_rung`).
    pub fn new(width: u32) -> Self {
        Self {
            width,
            ..Self::default()
        }
    }

    /// Sets the rung width after a restore (the snapshot leaves it to the config).
    pub(crate) fn set_width(&mut self, width: u32) {
        self.width = width;
    }

    /// Steps per rung (`env.explore_ladder_rung`).
    pub fn width(&self) -> u32 {
        self.width.max(1)
    }

    /// The policy's episodes from `cell` so far, if any.
    pub fn tried(&self, cell: Cell) -> Option<Tried> {
        self.tried.get(&cell).copied()
    }

    /// Every cell the policy's episodes were drawn from, with their counts.
    pub(crate) fn all_tried(&self) -> &BTreeMap<Cell, Tried> {
        &self.tried
    }

    /// Restores [`Ladder::all_tried`] from a snapshot.
    pub(crate) fn set_tried(&mut self, tried: BTreeMap<Cell, Tried>) {
        self.tried = tried;
    }

    /// Every counted cell with its fewest steps to the goal, in cell order.
    pub fn cells(&self) -> impl Iterator<Item = (Cell, u32)> + '_ {
        self.steps.iter().map(|(&c, &n)| (c, n))
    }

    /// No cell on any rung yet.
    pub fn is_empty(&self) -> bool {
        self.steps.is_empty()
    }

    /// The fewest steps to the goal shown from `cell`, if any.
    pub fn steps(&self, cell: Cell) -> Option<u32> {
        self.steps.get(&cell).copied()
    }

    /// The rung of `cell`, if it is on the ladder.
    pub fn rung(&self, cell: Cell) -> Option<u32> {
        self.steps(cell).map(|n| self.rung_of(n))
    }

    /// The rung of a cell `steps` from the goal.
    pub fn rung_of(&self, steps: u32) -> u32 {
        steps / self.width.max(1)
    }

    /// What an episode shows: for each cell of its `path` (where it stood before its first
    /// step and after each one, `None` where it was not in a cell), the fewest steps to the
    /// goal from there, by this episode's own steps to its end when it `won` with its last
    /// step, or on to a cell the ladder counts, or on to a later visit of the same cell (a
    /// loop in the path is no part of the way). The last entry of a won episode's path is
    /// the goal itself and is not counted. Cells with no way to the goal shown are left out;
    /// each cell is listed once, by its last visit, from the end of the path back.
    pub(crate) fn found(&self, path: &[Option<Cell>], won: bool) -> Vec<(Cell, u32)> {
        let (mut to_goal, counted) = match path.split_last() {
            Some((_, before)) if won => (Some(0), before),
            _ => (None, path),
        };
        let mut found: Vec<(Cell, u32)> = Vec::new();
        // Where each cell is in `found`.
        let mut index: BTreeMap<Cell, usize> = BTreeMap::new();
        for c in counted.iter().rev() {
            // One step further from the goal than the entry after it.
            to_goal = to_goal.map(|n: u32| n + 1);
            if let Some(c) = *c {
                let here = index.get(&c).map(|&i| found[i].1);
                if let Some(n) = [self.steps(c), here].into_iter().flatten().min() {
                    to_goal = Some(to_goal.map_or(n, |g| g.min(n)));
                }
                if let Some(n) = to_goal {
                    match index.get(&c) {
                        Some(&i) => found[i].1 = found[i].1.min(n),
                        None => {
                            index.insert(c, found.len());
                            found.push((c, n));
                        }
                    }
                }
            }
        }
        found
    }

    /// Cells, top rung and frontier, with the cells `usable` accepts as starts.
    pub fn stats(&self, usable: impl Fn(Cell) -> bool) -> LadderStats {
        LadderStats {
            cells: self.steps.len() as u64,
            top: u64::from(self.rung_of(self.steps.values().copied().max().unwrap_or(0))),
            frontier: u64::from(self.front(&usable).unwrap_or(0)),
            frontier_tries: u64::from(self.at_frontier.tries),
            frontier_wins: u64::from(self.at_frontier.wins),
        }
    }

    /// The frontier in use: the highest rung up to the one cleared so far that has a cell
    /// `usable` accepts.
    fn front(&self, usable: impl Fn(Cell) -> bool) -> Option<u32> {
        self.usable_rungs(usable)
            .filter(|&r| r <= self.frontier)
            .max()
    }

    /// The rung of every cell `usable` accepts.
    fn usable_rungs<'a>(
        &'a self,
        usable: impl Fn(Cell) -> bool + 'a,
    ) -> impl Iterator<Item = u32> + 'a {
        self.steps
            .iter()
            .filter(move |&(&c, _)| usable(c))
            .map(|(_, &n)| self.rung_of(n))
    }

    /// Picks a start from the uniform `draw` among the cells `usable` accepts (the archive
    /// holds their states): half the time on the frontier, else on any rung up to it;
    /// uniformly, or with `focus` weighted by [`Tried`]'s `p (1 - p)` (module docs).
    /// `None` when no cell is usable.
    pub(crate) fn choose(
        &self,
        draw: u64,
        focus: bool,
        usable: impl Fn(Cell) -> bool,
    ) -> Option<(Cell, u32)> {
        let open: Vec<(Cell, u32)> = self
            .steps
            .iter()
            .map(|(&c, &n)| (c, self.rung_of(n)))
            .filter(|&(c, r)| r <= self.frontier && usable(c))
            .collect();
        let top = open.iter().map(|&(_, r)| r).max()?;
        let pool: Vec<(Cell, u32)> = if draw & 1 == 0 {
            open.into_iter().filter(|&(_, r)| r == top).collect()
        } else {
            open
        };
        if !focus {
            return Some(pool[((draw >> 1) % pool.len() as u64) as usize]);
        }
        let weights: Vec<u64> = pool
            .iter()
            .map(|(c, _)| self.tried(*c).unwrap_or_default().weight())
            .collect();
        // Every weight is positive (p is never 0 or 1), so some cell's share holds `at`.
        let at = (draw >> 1) % weights.iter().sum::<u64>();
        let mut below = 0;
        pool.into_iter().zip(weights).find_map(|(start, w)| {
            below += w;
            (at < below).then_some(start)
        })
    }

    /// Applies one finished episode's report; `pass` is the frontier's win rate that moves
    /// it back (`env.explore_ladder_pass`), `usable` says which cells can be started from.
    pub(crate) fn record(&mut self, r: Report, pass: f32, usable: impl Fn(Cell) -> bool) {
        for (cell, n) in r.found {
            let steps = self.steps.entry(cell).or_insert(n);
            *steps = (*steps).min(n);
        }
        let front = self.front(&usable);
        // A frontier whose rung has lost its held cells falls to the rung in use and counts
        // afresh: the counts so far were for the rung above.
        if let Some(f) = front.filter(|&f| f != self.frontier) {
            self.frontier = f;
            self.at_frontier = Tried::default();
        }
        if let Some((cell, _)) = r.climbed {
            let t = self.tried.entry(cell).or_default();
            t.add(r.won);
            t.halve_at(CELL_WINDOW);
        }
        if r.climbed.is_some_and(|(_, rung)| Some(rung) == front) {
            let t = &mut self.at_frontier;
            t.add(r.won);
            let passed = f64::from(t.wins) >= f64::from(pass) * f64::from(t.tries);
            let failing = f64::from(t.wins) < f64::from(pass) / 4.0 * f64::from(t.tries);
            // The next rung back on a pass, the next one nearer the goal when failing.
            let moved = if t.tries >= MIN_TRIES && passed {
                self.usable_rungs(&usable)
                    .filter(|&r| Some(r) > front)
                    .min()
            } else if t.tries >= WINDOW && failing {
                self.usable_rungs(&usable)
                    .filter(|&r| Some(r) < front)
                    .max()
            } else {
                None
            };
            if let Some(rung) = moved {
                self.frontier = rung;
                self.at_frontier = Tried::default();
            } else {
                self.at_frontier.halve_at(WINDOW);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cell(x: u8) -> Cell {
        Cell {
            room: 0x2B,
            x,
            y: 1,
            keys: 0,
            instruments: 0,
            progress: 3,
        }
    }

    #[test]
    fn rungs_keep_their_lowest_and_the_frontier_moves_on_the_pass_rate() {
        const HALF: f32 = 0.5;
        let all = |_: Cell| true;
        let mut l = Ladder::default();
        assert!(l.choose(0, false, all).is_none());
        let report = |x, earned: Option<u32>, climbed: Option<u32>, won| Report {
            found: earned.map(|n| vec![(cell(x), n)]).unwrap_or_default(),
            climbed: climbed.map(|r| (cell(x), r)),
            won,
        };
        l.record(report(1, Some(0), None, true), HALF, all);
        l.record(report(2, Some(1), None, false), HALF, all);
        l.record(report(2, Some(3), None, false), HALF, all);
        assert_eq!(l.rung(cell(2)), Some(1), "the lowest rung stays");
        assert_eq!(l.stats(all).top, 1);
        // Frontier 0: only rung 0 is drawn, whatever the draw.
        for d in 0..8 {
            assert_eq!(l.choose(d, false, all), Some((cell(1), 0)));
        }
        assert_eq!(l.choose(0, false, |c| c != cell(1)), None, "no usable cell");
        // Fewer than half of MIN_TRIES won: the frontier stays.
        for i in 0..MIN_TRIES {
            l.record(report(1, Some(0), Some(0), i % 3 == 0), HALF, all);
        }
        let s = l.stats(all);
        assert_eq!((s.frontier, s.frontier_tries, s.frontier_wins), (0, 16, 6));
        // The same record passes a lower bar: one more loss, 6 of 17, moves it at 0.2.
        let mut low = l.clone();
        low.record(report(1, Some(0), Some(0), false), 0.2, all);
        let s = low.stats(all);
        assert_eq!((s.frontier, s.frontier_tries, s.frontier_wins), (1, 0, 0));
        // Wins from now on: the frontier moves once half of the counted tries won.
        let mut moved_after = 0;
        while l.stats(all).frontier == 0 {
            l.record(report(1, Some(0), Some(0), true), HALF, all);
            moved_after += 1;
            assert!(moved_after < WINDOW, "the frontier never moved");
        }
        assert_eq!(l.stats(all).frontier, 1);
        // Even draws take the frontier rung, odd ones any rung up to it.
        assert_eq!(l.choose(0, false, all), Some((cell(2), 1)));
        let any: Vec<_> = (0..8)
            .filter_map(|d| l.choose(2 * d + 1, false, all))
            .collect();
        assert!(any.contains(&(cell(1), 0)) && any.contains(&(cell(2), 1)));
        // Not past the top rung, however many wins.
        for _ in 0..2 * MIN_TRIES {
            l.record(report(2, Some(1), Some(1), true), HALF, all);
        }
        assert_eq!(l.stats(all).frontier, 1);
        // Episodes not drawn from the frontier do not count for it.
        let (before, cell_before) = (l.stats(all), l.tried(cell(1)).unwrap());
        l.record(report(1, None, Some(0), true), HALF, all);
        l.record(report(1, None, None, true), HALF, all);
        assert_eq!(l.stats(all), before);
        // The cell counts the one drawn from it, though.
        let t = l.tried(cell(1)).unwrap();
        assert_eq!(
            t.tries % (CELL_WINDOW / 2),
            (cell_before.tries + 1) % (CELL_WINDOW / 2)
        );
    }

    #[test]
    fn cells_count_their_episodes_and_focus_draws_those_won_sometimes() {
        let all = |_: Cell| true;
        let mut l = Ladder::new(4);
        // Four cells on rung 0; the policy always wins from 1, never from 2, half the time
        // from 3, and never started from 4.
        for x in 1..=4 {
            l.record(
                Report {
                    found: vec![(cell(x), u32::from(x) - 1)],
                    climbed: None,
                    won: false,
                },
                0.2,
                all,
            );
        }
        let from = |x, won| Report {
            found: Vec::new(),
            climbed: Some((cell(x), 0)),
            won,
        };
        for i in 0..20 {
            l.record(from(1, true), 0.2, all);
            l.record(from(2, false), 0.2, all);
            l.record(from(3, i % 2 == 0), 0.2, all);
        }
        let tried = |tries, wins| Some(Tried { tries, wins });
        assert_eq!(l.tried(cell(1)), tried(20, 20));
        assert_eq!(l.tried(cell(2)), tried(20, 0));
        assert_eq!(l.tried(cell(3)), tried(20, 10));
        assert_eq!(l.tried(cell(4)), None);
        // Past the window the counts halve.
        for _ in 20..CELL_WINDOW {
            l.record(from(2, false), 0.2, all);
        }
        assert_eq!(l.tried(cell(2)), tried(CELL_WINDOW / 2, 0));
        for _ in 0..12 {
            l.record(from(2, false), 0.2, all);
        }
        // p (1 - p): a half for 3 (10 of 20) and 4 (untried), 21/22 and 1/30 for 1 and 2.
        assert_eq!(Tried::default().weight(), 1 << 20);
        assert_eq!(l.tried(cell(3)).unwrap().weight(), 1 << 20);
        let draws = |focus| {
            let mut n = [0u32; 5];
            for i in 0..4000 {
                let (c, rung) = l.choose(crate::derive_seed(9, &[i]), focus, all).unwrap();
                assert_eq!(rung, 0);
                n[usize::from(c.x)] += 1;
            }
            n
        };
        let [_, always, never, half, untried] = draws(true);
        // Expected 43%, 7.4%, 3.1% and 43% shares of the 4000.
        assert!(half > 1500 && untried > 1500, "{half} {untried}");
        assert!(
            (150..450).contains(&always) && never < 250,
            "{always} {never}"
        );
        let uniform = draws(false);
        assert!(
            uniform[1..].iter().all(|&n| (850..1150).contains(&n)),
            "{uniform:?}"
        );
    }

    #[test]
    fn the_frontier_skips_empty_rungs_and_cells_without_a_state() {
        let all = |_: Cell| true;
        let report = |x, earned: Option<u32>, climbed: Option<u32>, won| Report {
            found: earned.map(|n| vec![(cell(x), n)]).unwrap_or_default(),
            climbed: climbed.map(|r| (cell(x), r)),
            won,
        };
        // Rungs 0, 3 and 5: the first rungs found need not be consecutive.
        let mut l = Ladder::default();
        l.record(report(1, Some(0), None, true), 0.5, all);
        l.record(report(4, Some(3), None, false), 0.5, all);
        l.record(report(6, Some(5), None, false), 0.5, all);
        for _ in 0..MIN_TRIES {
            l.record(report(1, None, Some(0), true), 0.5, all);
        }
        assert_eq!(l.stats(all).frontier, 3, "rungs 1 and 2 hold no cell");
        assert_eq!(l.choose(0, false, all), Some((cell(4), 3)));
        // The frontier's cell loses its state: the frontier in use is the rung below with
        // one, its episodes count, and passing there moves to the next rung with one.
        let stateless = |c: Cell| c != cell(4);
        assert_eq!(l.stats(stateless).frontier, 0);
        assert_eq!(l.choose(0, false, stateless), Some((cell(1), 0)));
        for _ in 0..MIN_TRIES {
            l.record(report(1, None, Some(0), true), 0.5, stateless);
        }
        assert_eq!(l.stats(stateless).frontier, 5);
        assert_eq!(l.choose(0, false, stateless), Some((cell(6), 5)));
        // Too few wins over a window: the frontier falls back to the next rung down with
        // a held cell (3 has none here), and not below rung 0.
        for i in 0..WINDOW {
            l.record(report(6, None, Some(5), i == 0), 0.2, stateless);
        }
        let s = l.stats(stateless);
        assert_eq!(
            (s.frontier, s.frontier_tries),
            (0, 0),
            "1 of 64 is under 0.2 / 4"
        );
        for _ in 0..2 * WINDOW {
            l.record(report(1, None, Some(0), false), 0.2, stateless);
        }
        assert_eq!(l.stats(stateless).frontier, 0);
        // Enough wins (4 of 64, over 0.2 / 4 of them) keep it there; the counts halve.
        let mut k = Ladder::default();
        k.record(report(1, Some(0), None, true), 0.2, all);
        k.record(report(4, Some(1), None, false), 0.2, all);
        k.frontier = 1;
        for i in 0..WINDOW {
            k.record(report(4, None, Some(1), i % 16 == 0), 0.2, all);
        }
        let s = k.stats(all);
        assert_eq!((s.frontier, s.frontier_tries, s.frontier_wins), (1, 32, 2));
        // Counts are for one rung. The frontier's cell loses its state after 8 losses on
        // rung 3: the frontier falls to rung 0 and counts afresh, and it stays there when
        // the state is back, so rung 0's win does not count for rung 3.
        let mut c = Ladder::default();
        c.record(report(1, Some(0), None, true), 0.5, all);
        c.record(report(4, Some(3), None, false), 0.5, all);
        c.frontier = 3;
        for _ in 0..8 {
            c.record(report(4, None, Some(3), false), 0.5, all);
        }
        let s = c.stats(all);
        assert_eq!((s.frontier, s.frontier_tries, s.frontier_wins), (3, 8, 0));
        c.record(report(1, None, Some(0), true), 0.5, stateless);
        let s = c.stats(all);
        assert_eq!((s.frontier, s.frontier_tries, s.frontier_wins), (0, 1, 1));
    }

    #[test]
    fn an_episode_shows_the_steps_to_the_goal_from_every_cell_it_stood_on() {
        let mut l = Ladder::new(2);
        // Stood on 8, no cell twice, 1, 2, no cell, 7, 2 again, 3, then the goal. Where
        // the episode was in no cell nothing is counted; the loop from cell 2 back to
        // cell 2 is cut, so cell 1 is 3 steps from the goal (not 6) and cell 8 is 6 (not
        // 9); cell 2 is listed once, with the fewest steps.
        let won = [
            Some(cell(8)),
            None,
            None,
            Some(cell(1)),
            Some(cell(2)),
            None,
            Some(cell(7)),
            Some(cell(2)),
            Some(cell(3)),
            Some(cell(9)),
        ];
        let found = l.found(&won, true);
        assert_eq!(
            found,
            vec![
                (cell(3), 1),
                (cell(2), 2),
                (cell(7), 3),
                (cell(1), 3),
                (cell(8), 6)
            ]
        );
        assert!(
            l.found(&won, false).is_empty(),
            "no goal, no cell counted yet"
        );
        l.record(
            Report {
                found,
                climbed: None,
                won: true,
            },
            0.2,
            |_| true,
        );
        assert_eq!(
            [1, 2, 3, 7, 8, 9].map(|x| l.steps(cell(x))),
            [Some(3), Some(2), Some(1), Some(3), Some(6), None]
        );
        // Rungs are 2 steps wide.
        assert_eq!(
            [1, 2, 3, 8].map(|x| l.rung(cell(x))),
            [Some(1), Some(1), Some(0), Some(3)]
        );
        assert_eq!(l.stats(|_| true).top, 3);
        // Reaching a counted cell shows the way on from there: 3 steps to cell 2 (2 from
        // the goal), and cell 8, passed on the way, is shown 4, fewer than its 6.
        let on = [
            Some(cell(4)),
            Some(cell(8)),
            Some(cell(5)),
            Some(cell(2)),
            Some(cell(6)),
        ];
        assert_eq!(
            l.found(&on, false),
            vec![(cell(2), 2), (cell(5), 3), (cell(8), 4), (cell(4), 5)]
        );
        // An earlier visit can show a cell nearer than its last one: 5, 3, 5, then two
        // steps in no cell to the goal shows 5 at 3 from its last visit, but at 2 from its
        // first, one step before cell 3 (1 from the goal).
        let back = [
            Some(cell(5)),
            Some(cell(3)),
            Some(cell(5)),
            None,
            None,
            Some(cell(9)),
        ];
        assert_eq!(l.found(&back, true), vec![(cell(5), 2), (cell(3), 1)]);
        assert!(l.found(&[], true).is_empty());
    }
}

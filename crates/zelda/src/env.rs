//! One environment: a Game Boy running the game, stepped one agent action at a time.

use gameboy::{Buttons, GameBoy};
use serde::{Deserialize, Serialize};

use crate::action::ActionSet;
use crate::config::{EnvConfig, RewardConfig};
use crate::obs::{EpisodeProgress, FrameStack};
use crate::reward::{RewardBreakdown, RewardTracker};
use crate::state::{GameState, Memory};

impl Memory for GameBoy {
    fn peek(&self, addr: u16) -> u8 {
        GameBoy::peek(self, addr)
    }
}

/// Why an environment could not be built or reset.
#[derive(Debug, thiserror::Error)]
pub enum EnvError {
    /// The ROM was rejected by the emulator.
    #[error("cartridge rejected: {0}")]
    Cartridge(#[from] gameboy::Error),
    /// The start state does not load (wrong ROM, version or corrupted).
    #[error("start state rejected: {0}")]
    StartState(#[from] gameboy::StateError),
    /// The cartridge never reached normal play on its own.
    #[error(
        "the cartridge did not reach normal play (DB95 = 0x0B) within {frames} frames after \
         power-on; games with a title/file menu (like Link's Awakening) need a start state \
         saved in play (--start-state)"
    )]
    BootTimeout {
        /// Frames waited.
        frames: u32,
    },
    /// A configuration value is out of range.
    #[error("invalid configuration: {0}")]
    Config(String),
}

/// Plays one agent action: holds its buttons for `press_frames` frames, releases them for
/// the rest of `frame_skip`, and renders only the last frame when asked. The environment and
/// segment replay share this function, so they cannot drift apart.
pub fn advance(gb: &mut GameBoy, buttons: Buttons, cfg: &EnvConfig, render_last: bool) {
    gb.set_buttons(buttons);
    let held = cfg.press_frames.min(cfg.frame_skip);
    let released = cfg.frame_skip - held;
    if released == 0 {
        gb.run_frames(held, render_last);
        return;
    }
    gb.run_frames(held, false);
    gb.set_buttons(Buttons::NONE);
    gb.run_frames(released, render_last);
}

/// SplitMix64: tiny, seedable, and good enough for reset jitter.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct SplitMix64(u64);

impl SplitMix64 {
    pub(crate) fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

/// The outcome of one step.
#[derive(Debug, Clone, Copy)]
pub struct StepResult {
    /// The heuristic reward, by component.
    pub reward: RewardBreakdown,
    /// The episode ended inside the game (death, goal reached).
    pub terminated: bool,
    /// The episode was cut by the step limit.
    pub truncated: bool,
}

impl StepResult {
    /// Either end.
    pub fn done(&self) -> bool {
        self.terminated || self.truncated
    }
}

/// Everything that makes an environment continue exactly where it was (checkpoints and
/// resumable runs): emulator state, observation stack, reward memory, counters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EnvSnapshot {
    /// `GameBoy::save_state` bytes.
    pub emulator: Vec<u8>,
    rng: SplitMix64,
    state: GameState,
    rooms: Vec<u16>,
    cells: Vec<((u16, u8, u8), u32)>,
    steps: u32,
    episode: u64,
    frames: FrameStack,
}

/// One Link's Awakening (or mini-zelda) environment.
pub struct ZeldaEnv {
    gb: GameBoy,
    config: EnvConfig,
    rewards: RewardConfig,
    actions: ActionSet,
    start_state: Vec<u8>,
    rng: SplitMix64,
    state: GameState,
    /// [`crate::state::world_progress`] when `state` was read.
    progress: u32,
    tracker: RewardTracker,
    steps: u32,
    /// This episode's step limit: `max_steps`, or `explore_steps` for one started by
    /// [`ZeldaEnv::reset_to`].
    step_limit: u32,
    episode: u64,
    frames: FrameStack,
}

/// The Game Boy `config.model` asks for, with `rom` inserted.
fn machine(rom: Vec<u8>, config: &EnvConfig) -> Result<GameBoy, gameboy::Error> {
    let header = gameboy::Header::parse(&rom)?;
    GameBoy::with_model(rom, config.model.resolve(&header))
}

impl ZeldaEnv {
    /// Powers the cartridge on and runs it until normal play; resets return to that moment.
    pub fn new(rom: Vec<u8>, config: EnvConfig, rewards: RewardConfig) -> Result<Self, EnvError> {
        config.validate().map_err(EnvError::Config)?;
        rewards.validate().map_err(EnvError::Config)?;
        let mut gb = machine(rom, &config)?;
        let mut frames = 0;
        while !GameState::read(&gb).in_play() {
            if frames >= config.boot_timeout_frames {
                return Err(EnvError::BootTimeout { frames });
            }
            gb.run_frame(false);
            frames += 1;
        }
        let start_state = gb.save_state();
        Ok(Self::assemble(gb, config, rewards, start_state))
    }

    /// Resets always return to `start_state` (a save state of this ROM, e.g. taken in play
    /// after the file menu of the real game).
    pub fn with_start_state(
        rom: Vec<u8>,
        start_state: Vec<u8>,
        config: EnvConfig,
        rewards: RewardConfig,
    ) -> Result<Self, EnvError> {
        config.validate().map_err(EnvError::Config)?;
        rewards.validate().map_err(EnvError::Config)?;
        let mut gb = machine(rom, &config)?;
        gb.load_state(&start_state)?;
        Ok(Self::assemble(gb, config, rewards, start_state))
    }

    fn assemble(
        gb: GameBoy,
        config: EnvConfig,
        rewards: RewardConfig,
        start_state: Vec<u8>,
    ) -> Self {
        let actions = ActionSet::standard(config.start_select);
        let (state, progress) = GameState::read_with_progress(&gb);
        let frames = FrameStack::new(config.frame_stack);
        Self {
            gb,
            actions,
            start_state,
            rng: SplitMix64(0),
            state,
            progress,
            tracker: RewardTracker::default(),
            steps: 0,
            step_limit: config.max_steps,
            episode: 0,
            frames,
            config,
            rewards,
        }
    }

    /// Starts a new episode: back to the start state, then a seeded 1..=1+reset_noop_max
    /// frames without input so episodes diverge.
    pub fn reset(&mut self, seed: u64) {
        self.gb
            .load_state(&self.start_state)
            .expect("the start state loaded once already and cannot stop loading");
        self.begin_episode(seed);
        self.step_limit = self.config.max_steps;
    }

    /// Starts a new episode from `state` (a save state this environment's machine took,
    /// e.g. one kept by an exploration archive), then waits seeded frames as [`reset`] does.
    /// The episode lasts at most `env.explore_steps` steps. On error the environment is
    /// unchanged.
    ///
    /// [`reset`]: ZeldaEnv::reset
    pub fn reset_to(&mut self, state: &[u8], seed: u64) -> Result<(), EnvError> {
        self.gb.load_state(state)?;
        self.begin_episode(seed);
        self.set_explore_limit(true);
        Ok(())
    }

    /// Whether [`ZeldaEnv::reset_to`] would accept `state`; the environment is unchanged.
    pub fn check_state(&mut self, state: &[u8]) -> Result<(), EnvError> {
        Ok(self.gb.check_state(state)?)
    }

    /// Sets this episode's step limit: `env.explore_steps` when `explore`, else
    /// `max_steps`. [`ZeldaEnv::restore`] sets `max_steps`; whoever started the episode
    /// from an archive sets it back.
    pub fn set_explore_limit(&mut self, explore: bool) {
        self.step_limit = if explore {
            self.config.explore_steps.min(self.config.max_steps)
        } else {
            self.config.max_steps
        };
    }

    fn begin_episode(&mut self, seed: u64) {
        self.rng = SplitMix64(seed);
        let noop = 1 + (self.rng.next() % (u64::from(self.config.reset_noop_max) + 1)) as u32;
        self.gb.set_buttons(Buttons::NONE);
        self.gb.run_frames(noop, true);
        (self.state, self.progress) = GameState::read_with_progress(&self.gb);
        self.tracker.reset(&self.state);
        self.frames.fill(self.gb.frame());
        self.steps = 0;
        self.episode += 1;
    }

    /// Plays the action at policy index `action` (see [`ZeldaEnv::actions`]).
    ///
    /// # Panics
    /// If `action` is out of range: the policy and the action set disagree, a bug.
    pub fn step(&mut self, action: usize) -> StepResult {
        let act = self.actions.get(action).unwrap_or_else(|| {
            panic!(
                "action index {action} out of range 0..{}",
                self.actions.len()
            )
        });
        advance(&mut self.gb, act.buttons(), &self.config, true);
        self.frames.push(self.gb.frame());
        let prev = self.state;
        let prev_progress = self.progress;
        (self.state, self.progress) = GameState::read_with_progress(&self.gb);
        self.steps += 1;
        let gained = self.progress.saturating_sub(prev_progress);
        let reward = self.tracker.step(&prev, &self.state, gained, &self.rewards);
        let died = self.state.passed_out() && self.config.end_on_death;
        let goal = self
            .config
            .end_on_instruments
            .is_some_and(|n| self.state.instrument_count() >= n);
        let terminated = died || goal;
        StepResult {
            reward,
            terminated,
            truncated: !terminated && self.steps >= self.step_limit,
        }
    }

    /// Writes the observation: stacked frames (oldest first) and the feature vector.
    pub fn write_observation(&self, frames: &mut [u8], features: &mut [f32]) {
        self.frames.write_to(frames);
        let progress = EpisodeProgress {
            steps: self.steps,
            max_steps: self.step_limit,
            rooms_this_episode: self.tracker.rooms_seen(),
            cell_visits: self.tracker.cell_visits(&self.state),
            world_progress: self.progress,
        };
        crate::obs::write_features(&self.state, &progress, &self.gb, features);
    }

    /// The decoded state after the last step.
    pub fn state(&self) -> &GameState {
        &self.state
    }

    /// The emulator (for screens and save states).
    pub fn gameboy(&self) -> &GameBoy {
        &self.gb
    }

    /// The action set the policy indexes.
    pub fn actions(&self) -> &ActionSet {
        &self.actions
    }

    /// The environment settings.
    pub fn config(&self) -> &EnvConfig {
        &self.config
    }

    /// The reward weights.
    pub fn reward_config(&self) -> &RewardConfig {
        &self.rewards
    }

    /// Steps taken in the current episode.
    pub fn steps(&self) -> u32 {
        self.steps
    }

    /// Episodes started so far (1 after the first reset).
    pub fn episode(&self) -> u64 {
        self.episode
    }

    /// Times Link has stood on his current (room, cell) this episode, this step included.
    pub fn current_cell_visits(&self) -> u32 {
        self.tracker.cell_visits(&self.state)
    }

    /// The world progress ([`crate::state::world_progress`]) as of the last step or reset.
    pub fn progress(&self) -> u32 {
        self.progress
    }

    /// Distinct rooms seen this episode.
    pub fn rooms_this_episode(&self) -> u32 {
        self.tracker.rooms_seen()
    }

    /// Captures everything needed to continue this environment exactly.
    pub fn snapshot(&self) -> EnvSnapshot {
        let (rooms, cells) = self.tracker.to_parts();
        EnvSnapshot {
            emulator: self.gb.save_state(),
            rng: self.rng.clone(),
            state: self.state,
            rooms,
            cells,
            steps: self.steps,
            episode: self.episode,
            frames: self.frames.clone(),
        }
    }

    /// Continues from a snapshot taken of an environment with the same ROM and settings.
    pub fn restore(&mut self, snap: &EnvSnapshot) -> Result<(), EnvError> {
        if snap.frames.len() != self.config.frame_stack {
            return Err(EnvError::Config(format!(
                "snapshot stacks {} frames, this env {}",
                snap.frames.len(),
                self.config.frame_stack
            )));
        }
        self.gb.load_state(&snap.emulator)?;
        self.rng = snap.rng.clone();
        self.state = snap.state;
        // Not in the snapshot: the machine's memory holds it, as it was when `state` was read.
        self.progress = crate::state::world_progress(&self.gb);
        self.tracker = RewardTracker::from_parts(snap.rooms.clone(), snap.cells.clone());
        self.steps = snap.steps;
        self.step_limit = self.config.max_steps;
        self.episode = snap.episode;
        self.frames = snap.frames.clone();
        Ok(())
    }

    /// The save state resets return to.
    pub fn start_state(&self) -> &[u8] {
        &self.start_state
    }
}

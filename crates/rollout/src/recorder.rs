//! Cutting one environment's trajectory into segments as it plays.

use episodes::segment::{EpisodeEnd, FORMAT_NAME, FORMAT_VERSION, Keyframe, Segment, SegmentMeta};
use serde::{Deserialize, Serialize};
use zelda::{GameState, RewardConfig, ZeldaEnv};

/// Segment length and keyframe spacing (the `[segments]` table of a config file).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RecorderConfig {
    /// Steps per segment (a segment also ends where its episode ends).
    pub steps: u32,
    /// A keyframe every this many steps (plus the last step of each segment).
    pub keyframe_interval: u32,
}

impl Default for RecorderConfig {
    fn default() -> Self {
        Self {
            steps: 512,
            keyframe_interval: 32,
        }
    }
}

impl RecorderConfig {
    /// Checks ranges; the message names the field.
    pub fn validate(&self) -> Result<(), String> {
        if self.steps == 0 {
            return Err("segments.steps must be at least 1".into());
        }
        if self.keyframe_interval == 0 {
            return Err("segments.keyframe_interval must be at least 1".into());
        }
        Ok(())
    }
}

/// What every segment of a worker shares.
#[derive(Debug, Clone)]
pub struct SegmentContext {
    /// Run id.
    pub run: String,
    /// Training burst.
    pub burst: u32,
    /// Worker id.
    pub worker: u32,
    /// Policy name recorded in the segments.
    pub policy: String,
    /// Cartridge SHA-1 (hex).
    pub cartridge_sha1: String,
    /// Cartridge title.
    pub cartridge_title: String,
    /// Hash of the env + reward settings.
    pub config_hash: String,
}

/// The segment being recorded for one environment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Recorder {
    env_id: u32,
    next_index: u64,
    global_step: u64,
    current: Option<Open>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Open {
    index: u64,
    episode: u64,
    episode_step: u32,
    global_step: u64,
    start_state: Vec<u8>,
    start: GameState,
    actions: Vec<u8>,
    rewards: Vec<f32>,
    states: Vec<GameState>,
    keyframes: Vec<Keyframe>,
}

impl Recorder {
    /// A recorder for environment `env_id`, numbering segments from `first_index` and env
    /// steps from `global_step` (non-zero when a run resumes).
    pub(crate) fn new(env_id: u32, first_index: u64, global_step: u64) -> Self {
        Self {
            env_id,
            next_index: first_index,
            global_step,
            current: None,
        }
    }

    /// Records the step just taken by `env` (which chose `action`); returns the segment when
    /// it is complete (full, or the episode ended).
    #[allow(clippy::too_many_arguments)] // one call site, each argument a distinct fact of the step
    pub(crate) fn record(
        &mut self,
        env: &ZeldaEnv,
        prev_state: Option<(&[u8], GameState)>,
        action: usize,
        rewards: &[f32],
        ended: Option<EpisodeEnd>,
        cfg: &RecorderConfig,
        ctx: &SegmentContext,
    ) -> Option<Segment> {
        let open = self.current.get_or_insert_with(|| {
            let (state_bytes, start) = prev_state.expect("a new segment starts from a saved state");
            let index = self.next_index;
            self.next_index += 1;
            Open {
                index,
                episode: env.episode(),
                episode_step: env.steps() - 1,
                global_step: self.global_step,
                start_state: state_bytes.to_vec(),
                start,
                actions: Vec::with_capacity(cfg.steps as usize),
                rewards: Vec::with_capacity(cfg.steps as usize * rewards.len()),
                states: Vec::with_capacity(cfg.steps as usize),
                keyframes: Vec::new(),
            }
        });
        self.global_step += 1;
        let step = open.actions.len() as u32;
        open.actions.push(action as u8);
        open.rewards.extend_from_slice(rewards);
        open.states.push(*env.state());
        let last = ended.is_some() || step + 1 == cfg.steps;
        if step.is_multiple_of(cfg.keyframe_interval) || last {
            open.keyframes.push(Keyframe {
                step,
                png: episodes::frames::encode_png(env.gameboy().frame()),
            });
        }
        if !last {
            return None;
        }
        Some(self.finish(env, ended, cfg, ctx))
    }

    /// Closes the open segment early (end of a burst), so no recorded step is lost; its
    /// last keyframe is the current screen, which is still the screen after its last step.
    pub(crate) fn flush(
        &mut self,
        env: &ZeldaEnv,
        cfg: &RecorderConfig,
        ctx: &SegmentContext,
    ) -> Option<Segment> {
        let open = self.current.as_mut()?;
        let last = open.actions.len() as u32 - 1;
        if open.keyframes.last().map(|k| k.step) != Some(last) {
            open.keyframes.push(Keyframe {
                step: last,
                png: episodes::frames::encode_png(env.gameboy().frame()),
            });
        }
        Some(self.finish(env, None, cfg, ctx))
    }

    fn finish(
        &mut self,
        env: &ZeldaEnv,
        ended: Option<EpisodeEnd>,
        cfg: &RecorderConfig,
        ctx: &SegmentContext,
    ) -> Segment {
        let open = self.current.take().expect("open segment");
        let keyframes: Vec<u32> = open.keyframes.iter().map(|k| k.step).collect();
        Segment {
            meta: SegmentMeta {
                format: FORMAT_NAME.into(),
                version: FORMAT_VERSION,
                run: ctx.run.clone(),
                burst: ctx.burst,
                worker: ctx.worker,
                env: self.env_id,
                index: open.index,
                episode: open.episode,
                episode_step: open.episode_step,
                global_step: open.global_step,
                steps: open.actions.len() as u32,
                ended,
                cartridge_sha1: ctx.cartridge_sha1.clone(),
                cartridge_title: ctx.cartridge_title.clone(),
                emulator_version: gameboy::VERSION.into(),
                config_hash: ctx.config_hash.clone(),
                env_config: env.config().clone(),
                actions: env
                    .actions()
                    .names()
                    .into_iter()
                    .map(String::from)
                    .collect(),
                reward_components: RewardConfig::NAMES.iter().map(|s| s.to_string()).collect(),
                keyframe_interval: cfg.keyframe_interval,
                keyframes,
                policy: ctx.policy.clone(),
                start: open.start,
            },
            start_state: open.start_state,
            actions: open.actions,
            rewards: open.rewards,
            states: open.states,
            keyframes: open.keyframes,
        }
    }

    /// Whether a segment is being recorded (the next step continues it).
    pub(crate) fn is_open(&self) -> bool {
        self.current.is_some()
    }
}

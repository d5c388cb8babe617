//! Environment and heuristic-reward settings (the `[env]` and `[reward]` tables of a
//! config file). Every field has a default, so an empty table is valid.

use serde::{Deserialize, Serialize};

/// How the environment steps and when episodes end.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EnvConfig {
    /// Frames per agent action (24 in PokemonRedExperiments and most LA bots).
    pub frame_skip: u32,
    /// Of those, frames the buttons are held before release (8 as PokemonRedExperiments).
    pub press_frames: u32,
    /// Observation frames stacked (one per agent step, newest last).
    pub frame_stack: usize,
    /// Truncate an episode after this many agent steps.
    pub max_steps: u32,
    /// End the episode when Link passes out.
    pub end_on_death: bool,
    /// End the episode once this many instruments are held (the goal of mini-zelda is 1).
    pub end_on_instruments: Option<u32>,
    /// Offer START and SELECT as actions.
    pub start_select: bool,
    /// At reset, wait a seeded random 0..=N frames before the first action, so that
    /// episodes from one start state diverge.
    pub reset_noop_max: u32,
    /// Frames the cartridge may take from power-on to normal play (DB95 = 0x0B) before reset
    /// gives up and asks for a start state.
    pub boot_timeout_frames: u32,
    /// Game Boy model: `dmg` (default; Link's Awakening DX runs on it too, in
    /// monochrome), `cgb`, or `auto` (CGB for a cartridge with the CGB flag). Left out of
    /// the serialized config when `dmg`, so config hashes of runs made before the field
    /// existed do not change.
    #[serde(skip_serializing_if = "HardwareChoice::is_dmg")]
    pub model: HardwareChoice,
    /// Share of resets (0..=1) that start from a state in the rollout worker's archive of
    /// reached cells instead of the start state (Go-Explore's "return, then explore").
    /// Left out of the serialized config when 0, so older config hashes do not change.
    #[serde(skip_serializing_if = "is_zero")]
    pub explore_resets: f32,
    /// Steps an episode started from the archive lasts at most (Go-Explore's exploration
    /// phase; capped by `max_steps`). Left out of the serialized config when 256.
    #[serde(skip_serializing_if = "is_default_explore_steps")]
    pub explore_steps: u32,
    /// Most states the archive keeps (about 3 KB each, carried in every snapshot and Ray
    /// chunk); beyond it the most explored cells give theirs up. Left out of the
    /// serialized config when 4096.
    #[serde(skip_serializing_if = "is_default_explore_cells")]
    pub explore_cells: u32,
    /// Side in pixels of the square areas a room is cut into for the archive's cells (16:
    /// one metatile, so a corridor one tile wide is a cell of its own; 32: 2x2 metatiles).
    /// Left out of the serialized config when 32.
    #[serde(skip_serializing_if = "is_default_explore_cell_px")]
    pub explore_cell_px: u8,
    /// Go-Explore's level weight, in (0, 1]: an archive cell whose world progress is `d`
    /// below the most any cell holds is chosen `explore_level_weight^d` times as often, so
    /// that once an episode gets past a switch, a chest or a locked door, most archive
    /// resets start past it (the Go-Explore paper used 0.1 for Montezuma's levels). 1
    /// leaves progress out of the choice. Left out of the serialized config when 1.
    #[serde(skip_serializing_if = "is_one")]
    pub explore_level_weight: f32,
    /// Extra environments per vector env that only explore: each episode starts from a
    /// cell the archive chooses (as `explore_resets = 1` would) and takes seeded uniformly
    /// random actions, so the archive grows the way Go-Explore's exploration phase grows
    /// it, whatever the policy has learned. Their steps train nothing, are recorded in no
    /// segment and count in no episode statistics but their own. Needs `explore_resets`
    /// above 0. Left out of the serialized config when 0.
    #[serde(skip_serializing_if = "is_zero_u32")]
    pub explorers: u32,
    /// Share (0..=1) of the policy's archive starts drawn from the goal ladder: the
    /// backward algorithm over the archive's cells (each cell counts the fewest steps to an
    /// instrument any episode showed from it; rung k: `k * explore_ladder_rung` to
    /// `(k + 1) * explore_ladder_rung - 1` steps), starting next to the goal and moving
    /// back a rung once `explore_ladder_pass` of the policy's episodes from the frontier
    /// win. Needs `explore_resets` above 0. Left out of the serialized config when 0.
    #[serde(skip_serializing_if = "is_zero")]
    pub explore_ladder: f32,
    /// Share (0..=1] of the policy's episodes from the ladder's frontier rung that must
    /// gain an instrument before the frontier moves one rung back; below a quarter of it
    /// over 64 tries, the frontier falls back a rung. Low by default: a frontier that
    /// waits for a high rate can stall for the whole run, and one that moved too early
    /// falls back. Left out of the serialized config when at its default.
    #[serde(skip_serializing_if = "is_default_ladder_pass")]
    pub explore_ladder_pass: f32,
    /// Steps to the goal per rung of the goal ladder (at least 1): how far back the
    /// frontier moves at a time. Left out of the serialized config when at its default.
    #[serde(skip_serializing_if = "is_default_ladder_rung")]
    pub explore_ladder_rung: u32,
    /// Draws the policy's ladder starts in proportion to `p (1 - p)`, `p` being the cell's
    /// win rate so far (one win and one loss added): most from the cells the policy wins
    /// sometimes but not always, and from untried ones, instead of uniformly over a rung's
    /// cells. Left out of the serialized config when off.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub explore_ladder_focus: bool,
}

/// The default `env.explore_ladder_pass`.
pub const DEFAULT_LADDER_PASS: f32 = 0.2;

/// The default `env.explore_ladder_rung`: a few steps (at the default frame skip, each a
/// cell or two of walking), so one move of the frontier asks little more of the policy.
pub const DEFAULT_LADDER_RUNG: u32 = 4;

fn is_default_ladder_rung(n: &u32) -> bool {
    *n == DEFAULT_LADDER_RUNG
}

fn is_default_ladder_pass(x: &f32) -> bool {
    *x == DEFAULT_LADDER_PASS
}

fn is_zero_u32(n: &u32) -> bool {
    *n == 0
}

fn is_one(x: &f32) -> bool {
    *x == 1.0
}

fn is_zero(x: &f32) -> bool {
    *x == 0.0
}

const DEFAULT_EXPLORE_STEPS: u32 = 256;

fn is_default_explore_steps(n: &u32) -> bool {
    *n == DEFAULT_EXPLORE_STEPS
}

const DEFAULT_EXPLORE_CELLS: u32 = 4096;

fn is_default_explore_cells(n: &u32) -> bool {
    *n == DEFAULT_EXPLORE_CELLS
}

const DEFAULT_EXPLORE_CELL_PX: u8 = 32;

fn is_default_explore_cell_px(n: &u8) -> bool {
    *n == DEFAULT_EXPLORE_CELL_PX
}

/// Which Game Boy runs the cartridge (`env.model`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HardwareChoice {
    /// CGB for a cartridge whose header has the CGB flag (0x0143), DMG otherwise.
    Auto,
    /// The original Game Boy.
    #[default]
    Dmg,
    /// Game Boy Color (colour for CGB cartridges, DMG compatibility mode for others).
    Cgb,
}

impl HardwareChoice {
    fn is_dmg(&self) -> bool {
        *self == HardwareChoice::Dmg
    }

    /// The model for a cartridge with this header.
    pub fn resolve(self, header: &gameboy::Header) -> gameboy::Model {
        match self {
            HardwareChoice::Auto => gameboy::Model::for_header(header),
            HardwareChoice::Dmg => gameboy::Model::Dmg,
            HardwareChoice::Cgb => gameboy::Model::Cgb,
        }
    }
}

impl Default for EnvConfig {
    fn default() -> Self {
        Self {
            frame_skip: 24,
            press_frames: 8,
            frame_stack: 4,
            max_steps: 2048,
            end_on_death: true,
            end_on_instruments: Some(1),
            start_select: false,
            reset_noop_max: 30,
            boot_timeout_frames: 3600,
            model: HardwareChoice::Dmg,
            explore_resets: 0.0,
            explore_steps: DEFAULT_EXPLORE_STEPS,
            explore_cells: DEFAULT_EXPLORE_CELLS,
            explore_cell_px: DEFAULT_EXPLORE_CELL_PX,
            explore_level_weight: 1.0,
            explorers: 0,
            explore_ladder: 0.0,
            explore_ladder_pass: DEFAULT_LADDER_PASS,
            explore_ladder_rung: DEFAULT_LADDER_RUNG,
            explore_ladder_focus: false,
        }
    }
}

impl EnvConfig {
    /// Checks ranges; the message names the field.
    pub fn validate(&self) -> Result<(), String> {
        if self.frame_skip == 0 {
            return Err("env.frame_skip must be at least 1".into());
        }
        if self.press_frames == 0 || self.press_frames > self.frame_skip {
            return Err(format!(
                "env.press_frames must be in 1..=frame_skip ({}), got {}",
                self.frame_skip, self.press_frames
            ));
        }
        if self.frame_stack == 0 || self.frame_stack > 16 {
            return Err(format!(
                "env.frame_stack must be in 1..=16, got {}",
                self.frame_stack
            ));
        }
        if self.max_steps == 0 {
            return Err("env.max_steps must be at least 1".into());
        }
        if self.explore_steps == 0 {
            return Err("env.explore_steps must be at least 1".into());
        }
        if self.explore_cells == 0 {
            return Err("env.explore_cells must be at least 1".into());
        }
        if !(8..=160).contains(&self.explore_cell_px) {
            return Err(format!(
                "env.explore_cell_px must be in 8..=160, got {}",
                self.explore_cell_px
            ));
        }
        // Not 0: no cell but those at the top could then be chosen, which is what a tiny
        // weight already does while still saying so by its value.
        if !(self.explore_level_weight > 0.0 && self.explore_level_weight <= 1.0) {
            return Err(format!(
                "env.explore_level_weight must be in (0, 1], got {}",
                self.explore_level_weight
            ));
        }
        if !(0.0..=1.0).contains(&self.explore_resets) {
            return Err(format!(
                "env.explore_resets must be in 0..=1, got {}",
                self.explore_resets
            ));
        }
        if self.explorers > 0 && self.explore_resets == 0.0 {
            return Err(format!(
                "env.explorers ({}) needs env.explore_resets above 0: explorers only grow \
                 the archive that the policy's episodes start from",
                self.explorers
            ));
        }
        if !(0.0..=1.0).contains(&self.explore_ladder) {
            return Err(format!(
                "env.explore_ladder must be in 0..=1, got {}",
                self.explore_ladder
            ));
        }
        if self.explore_ladder > 0.0 && self.explore_resets == 0.0 {
            return Err(format!(
                "env.explore_ladder ({}) needs env.explore_resets above 0: ladder starts are \
                 a share of the archive starts",
                self.explore_ladder
            ));
        }
        if !(self.explore_ladder_pass > 0.0 && self.explore_ladder_pass <= 1.0) {
            return Err(format!(
                "env.explore_ladder_pass must be in (0, 1], got {}",
                self.explore_ladder_pass
            ));
        }
        if self.explore_ladder_rung == 0 {
            return Err("env.explore_ladder_rung must be at least 1 step, got 0".into());
        }
        if self.explore_ladder_focus && self.explore_ladder == 0.0 {
            return Err(
                "env.explore_ladder_focus weights the goal ladder's starts, so it needs \
                 env.explore_ladder above 0"
                    .into(),
            );
        }
        if self.explorers > 1020 {
            return Err(format!(
                "env.explorers must be at most 1020, got {}",
                self.explorers
            ));
        }
        Ok(())
    }
}

/// Weights of the named heuristic reward components (a weight of 0 turns one off).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RewardConfig {
    /// Entering a room not yet seen this episode.
    pub new_room: f32,
    /// Standing on a (room, 16x16 cell) not yet seen this episode.
    pub new_cell: f32,
    /// Per rupee gained (spending is not penalised).
    pub rupee: f32,
    /// Per small key picked up (using one is not penalised).
    pub key: f32,
    /// Per heart of health change (negative when hurt).
    pub health: f32,
    /// Per instrument gained.
    pub instrument: f32,
    /// Once when Link passes out.
    pub death: f32,
    /// Every step (a small cost pushes towards progress).
    pub step: f32,
    /// Per step of world progress: a room-status bit other than "visited" newly set (a
    /// chest opened, a door unlocked, a switch pressed; in Link's Awakening also walls
    /// bombed and owls heard). PokemonRedExperiments rewards its event flags the same way.
    /// Left out of the serialised form at 0, so runs from before it existed (which had no
    /// such reward) keep their settings hash when resumed with `progress = 0`.
    #[serde(skip_serializing_if = "is_zero")]
    pub progress: f32,
    /// Run-long count bonus: every step pays `novelty / sqrt(1 + n)`, where `n` is how
    /// many steps of the whole run (not the episode) the rollout worker's exploration
    /// archive has seen end in this step's cell (room area, keys, instruments, world
    /// progress; see `env.explore_cell_px`). Unlike `new_cell`, which every episode pays
    /// again for the same tiles, it keeps paying only where the run has rarely been, such
    /// as a room's far corner or any place after a switch is pressed (a new progress
    /// makes every cell new). Needs the vector env's archive: a single env pays 0. Left
    /// out of the serialised form at 0 (the default: off).
    #[serde(skip_serializing_if = "is_zero")]
    pub novelty: f32,
}

impl Default for RewardConfig {
    fn default() -> Self {
        Self {
            new_room: 1.0,
            new_cell: 0.02,
            rupee: 0.05,
            key: 1.0,
            health: 0.25,
            instrument: 10.0,
            death: -1.0,
            step: -0.001,
            progress: 1.0,
            novelty: 0.0,
        }
    }
}

impl RewardConfig {
    /// Component names in the order [`RewardConfig::weights`] and reward breakdowns use.
    /// New components are appended, so that older snapshots extend with zeros.
    pub const NAMES: [&'static str; 10] = [
        "new_room",
        "new_cell",
        "rupee",
        "key",
        "health",
        "instrument",
        "death",
        "step",
        "progress",
        "novelty",
    ];

    /// The weights in [`RewardConfig::NAMES`] order.
    pub fn weights(&self) -> [f32; 10] {
        [
            self.new_room,
            self.new_cell,
            self.rupee,
            self.key,
            self.health,
            self.instrument,
            self.death,
            self.step,
            self.progress,
            self.novelty,
        ]
    }

    /// Checks that every weight is finite; the message names the field.
    pub fn validate(&self) -> Result<(), String> {
        for (name, w) in Self::NAMES.iter().zip(self.weights()) {
            if !w.is_finite() {
                return Err(format!("reward.{name} must be a finite number, got {w}"));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_validate() {
        EnvConfig::default().validate().unwrap();
        RewardConfig::default().validate().unwrap();
    }

    #[test]
    fn bad_values_name_the_field() {
        let cfg = EnvConfig {
            press_frames: 30,
            ..Default::default()
        };
        assert!(cfg.validate().unwrap_err().contains("env.press_frames"));
        for bad in [f32::NAN, -0.1, 1.5] {
            let cfg = EnvConfig {
                explore_resets: bad,
                ..Default::default()
            };
            assert!(cfg.validate().unwrap_err().contains("env.explore_resets"));
        }
        let cfg = EnvConfig {
            explore_cells: 0,
            ..Default::default()
        };
        assert!(cfg.validate().unwrap_err().contains("env.explore_cells"));
        for bad in [0, 7, 161] {
            let cfg = EnvConfig {
                explore_cell_px: bad,
                ..Default::default()
            };
            let err = cfg.validate().unwrap_err();
            assert!(err.contains("env.explore_cell_px"), "{err}");
        }
        for bad in [0.0, -0.5, 1.01, f32::NAN] {
            let cfg = EnvConfig {
                explore_level_weight: bad,
                ..Default::default()
            };
            let err = cfg.validate().unwrap_err();
            assert!(err.contains("env.explore_level_weight"), "{err}");
        }
        let cfg = EnvConfig {
            explorers: 4,
            ..Default::default()
        };
        let err = cfg.validate().unwrap_err();
        assert!(
            err.contains("env.explorers") && err.contains("env.explore_resets"),
            "{err}"
        );
        let cfg = EnvConfig {
            explorers: 1021,
            explore_resets: 0.5,
            ..Default::default()
        };
        assert!(cfg.validate().unwrap_err().contains("env.explorers"));
        for (explore_ladder, explore_resets) in [(f32::NAN, 0.5), (1.5, 0.5), (0.5, 0.0)] {
            let cfg = EnvConfig {
                explore_ladder,
                explore_resets,
                ..Default::default()
            };
            let err = cfg.validate().unwrap_err();
            assert!(err.contains("env.explore_ladder"), "{err}");
        }
        for explore_ladder_pass in [0.0, -0.1, 1.5, f32::NAN] {
            let cfg = EnvConfig {
                explore_ladder_pass,
                ..Default::default()
            };
            let err = cfg.validate().unwrap_err();
            assert!(err.contains("env.explore_ladder_pass"), "{err}");
        }
        let cfg = EnvConfig {
            explore_ladder_rung: 0,
            ..Default::default()
        };
        assert!(
            cfg.validate()
                .unwrap_err()
                .contains("env.explore_ladder_rung")
        );
        let cfg = EnvConfig {
            explore_ladder_focus: true,
            ..Default::default()
        };
        assert!(
            cfg.validate()
                .unwrap_err()
                .contains("env.explore_ladder_focus")
        );
        for good in [1e-30, 0.1, 1.0] {
            let cfg = EnvConfig {
                explore_level_weight: good,
                ..Default::default()
            };
            cfg.validate().unwrap();
        }
        let r = RewardConfig {
            death: f32::NAN,
            ..Default::default()
        };
        assert!(r.validate().unwrap_err().contains("reward.death"));
    }

    #[test]
    fn model_defaults_to_dmg_and_stays_out_of_the_hash() {
        let json = serde_json::to_string(&EnvConfig::default()).unwrap();
        assert!(!json.contains("model"), "{json}");
        assert!(!json.contains("explore_resets"), "{json}");
        assert!(!json.contains("explore_steps"), "{json}");
        assert!(!json.contains("explore_cells"), "{json}");
        assert!(!json.contains("explore_level_weight"), "{json}");
        assert!(!json.contains("explore_cell_px"), "{json}");
        assert!(!json.contains("explorers"), "{json}");
        assert!(!json.contains("explore_ladder"), "{json}");
        let json = serde_json::to_string(&EnvConfig {
            explore_ladder_pass: 0.5,
            ..Default::default()
        })
        .unwrap();
        assert!(json.contains(r#""explore_ladder_pass":0.5"#), "{json}");
        let json = serde_json::to_string(&EnvConfig {
            explore_ladder_rung: 2,
            ..Default::default()
        })
        .unwrap();
        assert!(json.contains(r#""explore_ladder_rung":2"#), "{json}");
        let json = serde_json::to_string(&EnvConfig {
            explore_ladder_focus: true,
            ..Default::default()
        })
        .unwrap();
        assert!(json.contains(r#""explore_ladder_focus":true"#), "{json}");
        let cfg: EnvConfig = serde_json::from_str(r#"{"model": "cgb"}"#).unwrap();
        assert_eq!(cfg.model, HardwareChoice::Cgb);
        assert!(
            serde_json::to_string(&cfg)
                .unwrap()
                .contains(r#""model":"cgb""#)
        );
        let err = serde_json::from_str::<EnvConfig>(r#"{"model": "gba"}"#).unwrap_err();
        assert!(err.to_string().contains("unknown variant `gba`"), "{err}");
    }

    #[test]
    fn novelty_is_off_by_default_and_stays_out_of_the_hash() {
        let json = serde_json::to_string(&RewardConfig::default()).unwrap();
        assert!(!json.contains("novelty"), "{json}");
        let on = RewardConfig {
            novelty: 0.1,
            ..Default::default()
        };
        assert!(
            serde_json::to_string(&on)
                .unwrap()
                .contains(r#""novelty":0.1"#)
        );
        assert_eq!(
            RewardConfig::NAMES[crate::reward::NOVELTY],
            "novelty",
            "the vector env fills in the component at this index"
        );
        assert_eq!(on.weights()[crate::reward::NOVELTY], 0.1);
    }
}

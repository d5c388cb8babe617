//! Link's Awakening (and the mini-zelda test cartridge, which keeps its state at the same
//! addresses) seen as a reinforcement-learning environment.
//!
//! - [`ram`] names every address the project reads; [`state`] decodes them into a
//!   [`GameState`] and describes it in plain text for the text judges.
//! - [`action`] is the action set; [`env::advance`] turns one action into frames.
//! - [`obs`] builds observations; [`reward`] the heuristic reward; [`config`] their settings.
//! - [`ZeldaEnv`] ties them together around a [`gameboy::GameBoy`].

pub mod action;
pub mod config;
pub mod env;
pub mod obs;
pub mod ram;
pub mod reward;
pub mod state;

pub use action::{Action, ActionSet};
pub use config::{EnvConfig, HardwareChoice, RewardConfig};
pub use env::{EnvError, EnvSnapshot, StepResult, ZeldaEnv};
pub use state::{Direction, GameState, RoomKey};

/// The mini-zelda test cartridge, built from `cartridges/mini-zelda` (the embedded default
/// of every command that takes a ROM).
pub static MINI_ZELDA: &[u8] = include_bytes!("../../../cartridges/mini-zelda/mini-zelda.gb");

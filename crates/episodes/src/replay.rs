//! Replaying a segment: start state + actions through the same stepping code the
//! environment uses, checking every recorded `GameState` and keyframe bit for bit.

use gameboy::GameBoy;
use zelda::{Action, GameState};

use crate::frames;
use crate::segment::Segment;

/// Why a replay could not run or did not match.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    /// The ROM given is not the one the segment was recorded on.
    #[error(
        "segment {segment} was recorded on cartridge SHA-1 {recorded}, but the ROM given has SHA-1 {given}"
    )]
    WrongCartridge {
        /// Segment id.
        segment: String,
        /// SHA-1 in the segment.
        recorded: String,
        /// SHA-1 of the ROM given.
        given: String,
    },
    /// The ROM could not be loaded.
    #[error("ROM rejected: {0}")]
    Rom(#[from] gameboy::Error),
    /// The start state does not load.
    #[error("segment {segment}: start.state does not load: {source}")]
    StartState {
        /// Segment id.
        segment: String,
        /// Emulator error.
        #[source]
        source: gameboy::StateError,
    },
    /// An action name in the metadata is unknown.
    #[error("segment {segment}: meta.json names unknown action `{name}`")]
    UnknownAction {
        /// Segment id.
        segment: String,
        /// The name.
        name: String,
    },
    /// The replay diverged from the recording.
    #[error("segment {segment}: replay diverged at step {step}: {what}")]
    Diverged {
        /// Segment id.
        segment: String,
        /// First differing step (`None`-like -1 is the start state, written as "start").
        step: String,
        /// What differed.
        what: String,
    },
}

/// What a successful replay checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplayReport {
    /// Steps replayed (all matched).
    pub steps: u32,
    /// Keyframes compared pixel for pixel.
    pub keyframes: u32,
}

/// Replays `seg` on `rom`, calling `on_frame(step, frame)` with the screen after every step,
/// and fails at the first difference from the recording.
pub fn replay(
    seg: &Segment,
    rom: &[u8],
    mut on_frame: impl FnMut(u32, &[u8]),
) -> Result<ReplayReport, ReplayError> {
    let id = seg.id();
    // The machine the segment was recorded on (`env.model`; DX runs on a CGB).
    let header = gameboy::Header::parse(rom)?;
    let model = seg.meta.env_config.model.resolve(&header);
    let mut gb = GameBoy::with_model(rom.to_vec(), model)?;
    let given = hex::encode(gb.rom_sha1());
    if given != seg.meta.cartridge_sha1 {
        return Err(ReplayError::WrongCartridge {
            segment: id,
            recorded: seg.meta.cartridge_sha1.clone(),
            given,
        });
    }
    gb.load_state(&seg.start_state)
        .map_err(|source| ReplayError::StartState {
            segment: id.clone(),
            source,
        })?;
    let diverged = |step: String, what: String| ReplayError::Diverged {
        segment: id.clone(),
        step,
        what,
    };
    let start = GameState::read(&gb);
    if start != seg.meta.start {
        return Err(diverged(
            "start".into(),
            format!("state {start:?} != recorded {:?}", seg.meta.start),
        ));
    }
    let actions: Vec<Action> = seg
        .meta
        .actions
        .iter()
        .map(|n| {
            Action::from_name(n).ok_or_else(|| ReplayError::UnknownAction {
                segment: id.clone(),
                name: n.clone(),
            })
        })
        .collect::<Result<_, _>>()?;
    let mut keyframes = seg.keyframes.iter().peekable();
    let mut checked = 0;
    for (step, (&a, recorded)) in seg.actions.iter().zip(&seg.states).enumerate() {
        let step = step as u32;
        zelda::env::advance(
            &mut gb,
            actions[usize::from(a)].buttons(),
            &seg.meta.env_config,
            true,
        );
        let now = GameState::read(&gb);
        if now != *recorded {
            return Err(diverged(
                step.to_string(),
                format!("state {now:?} != recorded {recorded:?}"),
            ));
        }
        if keyframes.peek().is_some_and(|k| k.step == step) {
            let k = keyframes.next().expect("peeked");
            let want = frames::decode_png(&k.png)
                .map_err(|e| diverged(step.to_string(), format!("keyframe PNG unreadable: {e}")))?;
            if let Some(px) = want.iter().zip(gb.frame().iter()).position(|(a, b)| a != b) {
                return Err(diverged(
                    step.to_string(),
                    format!(
                        "keyframe differs at pixel ({}, {})",
                        px % gameboy::WIDTH,
                        px / gameboy::WIDTH
                    ),
                ));
            }
            checked += 1;
        }
        on_frame(step, gb.frame());
    }
    Ok(ReplayReport {
        steps: seg.meta.steps,
        keyframes: checked,
    })
}

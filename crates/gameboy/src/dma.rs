//! OAM DMA: 160 bytes copied one per M-cycle after a one-M-cycle start-up delay. The copy
//! is done lazily (the bus catches it up before anything can observe OAM or change the
//! source), so a transfer costs nothing per cycle.

use crate::state::{Reader, StateError, Writer};
use crate::timer::NEVER;

/// Cycles from the FF46 write to the first byte copied.
pub const START_DELAY: u64 = 8;
/// Bytes per transfer.
pub const LEN: u64 = 0xA0;

/// DMA state.
#[derive(Debug, Clone)]
pub struct Dma {
    /// Last value written to FF46.
    pub reg: u8,
    /// Source page of the running transfer.
    pub src: u16,
    /// Time byte 0 is copied.
    pub start: u64,
    /// Bytes copied so far.
    pub copied: u64,
    /// OAM is blocked for the CPU from this time until the transfer ends.
    pub block_from: u64,
    /// A transfer is scheduled or running.
    pub active: bool,
}

impl Dma {
    /// Idle DMA.
    pub fn new() -> Self {
        Self {
            reg: 0xFF,
            src: 0,
            start: NEVER,
            copied: 0,
            block_from: NEVER,
            active: false,
        }
    }

    /// Time just after the last byte is copied.
    pub fn end(&self) -> u64 {
        if self.active {
            self.start + LEN * 4
        } else {
            NEVER
        }
    }

    /// The CPU sees OAM blocked at time `t`.
    pub fn blocks_oam(&self, t: u64) -> bool {
        self.active && t >= self.block_from && t < self.end()
    }

    /// Number of bytes that should have been copied by time `t`.
    pub fn due(&self, t: u64) -> u64 {
        if !self.active || t < self.start {
            0
        } else {
            ((t - self.start) / 4 + 1).min(LEN)
        }
    }

    pub(crate) fn save(&self, w: &mut Writer) {
        w.u8(self.reg);
        w.u16(self.src);
        w.u64(self.start);
        w.u64(self.copied);
        w.u64(self.block_from);
        w.bool(self.active);
    }

    pub(crate) fn load(&mut self, r: &mut Reader) -> Result<(), StateError> {
        self.reg = r.u8()?;
        self.src = r.u16()?;
        self.start = r.u64()?;
        self.copied = r.u64()?;
        self.block_from = r.u64()?;
        self.active = r.bool()?;
        if self.copied > LEN || self.src & 0xFF != 0 {
            return Err(StateError::Invalid("OAM DMA progress"));
        }
        Ok(())
    }

    /// Checks stored times against the clock `now`.
    pub(crate) fn validate(&self, now: u64) -> Result<(), StateError> {
        use crate::state::check_time;
        if self.active && (self.start == NEVER || self.block_from == NEVER) {
            return Err(StateError::Invalid("OAM DMA times are unset"));
        }
        check_time(self.start, now, "OAM DMA start time")?;
        check_time(self.block_from, now, "OAM DMA blocking time")
    }
}

impl Default for Dma {
    fn default() -> Self {
        Self::new()
    }
}

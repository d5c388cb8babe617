//! Serial port with nothing on the other end of the link cable. With the internal clock a
//! transfer shifts one bit per falling edge of system counter bit 8 (8192 Hz), shifting in
//! 1s; bytes sent are captured so that test ROMs can report over the link port.

use crate::state::{Reader, StateError, Writer};
use crate::timer::{NEVER, edges, next_edge};

/// Serial clock period in cycles (falling edges of counter bit 8).
const PERIOD: u64 = 512;
/// Captured output is kept up to this many bytes; later bytes are dropped.
pub const OUTPUT_LIMIT: usize = 1 << 20;

/// SB/SC and the capture buffer.
#[derive(Debug, Clone)]
pub struct Serial {
    sb: u8,
    sc: u8,
    bits_left: u8,
    synced: u64,
    /// CGB: SC bit 1 selects the fast clock (32x).
    cgb: bool,
    /// Bytes sent with the internal clock, in order.
    pub output: Vec<u8>,
}

impl Serial {
    /// Idle serial port.
    pub fn new(now: u64) -> Self {
        Self {
            sb: 0,
            sc: 0x7E,
            bits_left: 0,
            synced: now,
            cgb: false,
            output: Vec::new(),
        }
    }

    /// Gives SC its CGB meaning (bit 1 = fast clock).
    pub fn enable_cgb(&mut self) {
        self.cgb = true;
        // The CGB boot ROM leaves the internal clock selected.
        self.sc = 0x7F;
    }

    /// Bits of SC that read as 1 whatever was written.
    fn unused(&self) -> u8 {
        if self.cgb { 0x7C } else { 0x7E }
    }

    /// Serial clock period in cycles: falling edges of counter bit 8, or bit 3 with the
    /// CGB's fast clock.
    fn period(&self) -> u64 {
        if self.cgb && self.sc & 2 != 0 {
            PERIOD / 32
        } else {
            PERIOD
        }
    }

    fn active(&self) -> bool {
        self.bits_left > 0
    }

    fn shift(&mut self, n: u8) {
        let n = n.min(self.bits_left);
        for _ in 0..n {
            self.sb = (self.sb << 1) | 1;
        }
        self.bits_left -= n;
    }

    /// Advances the transfer to time `t`; true when it completed (interrupt).
    pub fn sync(&mut self, t: u64, div_add: u64) -> bool {
        if !self.active() || t <= self.synced {
            self.synced = self.synced.max(t);
            return false;
        }
        let n = edges(self.synced, t, div_add, self.period()).min(8) as u8;
        self.synced = t;
        self.shift(n);
        if self.bits_left == 0 {
            self.sc &= 0x7F;
            return true;
        }
        false
    }

    /// When the running transfer completes.
    pub fn next_event(&self, div_add: u64) -> u64 {
        if !self.active() {
            return NEVER;
        }
        next_edge(self.synced, div_add, self.period()) + (self.bits_left as u64 - 1) * self.period()
    }

    /// The system counter is reset at `t` (after `sync(t)`): if bit 8 was set, that is a
    /// falling edge of the serial clock.
    pub fn div_reset(&mut self, t: u64, old_counter: u16) -> bool {
        if self.active() && old_counter as u64 & (self.period() >> 1) != 0 {
            self.shift(1);
            self.synced = t;
            if self.bits_left == 0 {
                self.sc &= 0x7F;
                return true;
            }
        }
        false
    }

    /// Reads SB.
    pub fn read_sb(&self) -> u8 {
        self.sb
    }

    /// Reads SC (unused bits read as 1).
    pub fn read_sc(&self) -> u8 {
        self.sc | self.unused()
    }

    /// Writes SB.
    pub fn write_sb(&mut self, v: u8) {
        self.sb = v;
    }

    /// Writes SC at time `t`; starting a transfer with the internal clock sends SB.
    pub fn write_sc(&mut self, t: u64, v: u8) {
        self.sc = v | self.unused();
        if v & 0x81 == 0x81 {
            if self.output.len() < OUTPUT_LIMIT {
                self.output.push(self.sb);
            }
            self.bits_left = 8;
            self.synced = t;
        } else {
            // External clock: no partner ever clocks the transfer.
            self.bits_left = 0;
        }
    }

    pub(crate) fn save(&self, w: &mut Writer) {
        w.u8(self.sb);
        w.u8(self.sc);
        w.u8(self.bits_left);
        w.u64(self.synced);
        w.u32(self.output.len() as u32);
        w.bytes(&self.output);
    }

    pub(crate) fn load(&mut self, r: &mut Reader) -> Result<(), StateError> {
        self.sb = r.u8()?;
        self.sc = r.u8()? | self.unused();
        self.bits_left = r.u8()?.min(8);
        self.synced = r.u64()?;
        let n = r.u32()? as usize;
        if n > OUTPUT_LIMIT {
            return Err(StateError::Invalid(
                "serial output longer than the capture limit",
            ));
        }
        self.output.clear();
        self.output.extend_from_slice(r.bytes(n)?);
        Ok(())
    }

    /// Checks stored times against the clock `now`.
    pub(crate) fn validate(&self, now: u64) -> Result<(), StateError> {
        if self.synced == NEVER {
            return Err(StateError::Invalid("serial sync time is unset"));
        }
        crate::state::check_time(self.synced, now, "serial sync time")
    }
}

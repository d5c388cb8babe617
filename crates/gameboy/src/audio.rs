//! Sound registers without synthesis: every register keeps its value and reads back with
//! the DMG's unused/write-only bits set, and NR52 reports power and the channel-on flags,
//! which follow what games can observe of the APU: triggers, DACs, length counters and
//! channel 1's sweep overflow, all clocked by the frame sequencer.
//!
//! The frame sequencer steps on the falling edges of system counter bit 12 (bit 13 in CGB
//! double speed, the same rate in real time), so like the timer it is a function of time,
//! caught up only when the CPU touches a sound register. Length counters clock on steps 0,
//! 2, 4 and 6, the sweep on 2 and 6. Envelopes and the waveforms themselves produce no
//! observable register state and are not simulated.

use crate::state::{Reader, StateError, Writer};
use crate::timer::edges;

/// OR-masks for FF10-FF2F on reads (bits that always read 1).
const READ_MASK: [u8; 0x20] = [
    0x80, 0x3F, 0x00, 0xFF, 0xBF, // NR10-NR14
    0xFF, 0x3F, 0x00, 0xFF, 0xBF, // (FF15) NR21-NR24
    0x7F, 0xFF, 0x9F, 0xFF, 0xBF, // NR30-NR34
    0xFF, 0xFF, 0x00, 0x00, 0xBF, // (FF1F) NR41-NR44
    0x00, 0x00, 0x70, // NR50-NR52
    0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, // FF27-FF2F
];

/// Sound register file (FF10-FF3F) and the APU state registers expose.
#[derive(Debug, Clone)]
pub struct Audio {
    regs: [u8; 0x20],
    wave: [u8; 0x10],
    power: bool,
    /// Channel on flags (NR52 bits 0-3).
    channels: u8,
    /// Length counters (64 steps for channels 1, 2 and 4, 256 for channel 3).
    length: [u16; 4],
    /// Index (0..=7) of the frame sequencer's next step.
    step: u8,
    /// Frame sequencer steps include every edge up to this time.
    synced: u64,
    /// Channel 1 sweep: shadow frequency, timer, enabled, negate used since trigger.
    sweep_freq: u16,
    sweep_timer: u8,
    sweep_on: bool,
    sweep_negated: bool,
    /// CGB: power-off also clears the length counters, which cannot be written while off.
    cgb: bool,
}

/// Frame sequencer steps after which every length counter has run out and channel 1's sweep
/// has overflowed or reached its fixed point (about 11k steps at most).
const STATIONARY_AFTER: u64 = 1 << 16;
/// Steps after which the step index (8) and the sweep timer (4 steps per clock, period
/// 1..=8) repeat: lcm(8, 4 * lcm(1..=8)).
const PATTERN: u64 = 3360;

/// Register index (from FF10) of each channel's length register and control register.
const LENGTH_REG: [usize; 4] = [0x01, 0x06, 0x0B, 0x10];
const CONTROL_REG: [usize; 4] = [0x04, 0x09, 0x0E, 0x13];

impl Audio {
    /// All registers zero, powered off (power-on state before the boot ROM).
    pub fn new() -> Self {
        Self {
            regs: [0; 0x20],
            wave: [0; 0x10],
            power: false,
            channels: 0,
            length: [0; 4],
            step: 0,
            synced: 0,
            sweep_freq: 0,
            sweep_timer: 0,
            sweep_on: false,
            sweep_negated: false,
            cgb: false,
        }
    }

    /// The values the DMG boot ROM leaves behind.
    pub fn post_boot() -> Self {
        let mut a = Self::new();
        a.power = true;
        let init: [(u16, u8); 21] = [
            (0xFF10, 0x80),
            (0xFF11, 0xBF),
            (0xFF12, 0xF3),
            (0xFF13, 0xFF),
            (0xFF14, 0x3F),
            (0xFF16, 0x3F),
            (0xFF17, 0x00),
            (0xFF18, 0xFF),
            (0xFF19, 0x3F),
            (0xFF1A, 0x7F),
            (0xFF1B, 0xFF),
            (0xFF1C, 0x9F),
            (0xFF1D, 0xFF),
            (0xFF1E, 0x3F),
            (0xFF20, 0xFF),
            (0xFF21, 0x00),
            (0xFF22, 0x00),
            (0xFF23, 0x3F),
            (0xFF24, 0x77),
            (0xFF25, 0xF3),
            (0xFF26, 0x80),
        ];
        for (addr, v) in init {
            a.regs[(addr - 0xFF10) as usize] = v;
        }
        // The boot ROM's chime on channel 1 has no length limit: still on at 0x0100.
        a.channels = 0x01;
        a
    }

    /// Gives the registers their CGB behaviour.
    pub fn enable_cgb(&mut self) {
        self.cgb = true;
    }

    /// Frame sequencer period in CPU cycles.
    fn period(double_speed: bool) -> u64 {
        8192 << double_speed as u32
    }

    /// Runs the frame sequencer steps due by time `t` (system counter `t + div_add`).
    pub fn sync(&mut self, t: u64, div_add: u64, double_speed: bool) {
        if t <= self.synced {
            return;
        }
        let n = edges(self.synced, t, div_add, Self::period(double_speed));
        self.synced = t;
        self.run_steps(n);
    }

    /// The system counter was reset (DIV write, STOP) at a time when it read `old`: a set
    /// frame sequencer bit falls, which is one more step.
    pub fn div_reset(&mut self, old: u16, double_speed: bool) {
        if old as u64 & (Self::period(double_speed) >> 1) != 0 {
            self.run_steps(1);
        }
    }

    fn run_steps(&mut self, n: u64) {
        if !self.power {
            return;
        }
        let mut n = n;
        if n > STATIONARY_AFTER + PATTERN {
            // A long gap (a game that left the sound alone, or a crafted state): after
            // STATIONARY_AFTER steps nothing but the step index and the sweep timer moves,
            // and those repeat every PATTERN steps.
            self.run_steps(STATIONARY_AFTER);
            n = (n - STATIONARY_AFTER) % PATTERN;
        }
        // Only a running length counter or channel 1's sweep changes anything.
        while n > 0 && self.busy() {
            match self.step {
                0 | 4 => self.clock_lengths(),
                2 | 6 => {
                    self.clock_lengths();
                    self.clock_sweep();
                }
                _ => {}
            }
            self.step = (self.step + 1) & 7;
            n -= 1;
        }
        self.step = ((self.step as u64 + n) & 7) as u8;
    }

    fn busy(&self) -> bool {
        (0..4).any(|ch| self.length_enabled(ch) && self.length[ch] > 0)
            || (self.sweep_on && self.channels & 1 != 0)
    }

    /// Starts the frame sequencer's clock at time `now`.
    pub fn at(mut self, now: u64) -> Self {
        self.synced = now;
        self
    }

    fn length_enabled(&self, ch: usize) -> bool {
        self.regs[CONTROL_REG[ch]] & 0x40 != 0
    }

    fn clock_lengths(&mut self) {
        for ch in 0..4 {
            if self.length_enabled(ch) && self.length[ch] > 0 {
                self.length[ch] -= 1;
                if self.length[ch] == 0 {
                    self.channels &= !(1 << ch);
                }
            }
        }
    }

    fn sweep_period(&self) -> u8 {
        (self.regs[0x00] >> 4) & 7
    }

    /// Next sweep frequency; marks a negate so that clearing it later disables the channel.
    fn sweep_next(&mut self) -> u16 {
        let nr10 = self.regs[0x00];
        let delta = self.sweep_freq >> (nr10 & 7);
        if nr10 & 0x08 != 0 {
            self.sweep_negated = true;
            self.sweep_freq - delta
        } else {
            self.sweep_freq + delta
        }
    }

    fn clock_sweep(&mut self) {
        if self.sweep_timer > 0 {
            self.sweep_timer -= 1;
        }
        if self.sweep_timer != 0 {
            return;
        }
        let period = self.sweep_period();
        self.sweep_timer = if period == 0 { 8 } else { period };
        if !self.sweep_on || period == 0 {
            return;
        }
        let f = self.sweep_next();
        if f > 2047 {
            self.channels &= !1;
        } else if self.regs[0x00] & 7 != 0 {
            self.sweep_freq = f;
            self.regs[0x03] = f as u8;
            self.regs[0x04] = (self.regs[0x04] & !7) | (f >> 8) as u8;
            if self.sweep_next() > 2047 {
                self.channels &= !1;
            }
        }
    }

    /// Reads FF10-FF3F (after `sync`).
    pub fn read(&self, addr: u16) -> u8 {
        let i = (addr - 0xFF10) as usize;
        if i >= 0x20 {
            return self.wave[i - 0x20];
        }
        if addr == 0xFF26 {
            return 0x70 | (self.power as u8) << 7 | self.channels;
        }
        self.regs[i] | READ_MASK[i]
    }

    fn dac_on(&self, ch: usize) -> bool {
        match ch {
            2 => self.regs[0x0A] & 0x80 != 0,
            _ => self.regs[[0x02, 0x07, 0, 0x11][ch]] & 0xF8 != 0,
        }
    }

    /// Writes FF10-FF3F (after `sync`).
    pub fn write(&mut self, addr: u16, v: u8) {
        let i = (addr - 0xFF10) as usize;
        if i >= 0x20 {
            self.wave[i - 0x20] = v;
            return;
        }
        if addr == 0xFF26 {
            let on = v & 0x80 != 0;
            if self.power && !on {
                // Powering off clears every sound register (and, on a CGB, the lengths).
                self.regs[..0x16].fill(0);
                self.channels = 0;
                self.sweep_on = false;
                if self.cgb {
                    self.length = [0; 4];
                }
            } else if !self.power && on {
                // The frame sequencer restarts: its next step is 0.
                self.step = 0;
            }
            self.power = on;
            return;
        }
        if i >= 0x17 {
            return;
        }
        if !self.power {
            // DMG: the length counters can still be loaded while the APU is off.
            if !self.cgb
                && let Some(ch) = LENGTH_REG.iter().position(|&r| r == i)
            {
                self.load_length(ch, v);
            }
            return;
        }
        let old = self.regs[i];
        self.regs[i] = v;
        if i == 0x00 && old & 0x08 != 0 && v & 0x08 == 0 && self.sweep_negated {
            // Leaving negate mode after a negated calculation disables channel 1.
            self.channels &= !1;
        }
        if let Some(ch) = LENGTH_REG.iter().position(|&r| r == i) {
            self.load_length(ch, v);
        }
        let ch = match i {
            0x02 | 0x04 => 0,
            0x07 | 0x09 => 1,
            0x0A | 0x0E => 2,
            0x11 | 0x13 => 3,
            _ => return,
        };
        if i == CONTROL_REG[ch] {
            self.write_control(ch, old, v);
        }
        if !self.dac_on(ch) {
            self.channels &= !(1 << ch);
        }
    }

    fn load_length(&mut self, ch: usize, v: u8) {
        self.length[ch] = if ch == 2 {
            256 - v as u16
        } else {
            64 - (v & 0x3F) as u16
        };
    }

    /// NRx4: length enable (with the extra clock when enabled in the first half of a
    /// length period) and trigger.
    fn write_control(&mut self, ch: usize, old: u8, v: u8) {
        let max = if ch == 2 { 256 } else { 64 };
        // The next step does not clock lengths: the last one did.
        let first_half = self.step & 1 == 1;
        if first_half && old & 0x40 == 0 && v & 0x40 != 0 && self.length[ch] > 0 {
            self.length[ch] -= 1;
            if self.length[ch] == 0 && v & 0x80 == 0 {
                self.channels &= !(1 << ch);
            }
        }
        if v & 0x80 == 0 {
            return;
        }
        if self.dac_on(ch) {
            self.channels |= 1 << ch;
        }
        if self.length[ch] == 0 {
            self.length[ch] = max;
            if first_half && v & 0x40 != 0 {
                self.length[ch] -= 1;
            }
        }
        if ch == 0 {
            self.sweep_freq = u16::from_le_bytes([self.regs[0x03], self.regs[0x04] & 7]);
            let period = self.sweep_period();
            self.sweep_timer = if period == 0 { 8 } else { period };
            let shift = self.regs[0x00] & 7;
            self.sweep_on = period != 0 || shift != 0;
            self.sweep_negated = false;
            if shift != 0 && self.sweep_next() > 2047 {
                self.channels &= !1;
            }
        }
    }

    pub(crate) fn save(&self, w: &mut Writer) {
        w.bytes(&self.regs);
        w.bytes(&self.wave);
        w.bool(self.power);
        w.u8(self.channels);
    }

    /// Frame sequencer, length and sweep state (state format 2 and later).
    pub(crate) fn save_timing(&self, w: &mut Writer) {
        for l in self.length {
            w.u16(l);
        }
        w.u8(self.step);
        w.u64(self.synced);
        w.u16(self.sweep_freq);
        w.u8(self.sweep_timer);
        w.u8(self.sweep_on as u8 | (self.sweep_negated as u8) << 1);
    }

    pub(crate) fn load(&mut self, r: &mut Reader) -> Result<(), StateError> {
        self.regs = r.array()?;
        self.wave = r.array()?;
        self.power = r.bool()?;
        self.channels = r.u8()? & 0x0F;
        Ok(())
    }

    /// Reads what [`Audio::save_timing`] wrote; `None` (a format 1 state) starts the
    /// counters idle at time `now`.
    pub(crate) fn load_timing(
        &mut self,
        r: Option<&mut Reader>,
        now: u64,
    ) -> Result<(), StateError> {
        let Some(r) = r else {
            self.length = [0; 4];
            self.step = 0;
            self.synced = now;
            self.sweep_freq = 0;
            self.sweep_timer = 0;
            self.sweep_on = false;
            self.sweep_negated = false;
            return Ok(());
        };
        for l in &mut self.length {
            *l = r.u16()?;
        }
        if self
            .length
            .iter()
            .enumerate()
            .any(|(ch, &l)| l > if ch == 2 { 256 } else { 64 })
        {
            return Err(StateError::Invalid("sound length counter out of range"));
        }
        self.step = r.u8()?;
        self.synced = r.u64()?;
        self.sweep_freq = r.u16()?;
        self.sweep_timer = r.u8()?;
        let f = r.u8()?;
        self.sweep_on = f & 1 != 0;
        self.sweep_negated = f & 2 != 0;
        if self.step > 7 || self.sweep_freq > 2047 || self.sweep_timer > 8 {
            return Err(StateError::Invalid("sound frame sequencer or sweep state"));
        }
        // The sync time may lie far in the past (no sound access for a long time); the
        // catch-up is bounded by STATIONARY_AFTER.
        if self.synced > now {
            return Err(StateError::Invalid("sound sync time is in the future"));
        }
        Ok(())
    }
}

impl Default for Audio {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A sweep that never ends (period 1, shift 0, channel on) stays cheap to catch up over
    /// any gap, and lands on the same step as stepping one by one.
    #[test]
    fn long_gaps_are_bounded_and_exact() {
        let mut a = Audio::post_boot();
        a.write(0xFF10, 0x10);
        a.write(0xFF12, 0xF0);
        a.write(0xFF14, 0x80);
        assert_eq!(a.read(0xFF26) & 1, 1);
        let mut b = a.clone();
        let n = STATIONARY_AFTER + 5 * PATTERN + 123;
        a.run_steps(n);
        for _ in 0..n {
            b.run_steps(1);
        }
        assert_eq!(
            (a.step, a.sweep_timer, a.channels),
            (b.step, b.sweep_timer, b.channels)
        );
        // Without the bound this would run for centuries.
        a.run_steps(u64::MAX / 2);
        assert_eq!(a.channels & 1, 1);
    }
}

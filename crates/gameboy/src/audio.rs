//! Sound registers without synthesis: every register keeps its value and reads back with
//! the DMG's unused/write-only bits set, and NR52 reports power and channel-on flags.

use crate::state::{Reader, StateError, Writer};

/// OR-masks for FF10-FF2F on reads (bits that always read 1).
const READ_MASK: [u8; 0x20] = [
    0x80, 0x3F, 0x00, 0xFF, 0xBF, // NR10-NR14
    0xFF, 0x3F, 0x00, 0xFF, 0xBF, // (FF15) NR21-NR24
    0x7F, 0xFF, 0x9F, 0xFF, 0xBF, // NR30-NR34
    0xFF, 0xFF, 0x00, 0x00, 0xBF, // (FF1F) NR41-NR44
    0x00, 0x00, 0x70, // NR50-NR52
    0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, // FF27-FF2F
];

/// Sound register file (FF10-FF3F).
#[derive(Debug, Clone)]
pub struct Audio {
    regs: [u8; 0x20],
    wave: [u8; 0x10],
    power: bool,
    /// Channel on flags (NR52 bits 0-3).
    channels: u8,
}

impl Audio {
    /// All registers zero, powered off (power-on state before the boot ROM).
    pub fn new() -> Self {
        Self {
            regs: [0; 0x20],
            wave: [0; 0x10],
            power: false,
            channels: 0,
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
        a.channels = 0x01;
        a
    }

    /// Reads FF10-FF3F.
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

    /// Writes FF10-FF3F.
    pub fn write(&mut self, addr: u16, v: u8) {
        let i = (addr - 0xFF10) as usize;
        if i >= 0x20 {
            self.wave[i - 0x20] = v;
            return;
        }
        if addr == 0xFF26 {
            let on = v & 0x80 != 0;
            if self.power && !on {
                // Powering off clears every sound register.
                self.regs[..0x16].fill(0);
                self.channels = 0;
            }
            self.power = on;
            return;
        }
        if !self.power || i >= 0x17 {
            return;
        }
        self.regs[i] = v;
        // Track channel on/off: a trigger starts a channel whose DAC is on; switching
        // the DAC off stops it. Length and sweep are not simulated.
        let (ch, dac_reg, trigger_reg) = match i {
            0x02 | 0x04 => (0, 0x02, 0x04),
            0x07 | 0x09 => (1, 0x07, 0x09),
            0x0A | 0x0E => (2, 0x0A, 0x0E),
            0x11 | 0x13 => (3, 0x11, 0x13),
            _ => return,
        };
        let dac_on = if ch == 2 {
            self.regs[dac_reg] & 0x80 != 0
        } else {
            self.regs[dac_reg] & 0xF8 != 0
        };
        if !dac_on {
            self.channels &= !(1 << ch);
        } else if i == trigger_reg && v & 0x80 != 0 {
            self.channels |= 1 << ch;
        }
    }

    pub(crate) fn save(&self, w: &mut Writer) {
        w.bytes(&self.regs);
        w.bytes(&self.wave);
        w.bool(self.power);
        w.u8(self.channels);
    }

    pub(crate) fn load(&mut self, r: &mut Reader) -> Result<(), StateError> {
        self.regs = r.array()?;
        self.wave = r.array()?;
        self.power = r.bool()?;
        self.channels = r.u8()? & 0x0F;
        Ok(())
    }
}

impl Default for Audio {
    fn default() -> Self {
        Self::new()
    }
}

//! MBC1, including the "MBC1M" multicart wiring.

use crate::state::{Reader, StateError, Writer};

/// MBC1 registers.
#[derive(Debug, Clone, Default)]
pub struct Mbc1 {
    ram_enabled: bool,
    /// BANK1: 5 bits, written at 0x2000-0x3FFF; 0 reads as 1 for the 0x4000 area.
    bank1: u8,
    /// BANK2: 2 bits, written at 0x4000-0x5FFF.
    bank2: u8,
    /// MODE: 1 bit, written at 0x6000-0x7FFF.
    mode: bool,
    /// Multicart wiring: BANK2 drives ROM address bits 18-19 instead of 19-20.
    multicart: bool,
}

impl Mbc1 {
    /// A fresh controller; `multicart` selects the MBC1M wiring.
    pub fn new(multicart: bool) -> Self {
        Self {
            bank1: 1,
            multicart,
            ..Self::default()
        }
    }

    /// Handles a write to 0x0000-0x7FFF.
    pub fn write(&mut self, addr: u16, value: u8) {
        match addr >> 13 {
            0 => self.ram_enabled = value & 0x0F == 0x0A,
            1 => self.bank1 = if value & 0x1F == 0 { 1 } else { value & 0x1F },
            2 => self.bank2 = value & 0x03,
            _ => self.mode = value & 1 != 0,
        }
    }

    fn shift(&self) -> u32 {
        if self.multicart { 4 } else { 5 }
    }

    /// ROM bank numbers (before masking to the ROM size) mapped at 0x0000 and 0x4000.
    pub fn rom_banks(&self) -> (usize, usize) {
        let high = (self.bank2 as usize) << self.shift();
        let low_mask = if self.multicart { 0x0F } else { 0x1F };
        let lo = if self.mode { high } else { 0 };
        (lo, high | (self.bank1 as usize & low_mask))
    }

    /// RAM bank mapped at 0xA000 (before masking to the RAM size).
    pub fn ram_bank(&self) -> usize {
        if self.mode { self.bank2 as usize } else { 0 }
    }

    /// External RAM is enabled.
    pub fn ram_enabled(&self) -> bool {
        self.ram_enabled
    }

    pub(crate) fn save(&self, w: &mut Writer) {
        w.bool(self.ram_enabled);
        w.u8(self.bank1);
        w.u8(self.bank2);
        w.bool(self.mode);
        w.bool(self.multicart);
    }

    pub(crate) fn load(&mut self, r: &mut Reader) -> Result<(), StateError> {
        self.ram_enabled = r.bool()?;
        self.bank1 = r.u8()?;
        self.bank2 = r.u8()? & 3;
        self.mode = r.bool()?;
        self.multicart = r.bool()?;
        Ok(())
    }
}

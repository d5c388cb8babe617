//! MBC2: 4-bit ROM bank register and 512 half-bytes of built-in RAM.

use crate::state::{Reader, StateError, Writer};

/// MBC2 registers.
#[derive(Debug, Clone)]
pub struct Mbc2 {
    ram_enabled: bool,
    rom_bank: u8,
}

impl Default for Mbc2 {
    fn default() -> Self {
        Self {
            ram_enabled: false,
            rom_bank: 1,
        }
    }
}

impl Mbc2 {
    /// Handles a write to 0x0000-0x7FFF; only 0x0000-0x3FFF has registers, selected by A8.
    pub fn write(&mut self, addr: u16, value: u8) {
        if addr >= 0x4000 {
            return;
        }
        if addr & 0x0100 == 0 {
            self.ram_enabled = value & 0x0F == 0x0A;
        } else {
            self.rom_bank = if value & 0x0F == 0 { 1 } else { value & 0x0F };
        }
    }

    /// ROM bank mapped at 0x4000 (before masking).
    pub fn rom_bank(&self) -> usize {
        self.rom_bank as usize
    }

    /// Built-in RAM is enabled.
    pub fn ram_enabled(&self) -> bool {
        self.ram_enabled
    }

    pub(crate) fn save(&self, w: &mut Writer) {
        w.bool(self.ram_enabled);
        w.u8(self.rom_bank);
    }

    pub(crate) fn load(&mut self, r: &mut Reader) -> Result<(), StateError> {
        self.ram_enabled = r.bool()?;
        self.rom_bank = r.u8()? & 0x0F;
        Ok(())
    }
}

//! MBC5: 9-bit ROM bank, 4-bit RAM bank (bit 3 drives the rumble motor on rumble carts).

use crate::state::{Reader, StateError, Writer};

/// MBC5 registers.
#[derive(Debug, Clone)]
pub struct Mbc5 {
    ram_enabled: bool,
    rom_bank: u16,
    ram_bank: u8,
    rumble: bool,
}

impl Mbc5 {
    /// A fresh controller; on rumble cartridges RAM bank bit 3 is the motor, not an address bit.
    pub fn new(rumble: bool) -> Self {
        Self {
            ram_enabled: false,
            rom_bank: 1,
            ram_bank: 0,
            rumble,
        }
    }

    /// Handles a write to 0x0000-0x7FFF.
    pub fn write(&mut self, addr: u16, value: u8) {
        match addr >> 12 {
            0 | 1 => self.ram_enabled = value == 0x0A,
            2 => self.rom_bank = (self.rom_bank & 0x100) | value as u16,
            3 => self.rom_bank = (self.rom_bank & 0xFF) | ((value as u16 & 1) << 8),
            4 | 5 => {
                self.ram_bank = if self.rumble {
                    value & 0x07
                } else {
                    value & 0x0F
                }
            }
            _ => {}
        }
    }

    /// ROM bank mapped at 0x4000 (before masking; bank 0 is allowed).
    pub fn rom_bank(&self) -> usize {
        self.rom_bank as usize
    }

    /// RAM bank mapped at 0xA000 (before masking).
    pub fn ram_bank(&self) -> usize {
        self.ram_bank as usize
    }

    /// External RAM is enabled.
    pub fn ram_enabled(&self) -> bool {
        self.ram_enabled
    }

    pub(crate) fn save(&self, w: &mut Writer) {
        w.bool(self.ram_enabled);
        w.u16(self.rom_bank);
        w.u8(self.ram_bank);
    }

    pub(crate) fn load(&mut self, r: &mut Reader) -> Result<(), StateError> {
        self.ram_enabled = r.bool()?;
        self.rom_bank = r.u16()? & 0x1FF;
        self.ram_bank = r.u8()? & 0x0F;
        Ok(())
    }
}

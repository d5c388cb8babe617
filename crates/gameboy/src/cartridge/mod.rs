//! Cartridges: ROM, external RAM and the memory bank controllers.

mod header;
mod mbc1;
mod mbc2;
mod mbc3;
mod mbc5;

pub use header::{CartridgeType, HEADER_END, Header, MbcKind, cartridge_type_name};

use std::sync::Arc;

use crate::Error;
use crate::state::{Reader, StateError, Writer};
use mbc1::Mbc1;
use mbc2::Mbc2;
use mbc3::Mbc3;
use mbc5::Mbc5;

const ROM_BANK: usize = 0x4000;
const RAM_BANK: usize = 0x2000;

#[derive(Debug, Clone)]
enum Mbc {
    None,
    Mbc1(Mbc1),
    Mbc2(Mbc2),
    Mbc3(Mbc3),
    Mbc5(Mbc5),
}

/// A cartridge: ROM image, external RAM and controller state.
#[derive(Debug, Clone)]
pub struct Cartridge {
    /// What the CPU sees at 0x0000-0x7FFF banks: the ROM, or a copy of it with the boot
    /// ROM laid over its first bytes while the boot ROM is mapped.
    rom: Arc<[u8]>,
    /// ROM padded with 0xFF to a power-of-two number of 16 KiB banks (at least two).
    plain: Arc<[u8]>,
    ram: Vec<u8>,
    kind: CartridgeType,
    mbc: Mbc,
    /// Byte offsets into `rom` of the banks mapped at 0x0000-0x3FFF and 0x4000-0x7FFF.
    rom_base: [usize; 2],
}

impl Cartridge {
    /// Validates `rom` and builds the cartridge it describes.
    pub fn new(mut rom: Vec<u8>) -> Result<(Self, Header), Error> {
        let header = Header::parse(&rom)?;
        let kind = CartridgeType::from_code(header.cartridge_type).ok_or(
            Error::UnsupportedCartridgeType {
                code: header.cartridge_type,
                name: cartridge_type_name(header.cartridge_type),
            },
        )?;
        if !header.header_checksum_ok() {
            return Err(Error::HeaderChecksum {
                stored: header.header_checksum,
                computed: header.header_checksum_computed,
            });
        }
        if rom.len() < header.rom_size {
            return Err(Error::Truncated {
                len: rom.len(),
                needed: header.rom_size,
                what: "ROM banks the header declares (0x0148)",
            });
        }
        let banks = rom.len().div_ceil(ROM_BANK).max(2).next_power_of_two();
        rom.resize(banks * ROM_BANK, 0xFF);
        let ram_size = match kind.mbc {
            MbcKind::Mbc2 => 512,
            _ if !kind.ram => 0,
            // A RAM cartridge whose header declares no size still has RAM on the board;
            // a few test ROMs (Blargg's) rely on 8 KiB being there.
            _ if header.ram_size == 0 => RAM_BANK,
            _ => header.ram_size,
        };
        let mbc = match kind.mbc {
            MbcKind::RomOnly => Mbc::None,
            MbcKind::Mbc1 => {
                // MBC1M multicarts: 1 MiB, with a second game header (logo) at bank 0x10.
                let multicart =
                    rom.len() == 64 * ROM_BANK && header::logo_at(&rom, 0x10 * ROM_BANK + 0x104);
                Mbc::Mbc1(Mbc1::new(multicart))
            }
            MbcKind::Mbc2 => Mbc::Mbc2(Mbc2::default()),
            MbcKind::Mbc3 => Mbc::Mbc3(Mbc3::new(kind.rtc, banks > 128)),
            MbcKind::Mbc5 => Mbc::Mbc5(Mbc5::new(kind.rumble)),
        };
        let rom: Arc<[u8]> = rom.into();
        let mut cart = Self {
            plain: rom.clone(),
            rom,
            ram: vec![0; ram_size],
            kind,
            mbc,
            rom_base: [0, ROM_BANK],
        };
        cart.update_banks();
        Ok((cart, header))
    }

    /// What the cartridge type byte describes.
    pub fn kind(&self) -> CartridgeType {
        self.kind
    }

    /// The (padded) ROM image, without any boot ROM overlay.
    pub fn plain_rom(&self) -> &[u8] {
        &self.plain
    }

    /// Maps `boot` over the start of the ROM (a boot ROM running), or unmaps it.
    pub fn set_boot_overlay(&mut self, boot: Option<&[u8]>) {
        self.rom = match boot {
            Some(b) => {
                let mut v = self.plain.to_vec();
                let n = b.len().min(v.len());
                v[..n].copy_from_slice(&b[..n]);
                v.into()
            }
            None => self.plain.clone(),
        };
    }

    fn rom_offset(&self, bank: usize) -> usize {
        let banks = self.rom.len() / ROM_BANK;
        (bank & (banks - 1)) * ROM_BANK
    }

    fn update_banks(&mut self) {
        let (lo, hi) = match &self.mbc {
            Mbc::None => (0, 1),
            Mbc::Mbc1(m) => m.rom_banks(),
            Mbc::Mbc2(m) => (0, m.rom_bank()),
            Mbc::Mbc3(m) => (0, m.rom_bank()),
            Mbc::Mbc5(m) => (0, m.rom_bank()),
        };
        self.rom_base = [self.rom_offset(lo), self.rom_offset(hi)];
    }

    /// Reads 0x0000-0x7FFF.
    #[inline(always)]
    pub fn read_rom(&self, addr: u16) -> u8 {
        let i = self.rom_base[(addr >> 14) as usize & 1] + (addr as usize & 0x3FFF);
        debug_assert!(i < self.rom.len());
        // SAFETY: `rom.len()` is a power-of-two multiple of ROM_BANK (padded in `new`, and
        // the boot overlay is a copy of the same length), and every `rom_base` entry comes
        // from `rom_offset`, which masks the bank number to the bank count, so
        // `base + 0x3FFF < rom.len()`. This is the emulator's hottest load (every opcode
        // fetch); the bounds check was measurable.
        unsafe { *self.rom.get_unchecked(i) }
    }

    /// Handles a write to 0x0000-0x7FFF (controller registers).
    pub fn write_rom(&mut self, addr: u16, value: u8, now: u64) {
        match &mut self.mbc {
            Mbc::None => return,
            Mbc::Mbc1(m) => m.write(addr, value),
            Mbc::Mbc2(m) => m.write(addr, value),
            Mbc::Mbc3(m) => m.write(addr, value, now),
            Mbc::Mbc5(m) => m.write(addr, value),
        }
        self.update_banks();
    }

    fn ram_index(&self, bank: usize, addr: u16) -> usize {
        (bank * RAM_BANK + (addr as usize & 0x1FFF)) & (self.ram.len() - 1)
    }

    /// Reads 0xA000-0xBFFF.
    pub fn read_ram(&self, addr: u16) -> u8 {
        if self.ram.is_empty() && !matches!(self.mbc, Mbc::Mbc3(_)) {
            return 0xFF;
        }
        match &self.mbc {
            Mbc::None => self.ram[self.ram_index(0, addr)],
            Mbc::Mbc1(m) if m.ram_enabled() => self.ram[self.ram_index(m.ram_bank(), addr)],
            Mbc::Mbc2(m) if m.ram_enabled() => 0xF0 | self.ram[addr as usize & 0x1FF],
            Mbc::Mbc3(m) if m.ram_enabled() => match m.ram_bank() {
                Some(bank) if !self.ram.is_empty() => self.ram[self.ram_index(bank, addr)],
                Some(_) => 0xFF,
                None => m.rtc_read(),
            },
            Mbc::Mbc5(m) if m.ram_enabled() => self.ram[self.ram_index(m.ram_bank(), addr)],
            _ => 0xFF,
        }
    }

    /// Writes 0xA000-0xBFFF.
    pub fn write_ram(&mut self, addr: u16, value: u8, now: u64) {
        if self.ram.is_empty() && !matches!(self.mbc, Mbc::Mbc3(_)) {
            return;
        }
        let idx = match &mut self.mbc {
            Mbc::None => self.ram_index(0, addr),
            Mbc::Mbc1(m) if m.ram_enabled() => {
                let bank = m.ram_bank();
                self.ram_index(bank, addr)
            }
            Mbc::Mbc2(m) if m.ram_enabled() => {
                self.ram[addr as usize & 0x1FF] = value & 0x0F;
                return;
            }
            Mbc::Mbc3(m) if m.ram_enabled() => match m.ram_bank() {
                Some(bank) if !self.ram.is_empty() => {
                    (bank * RAM_BANK + (addr as usize & 0x1FFF)) & (self.ram.len() - 1)
                }
                Some(_) => return,
                None => {
                    m.rtc_write(value, now);
                    return;
                }
            },
            Mbc::Mbc5(m) if m.ram_enabled() => {
                let bank = m.ram_bank();
                self.ram_index(bank, addr)
            }
            _ => return,
        };
        self.ram[idx] = value;
    }

    /// The cartridge keeps its RAM when switched off.
    pub fn has_battery(&self) -> bool {
        self.kind.battery
    }

    /// External RAM contents (empty when the cartridge has none).
    pub fn ram(&self) -> &[u8] {
        &self.ram
    }

    /// Replaces the external RAM contents (a battery save); the size must match.
    pub fn set_ram(&mut self, data: &[u8]) -> Result<(), Error> {
        if data.len() != self.ram.len() {
            return Err(Error::RamSize {
                expected: self.ram.len(),
                got: data.len(),
            });
        }
        self.ram.copy_from_slice(data);
        if matches!(self.mbc, Mbc::Mbc2(_)) {
            self.ram.iter_mut().for_each(|b| *b &= 0x0F);
        }
        Ok(())
    }

    pub(crate) fn save(&self, w: &mut Writer) {
        match &self.mbc {
            Mbc::None => {}
            Mbc::Mbc1(m) => m.save(w),
            Mbc::Mbc2(m) => m.save(w),
            Mbc::Mbc3(m) => m.save(w),
            Mbc::Mbc5(m) => m.save(w),
        }
        w.u32(self.ram.len() as u32);
        w.bytes(&self.ram);
    }

    pub(crate) fn load(&mut self, r: &mut Reader) -> Result<(), StateError> {
        match &mut self.mbc {
            Mbc::None => {}
            Mbc::Mbc1(m) => m.load(r)?,
            Mbc::Mbc2(m) => m.load(r)?,
            Mbc::Mbc3(m) => m.load(r)?,
            Mbc::Mbc5(m) => m.load(r)?,
        }
        let len = r.u32()? as usize;
        if len != self.ram.len() {
            return Err(StateError::Invalid(
                "cartridge RAM size differs from this cartridge",
            ));
        }
        self.ram.copy_from_slice(r.bytes(len)?);
        self.update_banks();
        Ok(())
    }

    /// Checks stored times against the machine clock `now`.
    pub(crate) fn validate(&self, now: u64) -> Result<(), StateError> {
        match &self.mbc {
            Mbc::Mbc3(m) => m.validate(now),
            _ => Ok(()),
        }
    }
}

//! Cartridge header (0x0100-0x014F): parsing and validation.

use crate::Error;

/// Offset of the first byte after the header; a ROM must be at least this long.
pub const HEADER_END: usize = 0x150;

/// The memory bank controller family a cartridge type byte names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MbcKind {
    /// No controller: 32 KiB ROM, optional 8 KiB RAM.
    RomOnly,
    /// MBC1 (up to 2 MiB ROM, 32 KiB RAM).
    Mbc1,
    /// MBC2 (up to 256 KiB ROM, 512 half-bytes of built-in RAM).
    Mbc2,
    /// MBC3 (up to 2 MiB ROM, 32 KiB RAM, optional real-time clock).
    Mbc3,
    /// MBC5 (up to 8 MiB ROM, 128 KiB RAM).
    Mbc5,
}

/// What the cartridge type byte (0x0147) says about the hardware on the cartridge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CartridgeType {
    /// The raw byte at 0x0147.
    pub code: u8,
    /// Controller family.
    pub mbc: MbcKind,
    /// External RAM present.
    pub ram: bool,
    /// Battery-backed (RAM contents persist).
    pub battery: bool,
    /// MBC3 real-time clock present.
    pub rtc: bool,
    /// MBC5 rumble motor present.
    pub rumble: bool,
}

impl CartridgeType {
    /// Decodes a cartridge type byte; `None` for controllers this core does not emulate.
    pub fn from_code(code: u8) -> Option<Self> {
        let t = |mbc, ram, battery, rtc, rumble| {
            Some(Self {
                code,
                mbc,
                ram,
                battery,
                rtc,
                rumble,
            })
        };
        use MbcKind::*;
        match code {
            0x00 => t(RomOnly, false, false, false, false),
            0x08 => t(RomOnly, true, false, false, false),
            0x09 => t(RomOnly, true, true, false, false),
            0x01 => t(Mbc1, false, false, false, false),
            0x02 => t(Mbc1, true, false, false, false),
            0x03 => t(Mbc1, true, true, false, false),
            0x05 => t(Mbc2, false, false, false, false),
            0x06 => t(Mbc2, false, true, false, false),
            0x0F => t(Mbc3, false, true, true, false),
            0x10 => t(Mbc3, true, true, true, false),
            0x11 => t(Mbc3, false, false, false, false),
            0x12 => t(Mbc3, true, false, false, false),
            0x13 => t(Mbc3, true, true, false, false),
            0x19 => t(Mbc5, false, false, false, false),
            0x1A => t(Mbc5, true, false, false, false),
            0x1B => t(Mbc5, true, true, false, false),
            0x1C => t(Mbc5, false, false, false, true),
            0x1D => t(Mbc5, true, false, false, true),
            0x1E => t(Mbc5, true, true, false, true),
            _ => None,
        }
    }

    /// Human-readable name as in Pan Docs (for example `MBC1+RAM+BATTERY`).
    pub fn name(&self) -> String {
        let base = match self.mbc {
            MbcKind::RomOnly => "ROM",
            MbcKind::Mbc1 => "MBC1",
            MbcKind::Mbc2 => "MBC2",
            MbcKind::Mbc3 => "MBC3",
            MbcKind::Mbc5 => "MBC5",
        };
        let mut s = String::from(base);
        if self.mbc == MbcKind::RomOnly && !self.ram {
            s.push_str(" ONLY");
        }
        if self.rtc {
            s.push_str("+TIMER");
        }
        if self.rumble {
            s.push_str("+RUMBLE");
        }
        if self.ram {
            s.push_str("+RAM");
        }
        if self.battery {
            s.push_str("+BATTERY");
        }
        s
    }
}

/// Name of a cartridge type byte, also for types this core cannot run.
pub fn cartridge_type_name(code: u8) -> String {
    match CartridgeType::from_code(code) {
        Some(t) => t.name(),
        None => match code {
            0x0B..=0x0D => "MMM01".into(),
            0x20 => "MBC6".into(),
            0x22 => "MBC7+SENSOR+RUMBLE+RAM+BATTERY".into(),
            0xFC => "POCKET CAMERA".into(),
            0xFD => "BANDAI TAMA5".into(),
            0xFE => "HuC3".into(),
            0xFF => "HuC1+RAM+BATTERY".into(),
            _ => format!("unknown (0x{code:02X})"),
        },
    }
}

/// The decoded cartridge header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// Title (0x0134..), printable ASCII up to the first NUL, trailing spaces trimmed.
    pub title: String,
    /// CGB flag byte (0x0143): 0x80 = CGB-enhanced, 0xC0 = CGB only.
    pub cgb_flag: u8,
    /// SGB flag byte (0x0146): 0x03 = SGB functions.
    pub sgb_flag: u8,
    /// Cartridge type byte (0x0147).
    pub cartridge_type: u8,
    /// ROM size code (0x0148).
    pub rom_size_code: u8,
    /// ROM size the header declares, in bytes.
    pub rom_size: usize,
    /// RAM size code (0x0149).
    pub ram_size_code: u8,
    /// External RAM size the header declares, in bytes (MBC2's built-in 512 half-bytes excluded).
    pub ram_size: usize,
    /// Destination code (0x014A): 0 = Japan, 1 = elsewhere.
    pub destination: u8,
    /// Mask ROM version (0x014C).
    pub version: u8,
    /// Header checksum stored at 0x014D.
    pub header_checksum: u8,
    /// Header checksum computed over 0x0134..=0x014C.
    pub header_checksum_computed: u8,
    /// Global checksum stored at 0x014E-0x014F (big-endian).
    pub global_checksum: u16,
    /// Global checksum computed over the whole file except 0x014E-0x014F.
    pub global_checksum_computed: u16,
    /// The Nintendo logo at 0x0104 matches (the real boot ROM refuses to start otherwise).
    pub logo_ok: bool,
}

/// The logo bitmap every licensed cartridge carries at 0x0104; the boot ROM compares it.
/// This is cartridge header data, not boot ROM code.
const LOGO: [u8; 48] = [
    0xCE, 0xED, 0x66, 0x66, 0xCC, 0x0D, 0x00, 0x0B, 0x03, 0x73, 0x00, 0x83, 0x00, 0x0C, 0x00, 0x0D,
    0x00, 0x08, 0x11, 0x1F, 0x88, 0x89, 0x00, 0x0E, 0xDC, 0xCC, 0x6E, 0xE6, 0xDD, 0xDD, 0xD9, 0x99,
    0xBB, 0xBB, 0x67, 0x63, 0x6E, 0x0E, 0xEC, 0xCC, 0xDD, 0xDC, 0x99, 0x9F, 0xBB, 0xB9, 0x33, 0x3E,
];

/// True when `rom[offset..offset + 48]` holds the logo (used for MBC1 multicart detection).
pub(crate) fn logo_at(rom: &[u8], offset: usize) -> bool {
    rom.get(offset..offset + LOGO.len()) == Some(&LOGO[..])
}

impl Header {
    /// Parses the header of `rom`. Fails only when the file is too short to hold one or
    /// a size code is invalid; checksum validity is reported in the fields, not as an error.
    pub fn parse(rom: &[u8]) -> Result<Self, Error> {
        if rom.len() < HEADER_END {
            return Err(Error::Truncated {
                len: rom.len(),
                needed: HEADER_END,
                what: "cartridge header (0x0100-0x014F)",
            });
        }
        let rom_size_code = rom[0x148];
        let rom_size = match rom_size_code {
            0..=8 => 0x8000usize << rom_size_code,
            _ => {
                return Err(Error::BadHeader {
                    offset: 0x148,
                    field: "ROM size",
                    value: rom_size_code,
                });
            }
        };
        let ram_size_code = rom[0x149];
        let ram_size = match ram_size_code {
            0 => 0,
            // Code 1 (2 KiB) is unofficial but appears on a few early cartridges.
            1 => 0x800,
            2 => 0x2000,
            3 => 0x8000,
            4 => 0x20000,
            5 => 0x10000,
            _ => {
                return Err(Error::BadHeader {
                    offset: 0x149,
                    field: "RAM size",
                    value: ram_size_code,
                });
            }
        };
        let title_bytes = &rom[0x134..0x144];
        let cgb_flag = rom[0x143];
        // CGB-era titles are 11 or 15 bytes; the flag byte is never part of the title.
        let title_len = if cgb_flag & 0x80 != 0 { 15 } else { 16 };
        let title: String = title_bytes[..title_len]
            .iter()
            .take_while(|&&b| b != 0)
            .map(|&b| {
                if (0x20..0x7F).contains(&b) {
                    b as char
                } else {
                    '?'
                }
            })
            .collect::<String>()
            .trim_end()
            .to_string();
        let header_checksum_computed = rom[0x134..=0x14C]
            .iter()
            .fold(0u8, |x, &b| x.wrapping_sub(b).wrapping_sub(1));
        let global_checksum_computed = rom
            .iter()
            .enumerate()
            .filter(|&(i, _)| i != 0x14E && i != 0x14F)
            .fold(0u16, |s, (_, &b)| s.wrapping_add(b as u16));
        Ok(Self {
            title,
            cgb_flag,
            sgb_flag: rom[0x146],
            cartridge_type: rom[0x147],
            rom_size_code,
            rom_size,
            ram_size_code,
            ram_size,
            destination: rom[0x14A],
            version: rom[0x14C],
            header_checksum: rom[0x14D],
            header_checksum_computed,
            global_checksum: u16::from_be_bytes([rom[0x14E], rom[0x14F]]),
            global_checksum_computed,
            logo_ok: logo_at(rom, 0x104),
        })
    }

    /// The stored header checksum matches the computed one.
    pub fn header_checksum_ok(&self) -> bool {
        self.header_checksum == self.header_checksum_computed
    }

    /// The stored global checksum matches the computed one (real hardware never checks it).
    pub fn global_checksum_ok(&self) -> bool {
        self.global_checksum == self.global_checksum_computed
    }

    /// Human-readable cartridge type.
    pub fn cartridge_type_name(&self) -> String {
        cartridge_type_name(self.cartridge_type)
    }

    /// The game asks for Game Boy Color features (0x80) or requires them (0xC0).
    pub fn is_cgb(&self) -> bool {
        self.cgb_flag & 0x80 != 0
    }
}

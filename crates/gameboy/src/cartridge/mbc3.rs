//! MBC3 with the optional real-time clock. The clock is driven by emulated cycles, not
//! by the host clock, so that runs stay deterministic.

use crate::state::{Reader, StateError, Writer};

/// Emulated cycles per RTC second (the DMG main clock).
const CYCLES_PER_SECOND: u64 = 4_194_304;

/// The five RTC registers: seconds, minutes, hours, day low, day high/flags.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct RtcRegs {
    s: u8,
    m: u8,
    h: u8,
    dl: u8,
    dh: u8,
}

impl RtcRegs {
    fn tick_second(&mut self) {
        // The counters are 6/6/5 bits wide; out-of-range values written by software count
        // up to the bit width and wrap without carrying, as on hardware.
        self.s = (self.s + 1) & 0x3F;
        if self.s != 60 {
            return;
        }
        self.s = 0;
        self.m = (self.m + 1) & 0x3F;
        if self.m != 60 {
            return;
        }
        self.m = 0;
        self.h = (self.h + 1) & 0x1F;
        if self.h != 24 {
            return;
        }
        self.h = 0;
        let day = (((self.dh & 1) as u16) << 8 | self.dl as u16) + 1;
        self.dl = day as u8;
        self.dh = (self.dh & 0xFE) | ((day >> 8) as u8 & 1);
        if day > 0x1FF {
            self.dl = 0;
            self.dh = (self.dh & 0xFE) | 0x80;
        }
    }

    fn get(&self, reg: u8) -> u8 {
        match reg {
            0x08 => self.s & 0x3F,
            0x09 => self.m & 0x3F,
            0x0A => self.h & 0x1F,
            0x0B => self.dl,
            _ => self.dh & 0xC1,
        }
    }

    fn set(&mut self, reg: u8, v: u8) {
        match reg {
            0x08 => self.s = v & 0x3F,
            0x09 => self.m = v & 0x3F,
            0x0A => self.h = v & 0x1F,
            0x0B => self.dl = v,
            _ => self.dh = v & 0xC1,
        }
    }
}

/// MBC3 registers and clock.
#[derive(Debug, Clone)]
pub struct Mbc3 {
    ram_enabled: bool,
    rom_bank: u8,
    /// 0x00-0x07: RAM bank; 0x08-0x0C: RTC register.
    select: u8,
    has_rtc: bool,
    /// MBC30: 8-bit ROM bank register for ROMs above 2 MiB.
    wide_rom: bool,
    live: RtcRegs,
    latched: RtcRegs,
    latch_armed: bool,
    /// Cycle count up to which `live` has been advanced.
    synced: u64,
    /// Cycles into the current second.
    subsecond: u64,
}

impl Mbc3 {
    /// A fresh controller.
    pub fn new(has_rtc: bool, wide_rom: bool) -> Self {
        Self {
            ram_enabled: false,
            rom_bank: 1,
            select: 0,
            has_rtc,
            wide_rom,
            live: RtcRegs::default(),
            latched: RtcRegs::default(),
            latch_armed: false,
            synced: 0,
            subsecond: 0,
        }
    }

    fn sync_rtc(&mut self, now: u64) {
        if !self.has_rtc || now <= self.synced {
            self.synced = self.synced.max(now);
            return;
        }
        let elapsed = now - self.synced;
        self.synced = now;
        if self.live.dh & 0x40 != 0 {
            return; // halted
        }
        self.subsecond += elapsed;
        while self.subsecond >= CYCLES_PER_SECOND {
            self.subsecond -= CYCLES_PER_SECOND;
            self.live.tick_second();
        }
    }

    /// Handles a write to 0x0000-0x7FFF at emulated cycle `now`.
    pub fn write(&mut self, addr: u16, value: u8, now: u64) {
        match addr >> 13 {
            0 => self.ram_enabled = value & 0x0F == 0x0A,
            1 => {
                let v = if self.wide_rom { value } else { value & 0x7F };
                self.rom_bank = if v == 0 { 1 } else { v };
            }
            2 => self.select = value & 0x0F,
            _ => {
                if self.has_rtc {
                    if value == 0 {
                        self.latch_armed = true;
                    } else {
                        if value == 1 && self.latch_armed {
                            self.sync_rtc(now);
                            self.latched = self.live;
                        }
                        self.latch_armed = false;
                    }
                }
            }
        }
    }

    /// ROM bank mapped at 0x4000 (before masking).
    pub fn rom_bank(&self) -> usize {
        self.rom_bank as usize
    }

    /// RAM bank mapped at 0xA000, or `None` when an RTC register is selected.
    pub fn ram_bank(&self) -> Option<usize> {
        if self.select < 8 {
            Some(self.select as usize & 7)
        } else {
            None
        }
    }

    /// External RAM / RTC access is enabled.
    pub fn ram_enabled(&self) -> bool {
        self.ram_enabled
    }

    /// Reads the selected RTC register (latched copy); 0xFF when none is selected.
    pub fn rtc_read(&self) -> u8 {
        if self.has_rtc && (0x08..=0x0C).contains(&self.select) {
            self.latched.get(self.select)
        } else {
            0xFF
        }
    }

    /// Writes the selected RTC register.
    pub fn rtc_write(&mut self, value: u8, now: u64) {
        if !(self.has_rtc && (0x08..=0x0C).contains(&self.select)) {
            return;
        }
        self.sync_rtc(now);
        if self.select == 0x08 {
            self.subsecond = 0;
        }
        self.live.set(self.select, value);
        // The latched copy reflects writes as well, so software reading back sees them.
        self.latched.set(self.select, value);
    }

    pub(crate) fn save(&self, w: &mut Writer) {
        w.bool(self.ram_enabled);
        w.u8(self.rom_bank);
        w.u8(self.select);
        for r in [self.live, self.latched] {
            w.bytes(&[r.s, r.m, r.h, r.dl, r.dh]);
        }
        w.bool(self.latch_armed);
        w.u64(self.synced);
        w.u64(self.subsecond);
    }

    pub(crate) fn load(&mut self, r: &mut Reader) -> Result<(), StateError> {
        self.ram_enabled = r.bool()?;
        self.rom_bank = r.u8()?;
        self.select = r.u8()? & 0x0F;
        for regs in [&mut self.live, &mut self.latched] {
            let b = r.bytes(5)?;
            *regs = RtcRegs {
                s: b[0],
                m: b[1],
                h: b[2],
                dl: b[3],
                dh: b[4],
            };
        }
        self.latch_armed = r.bool()?;
        self.synced = r.u64()?;
        self.subsecond = r.u64()? % CYCLES_PER_SECOND;
        Ok(())
    }

    /// Checks the clock's sync time against the machine clock `now`.
    pub(crate) fn validate(&self, now: u64) -> Result<(), StateError> {
        if self.synced > now.saturating_add(crate::state::TIME_WINDOW)
            || self.synced.saturating_add(crate::state::TIME_WINDOW) < now
        {
            return Err(StateError::Invalid("RTC sync time"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rtc_counts_emulated_seconds_and_latches() {
        let mut m = Mbc3::new(true, false);
        m.write(0x0000, 0x0A, 0);
        m.write(0x4000, 0x08, 0);
        m.rtc_write(58, 0);
        m.write(0x4000, 0x09, 0);
        m.rtc_write(59, 0);
        m.write(0x4000, 0x0A, 0);
        m.rtc_write(23, 0);
        // Three seconds later: 23:59:58 + 3 s = 00:00:01 of day 1.
        let t = 3 * CYCLES_PER_SECOND;
        m.write(0x6000, 0, t);
        m.write(0x6000, 1, t);
        let read = |m: &mut Mbc3, reg: u8| {
            m.write(0x4000, reg, t);
            m.rtc_read()
        };
        assert_eq!(read(&mut m, 0x08), 1);
        assert_eq!(read(&mut m, 0x09), 0);
        assert_eq!(read(&mut m, 0x0A), 0);
        assert_eq!(read(&mut m, 0x0B), 1);
        // Without a new latch the value stays frozen.
        let later = 10 * CYCLES_PER_SECOND;
        m.write(0x4000, 0x08, later);
        assert_eq!(m.rtc_read(), 1);
    }

    #[test]
    fn rtc_halt_stops_counting() {
        let mut m = Mbc3::new(true, false);
        m.write(0x4000, 0x0C, 0);
        m.rtc_write(0x40, 0);
        m.write(0x6000, 0, 5 * CYCLES_PER_SECOND);
        m.write(0x6000, 1, 5 * CYCLES_PER_SECOND);
        m.write(0x4000, 0x08, 0);
        assert_eq!(m.rtc_read(), 0);
    }
}

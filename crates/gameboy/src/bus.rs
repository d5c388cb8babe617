//! The memory map, IO registers and the event scheduler.
//!
//! Time is `cycles` (T-cycles, 4 per M-cycle). A CPU memory access happens at the current
//! time and then time advances by one M-cycle, so an access sees every event whose time
//! is at or before it. Peripherals are not ticked: each one is a function of time that is
//! brought up to date ("synced") only when the CPU touches it, when an interrupt it raises
//! is due (`next_event`), or at instruction boundaries once `next_event` has passed.

use std::sync::Arc;

use crate::audio::Audio;
use crate::cartridge::Cartridge;
use crate::dma::{self, Dma};
use crate::joypad::{Buttons, Joypad};
use crate::ppu::Ppu;
use crate::serial::Serial;
use crate::state::{Reader, StateError, Writer};
use crate::timer::Timer;

/// Interrupt bit: timer.
pub const IRQ_TIMER: u8 = 4;
/// Interrupt bit: serial.
pub const IRQ_SERIAL: u8 = 8;
/// Interrupt bit: joypad.
pub const IRQ_JOYPAD: u8 = 16;

/// Everything the CPU talks to.
#[derive(Clone)]
pub struct Bus {
    /// T-cycles since power-on (or since the post-boot start).
    pub cycles: u64,
    /// Earliest time any peripheral needs attention.
    pub next_event: u64,
    /// The CPU takes its slow path (events, interrupts, HALT, EI delay) once `cycles`
    /// reaches this: `next_event`, or 0 when something may need attention right away.
    pub deadline: u64,
    /// LY and STAT cannot change before this time (the PPU's next transition as of the last
    /// sync), so games polling them in a loop skip the slow path. 0 = unknown.
    pub ppu_stable_until: u64,
    /// The cartridge.
    pub cart: Cartridge,
    /// Work RAM (0xC000-0xDFFF).
    pub wram: Box<[u8; 0x2000]>,
    /// High RAM (0xFF80-0xFFFE).
    pub hram: [u8; 0x7F],
    /// Pixel processing unit.
    pub ppu: Ppu,
    /// Timer.
    pub timer: Timer,
    /// Serial port.
    pub serial: Serial,
    /// Joypad.
    pub joypad: Joypad,
    /// OAM DMA.
    pub dma: Dma,
    /// Sound registers.
    pub audio: Audio,
    /// Interrupt enable (0xFFFF).
    pub ie: u8,
    /// Interrupt flags (0xFF0F, low 5 bits).
    pub if_: u8,
    /// User-supplied boot ROM.
    pub boot: Option<Arc<[u8]>>,
    /// The boot ROM is mapped over 0x0000-0x00FF.
    pub boot_mapped: bool,
}

impl Bus {
    /// Reads memory as the CPU does and advances one M-cycle.
    #[inline(always)]
    pub fn read(&mut self, addr: u16) -> u8 {
        let t = self.cycles;
        self.cycles = t + 4;
        if addr < 0x8000 {
            self.cart.read_rom(addr)
        } else if addr & 0xE000 == 0xC000 {
            self.wram[addr as usize & 0x1FFF]
        } else if addr >= 0xFF80 && addr != 0xFFFF {
            self.hram[addr as usize - 0xFF80]
        } else if addr == 0xFF44 && t < self.ppu_stable_until {
            self.ppu.read_ly()
        } else {
            self.read_slow(addr, t)
        }
    }

    /// Writes memory as the CPU does and advances one M-cycle.
    #[inline(always)]
    pub fn write(&mut self, addr: u16, v: u8) {
        let t = self.cycles;
        if self.dma.active {
            self.sync_dma(t);
        }
        match addr >> 13 {
            6 => self.wram[addr as usize & 0x1FFF] = v,
            7 if addr >= 0xFF80 && addr != 0xFFFF => self.hram[addr as usize - 0xFF80] = v,
            _ => self.write_slow(addr, v, t),
        }
        self.cycles = t + 4;
    }

    /// An M-cycle without a memory access.
    #[inline(always)]
    pub fn tick(&mut self) {
        self.cycles += 4;
    }

    /// Reads memory without side effects (debuggers, RAM observation).
    pub fn peek(&self, addr: u16) -> u8 {
        match addr {
            0x0000..=0x7FFF => self.cart.read_rom(addr),
            0x8000..=0x9FFF => self.ppu.vram[addr as usize & 0x1FFF],
            0xA000..=0xBFFF => self.cart.read_ram(addr),
            0xC000..=0xFDFF => self.wram[addr as usize & 0x1FFF],
            0xFE00..=0xFE9F => self.ppu.oam[addr as usize - 0xFE00],
            0xFEA0..=0xFEFF => 0,
            0xFF80..=0xFFFE => self.hram[addr as usize - 0xFF80],
            0xFFFF => self.ie,
            _ => self.io_peek(addr),
        }
    }

    /// Writes memory directly, bypassing access restrictions and side effects where
    /// possible (RAM, VRAM, OAM, HRAM, IE; IO registers and MBC writes behave as writes).
    pub fn poke(&mut self, addr: u16, v: u8) {
        match addr {
            0x8000..=0x9FFF => self.ppu.vram[addr as usize & 0x1FFF] = v,
            0xC000..=0xFDFF => self.wram[addr as usize & 0x1FFF] = v,
            0xFE00..=0xFE9F => self.ppu.oam[addr as usize - 0xFE00] = v,
            0xFEA0..=0xFEFF => {}
            0xFF80..=0xFFFE => self.hram[addr as usize - 0xFF80] = v,
            0xFFFF => {
                self.ie = v;
                self.deadline = 0;
            }
            _ => {
                let t = self.cycles;
                self.write_slow(addr, v, t);
            }
        }
    }

    #[cold]
    #[inline(never)]
    fn read_slow(&mut self, addr: u16, t: u64) -> u8 {
        match addr {
            0x0000..=0x7FFF => self.cart.read_rom(addr),
            0x8000..=0x9FFF => {
                self.sync_ppu(t);
                if self.ppu.vram_read_blocked(t) {
                    0xFF
                } else {
                    self.ppu.vram[addr as usize & 0x1FFF]
                }
            }
            0xA000..=0xBFFF => self.cart.read_ram(addr),
            0xC000..=0xFDFF => self.wram[addr as usize & 0x1FFF],
            0xFE00..=0xFEFF => {
                self.sync_ppu(t);
                if self.dma.active {
                    self.sync_dma(t);
                }
                if self.dma.blocks_oam(t) {
                    0xFF
                } else if self.ppu.oam_read_blocked(t) {
                    self.oam_corrupt(t, Corruption::Read);
                    0xFF
                } else if addr >= 0xFEA0 {
                    0x00
                } else {
                    self.ppu.oam[addr as usize - 0xFE00]
                }
            }
            0xFF80..=0xFFFE => self.hram[addr as usize - 0xFF80],
            0xFFFF => self.ie,
            _ => self.io_read(addr, t),
        }
    }

    #[cold]
    #[inline(never)]
    fn write_slow(&mut self, addr: u16, v: u8, t: u64) {
        match addr {
            0x0000..=0x7FFF => self.cart.write_rom(addr, v, t),
            0x8000..=0x9FFF => {
                self.sync_ppu(t);
                if !self.ppu.vram_write_blocked(t) {
                    self.ppu.vram[addr as usize & 0x1FFF] = v;
                }
            }
            0xA000..=0xBFFF => self.cart.write_ram(addr, v, t),
            0xC000..=0xFDFF => self.wram[addr as usize & 0x1FFF] = v,
            0xFE00..=0xFEFF => {
                self.sync_ppu(t);
                if self.dma.blocks_oam(t) {
                } else if self.ppu.oam_write_blocked(t) {
                    self.oam_corrupt(t, Corruption::Write);
                } else if addr < 0xFEA0 {
                    self.ppu.oam[addr as usize - 0xFE00] = v;
                }
            }
            0xFF80..=0xFFFE => self.hram[addr as usize - 0xFF80] = v,
            0xFFFF => {
                self.ie = v;
                self.deadline = 0;
            }
            _ => {
                self.io_write(addr, v, t);
                self.reschedule();
            }
        }
    }

    fn io_peek(&self, addr: u16) -> u8 {
        match addr {
            0xFF00 => self.joypad.read(),
            0xFF01 => self.serial.read_sb(),
            0xFF02 => self.serial.read_sc(),
            0xFF04 => self.timer.read_div(self.cycles),
            0xFF05 => self.timer.read_tima(),
            0xFF06 => self.timer.read_tma(),
            0xFF07 => self.timer.read_tac(),
            0xFF0F => 0xE0 | self.if_,
            0xFF10..=0xFF3F => self.audio.read(addr),
            0xFF40 => self.ppu.read_lcdc(),
            0xFF41 => self.ppu.read_stat(),
            0xFF42 => self.ppu.scy,
            0xFF43 => self.ppu.scx,
            0xFF44 => self.ppu.read_ly(),
            0xFF45 => self.ppu.read_lyc(),
            0xFF46 => self.dma.reg,
            0xFF47 => self.ppu.bgp,
            0xFF48 => self.ppu.obp0,
            0xFF49 => self.ppu.obp1,
            0xFF4A => self.ppu.wy,
            0xFF4B => self.ppu.wx,
            _ => 0xFF,
        }
    }

    fn io_read(&mut self, addr: u16, t: u64) -> u8 {
        match addr {
            0xFF01 | 0xFF02 if self.serial.sync(t, self.timer.div_add) => {
                self.if_ |= IRQ_SERIAL;
                self.deadline = 0;
            }
            0xFF05 if self.timer.sync(t) => {
                self.if_ |= IRQ_TIMER;
                self.deadline = 0;
            }
            0xFF0F => self.sync_all(t),
            0xFF41 | 0xFF44 => self.sync_ppu(t),
            _ => {}
        }
        match addr {
            0xFF04 => self.timer.read_div(t),
            _ => self.io_peek(addr),
        }
    }

    fn io_write(&mut self, addr: u16, v: u8, t: u64) {
        match addr {
            0xFF00 if self.joypad.write(v) => self.if_ |= IRQ_JOYPAD,
            0xFF00 => {}
            0xFF01 => {
                if self.serial.sync(t, self.timer.div_add) {
                    self.if_ |= IRQ_SERIAL;
                }
                self.serial.write_sb(v);
            }
            0xFF02 => {
                if self.serial.sync(t, self.timer.div_add) {
                    self.if_ |= IRQ_SERIAL;
                }
                self.serial.write_sc(t, v);
            }
            0xFF04 => {
                if self.timer.sync(t) {
                    self.if_ |= IRQ_TIMER;
                }
                if self.serial.sync(t, self.timer.div_add) {
                    self.if_ |= IRQ_SERIAL;
                }
                let old = self.timer.counter(t);
                self.timer.write_div(t);
                if self.serial.div_reset(t, old) {
                    self.if_ |= IRQ_SERIAL;
                }
            }
            0xFF05..=0xFF07 => {
                if self.timer.sync(t) {
                    self.if_ |= IRQ_TIMER;
                }
                match addr {
                    0xFF05 => self.timer.write_tima(t, v),
                    0xFF06 => self.timer.write_tma(t, v),
                    _ => self.timer.write_tac(t, v),
                }
            }
            0xFF0F => {
                self.sync_all(t);
                self.if_ = v & 0x1F;
            }
            0xFF10..=0xFF3F => self.audio.write(addr, v),
            0xFF40..=0xFF4B => {
                self.sync_ppu(t);
                let irq = match addr {
                    0xFF40 => self.ppu.write_lcdc(t, v),
                    0xFF41 => self.ppu.write_stat(v),
                    0xFF42 => {
                        self.ppu.scy = v;
                        0
                    }
                    0xFF43 => {
                        self.ppu.scx = v;
                        0
                    }
                    0xFF45 => self.ppu.write_lyc(v),
                    0xFF46 => {
                        self.start_dma(t, v);
                        0
                    }
                    0xFF47 => {
                        self.ppu.bgp = v;
                        0
                    }
                    0xFF48 => {
                        self.ppu.obp0 = v;
                        0
                    }
                    0xFF49 => {
                        self.ppu.obp1 = v;
                        0
                    }
                    0xFF4A => {
                        self.ppu.wy = v;
                        0
                    }
                    0xFF4B => {
                        self.ppu.wx = v;
                        0
                    }
                    _ => 0,
                };
                self.if_ |= irq;
            }
            0xFF50 if v != 0 && self.boot_mapped => {
                self.boot_mapped = false;
                self.cart.set_boot_overlay(None);
            }
            _ => {}
        }
    }

    fn start_dma(&mut self, t: u64, v: u8) {
        if self.dma.active {
            // The running transfer keeps going until the new one takes over.
            self.sync_dma(t + 4);
        }
        let blocking_since = if self.dma.active && self.dma.block_from <= t + 4 {
            self.dma.block_from
        } else {
            t + dma::START_DELAY
        };
        self.dma.reg = v;
        // Sources above 0xDFFF read the echo of work RAM on DMG.
        let page = if v >= 0xE0 { v - 0x20 } else { v };
        self.dma.src = (page as u16) << 8;
        self.dma.start = t + dma::START_DELAY;
        self.dma.copied = 0;
        self.dma.block_from = blocking_since;
        self.dma.active = true;
    }

    /// Copies the DMA bytes due by time `t`.
    pub fn sync_dma(&mut self, t: u64) {
        let due = self.dma.due(t);
        if due == dma::LEN && self.dma.copied == 0 && (0xC000..0xFE00).contains(&self.dma.src) {
            // The usual case (a shadow OAM in work RAM, caught up in one go): one copy.
            let from = self.dma.src as usize & 0x1FFF;
            self.ppu
                .oam
                .copy_from_slice(&self.wram[from..from + dma::LEN as usize]);
            self.dma.copied = dma::LEN;
        }
        while self.dma.copied < due {
            let i = self.dma.copied;
            let v = self.dma_source_read(self.dma.src + i as u16);
            self.ppu.oam[i as usize] = v;
            self.dma.copied += 1;
        }
        if self.dma.copied == dma::LEN && t >= self.dma.end() {
            self.dma.active = false;
        }
    }

    fn dma_source_read(&self, addr: u16) -> u8 {
        match addr {
            0x0000..=0x7FFF => self.cart.read_rom(addr),
            0x8000..=0x9FFF => self.ppu.vram[addr as usize & 0x1FFF],
            0xA000..=0xBFFF => self.cart.read_ram(addr),
            _ => self.wram[addr as usize & 0x1FFF],
        }
    }

    /// Brings the PPU up to time `t` (including lines it skipped lazily).
    #[inline]
    pub fn sync_ppu(&mut self, t: u64) {
        if self.next_event <= t {
            self.sync_all(t);
        }
        if self.dma.active {
            self.sync_dma(t);
        }
        let irq = self.ppu.advance_to(t);
        if irq != 0 || self.ppu.frame_done {
            self.if_ |= irq;
            self.deadline = 0;
        }
        self.ppu_stable_until = self.ppu.next_time;
    }

    /// Brings every peripheral up to time `t` and recomputes `next_event`.
    pub fn sync_all(&mut self, t: u64) {
        if self.dma.active {
            self.sync_dma(t);
        }
        self.if_ |= self.ppu.advance_to(t);
        if self.timer.sync(t) {
            self.if_ |= IRQ_TIMER;
        }
        if self.serial.sync(t, self.timer.div_add) {
            self.if_ |= IRQ_SERIAL;
        }
        self.reschedule();
    }

    /// Recomputes `next_event` from the peripherals and makes the CPU re-check its state
    /// at the next instruction boundary.
    pub fn reschedule(&mut self) {
        self.deadline = 0;
        self.ppu_stable_until = 0;
        self.next_event = self
            .ppu
            .next_event()
            .min(self.timer.next_event())
            .min(self.serial.next_event(self.timer.div_add))
            .min(self.dma.end());
    }

    /// Sets the held buttons; a newly pressed selected button requests the joypad interrupt.
    pub fn set_buttons(&mut self, b: Buttons) {
        if self.joypad.set(b) {
            self.if_ |= IRQ_JOYPAD;
        }
        self.deadline = 0;
    }

    pub(crate) fn save(&self, w: &mut Writer) {
        w.u64(self.cycles);
        w.bytes(&self.wram[..]);
        w.bytes(&self.hram);
        w.u8(self.ie);
        w.u8(self.if_);
        w.bool(self.boot_mapped);
        self.cart.save(w);
        self.ppu.save(w);
        self.timer.save(w);
        self.serial.save(w);
        self.joypad.save(w);
        self.dma.save(w);
        self.audio.save(w);
    }

    pub(crate) fn load(&mut self, r: &mut Reader) -> Result<(), StateError> {
        self.cycles = r.u64()?;
        self.wram.copy_from_slice(r.bytes(0x2000)?);
        self.hram = r.array()?;
        self.ie = r.u8()?;
        self.if_ = r.u8()? & 0x1F;
        self.boot_mapped = r.bool()?;
        if self.boot_mapped && self.boot.is_none() {
            return Err(StateError::Invalid(
                "state was saved while a boot ROM was running; this machine has none",
            ));
        }
        self.cart.load(r)?;
        let boot = if self.boot_mapped {
            self.boot.clone()
        } else {
            None
        };
        self.cart.set_boot_overlay(boot.as_deref());
        self.ppu.load(r)?;
        self.timer.load(r)?;
        self.serial.load(r)?;
        self.joypad.load(r)?;
        self.dma.load(r)?;
        self.audio.load(r)?;
        if self.cycles >= 1 << 62 || self.cycles < crate::T0 {
            return Err(StateError::Invalid("cycle counter out of range"));
        }
        let now = self.cycles;
        self.ppu.validate(now)?;
        self.timer.validate(now)?;
        self.serial.validate(now)?;
        self.dma.validate(now)?;
        self.cart.validate(now)?;
        self.reschedule();
        Ok(())
    }
}

impl Bus {
    /// OAM corruption bug (DMG): a 16-bit increment/decrement whose register points into
    /// 0xFE00-0xFEFF puts that address on the bus while the PPU scans OAM, which corrupts
    /// the OAM row being scanned ("write" pattern).
    #[inline(always)]
    pub fn oam_bug_write(&mut self, addr: u16) {
        if addr & 0xFF00 == 0xFE00 {
            let t = self.cycles;
            self.oam_corrupt(t, Corruption::Write);
        }
    }

    /// OAM corruption bug for a read combined with an increment (POP, LD A,(HL+/-)).
    #[inline(always)]
    pub fn oam_bug_read_inc(&mut self, addr: u16) {
        if addr & 0xFF00 == 0xFE00 {
            let t = self.cycles;
            self.oam_corrupt(t, Corruption::ReadIncrease);
        }
    }

    #[cold]
    fn oam_corrupt(&mut self, t: u64, kind: Corruption) {
        self.sync_ppu(t);
        let Some(row) = self.ppu.oam_scan_row(t) else {
            return;
        };
        let r = row * 8;
        let oam = &mut self.ppu.oam;
        match kind {
            Corruption::Write => {
                oam[r] = glitch_write(oam[r], oam[r - 8], oam[r - 4]);
                oam[r + 1] = glitch_write(oam[r + 1], oam[r - 7], oam[r - 3]);
                oam.copy_within(r - 6..r, r + 2);
            }
            Corruption::Read => {
                let a = glitch_read(oam[r], oam[r - 8], oam[r - 4]);
                let b = glitch_read(oam[r + 1], oam[r - 7], oam[r - 3]);
                oam[r - 8] = a;
                oam[r] = a;
                oam[r - 7] = b;
                oam[r + 1] = b;
                oam.copy_within(r - 6..r, r + 2);
            }
            Corruption::ReadIncrease => {
                if (4..19).contains(&row) {
                    oam[r - 8] = glitch_read_inc(oam[r - 16], oam[r - 8], oam[r], oam[r - 4]);
                    oam[r - 7] = glitch_read_inc(oam[r - 15], oam[r - 7], oam[r + 1], oam[r - 3]);
                    oam.copy_within(r - 8..r, r);
                    oam.copy_within(r - 8..r, r - 16);
                }
            }
        }
    }
}

#[derive(Clone, Copy)]
enum Corruption {
    Write,
    Read,
    ReadIncrease,
}

fn glitch_write(a: u8, b: u8, c: u8) -> u8 {
    ((a ^ c) & (b ^ c)) ^ c
}

fn glitch_read(a: u8, b: u8, c: u8) -> u8 {
    b | (a & c)
}

fn glitch_read_inc(a: u8, b: u8, c: u8, d: u8) -> u8 {
    (b & (a | c | d)) | (a & c & d)
}

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
    /// CGB hardware and, when the cartridge asks for it, its colour features.
    pub cgb: Option<Box<Cgb>>,
    /// The CPU is held (HDMA, speed switch) until this time.
    pub stall_until: u64,
}

/// State only a CGB has. `mode` is false in DMG compatibility mode (a cartridge without
/// the CGB flag), where the CGB registers are locked.
#[derive(Clone)]
pub struct Cgb {
    /// CGB features are on (the cartridge's CGB flag is set).
    pub mode: bool,
    /// CPU runs at 8 MHz (KEY1 bit 7).
    pub double_speed: bool,
    /// KEY1 bit 0: the next STOP switches speed.
    pub armed: bool,
    /// SVBK as written (bits 0-2).
    pub svbk: u8,
    /// Work RAM banks 0-7 at `0x1000 * n`; the mapped bank's copy is stale (it lives in
    /// `Bus::wram[0x1000..]`, so the DMG fast path stays a single array access).
    pub wram_banks: Box<[u8; 0x8000]>,
    /// HDMA1-HDMA4 as written.
    pub hdma_regs: [u8; 4],
    /// Next HDMA source and destination (offset into VRAM).
    pub hdma_src: u16,
    pub hdma_dst: u16,
    /// 16-byte blocks left; HDMA5 reads `blocks - 1` in bits 0-6.
    pub hdma_blocks: u8,
    /// An HBlank DMA is running.
    pub hdma_active: bool,
    /// RP (infrared port) bits 0, 6 and 7.
    pub rp: u8,
    /// FF72-FF75, undocumented read/write registers.
    pub undoc: [u8; 4],
}

/// Mapped WRAM bank for an SVBK value (0 selects bank 1).
fn wram_bank(svbk: u8) -> usize {
    (svbk & 7).max(1) as usize
}

/// CPU cycles one 16-byte HDMA block holds the CPU: 8 M-cycles, twice that in double
/// speed (the same time on the PPU's clock).
fn hdma_block_cycles(double: bool) -> u64 {
    32 << double as u32
}

/// The CPU's side of the bus: each access takes one M-cycle.
///
/// Two clocks implement it. [`Bus`] keeps time in `Bus::cycles` (single steps, interrupt
/// dispatch, HALT). [`Clocked`] keeps it in a local for the fast loop: `cycles` is a field
/// behind a pointer that every out-of-line call may write, so through `Bus` each access is
/// a load, an add and a store, one serial chain through memory for the whole run.
pub trait Mem {
    /// Reads memory as the CPU does and advances one M-cycle.
    fn read(&mut self, addr: u16) -> u8;
    /// Writes memory as the CPU does and advances one M-cycle.
    fn write(&mut self, addr: u16, v: u8);
    /// An M-cycle without a memory access.
    fn tick(&mut self);
    /// The DMG's OAM corruption bug for a 16-bit increment or decrement of a register
    /// that points at `addr` ("write" pattern).
    fn oam_bug_write(&mut self, addr: u16);
    /// The OAM corruption bug for a read combined with an increment (POP, LD A,(HL+/-)).
    fn oam_bug_read_inc(&mut self, addr: u16);
    /// The CPU must take the slow path at the next instruction boundary.
    fn poll(&mut self);
    /// The bus with `cycles` brought up to date, for the rare instructions that touch its
    /// state directly (HALT, STOP). The caller must not change `cycles`.
    fn synced(&mut self) -> &mut Bus;
}

impl Mem for Bus {
    #[inline(always)]
    fn read(&mut self, addr: u16) -> u8 {
        let t = self.cycles;
        self.cycles = t + 4;
        self.read_at(addr, t)
    }

    #[inline(always)]
    fn write(&mut self, addr: u16, v: u8) {
        let t = self.cycles;
        self.write_at(addr, v, t);
        self.cycles = t + 4;
    }

    #[inline(always)]
    fn tick(&mut self) {
        self.cycles += 4;
    }

    #[inline(always)]
    fn oam_bug_write(&mut self, addr: u16) {
        let t = self.cycles;
        self.oam_bug_at(addr, t, Corruption::Write);
    }

    #[inline(always)]
    fn oam_bug_read_inc(&mut self, addr: u16) {
        let t = self.cycles;
        self.oam_bug_at(addr, t, Corruption::ReadIncrease);
    }

    #[inline(always)]
    fn poll(&mut self) {
        self.deadline = 0;
    }

    #[inline(always)]
    fn synced(&mut self) -> &mut Bus {
        self
    }
}

/// The bus with the CPU's clock in a local (`t`), for the fast loop: written back to
/// `Bus::cycles` only before the cold paths that read it, and by the loop when it leaves.
pub struct Clocked<'a> {
    /// The bus.
    pub bus: &'a mut Bus,
    /// The time, authoritative over `bus.cycles` while this lives.
    pub t: u64,
}

impl Mem for Clocked<'_> {
    #[inline(always)]
    fn read(&mut self, addr: u16) -> u8 {
        let t = self.t;
        self.t = t + 4;
        self.bus.read_at(addr, t)
    }

    #[inline(always)]
    fn write(&mut self, addr: u16, v: u8) {
        let t = self.t;
        self.bus.write_at(addr, v, t);
        self.t = t + 4;
    }

    #[inline(always)]
    fn tick(&mut self) {
        self.t += 4;
    }

    #[inline(always)]
    fn oam_bug_write(&mut self, addr: u16) {
        self.bus.oam_bug_at(addr, self.t, Corruption::Write);
    }

    #[inline(always)]
    fn oam_bug_read_inc(&mut self, addr: u16) {
        self.bus.oam_bug_at(addr, self.t, Corruption::ReadIncrease);
    }

    #[inline(always)]
    fn poll(&mut self) {
        self.bus.deadline = 0;
    }

    #[inline(always)]
    fn synced(&mut self) -> &mut Bus {
        self.bus.cycles = self.t;
        self.bus
    }
}

impl Bus {
    /// A CPU read at time `t`; `cycles` may be stale (the fast paths never read it).
    #[inline(always)]
    fn read_at(&mut self, addr: u16, t: u64) -> u8 {
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

    /// A CPU write at time `t`; `cycles` may be stale (the fast paths never read it).
    #[inline(always)]
    fn write_at(&mut self, addr: u16, v: u8, t: u64) {
        if self.dma.active {
            self.cycles = t;
            self.sync_dma(t);
        }
        match addr >> 13 {
            6 => self.wram[addr as usize & 0x1FFF] = v,
            7 if addr >= 0xFF80 && addr != 0xFFFF => self.hram[addr as usize - 0xFF80] = v,
            _ => self.write_slow(addr, v, t),
        }
    }

    /// Reads memory without side effects (debuggers, RAM observation).
    pub fn peek(&self, addr: u16) -> u8 {
        match addr {
            0x0000..=0x7FFF => self.cart.read_rom(addr),
            0x8000..=0x9FFF => self.ppu.vram[self.ppu.vram_bank + (addr as usize & 0x1FFF)],
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
            0x8000..=0x9FFF => self.ppu.vram[self.ppu.vram_bank + (addr as usize & 0x1FFF)] = v,
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
        // As the CPU sees it: the access has taken its M-cycle.
        self.cycles = t + 4;
        match addr {
            0x0000..=0x7FFF => self.cart.read_rom(addr),
            0x8000..=0x9FFF => {
                self.sync_ppu(t);
                if self.ppu.vram_read_blocked(t) {
                    0xFF
                } else {
                    self.ppu.vram[self.ppu.vram_bank + (addr as usize & 0x1FFF)]
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
        // The write lands before its M-cycle ends.
        self.cycles = t;
        match addr {
            0x0000..=0x7FFF => self.cart.write_rom(addr, v, t),
            0x8000..=0x9FFF => {
                self.sync_ppu(t);
                if !self.ppu.vram_write_blocked(t) {
                    self.ppu.vram[self.ppu.vram_bank + (addr as usize & 0x1FFF)] = v;
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
            0xFF4C..=0xFF7F => self.cgb_peek(addr),
            _ => 0xFF,
        }
    }

    /// CGB registers (0xFF4C-0xFF7F); 0xFF where the machine or mode has none.
    fn cgb_peek(&self, addr: u16) -> u8 {
        let Some(c) = self.cgb.as_deref() else {
            return 0xFF;
        };
        match addr {
            0xFF72 | 0xFF73 => return c.undoc[addr as usize - 0xFF72],
            0xFF75 => return 0x8F | c.undoc[3],
            0xFF76 | 0xFF77 => return 0x00,
            // VBK reads bank 0 even in DMG compatibility mode.
            0xFF4F if !c.mode => return 0xFE,
            // The palette index registers stay readable; the boot ROM left them past the
            // compatibility palettes it wrote.
            0xFF68 => return self.ppu.bcps | 0x40,
            0xFF6A => return self.ppu.ocps | 0x40,
            _ if !c.mode => return 0xFF,
            _ => {}
        }
        match addr {
            0xFF4D => 0x7E | (c.double_speed as u8) << 7 | c.armed as u8,
            0xFF4F => 0xFE | (self.ppu.vram_bank >> 13) as u8,
            0xFF55 => {
                let left = c.hdma_blocks.wrapping_sub(1) & 0x7F;
                if c.hdma_active {
                    left
                } else if c.hdma_blocks == 0 {
                    0xFF
                } else {
                    0x80 | left
                }
            }
            // Nothing ever shines into the infrared port: bit 1 reads 1 (no light).
            0xFF56 => (c.rp & 0xC1) | 0x3E,
            0xFF68 => self.ppu.bcps | 0x40,
            0xFF69 => self.ppu.read_palette_data(false),
            0xFF6A => self.ppu.ocps | 0x40,
            0xFF6B => self.ppu.read_palette_data(true),
            0xFF6C => 0xFE | self.ppu.opri,
            0xFF70 => 0xF8 | c.svbk,
            0xFF74 => c.undoc[2],
            _ => 0xFF,
        }
    }

    /// Writes a CGB register (0xFF4C-0xFF7F) at time `t`.
    fn cgb_write(&mut self, addr: u16, v: u8, t: u64) {
        let Some(c) = self.cgb.as_deref_mut() else {
            return;
        };
        match addr {
            0xFF72 | 0xFF73 => c.undoc[addr as usize - 0xFF72] = v,
            0xFF75 => c.undoc[3] = v & 0x70,
            _ if !c.mode => {}
            0xFF4D => c.armed = v & 1 != 0,
            0xFF4F => {
                self.sync_ppu(t);
                self.ppu.vram_bank = (v as usize & 1) << 13;
            }
            0xFF51..=0xFF54 => c.hdma_regs[addr as usize - 0xFF51] = v,
            0xFF55 => self.write_hdma5(v, t),
            0xFF56 => c.rp = v & 0xC1,
            0xFF68 => self.ppu.bcps = v & 0xBF,
            0xFF6A => self.ppu.ocps = v & 0xBF,
            0xFF69 | 0xFF6B => {
                self.sync_ppu(t);
                self.ppu.write_palette_data(addr == 0xFF6B, v);
            }
            0xFF6C => self.ppu.opri = v & 1,
            0xFF70 => {
                let (old, new) = (wram_bank(c.svbk), wram_bank(v));
                c.svbk = v & 7;
                if old != new {
                    let (o, n) = (old * 0x1000, new * 0x1000);
                    c.wram_banks[o..o + 0x1000].copy_from_slice(&self.wram[0x1000..]);
                    self.wram[0x1000..].copy_from_slice(&c.wram_banks[n..n + 0x1000]);
                }
            }
            0xFF74 => c.undoc[2] = v,
            _ => {}
        }
    }

    /// HDMA5: starts a general-purpose transfer (bit 7 clear: all blocks now, CPU held),
    /// starts an HBlank transfer (bit 7 set: one block per HBlank), or stops a running
    /// HBlank transfer (bit 7 clear while one runs).
    fn write_hdma5(&mut self, v: u8, t: u64) {
        self.sync_ppu(t);
        let c = self.cgb.as_deref_mut().expect("CGB mode");
        if c.hdma_active && v & 0x80 == 0 {
            c.hdma_active = false;
            self.ppu.hblank_dma = false;
            return;
        }
        let r = c.hdma_regs;
        c.hdma_src = u16::from_be_bytes([r[0], r[1]]) & 0xFFF0;
        c.hdma_dst = u16::from_be_bytes([r[2], r[3]]) & 0x1FF0;
        c.hdma_blocks = (v & 0x7F) + 1;
        if v & 0x80 != 0 {
            c.hdma_active = true;
            self.ppu.hblank_dma = true;
            self.ppu.hblanks = 0;
        } else {
            let n = c.hdma_blocks;
            let double = c.double_speed;
            for _ in 0..n {
                self.hdma_block();
            }
            self.stall_until = self.stall_until.max(t + 4) + n as u64 * hdma_block_cycles(double);
        }
    }

    /// Copies one 16-byte HDMA block into the mapped VRAM bank.
    fn hdma_block(&mut self) {
        let (src, dst) = {
            let c = self.cgb.as_deref().expect("CGB mode");
            (c.hdma_src, c.hdma_dst)
        };
        for i in 0..16u16 {
            let a = src.wrapping_add(i);
            // VRAM cannot be a source: the bus is busy with the destination.
            let b = if (0x8000..0xA000).contains(&a) {
                0xFF
            } else {
                self.dma_source_read(a)
            };
            self.ppu.vram[self.ppu.vram_bank + ((dst + i) as usize & 0x1FFF)] = b;
        }
        let c = self.cgb.as_deref_mut().expect("CGB mode");
        c.hdma_src = src.wrapping_add(16);
        c.hdma_dst = dst + 16;
        c.hdma_blocks -= 1;
        // The destination wraps out of VRAM: the transfer ends.
        if c.hdma_blocks == 0 || c.hdma_dst >= 0x2000 {
            c.hdma_blocks = 0;
            c.hdma_active = false;
            self.ppu.hblank_dma = false;
        }
    }

    /// Runs the HBlank DMA blocks for the mode 0 starts the PPU has passed.
    #[cold]
    fn hblank_dma(&mut self) {
        let n = std::mem::take(&mut self.ppu.hblanks);
        let double = self.double_speed();
        for _ in 0..n {
            if !self.cgb.as_deref().is_some_and(|c| c.hdma_active) {
                break;
            }
            self.hdma_block();
            let now = self.cycles;
            self.stall_until = self.stall_until.max(now) + hdma_block_cycles(double);
        }
        self.deadline = 0;
    }

    /// STOP with KEY1 armed: switches CPU speed at time `t`; returns whether it did.
    pub fn speed_switch(&mut self, t: u64) -> bool {
        let Some(c) = self.cgb.as_deref_mut() else {
            return false;
        };
        if !c.mode || !c.armed {
            return false;
        }
        c.armed = false;
        let double = !c.double_speed;
        self.audio.sync(t, self.timer.div_add, !double);
        self.cgb.as_deref_mut().expect("CGB").double_speed = double;
        self.sync_all(t);
        self.ppu.set_double_speed(t, double);
        // The CPU pauses while the clock settles (2050 M-cycles).
        self.stall_until = t + 2050 * 4;
        self.reschedule();
        true
    }

    /// CPU speed in double-speed mode.
    pub fn double_speed(&self) -> bool {
        self.cgb.as_deref().is_some_and(|c| c.double_speed)
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
            0xFF10..=0xFF3F => {
                let double = self.double_speed();
                self.audio.sync(t, self.timer.div_add, double);
            }
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
                let double = self.double_speed();
                self.audio.sync(t, self.timer.div_add, double);
                self.timer.write_div(t);
                if self.serial.div_reset(t, old) {
                    self.if_ |= IRQ_SERIAL;
                }
                self.audio.div_reset(old, double);
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
            0xFF10..=0xFF3F => {
                let double = self.double_speed();
                self.audio.sync(t, self.timer.div_add, double);
                self.audio.write(addr, v);
            }
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
            0xFF4C..=0xFF7F if addr != 0xFF50 => self.cgb_write(addr, v, t),
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
            0x8000..=0x9FFF => self.ppu.vram[self.ppu.vram_bank + (addr as usize & 0x1FFF)],
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
        if self.ppu.hblanks != 0 {
            self.hblank_dma();
        }
        self.ppu_stable_until = self.ppu.stable_until();
    }

    /// Brings every peripheral up to time `t` and recomputes `next_event`.
    pub fn sync_all(&mut self, t: u64) {
        if self.dma.active {
            self.sync_dma(t);
        }
        self.if_ |= self.ppu.advance_to(t);
        if self.ppu.hblanks != 0 {
            self.hblank_dma();
        }
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
        if self.cgb.is_none() {
            // A CGB's PPU clock comes with its CGB section (`load_cgb` checks it).
            self.ppu.validate(now)?;
        }
        self.timer.validate(now)?;
        self.serial.validate(now)?;
        self.dma.validate(now)?;
        self.cart.validate(now)?;
        self.reschedule();
        Ok(())
    }
}

impl Bus {
    /// Turns this DMG bus into a CGB's; `mode` turns on the colour features.
    pub fn enable_cgb(&mut self, mode: bool) {
        self.cgb = Some(Box::new(Cgb {
            mode,
            double_speed: false,
            armed: false,
            svbk: 0,
            wram_banks: Box::new([0; 0x8000]),
            hdma_regs: [0xFF; 4],
            hdma_src: 0,
            hdma_dst: 0,
            hdma_blocks: 0,
            hdma_active: false,
            rp: 0,
            undoc: [0; 4],
        }));
        self.ppu.cgb_hw = true;
        self.audio.enable_cgb();
        // The CGB boot ROM leaves no button group selected.
        self.joypad.write(0x30);
        if !mode {
            // It wrote the compatibility palettes: BG palette 0, OBJ palettes 0 and 1.
            self.ppu.bcps = 0x88;
            self.ppu.ocps = 0x90;
        }
        if mode {
            self.serial.enable_cgb();
            self.ppu.enable_cgb();
        }
    }

    /// The CGB-only part of a save state (after the DMG part).
    pub(crate) fn save_cgb(&self, w: &mut Writer) {
        let Some(c) = self.cgb.as_deref() else {
            return;
        };
        let flags = c.mode as u8
            | (c.double_speed as u8) << 1
            | (c.armed as u8) << 2
            | (c.hdma_active as u8) << 3;
        w.u8(flags);
        w.u8(c.svbk);
        // Banks in canonical form: the mapped bank from the live window.
        let mapped = wram_bank(c.svbk);
        for bank in 1..8 {
            if bank == mapped {
                w.bytes(&self.wram[0x1000..]);
            } else {
                w.bytes(&c.wram_banks[bank * 0x1000..(bank + 1) * 0x1000]);
            }
        }
        w.bytes(&c.hdma_regs);
        w.u16(c.hdma_src);
        w.u16(c.hdma_dst);
        w.u8(c.hdma_blocks);
        w.u8(c.rp);
        w.bytes(&c.undoc);
        w.u64(self.stall_until);
        self.ppu.save_cgb(w);
    }

    pub(crate) fn load_cgb(&mut self, r: &mut Reader) -> Result<(), StateError> {
        let Some(c) = self.cgb.as_deref_mut() else {
            return Ok(());
        };
        let flags = r.u8()?;
        if (flags & 1 != 0) != c.mode {
            return Err(StateError::Invalid(
                "state was saved in the other CGB mode (colour vs DMG compatibility)",
            ));
        }
        c.double_speed = flags & 2 != 0;
        c.armed = flags & 4 != 0;
        c.hdma_active = flags & 8 != 0;
        c.svbk = r.u8()? & 7;
        let mapped = wram_bank(c.svbk);
        for bank in 1..8 {
            let data = r.bytes(0x1000)?;
            if bank == mapped {
                // The DMG part already restored the live window; both must agree.
                if data != &self.wram[0x1000..] {
                    return Err(StateError::Invalid("mapped WRAM bank disagrees"));
                }
            }
            c.wram_banks[bank * 0x1000..(bank + 1) * 0x1000].copy_from_slice(data);
        }
        c.hdma_regs = r.array()?;
        c.hdma_src = r.u16()? & 0xFFF0;
        c.hdma_dst = r.u16()? & 0x1FF0;
        c.hdma_blocks = r.u8()?;
        if c.hdma_blocks > 0x80 || (c.hdma_active && c.hdma_blocks == 0) {
            return Err(StateError::Invalid("HDMA length"));
        }
        c.rp = r.u8()? & 0xC1;
        c.undoc = r.array()?;
        c.undoc[3] &= 0x70;
        let active = c.hdma_active;
        self.stall_until = r.u64()?;
        self.ppu.load_cgb(r)?;
        if self.ppu.hblank_dma != active {
            return Err(StateError::Invalid("HDMA flags disagree"));
        }
        let now = self.cycles;
        if self.stall_until > now + 0x80 * 64 + 2050 * 4 {
            return Err(StateError::Invalid("CPU stall time"));
        }
        self.ppu.validate(now)?;
        self.reschedule();
        Ok(())
    }
}

impl Bus {
    /// OAM corruption bug (DMG): a 16-bit increment/decrement whose register points into
    /// 0xFE00-0xFEFF puts that address on the bus at time `t` while the PPU scans OAM,
    /// which corrupts the OAM row being scanned (`kind` is the pattern).
    #[inline(always)]
    fn oam_bug_at(&mut self, addr: u16, t: u64, kind: Corruption) {
        if addr & 0xFF00 == 0xFE00 {
            self.cycles = t;
            self.oam_corrupt(t, kind);
        }
    }

    #[cold]
    fn oam_corrupt(&mut self, t: u64, kind: Corruption) {
        if self.cgb.is_some() {
            // The CGB's OAM does not have the corruption bug.
            return;
        }
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

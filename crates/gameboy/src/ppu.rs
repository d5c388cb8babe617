//! Pixel processing unit.
//!
//! Timing is a state machine of transitions at absolute cycle times. Each visible line `n`
//! sits on a 456-cycle grid `G(n) = frame_origin + 456 n`: mode 2 from `G`, mode 3 from
//! `G + 80`, mode 0 from `G + 80 + 172 + penalty`; LY of lines 1..=143 changes 4 cycles
//! before `G` (while STAT still shows mode 0). Lines 144..=153 are mode 1.
//!
//! Nothing is ticked per cycle. When no STAT interrupt source is enabled and the frame is
//! not being rendered, nothing observable happens inside a line, so the scheduler only
//! wakes the PPU at VBlank and [`Ppu::advance_to`] jumps over whole lines when the CPU
//! looks at LY or STAT. Pixels are drawn a whole line at a time at the start of mode 0,
//! and only for frames that asked to be rendered.

use crate::state::{Reader, StateError, Writer};

/// Screen width in pixels.
pub const WIDTH: usize = 160;
/// Screen height in pixels.
pub const HEIGHT: usize = 144;
/// Cycles per line.
pub const LINE: u64 = 456;
/// Cycles per frame.
pub const FRAME: u64 = LINE * 154;

/// Interrupt bit: VBlank.
pub const IRQ_VBLANK: u8 = 1;
/// Interrupt bit: STAT.
pub const IRQ_STAT: u8 = 2;

/// Cycles from the write that switches the LCD on to the start of its timeline.
const LCD_ON_DELAY: u64 = 4;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
enum Phase {
    /// LCD off: a frame boundary every `FRAME` cycles.
    Off = 0,
    /// LY increments (lines 1..=143), 4 cycles before the line's mode 2.
    LyInc = 1,
    /// Mode 2 starts (lines 1..=143).
    Mode2 = 2,
    /// Line 0 of a frame: LY = 0 and mode 2 at once.
    Line0 = 3,
    /// Mode 3 starts.
    Mode3 = 4,
    /// Mode 0 starts; the line is drawn.
    Mode0 = 5,
    /// Line 144: mode 1 and the VBlank interrupt.
    VBlank = 6,
    /// Lines 145..=153.
    VBlankLine = 7,
    /// CGB only: the mode 2 STAT source's line-144 request, 4 cycles before VBlank.
    PreVBlank = 8,
}

/// Byte lane k (pixel k from the left) holds bit 7-k of the index: one tile row's
/// bitplane spread to eight pixels.
const SPREAD: [u64; 256] = {
    let mut t = [0u64; 256];
    let mut i = 0;
    while i < 256 {
        let mut k = 0;
        while k < 8 {
            t[i] |= (((i >> (7 - k)) & 1) as u64) << (8 * k);
            k += 1;
        }
        i += 1;
    }
    t
};

/// Maps eight color indices (one per byte lane) through a DMG palette register.
#[inline]
fn apply_palette(c: u64, pal: u8) -> u64 {
    const ONES: u64 = 0x0101_0101_0101_0101;
    let b0 = c & ONES;
    let b1 = (c >> 1) & ONES;
    let (n0, n1) = (b0 ^ ONES, b1 ^ ONES);
    let p = |i: u8| ((pal >> (2 * i)) & 3) as u64;
    (n1 & n0) * p(0) + (n1 & b0) * p(1) + (b1 & n0) * p(2) + (b1 & b0) * p(3)
}

/// Colour `c` (0..=3) of palette `p` in CGB palette memory, as RGB555.
#[inline]
fn colour(pal: &[u8; 64], p: u8, c: u8) -> u16 {
    let i = (p as usize * 4 + c as usize) * 2;
    u16::from_le_bytes([pal[i], pal[i + 1]]) & 0x7FFF
}

/// The DMG shade (0 = lightest) nearest to an RGB555 colour's brightness.
#[inline]
pub fn shade_of(c: u16) -> u8 {
    let (r, g, b) = (c & 31, (c >> 5) & 31, (c >> 10) & 31);
    // Rec. 601 luma on the 0..=31 scale.
    let y = (r * 77 + g * 150 + b * 29) >> 8;
    ((31 - y) * 4 / 32) as u8
}

impl Phase {
    fn from_u8(v: u8) -> Option<Self> {
        Some(match v {
            0 => Self::Off,
            1 => Self::LyInc,
            2 => Self::Mode2,
            3 => Self::Line0,
            4 => Self::Mode3,
            5 => Self::Mode0,
            6 => Self::VBlank,
            7 => Self::VBlankLine,
            8 => Self::PreVBlank,
            _ => return None,
        })
    }
}

/// PPU registers, memories, timing state and frame buffer.
///
/// Internal times are in dots (4.194304 MHz). The bus clock runs twice as fast in CGB
/// double speed, so every method that takes or returns a time converts with
/// `dot(t) = base_dot + (t - base_bus) >> shift`, which is the identity on a DMG.
#[derive(Clone)]
pub struct Ppu {
    /// Video RAM: bank 0 at 0x0000, bank 1 (CGB) at 0x2000.
    pub vram: Box<[u8; 0x4000]>,
    /// Offset of the VRAM bank the CPU sees at 0x8000 (0 or 0x2000; VBK).
    pub(crate) vram_bank: usize,
    /// CGB features (cartridge flagged for CGB on CGB hardware).
    pub(crate) cgb_mode: bool,
    /// CGB hardware (also in DMG compatibility mode): a few timings differ.
    pub(crate) cgb_hw: bool,
    /// CGB palette memory: background, then objects (8 palettes x 4 colours x 2 bytes).
    pub(crate) bg_pal: [u8; 64],
    pub(crate) obj_pal: [u8; 64],
    /// BCPS/OCPS: palette memory index (bits 0-5) and auto-increment (bit 7).
    pub(crate) bcps: u8,
    pub(crate) ocps: u8,
    /// OPRI bit 0: object priority by X coordinate (DMG style) instead of OAM order.
    pub(crate) opri: u8,
    /// Bus time and dot time of the last speed switch, and the bus-to-dot shift (1 in
    /// double speed).
    base_bus: u64,
    base_dot: u64,
    shift: u32,
    /// An HBlank DMA is armed: every mode 0 start matters.
    pub(crate) hblank_dma: bool,
    /// Mode 0 starts of visible lines passed since the bus last looked.
    pub(crate) hblanks: u32,
    /// Object attribute memory (0xFE00-0xFE9F).
    pub oam: [u8; 0xA0],
    pub(crate) lcdc: u8,
    /// STAT interrupt enables (bits 3-6).
    stat_en: u8,
    pub(crate) scy: u8,
    pub(crate) scx: u8,
    ly: u8,
    lyc: u8,
    pub(crate) bgp: u8,
    pub(crate) obp0: u8,
    pub(crate) obp1: u8,
    pub(crate) wy: u8,
    pub(crate) wx: u8,
    mode: u8,
    lyc_flag: bool,
    stat_line: bool,
    phase: Phase,
    /// Time of the next transition (`phase`).
    pub(crate) next_time: u64,
    /// Grid time of line 0 of the current frame (virtual for the first frame after LCD on).
    frame_origin: u64,
    /// The frame right after the LCD was switched on (several timings differ).
    first_frame: bool,
    /// Mode 3 start of the current line.
    mode3_time: u64,
    /// Mode 3 length of the current line.
    mode3_len: u64,
    /// Time of the last frame boundary (for the LCD-off cadence).
    last_frame_end: u64,
    /// WY matched LY on some line of this frame.
    wy_triggered: bool,
    /// Window line counter (lines the window has drawn this frame).
    window_line: u8,
    /// Draw the lines of the current frame.
    pub(crate) render: bool,
    /// A frame boundary was passed; cleared by the frame loop.
    pub(crate) frame_done: bool,
    /// Shades 0..=3 per pixel of the last drawn frame (on CGB, the colour's brightness).
    pub frame: Box<[u8; WIDTH * HEIGHT]>,
    /// RGB555 per pixel of the last drawn frame in CGB mode (empty otherwise).
    pub frame_rgb: Vec<u16>,
}

impl Ppu {
    /// The PPU with the LCD off at time `now` (power-on state).
    pub fn new(now: u64) -> Self {
        Self {
            vram: Box::new([0; 0x4000]),
            vram_bank: 0,
            cgb_mode: false,
            cgb_hw: false,
            bg_pal: [0; 64],
            obj_pal: [0; 64],
            bcps: 0,
            ocps: 0,
            opri: 0,
            base_bus: now,
            base_dot: now,
            shift: 0,
            hblank_dma: false,
            hblanks: 0,
            oam: [0; 0xA0],
            lcdc: 0,
            stat_en: 0,
            scy: 0,
            scx: 0,
            ly: 0,
            lyc: 0,
            bgp: 0,
            obp0: 0,
            obp1: 0,
            wy: 0,
            wx: 0,
            mode: 0,
            lyc_flag: false,
            stat_line: false,
            phase: Phase::Off,
            next_time: now + FRAME,
            frame_origin: now,
            first_frame: false,
            mode3_time: 0,
            mode3_len: 172,
            last_frame_end: now,
            wy_triggered: false,
            window_line: 0,
            render: false,
            frame_done: false,
            frame: Box::new([0; WIDTH * HEIGHT]),
            frame_rgb: Vec::new(),
        }
    }

    /// Turns on CGB features: colour palettes, VRAM bank 1 attributes, colour output.
    pub fn enable_cgb(&mut self) {
        self.cgb_mode = true;
        self.frame_rgb = vec![0x7FFF; WIDTH * HEIGHT];
        // The CGB boot ROM leaves every background colour white; object palettes are
        // left as they were at power-on (not initialised), which we take to be white too.
        for p in self
            .bg_pal
            .chunks_exact_mut(2)
            .chain(self.obj_pal.chunks_exact_mut(2))
        {
            p.copy_from_slice(&0x7FFFu16.to_le_bytes());
        }
    }

    /// A white frame (LCD off, or the undisplayed first frame after switching it on).
    fn blank_frame(&mut self) {
        self.frame.fill(0);
        self.frame_rgb.fill(0x7FFF);
    }

    /// Dot time at bus time `t`.
    #[inline]
    fn dot(&self, t: u64) -> u64 {
        self.base_dot + (t.saturating_sub(self.base_bus) >> self.shift)
    }

    /// Bus time of dot time `d` (`d` at or after the last speed switch).
    #[inline]
    fn bus_time(&self, d: u64) -> u64 {
        if d == u64::MAX {
            return d;
        }
        self.base_bus + (d.saturating_sub(self.base_dot) << self.shift)
    }

    /// Switches the bus-to-dot ratio at bus time `t` (CGB speed switch).
    pub fn set_double_speed(&mut self, t: u64, double: bool) {
        let d = self.dot(t);
        self.base_bus = t;
        self.base_dot = d;
        self.shift = double as u32;
    }

    /// Bus time before which LY and STAT cannot change.
    #[inline]
    pub fn stable_until(&self) -> u64 {
        self.bus_time(self.next_time)
    }

    /// The state the DMG boot ROM leaves behind at 0x0100: LCD on, line 0 about to start.
    pub fn post_boot(now: u64, first_line0: u64) -> Self {
        let mut p = Self::new(now);
        p.lcdc = 0x91;
        p.bgp = 0xFC;
        p.obp0 = 0xFF;
        p.obp1 = 0xFF;
        p.mode = 1;
        p.ly = 153;
        p.lyc_flag = false;
        p.phase = Phase::Line0;
        p.next_time = first_line0;
        p.frame_origin = first_line0 - FRAME;
        p.last_frame_end = first_line0 - 10 * LINE;
        p
    }

    #[inline]
    fn lcd_on(&self) -> bool {
        self.lcdc & 0x80 != 0
    }

    /// No STAT source is enabled and nothing is drawn: lines can be skipped.
    #[inline]
    fn skippable(&self) -> bool {
        self.stat_en == 0 && !self.render && !self.hblank_dma
    }

    /// When the scheduler must next call [`Ppu::advance_to`].
    pub fn next_event(&self) -> u64 {
        self.bus_time(self.next_event_dot())
    }

    fn next_event_dot(&self) -> u64 {
        if !self.skippable() {
            return self.next_time;
        }
        match self.phase {
            Phase::Off | Phase::VBlank | Phase::PreVBlank | Phase::Line0 => self.next_time,
            Phase::VBlankLine => self.frame_origin + FRAME + if self.first_frame { 4 } else { 0 },
            _ => self.frame_origin + 144 * LINE,
        }
    }

    fn stat_cond(&self, en: u8) -> bool {
        (en & 0x40 != 0 && self.lyc_flag)
            || match self.mode {
                0 => en & 0x08 != 0,
                1 => en & 0x10 != 0,
                2 => en & 0x20 != 0,
                _ => false,
            }
    }

    /// Recomputes the STAT interrupt line; a rising edge requests the interrupt.
    fn update_stat(&mut self) -> u8 {
        let new = self.stat_cond(self.stat_en);
        let rise = new && !self.stat_line;
        self.stat_line = new;
        if rise { IRQ_STAT } else { 0 }
    }

    fn compare_lyc(&mut self) -> u8 {
        self.lyc_flag = self.ly == self.lyc;
        self.update_stat()
    }

    /// Performs every transition due at or before `t`; returns requested interrupts.
    pub fn advance_to(&mut self, t: u64) -> u8 {
        let t = self.dot(t);
        let mut irq = 0;
        while self.next_time <= t {
            if self.skippable() {
                self.skip_lines(t);
            }
            irq |= self.transition();
        }
        irq
    }

    /// Jumps over whole lines that nobody can observe, up to the last line start <= `t`.
    fn skip_lines(&mut self, t: u64) {
        match self.phase {
            Phase::LyInc | Phase::Mode2 | Phase::Mode3 | Phase::Mode0 | Phase::Line0 => {
                if self.phase == Phase::Line0 {
                    return;
                }
                // LY of line m changes at G(m) - 4; never jump past line 143's start.
                let rel = (t - self.frame_origin + 4) / LINE;
                let m = rel.min(143);
                if m as u8 > self.ly && m >= 1 {
                    self.ly = m as u8 - 1;
                    self.mode = 0;
                    self.phase = Phase::LyInc;
                    self.next_time = self.frame_origin + m * LINE - 4;
                }
            }
            Phase::VBlankLine => {
                let rel = (t - self.frame_origin) / LINE;
                let m = rel.min(153);
                if m as u8 > self.ly + 1 && m >= 145 {
                    self.ly = m as u8 - 1;
                    self.phase = Phase::VBlankLine;
                    self.next_time = self.frame_origin + m * LINE;
                }
            }
            Phase::Off | Phase::VBlank | Phase::PreVBlank => {}
        }
    }

    fn line_time(&self, n: u64) -> u64 {
        self.frame_origin + n * LINE
    }

    fn transition(&mut self) -> u8 {
        let now = self.next_time;
        let mut irq = 0;
        match self.phase {
            Phase::Off => {
                if self.render {
                    // A switched-off LCD shows a blank (white) screen.
                    self.blank_frame();
                }
                self.frame_done = true;
                self.last_frame_end = now;
                self.next_time = now + FRAME;
            }
            Phase::LyInc => {
                self.ly += 1;
                if self.first_frame {
                    // Right after LCD on, the coincidence flag clears here and is
                    // compared again when mode 2 starts.
                    self.lyc_flag = false;
                    irq |= self.update_stat();
                } else {
                    irq |= self.compare_lyc();
                }
                self.phase = Phase::Mode2;
                self.next_time = now + 4;
            }
            Phase::Mode2 => {
                self.mode = 2;
                if self.first_frame {
                    irq |= self.compare_lyc();
                } else {
                    irq |= self.update_stat();
                }
                self.wy_triggered |= self.wy == self.ly;
                self.phase = Phase::Mode3;
                self.next_time = now + 80;
            }
            Phase::Line0 => {
                self.frame_origin = now;
                self.first_frame = false;
                self.ly = 0;
                self.mode = 2;
                irq |= self.compare_lyc();
                self.wy_triggered = self.wy == 0;
                self.window_line = 0;
                self.phase = Phase::Mode3;
                self.next_time = now + 80;
            }
            Phase::Mode3 => {
                self.mode = 3;
                irq |= self.update_stat();
                self.mode3_time = now;
                self.mode3_len = (172 + self.mode3_penalty()) as u64;
                self.phase = Phase::Mode0;
                self.next_time = now + self.mode3_len;
            }
            Phase::Mode0 => {
                self.mode = 0;
                irq |= self.update_stat();
                if self.render {
                    if self.cgb_mode {
                        self.draw_line_cgb();
                    } else {
                        self.draw_line();
                    }
                }
                self.hblanks += self.hblank_dma as u32;
                let g = self.line_time(self.ly as u64);
                if self.ly < 143 {
                    self.phase = Phase::LyInc;
                    self.next_time = g + LINE - 4;
                } else if self.cgb_hw {
                    self.phase = Phase::PreVBlank;
                    self.next_time = g + LINE - 4;
                } else {
                    self.phase = Phase::VBlank;
                    self.next_time = g + LINE;
                }
            }
            Phase::PreVBlank => {
                // The CGB raises the line-144 mode 2 request one M-cycle early.
                if self.stat_en & 0x20 != 0 && !self.stat_line {
                    irq |= IRQ_STAT;
                }
                self.phase = Phase::VBlank;
                self.next_time = now + 4;
            }
            Phase::VBlank => {
                self.ly = 144;
                self.mode = 1;
                irq |= IRQ_VBLANK;
                irq |= self.compare_lyc();
                // DMG quirk: the mode 2 (OAM) STAT source also fires when line 144 starts.
                if !self.cgb_hw && self.stat_en & 0x20 != 0 && !self.stat_line {
                    irq |= IRQ_STAT;
                }
                if self.first_frame && self.render {
                    // The first frame after switching the LCD on is not displayed.
                    self.blank_frame();
                }
                self.wy_triggered = false;
                self.frame_done = true;
                self.last_frame_end = now;
                self.phase = Phase::VBlankLine;
                self.next_time = now + LINE;
            }
            Phase::VBlankLine => {
                self.ly += 1;
                irq |= self.compare_lyc();
                if self.ly == 153 {
                    self.phase = Phase::Line0;
                    // The first frame after LCD on has a short line 0; its last line is
                    // longer so that the following frames keep the 70224-cycle period.
                    self.next_time = now + LINE + if self.first_frame { 4 } else { 0 };
                } else {
                    self.next_time = now + LINE;
                }
            }
        }
        irq
    }

    /// Extra mode 3 cycles for SCX fine scroll and objects on this line (DMG).
    ///
    /// Objects: each of the (at most ten) objects on the line with X < 168 costs 6 dots,
    /// plus, for the first object in each background tile, `max(0, pixels of that tile
    /// to the right of the object - 2)` dots. The CPU observes the sum rounded down to
    /// whole M-cycles, and the SCX fine scroll (`SCX mod 8` dots) rounded up, which is
    /// what the Mooneye `intr_2_mode0_timing_sprites` and `hblank_ly_scx_timing` tests
    /// measure.
    fn mode3_penalty(&self) -> i64 {
        let scx_fine = (self.scx & 7) as i64;
        let mut dots = 0i64;
        if self.lcdc & 0x02 != 0 {
            let (objects, n) = self.scan_objects();
            let mut considered = 0u32;
            for &(x, _) in &objects[..n] {
                let x = x as i64;
                if x < 168 {
                    let tile = (x + scx_fine) >> 3;
                    if considered & (1 << tile) == 0 {
                        considered |= 1 << tile;
                        let right = 7 - ((x + scx_fine) & 7);
                        dots += (right - 2).max(0);
                    }
                    dots += 6;
                }
            }
        }
        (dots / 4) * 4 + (scx_fine + 3) / 4 * 4
    }

    /// OAM scan: the first ten objects on the current line, as (X, OAM index), in OAM order.
    #[inline]
    fn scan_objects(&self) -> ([(u8, u8); 10], usize) {
        let height = if self.lcdc & 0x04 != 0 { 16 } else { 8 };
        // An object covers line `ly` when 0 <= ly + 16 - Y < height (wrapping compare).
        let row = self.ly.wrapping_add(16);
        let mut list = [(0u8, 0u8); 10];
        let mut n = 0;
        for (i, o) in self.oam.chunks_exact(4).enumerate() {
            if row.wrapping_sub(o[0]) < height {
                list[n] = (o[1], i as u8);
                n += 1;
                if n == 10 {
                    break;
                }
            }
        }
        (list, n)
    }

    // ----- CPU-visible registers -----

    /// LCDC.
    pub fn read_lcdc(&self) -> u8 {
        self.lcdc
    }

    /// STAT at time `t` (after `advance_to(t)`).
    pub fn read_stat(&self) -> u8 {
        let mode = if self.lcd_on() { self.mode } else { 0 };
        0x80 | self.stat_en | (self.lyc_flag as u8) << 2 | mode
    }

    /// LY (after `advance_to`).
    pub fn read_ly(&self) -> u8 {
        self.ly
    }

    /// LYC.
    pub fn read_lyc(&self) -> u8 {
        self.lyc
    }

    /// Writes LCDC at time `t` (after `advance_to(t)`).
    pub fn write_lcdc(&mut self, t: u64, v: u8) -> u8 {
        let t = self.dot(t);
        let was_on = self.lcd_on();
        self.lcdc = v;
        let mut irq = 0;
        if was_on && !self.lcd_on() {
            // LY and the mode reset; the coincidence flag and the interrupt line keep
            // their values (the comparison clock stops).
            self.ly = 0;
            self.mode = 0;
            self.first_frame = false;
            self.phase = Phase::Off;
            // Keep the frame cadence: the next boundary is a whole number of frames
            // after the last one.
            let since = t.saturating_sub(self.last_frame_end);
            self.next_time = self.last_frame_end + (since / FRAME + 1) * FRAME;
        } else if !was_on && self.lcd_on() {
            let start = t + LCD_ON_DELAY;
            self.first_frame = true;
            self.ly = 0;
            self.mode = 0;
            self.frame_origin = start - 4;
            self.wy_triggered = self.wy == 0;
            self.window_line = 0;
            irq |= self.compare_lyc();
            self.phase = Phase::Mode3;
            self.next_time = start + 76;
        }
        irq
    }

    /// Writes STAT at time `t`.
    pub fn write_stat(&mut self, v: u8) -> u8 {
        let mut irq = 0;
        // DMG quirk: for one cycle every source reads as enabled, so a write during
        // HBlank, VBlank or LY=LYC requests the interrupt.
        if self.lcd_on() && !self.stat_line && (self.mode < 2 || self.lyc_flag) {
            irq |= IRQ_STAT;
        }
        self.stat_en = v & 0x78;
        if self.lcd_on() {
            irq |= self.update_stat();
        }
        irq
    }

    /// Writes LYC.
    pub fn write_lyc(&mut self, v: u8) -> u8 {
        self.lyc = v;
        if self.lcd_on() { self.compare_lyc() } else { 0 }
    }

    // ----- VRAM/OAM access blocking (call after `advance_to(t)`) -----

    fn mode3_due_within(&self, t: u64, cycles: u64) -> bool {
        self.phase == Phase::Mode3 && self.next_time - t <= cycles >> self.shift
    }

    /// The CPU cannot read OAM at time `t`.
    pub fn oam_read_blocked(&self, _t: u64) -> bool {
        self.lcd_on()
            && (self.mode == 2
                || self.mode == 3
                || (self.first_frame && self.phase == Phase::Mode2))
    }

    /// The CPU cannot write OAM at time `t`.
    pub fn oam_write_blocked(&self, t: u64) -> bool {
        let t = self.dot(t);
        self.lcd_on()
            && (self.mode == 3
                || (self.mode == 2 && !(self.first_frame && self.mode3_due_within(t, 4))))
    }

    /// The CPU cannot read VRAM at time `t`.
    pub fn vram_read_blocked(&self, t: u64) -> bool {
        let t = self.dot(t);
        self.lcd_on() && (self.mode == 3 || (self.mode == 2 && self.mode3_due_within(t, 4)))
    }

    /// The CPU cannot write VRAM at time `t`.
    pub fn vram_write_blocked(&self, _t: u64) -> bool {
        self.lcd_on() && self.mode == 3
    }

    /// The OAM row (0..=19) the OAM scan accesses at time `t`, for the OAM corruption bug.
    /// Row 0 is never corrupted, so it is reported as `None` too.
    pub fn oam_scan_row(&self, t: u64) -> Option<usize> {
        let t = self.dot(t);
        if !self.lcd_on() || (self.first_frame && self.ly == 0) {
            return None;
        }
        // In the frame right after the LCD is switched on the scan runs one M-cycle later
        // relative to the STAT mode (Blargg oam_bug 7-timing_effect).
        let t = if self.first_frame { t - 4 } else { t };
        let g = match self.phase {
            Phase::Mode3 => self.next_time - 80,
            Phase::Mode2 | Phase::Line0 => self.next_time,
            _ => return None,
        };
        // The scan reads one 8-byte row per M-cycle, starting two M-cycles before STAT
        // reports mode 2.
        if t + 8 < g {
            return None;
        }
        let row = ((t + 8 - g) / 4) as usize;
        (1..20).contains(&row).then_some(row)
    }

    // ----- Drawing -----

    /// The window on this line: the screen column it starts at and the pixels of it left
    /// of the screen edge (skipped when WX < 7); `None` when it is not drawn.
    fn window_span(&self) -> Option<(usize, u8)> {
        let window_x = self.wx as i32 - 7;
        (self.lcdc & 0x20 != 0 && self.wy_triggered && self.wx <= 166)
            .then(|| (window_x.max(0) as usize, (-window_x).max(0) as u8))
    }

    /// Background tile map (VRAM offset) and map row of this line.
    fn bg_row(&self) -> (usize, u8) {
        let map = if self.lcdc & 0x08 != 0 {
            0x1C00
        } else {
            0x1800
        };
        (map, self.scy.wrapping_add(self.ly))
    }

    /// Window tile map (VRAM offset) and the window's own line counter.
    fn window_row(&self) -> (usize, u8) {
        let map = if self.lcdc & 0x40 != 0 {
            0x1C00
        } else {
            0x1800
        };
        (map, self.window_line)
    }

    fn draw_line(&mut self) {
        let ly = self.ly as usize;
        if ly >= HEIGHT {
            return;
        }
        let mut bg = [0u8; WIDTH];
        let lcdc = self.lcdc;
        let window = self.window_span();
        if lcdc & 0x01 != 0 {
            let win_start = window.map_or(WIDTH, |(start, _)| start);
            let signed = lcdc & 0x10 == 0;
            let (map, y) = self.bg_row();
            self.fetch_row::<false>(&mut bg[..win_start], &mut [], map, y, self.scx, signed);
            if let Some((start, skip)) = window {
                let (map, wl) = self.window_row();
                self.fetch_row::<false>(&mut bg[start..], &mut [], map, wl, skip, signed);
            }
        }
        if window.is_some() {
            self.window_line = self.window_line.wrapping_add(1);
        }
        let mut row = [0u8; WIDTH];
        let bgp = self.bgp;
        if lcdc & 0x01 != 0 {
            for (px, c) in row.chunks_exact_mut(8).zip(bg.chunks_exact(8)) {
                let c = u64::from_le_bytes(c.try_into().expect("8 bytes"));
                px.copy_from_slice(&apply_palette(c, bgp).to_le_bytes());
            }
        }
        if lcdc & 0x02 != 0 {
            self.draw_objects(ly, &bg, &mut row);
        }
        self.frame[ly * WIDTH..(ly + 1) * WIDTH].copy_from_slice(&row);
    }

    /// Fills `out` with BG/window colour indices from tile map `map`, map row `y`,
    /// starting at map column pixel `x0`. Whole tiles are decoded eight pixels at a time.
    /// With `CGB`, each tile's attributes (VRAM bank 1) select its tile bank, flips and
    /// palette, and its palette and priority bits go to `attr_out`; without, the
    /// attribute is a constant 0, so the DMG path compiles to plain tile fetches and
    /// `attr_out` (may be empty) is not touched.
    fn fetch_row<const CGB: bool>(
        &self,
        out: &mut [u8],
        attr_out: &mut [u8],
        map: usize,
        y: u8,
        x0: u8,
        signed: bool,
    ) {
        let fine_x = (x0 & 7) as usize;
        let tiles = (fine_x + out.len()).div_ceil(8);
        let mut buf = [0u8; 22 * 8];
        let mut abuf = [0u8; 22];
        let fine_y = (y & 7) as usize * 2;
        let row_base = map + (y as usize / 8) * 32;
        let chunks = ((x0 / 8) as usize..).zip(buf.chunks_exact_mut(8).take(tiles));
        for (i, (col, chunk)) in chunks.enumerate() {
            let at = row_base + (col & 31);
            let tile = self.vram[at];
            let base = if signed {
                (0x1000 + (tile as i8 as isize) * 16) as usize
            } else {
                tile as usize * 16
            };
            let (lo, hi) = if CGB {
                let a = self.vram[0x2000 + at];
                abuf[i] = a & 0x87;
                let fine_y = if a & 0x40 != 0 { 14 - fine_y } else { fine_y };
                let bank = if a & 0x08 != 0 { 0x2000 } else { 0 };
                let addr = base + fine_y;
                let lo = self.vram[bank + (addr & 0x1FFF)];
                let hi = self.vram[bank + ((addr + 1) & 0x1FFF)];
                if a & 0x20 != 0 {
                    (lo.reverse_bits(), hi.reverse_bits())
                } else {
                    (lo, hi)
                }
            } else {
                let addr = base + fine_y;
                (self.vram[addr & 0x1FFF], self.vram[(addr + 1) & 0x1FFF])
            };
            let v = SPREAD[lo as usize] | (SPREAD[hi as usize] << 1);
            chunk.copy_from_slice(&v.to_le_bytes());
        }
        out.copy_from_slice(&buf[fine_x..fine_x + out.len()]);
        if CGB {
            for (i, a) in attr_out.iter_mut().enumerate() {
                *a = abuf[(fine_x + i) / 8];
            }
        }
    }

    fn draw_objects(&self, ly: usize, bg: &[u8; WIDTH], row: &mut [u8; WIDTH]) {
        let bg_on = self.lcdc & 0x01 != 0;
        let (obp0, obp1) = (self.obp0, self.obp1);
        // DMG priority: smaller X first, then smaller OAM index.
        self.for_each_object_pixel(ly, true, false, |sx, c, attr| {
            if attr & 0x80 != 0 && bg_on && bg[sx] != 0 {
                return;
            }
            let pal = if attr & 0x10 != 0 { obp1 } else { obp0 };
            row[sx] = (pal >> (c * 2)) & 3;
        });
    }

    /// Calls `put(column, colour index, attributes)` for the object pixel that wins each
    /// column of line `ly`: objects are taken in OAM order, or by X then OAM index when
    /// `by_x`, and the first non-transparent pixel in a column claims it. With `banks`,
    /// attribute bit 3 takes the tile from VRAM bank 1 (CGB).
    fn for_each_object_pixel(
        &self,
        ly: usize,
        by_x: bool,
        banks: bool,
        mut put: impl FnMut(usize, u8, u8),
    ) {
        let height = if self.lcdc & 0x04 != 0 { 16 } else { 8 };
        let (mut list, n) = self.scan_objects();
        if n == 0 {
            return;
        }
        let list = &mut list[..n];
        if by_x {
            list.sort_unstable();
        }
        let mut claimed = [false; WIDTH];
        for &(ox, idx) in list.iter() {
            let o = &self.oam[idx as usize * 4..idx as usize * 4 + 4];
            let attr = o[3];
            let mut row = ly as i32 - (o[0] as i32 - 16);
            if attr & 0x40 != 0 {
                row = height - 1 - row;
            }
            let tile = if height == 16 { o[2] & 0xFE } else { o[2] } as usize;
            let bank = if banks && attr & 0x08 != 0 { 0x2000 } else { 0 };
            let addr = bank + tile * 16 + row as usize * 2;
            let (lo, hi) = (self.vram[addr], self.vram[addr + 1]);
            for dx in 0..8 {
                let sx = ox as i32 - 8 + dx;
                if !(0..WIDTH as i32).contains(&sx) || claimed[sx as usize] {
                    continue;
                }
                let bit = if attr & 0x20 != 0 { dx } else { 7 - dx };
                let c = ((hi >> bit) & 1) << 1 | ((lo >> bit) & 1);
                if c != 0 {
                    claimed[sx as usize] = true;
                    put(sx as usize, c, attr);
                }
            }
        }
    }

    fn draw_line_cgb(&mut self) {
        let ly = self.ly as usize;
        if ly >= HEIGHT {
            return;
        }
        // Colour index (bits 0-1) and BG attributes (palette, priority) per pixel.
        let mut bg = [0u8; WIDTH];
        let mut attr = [0u8; WIDTH];
        let lcdc = self.lcdc;
        let window = self.window_span();
        let win_start = window.map_or(WIDTH, |(start, _)| start);
        // In CGB mode LCDC bit 0 does not hide the background; it only takes away the
        // background's priority over objects.
        let signed = lcdc & 0x10 == 0;
        let (map, y) = self.bg_row();
        let (b, a) = (&mut bg[..win_start], &mut attr[..win_start]);
        self.fetch_row::<true>(b, a, map, y, self.scx, signed);
        if let Some((start, skip)) = window {
            let (map, wl) = self.window_row();
            let (b, a) = (&mut bg[start..], &mut attr[start..]);
            self.fetch_row::<true>(b, a, map, wl, skip, signed);
            self.window_line = self.window_line.wrapping_add(1);
        }
        let mut line = [0u16; WIDTH];
        for ((px, &c), &a) in line.iter_mut().zip(&bg).zip(&attr) {
            *px = colour(&self.bg_pal, a & 7, c);
        }
        if lcdc & 0x02 != 0 {
            self.draw_objects_cgb(ly, &bg, &attr, &mut line);
        }
        let shades = &mut self.frame[ly * WIDTH..(ly + 1) * WIDTH];
        for (s, &c) in shades.iter_mut().zip(&line) {
            *s = shade_of(c);
        }
        self.frame_rgb[ly * WIDTH..(ly + 1) * WIDTH].copy_from_slice(&line);
    }

    fn draw_objects_cgb(&self, ly: usize, bg: &[u8; WIDTH], attr: &[u8; WIDTH], line: &mut [u16]) {
        let bg_master = self.lcdc & 0x01 != 0;
        // OAM order, unless OPRI asks for DMG-style priority (smaller X first).
        self.for_each_object_pixel(ly, self.opri & 1 != 0, true, |sx, c, oattr| {
            let bg_wins = bg_master && bg[sx] != 0 && (oattr & 0x80 != 0 || attr[sx] & 0x80 != 0);
            if !bg_wins {
                line[sx] = colour(&self.obj_pal, oattr & 7, c);
            }
        });
    }

    // ----- CGB palette memory -----

    fn palette_blocked(&self) -> bool {
        self.lcd_on() && self.mode == 3
    }

    /// Reads BCPD (`obj == false`) or OCPD.
    pub fn read_palette_data(&self, obj: bool) -> u8 {
        if self.palette_blocked() {
            return 0xFF;
        }
        let (pal, idx) = if obj {
            (&self.obj_pal, self.ocps)
        } else {
            (&self.bg_pal, self.bcps)
        };
        pal[(idx & 0x3F) as usize]
    }

    /// Writes BCPD or OCPD; the index advances when its bit 7 is set, even when the write
    /// itself is blocked in mode 3.
    pub fn write_palette_data(&mut self, obj: bool, v: u8) {
        let blocked = self.palette_blocked();
        let (pal, idx) = if obj {
            (&mut self.obj_pal, &mut self.ocps)
        } else {
            (&mut self.bg_pal, &mut self.bcps)
        };
        if !blocked {
            pal[(*idx & 0x3F) as usize] = v;
        }
        if *idx & 0x80 != 0 {
            *idx = 0x80 | (idx.wrapping_add(1) & 0x3F);
        }
    }

    /// The CGB-only state: VRAM bank 1, palettes, the speed clock and the colour frame.
    pub(crate) fn save_cgb(&self, w: &mut Writer) {
        w.bytes(&self.vram[0x2000..]);
        w.bytes(&self.bg_pal);
        w.bytes(&self.obj_pal);
        w.bytes(&[
            (self.vram_bank >> 13) as u8,
            self.bcps,
            self.ocps,
            self.opri,
            self.shift as u8,
            self.hblank_dma as u8,
        ]);
        w.u32(self.hblanks);
        w.u64(self.base_bus);
        w.u64(self.base_dot);
        // A row at a time: one bulk write per row instead of one call per pixel.
        let mut row = [0u8; 2 * WIDTH];
        for line in self.frame_rgb.chunks_exact(WIDTH) {
            for (o, c) in row.chunks_exact_mut(2).zip(line) {
                o.copy_from_slice(&c.to_le_bytes());
            }
            w.bytes(&row);
        }
    }

    pub(crate) fn load_cgb(&mut self, r: &mut Reader) -> Result<(), StateError> {
        self.vram[0x2000..].copy_from_slice(r.bytes(0x2000)?);
        self.bg_pal = r.array()?;
        self.obj_pal = r.array()?;
        let b: [u8; 6] = r.array()?;
        if b[0] > 1 || b[4] > 1 || b[5] > 1 {
            return Err(StateError::Invalid("CGB VRAM bank, speed or HDMA flag"));
        }
        self.vram_bank = (b[0] as usize) << 13;
        self.bcps = b[1] & 0xBF;
        self.ocps = b[2] & 0xBF;
        self.opri = b[3] & 1;
        self.shift = b[4] as u32;
        self.hblank_dma = b[5] != 0;
        self.hblanks = r.u32()?;
        self.base_bus = r.u64()?;
        self.base_dot = r.u64()?;
        // Only CGB mode keeps a colour frame (DMG compatibility mode has none).
        let n = if self.cgb_mode { WIDTH * HEIGHT } else { 0 };
        let data = r.bytes(2 * n)?;
        self.frame_rgb.resize(n, 0);
        for (c, b) in self.frame_rgb.iter_mut().zip(data.chunks_exact(2)) {
            *c = u16::from_le_bytes([b[0], b[1]]) & 0x7FFF;
        }
        if self.hblanks > 2 {
            return Err(StateError::Invalid("pending HBlank DMA count"));
        }
        Ok(())
    }

    pub(crate) fn save(&self, w: &mut Writer) {
        w.bytes(&self.vram[..0x2000]);
        w.bytes(&self.oam);
        w.bytes(&[
            self.lcdc,
            self.stat_en,
            self.scy,
            self.scx,
            self.ly,
            self.lyc,
            self.bgp,
            self.obp0,
            self.obp1,
            self.wy,
            self.wx,
            self.mode,
            self.lyc_flag as u8,
            self.stat_line as u8,
            self.phase as u8,
            self.first_frame as u8,
            self.wy_triggered as u8,
            self.window_line,
            self.render as u8,
            self.frame_done as u8,
        ]);
        w.u64(self.next_time);
        w.u64(self.frame_origin);
        w.u64(self.mode3_time);
        w.u64(self.mode3_len);
        w.u64(self.last_frame_end);
        w.bytes(&self.frame[..]);
    }

    pub(crate) fn load(&mut self, r: &mut Reader) -> Result<(), StateError> {
        self.vram[..0x2000].copy_from_slice(r.bytes(0x2000)?);
        self.oam.copy_from_slice(r.bytes(0xA0)?);
        let b: [u8; 20] = r.array()?;
        let phase = Phase::from_u8(b[14]).ok_or(StateError::Invalid("PPU phase"))?;
        if b[4] > 153 || b[11] > 3 {
            return Err(StateError::Invalid("PPU LY or mode out of range"));
        }
        self.lcdc = b[0];
        self.stat_en = b[1] & 0x78;
        self.scy = b[2];
        self.scx = b[3];
        self.ly = b[4];
        self.lyc = b[5];
        self.bgp = b[6];
        self.obp0 = b[7];
        self.obp1 = b[8];
        self.wy = b[9];
        self.wx = b[10];
        self.mode = b[11];
        self.lyc_flag = b[12] != 0;
        self.stat_line = b[13] != 0;
        self.phase = phase;
        self.first_frame = b[15] != 0;
        self.wy_triggered = b[16] != 0;
        self.window_line = b[17];
        self.render = b[18] != 0;
        self.frame_done = b[19] != 0;
        self.next_time = r.u64()?;
        self.frame_origin = r.u64()?;
        self.mode3_time = r.u64()?;
        self.mode3_len = r.u64()?;
        self.last_frame_end = r.u64()?;
        let frame = r.bytes(WIDTH * HEIGHT)?;
        if frame.iter().any(|&p| p > 3) {
            return Err(StateError::Invalid("frame buffer shade out of range"));
        }
        self.frame.copy_from_slice(frame);
        Ok(())
    }

    /// Checks that the timing state is one the PPU can reach, relative to `now`.
    pub(crate) fn validate(&self, now: u64) -> Result<(), StateError> {
        use crate::state::check_time;
        if now < self.base_bus || self.base_dot > now || now - self.base_bus > 1 << 61 {
            return Err(StateError::Invalid("PPU speed-switch time"));
        }
        let now = self.dot(now);
        check_time(self.next_time, now, "PPU next transition time")?;
        check_time(self.frame_origin, now, "PPU frame origin")?;
        check_time(self.last_frame_end, now, "PPU last frame end")?;
        if self.next_time == u64::MAX
            || self.frame_origin == u64::MAX
            || self.last_frame_end == u64::MAX
        {
            return Err(StateError::Invalid("PPU time is unset"));
        }
        let ly_ok = match self.phase {
            Phase::Off => self.ly == 0,
            Phase::LyInc => self.ly <= 142,
            Phase::Mode2 => (1..=143).contains(&self.ly),
            Phase::Mode3 | Phase::Mode0 => self.ly <= 143,
            Phase::VBlank | Phase::PreVBlank => self.ly == 143,
            Phase::VBlankLine => (144..=152).contains(&self.ly),
            Phase::Line0 => self.ly == 153 || self.ly == 0,
        };
        if !ly_ok {
            return Err(StateError::Invalid("PPU line does not match its phase"));
        }
        let lcd_on = self.lcdc & 0x80 != 0;
        if lcd_on == (self.phase == Phase::Off) {
            return Err(StateError::Invalid("PPU phase does not match LCDC"));
        }
        if lcd_on
            && (self.next_time < self.frame_origin
                || self.next_time - self.frame_origin > FRAME + LINE)
        {
            return Err(StateError::Invalid("PPU transition outside its frame"));
        }
        if self.mode3_len > 172 + 200 {
            return Err(StateError::Invalid("PPU mode 3 length"));
        }
        Ok(())
    }
}

//! The SM83 CPU. Every memory access is one M-cycle on the bus (`Mem::read`/`write`),
//! internal cycles are `Mem::tick`, so instruction timing is exact to the M-cycle.
//! Instructions are dispatched by a `match` on the opcode whose arms call small
//! const-generic helpers, so register selection is resolved at compile time.

use crate::bus::{Bus, Mem};
use crate::state::{Reader, StateError, Writer};

const FZ: u8 = 0x80;
const FN: u8 = 0x40;
const FH: u8 = 0x20;
const FC: u8 = 0x10;

/// Register indices in opcode order: B C D E H L (HL) A.
const B: u8 = 0;
const C: u8 = 1;
const D: u8 = 2;
const E: u8 = 3;
const H: u8 = 4;
const L: u8 = 5;
const M: u8 = 6;
const A: u8 = 7;

/// 16-bit register pairs: BC DE HL SP (AF for push/pop).
const BC: u8 = 0;
const DE: u8 = 1;
const HL: u8 = 2;
const SP: u8 = 3;
const AF: u8 = 3;

/// Conditions: NZ Z NC C, and always.
const NZ: u8 = 0;
const ZC: u8 = 1;
const NC: u8 = 2;
const CC: u8 = 3;
const ALWAYS: u8 = 4;

/// CPU registers and interrupt state.
#[derive(Debug, Clone, Copy, Default)]
pub struct Cpu {
    /// Accumulator.
    pub a: u8,
    /// Flags (Z N H C in bits 7-4).
    pub f: u8,
    /// B.
    pub b: u8,
    /// C.
    pub c: u8,
    /// D.
    pub d: u8,
    /// E.
    pub e: u8,
    /// H.
    pub h: u8,
    /// L.
    pub l: u8,
    /// Stack pointer.
    pub sp: u16,
    /// Program counter.
    pub pc: u16,
    /// Interrupt master enable.
    pub ime: bool,
    /// EI sets IME after the following instruction: counts down to 0.
    ime_delay: u8,
    /// In HALT.
    pub halted: bool,
    /// The next opcode fetch does not increment PC (HALT bug).
    halt_bug: bool,
    /// In STOP (woken by a button press).
    pub stopped: bool,
    /// `LD B,B` executed since the flag was last cleared (Mooneye breakpoint).
    pub ld_b_b: bool,
    /// Executed an undefined opcode: hung until reset.
    pub locked: bool,
}

/// Cycles added when HALT is left because an interrupt became pending.
const HALT_EXIT: u64 = 0;

impl Cpu {
    /// Registers as the CGB boot ROM leaves them: `cgb_mode` for a CGB-flagged cartridge,
    /// otherwise DMG compatibility mode.
    pub fn post_boot_cgb(cgb_mode: bool) -> Self {
        let (d, e, l) = if cgb_mode {
            (0xFF, 0x56, 0x0D)
        } else {
            (0x00, 0x08, 0x7C)
        };
        Self {
            a: 0x11,
            f: 0x80,
            b: 0x00,
            c: 0x00,
            d,
            e,
            h: 0x00,
            l,
            sp: 0xFFFE,
            pc: 0x0100,
            ..Self::default()
        }
    }

    /// Registers as the DMG boot ROM leaves them; F's H and C depend on the header checksum.
    pub fn post_boot(header_checksum: u8) -> Self {
        Self {
            a: 0x01,
            f: if header_checksum == 0 { 0x80 } else { 0xB0 },
            b: 0x00,
            c: 0x13,
            d: 0x00,
            e: 0xD8,
            h: 0x01,
            l: 0x4D,
            sp: 0xFFFE,
            pc: 0x0100,
            ..Self::default()
        }
    }

    /// BC.
    pub fn bc(&self) -> u16 {
        u16::from_be_bytes([self.b, self.c])
    }
    /// DE.
    pub fn de(&self) -> u16 {
        u16::from_be_bytes([self.d, self.e])
    }
    /// HL.
    pub fn hl(&self) -> u16 {
        u16::from_be_bytes([self.h, self.l])
    }
    /// AF.
    pub fn af(&self) -> u16 {
        u16::from_be_bytes([self.a, self.f])
    }

    #[inline(always)]
    fn set_hl(&mut self, v: u16) {
        [self.h, self.l] = v.to_be_bytes();
    }

    #[inline(always)]
    fn rr<const R: u8>(&self) -> u16 {
        match R {
            BC => self.bc(),
            DE => self.de(),
            HL => self.hl(),
            _ => self.sp,
        }
    }

    #[inline(always)]
    fn set_rr<const R: u8>(&mut self, v: u16) {
        match R {
            BC => [self.b, self.c] = v.to_be_bytes(),
            DE => [self.d, self.e] = v.to_be_bytes(),
            HL => [self.h, self.l] = v.to_be_bytes(),
            _ => self.sp = v,
        }
    }

    #[inline(always)]
    fn get<const R: u8>(&self, bus: &mut impl Mem) -> u8 {
        match R {
            B => self.b,
            C => self.c,
            D => self.d,
            E => self.e,
            H => self.h,
            L => self.l,
            M => bus.read(self.hl()),
            _ => self.a,
        }
    }

    #[inline(always)]
    fn set<const R: u8>(&mut self, bus: &mut impl Mem, v: u8) {
        match R {
            B => self.b = v,
            C => self.c = v,
            D => self.d = v,
            E => self.e = v,
            H => self.h = v,
            L => self.l = v,
            M => bus.write(self.hl(), v),
            _ => self.a = v,
        }
    }

    #[inline(always)]
    fn fetch(&mut self, bus: &mut impl Mem) -> u8 {
        let v = bus.read(self.pc);
        self.pc = self.pc.wrapping_add(1);
        v
    }

    #[inline(always)]
    fn fetch16(&mut self, bus: &mut impl Mem) -> u16 {
        let lo = self.fetch(bus);
        let hi = self.fetch(bus);
        u16::from_le_bytes([lo, hi])
    }

    #[inline(always)]
    fn cond<const CD: u8>(&self) -> bool {
        match CD {
            NZ => self.f & FZ == 0,
            ZC => self.f & FZ != 0,
            NC => self.f & FC == 0,
            CC => self.f & FC != 0,
            _ => true,
        }
    }

    #[inline(always)]
    fn push16(&mut self, bus: &mut impl Mem, v: u16) {
        let [hi, lo] = v.to_be_bytes();
        self.sp = self.sp.wrapping_sub(1);
        bus.write(self.sp, hi);
        self.sp = self.sp.wrapping_sub(1);
        bus.write(self.sp, lo);
    }

    #[inline(always)]
    fn pop16(&mut self, bus: &mut impl Mem) -> u16 {
        let lo = bus.read(self.sp);
        self.sp = self.sp.wrapping_add(1);
        let hi = bus.read(self.sp);
        self.sp = self.sp.wrapping_add(1);
        u16::from_le_bytes([lo, hi])
    }

    /// Fetches and executes one instruction; only valid while the time is before
    /// `Bus::deadline` (no event due, no interrupt to dispatch, no special CPU state).
    #[inline(always)]
    pub fn fast_step(&mut self, bus: &mut impl Mem) {
        let pc = self.pc;
        let op = bus.read(pc);
        self.pc = pc.wrapping_add(1);
        self.execute(op, bus);
    }

    /// The CPU must take the slow path at the next instruction boundary.
    #[inline]
    pub fn needs_poll(&self, bus: &Bus) -> bool {
        self.ime_delay != 0
            || self.halted
            || self.stopped
            || self.locked
            || self.halt_bug
            || (self.ime && bus.ie & bus.if_ & 0x1F != 0)
            || bus.stall_until > bus.cycles
    }

    /// Runs one instruction, one interrupt dispatch, or one stretch of HALT/STOP, handling
    /// every special state. The caller has brought peripherals up to date.
    pub fn slow_step(&mut self, bus: &mut Bus) {
        if bus.stall_until > bus.cycles {
            // Held by HDMA or a speed switch: time passes up to the next event.
            let now = bus.cycles;
            let target = bus.stall_until.min(bus.next_event).max(now + 4);
            bus.cycles = now + ((target - now + 3) & !3);
            return;
        }
        if self.ime_delay != 0 {
            self.ime_delay -= 1;
            if self.ime_delay == 0 {
                self.ime = true;
            }
        }
        if (self.halted || self.stopped || self.locked) && !self.wake(bus) {
            return;
        }
        if self.ime && bus.ie & bus.if_ & 0x1F != 0 {
            self.dispatch(bus);
            return;
        }
        let pc = self.pc;
        let op = bus.read(pc);
        if self.halt_bug {
            self.halt_bug = false;
        } else {
            self.pc = pc.wrapping_add(1);
        }
        self.execute(op, bus);
    }

    /// In HALT or STOP: returns true when the CPU resumes, otherwise sleeps until the
    /// next peripheral event.
    #[cold]
    fn wake(&mut self, bus: &mut Bus) -> bool {
        if self.locked {
            // Never wakes.
        } else if self.stopped {
            if bus.joypad.pressed().bits() != 0 {
                self.stopped = false;
                return true;
            }
        } else if bus.ie & bus.if_ & 0x1F != 0 {
            self.halted = false;
            bus.cycles += HALT_EXIT;
            return true;
        }
        let target = bus.next_event;
        let now = bus.cycles;
        let skip = if target == u64::MAX || target <= now {
            4
        } else {
            (target - now + 3) & !3
        };
        bus.cycles = now + skip;
        false
    }

    fn dispatch(&mut self, bus: &mut Bus) {
        if self.halt_bug {
            // EI; HALT with an interrupt pending: the interrupt returns to the HALT.
            self.pc = self.pc.wrapping_sub(1);
            self.halt_bug = false;
        }
        bus.tick();
        bus.oam_bug_write(self.sp);
        bus.tick();
        let [hi, lo] = self.pc.to_be_bytes();
        self.sp = self.sp.wrapping_sub(1);
        bus.write(self.sp, hi);
        // The vector is chosen after the high byte is pushed; if that push cleared the
        // pending interrupt's IE bit, the CPU jumps to 0x0000 instead.
        let ie = bus.ie;
        self.sp = self.sp.wrapping_sub(1);
        let t = bus.cycles;
        bus.write(self.sp, lo);
        if bus.next_event <= t {
            bus.sync_all(t);
        }
        let pending = ie & bus.if_ & 0x1F;
        bus.tick();
        self.ime = false;
        if pending == 0 {
            self.pc = 0;
        } else {
            let bit = pending.trailing_zeros();
            bus.if_ &= !(1 << bit);
            self.pc = 0x40 + 8 * bit as u16;
        }
    }

    // ----- 8-bit ALU -----

    #[inline(always)]
    fn alu<const OP: u8>(&mut self, v: u8) {
        let a = self.a;
        match OP {
            0 | 1 => {
                let c = if OP == 1 { (self.f >> 4) & 1 } else { 0 };
                let r = a as u16 + v as u16 + c as u16;
                let h = (a & 0xF) + (v & 0xF) + c > 0xF;
                self.a = r as u8;
                self.f = z(r as u8) | if h { FH } else { 0 } | if r > 0xFF { FC } else { 0 };
            }
            2 | 3 | 7 => {
                let c = if OP == 3 { (self.f >> 4) & 1 } else { 0 };
                let r = (a as i16) - (v as i16) - (c as i16);
                let h = ((a & 0xF) as i16) - ((v & 0xF) as i16) - (c as i16) < 0;
                if OP != 7 {
                    self.a = r as u8;
                }
                self.f = z(r as u8) | FN | if h { FH } else { 0 } | if r < 0 { FC } else { 0 };
            }
            4 => {
                self.a = a & v;
                self.f = z(self.a) | FH;
            }
            5 => {
                self.a = a ^ v;
                self.f = z(self.a);
            }
            _ => {
                self.a = a | v;
                self.f = z(self.a);
            }
        }
    }

    #[inline(always)]
    fn alu_r<const OP: u8, const R: u8>(&mut self, bus: &mut impl Mem) {
        let v = self.get::<R>(bus);
        self.alu::<OP>(v);
    }

    #[inline(always)]
    fn alu_n<const OP: u8>(&mut self, bus: &mut impl Mem) {
        let v = self.fetch(bus);
        self.alu::<OP>(v);
    }

    #[inline(always)]
    fn ld<const D: u8, const S: u8>(&mut self, bus: &mut impl Mem) {
        if D == B && S == B {
            self.ld_b_b = true;
        }
        let v = self.get::<S>(bus);
        self.set::<D>(bus, v);
    }

    #[inline(always)]
    fn ld_n<const D: u8>(&mut self, bus: &mut impl Mem) {
        let v = self.fetch(bus);
        self.set::<D>(bus, v);
    }

    #[inline(always)]
    fn inc<const R: u8>(&mut self, bus: &mut impl Mem) {
        let v = self.get::<R>(bus);
        let r = v.wrapping_add(1);
        self.f = (self.f & FC) | z(r) | if v & 0xF == 0xF { FH } else { 0 };
        self.set::<R>(bus, r);
    }

    #[inline(always)]
    fn dec<const R: u8>(&mut self, bus: &mut impl Mem) {
        let v = self.get::<R>(bus);
        let r = v.wrapping_sub(1);
        self.f = (self.f & FC) | z(r) | FN | if v & 0xF == 0 { FH } else { 0 };
        self.set::<R>(bus, r);
    }

    // ----- 16-bit -----

    #[inline(always)]
    fn ld_rr_nn<const R: u8>(&mut self, bus: &mut impl Mem) {
        let v = self.fetch16(bus);
        self.set_rr::<R>(v);
    }

    #[inline(always)]
    fn inc_rr<const R: u8>(&mut self, bus: &mut impl Mem) {
        let v = self.rr::<R>();
        bus.oam_bug_write(v);
        bus.tick();
        self.set_rr::<R>(v.wrapping_add(1));
    }

    #[inline(always)]
    fn dec_rr<const R: u8>(&mut self, bus: &mut impl Mem) {
        let v = self.rr::<R>();
        bus.oam_bug_write(v);
        bus.tick();
        self.set_rr::<R>(v.wrapping_sub(1));
    }

    #[inline(always)]
    fn add_hl<const R: u8>(&mut self, bus: &mut impl Mem) {
        let hl = self.hl();
        let v = self.rr::<R>();
        let r = hl as u32 + v as u32;
        // Carry into bit 12 (H, F bit 5) is bit 12 of hl ^ v ^ r; carry out (C, F bit 4) is
        // bit 16 of r: both moved into place without branches (the PRNG-style code of
        // many games runs ADD HL,HL in tight loops).
        let carries = hl as u32 ^ v as u32 ^ r;
        self.f = (self.f & FZ) | ((carries >> 7) as u8 & FH) | ((r >> 12) as u8 & FC);
        bus.tick();
        self.set_hl(r as u16);
    }

    #[inline(always)]
    fn sp_plus_e(&mut self, e: u8) -> u16 {
        let sp = self.sp;
        let h = (sp & 0xF) + (e as u16 & 0xF) > 0xF;
        let c = (sp & 0xFF) + e as u16 > 0xFF;
        self.f = if h { FH } else { 0 } | if c { FC } else { 0 };
        sp.wrapping_add(e as i8 as u16)
    }

    #[inline(always)]
    fn push<const R: u8>(&mut self, bus: &mut impl Mem) {
        let v = match R {
            BC => self.bc(),
            DE => self.de(),
            HL => self.hl(),
            _ => self.af(),
        };
        bus.oam_bug_write(self.sp);
        bus.tick();
        let [hi, lo] = v.to_be_bytes();
        self.sp = self.sp.wrapping_sub(1);
        bus.write(self.sp, hi);
        self.sp = self.sp.wrapping_sub(1);
        bus.write(self.sp, lo);
    }

    #[inline(always)]
    fn pop<const R: u8>(&mut self, bus: &mut impl Mem) {
        bus.oam_bug_read_inc(self.sp);
        let lo = bus.read(self.sp);
        self.sp = self.sp.wrapping_add(1);
        let hi = bus.read(self.sp);
        self.sp = self.sp.wrapping_add(1);
        match R {
            BC => [self.b, self.c] = [hi, lo],
            DE => [self.d, self.e] = [hi, lo],
            HL => [self.h, self.l] = [hi, lo],
            _ => [self.a, self.f] = [hi, lo & 0xF0],
        }
    }

    // ----- Control flow -----

    #[inline(always)]
    fn jr<const CD: u8>(&mut self, bus: &mut impl Mem) {
        let e = self.fetch(bus) as i8;
        if self.cond::<CD>() {
            bus.tick();
            self.pc = self.pc.wrapping_add(e as u16);
        }
    }

    #[inline(always)]
    fn jp<const CD: u8>(&mut self, bus: &mut impl Mem) {
        let nn = self.fetch16(bus);
        if self.cond::<CD>() {
            bus.tick();
            self.pc = nn;
        }
    }

    #[inline(always)]
    fn call<const CD: u8>(&mut self, bus: &mut impl Mem) {
        let nn = self.fetch16(bus);
        if self.cond::<CD>() {
            bus.oam_bug_write(self.sp);
            bus.tick();
            self.push16(bus, self.pc);
            self.pc = nn;
        }
    }

    #[inline(always)]
    fn ret<const CD: u8>(&mut self, bus: &mut impl Mem) {
        if CD != ALWAYS {
            bus.tick();
            if !self.cond::<CD>() {
                return;
            }
        }
        self.pc = self.pop16(bus);
        bus.tick();
    }

    #[inline(always)]
    fn rst<const N: u16>(&mut self, bus: &mut impl Mem) {
        bus.oam_bug_write(self.sp);
        bus.tick();
        self.push16(bus, self.pc);
        self.pc = N;
    }

    // ----- Rotates, shifts, bits -----

    #[inline(always)]
    fn shift_op<const OP: u8>(&mut self, v: u8) -> u8 {
        let carry_in = (self.f >> 4) & 1;
        let (r, c) = match OP {
            0 => (v.rotate_left(1), v >> 7),
            1 => (v.rotate_right(1), v & 1),
            2 => ((v << 1) | carry_in, v >> 7),
            3 => ((v >> 1) | (carry_in << 7), v & 1),
            4 => (v << 1, v >> 7),
            5 => ((v >> 1) | (v & 0x80), v & 1),
            6 => (v.rotate_left(4), 0),
            _ => (v >> 1, v & 1),
        };
        self.f = z(r) | if c != 0 { FC } else { 0 };
        r
    }

    #[inline(always)]
    fn cb_shift<const OP: u8, const R: u8>(&mut self, bus: &mut impl Mem) {
        let v = self.get::<R>(bus);
        let r = self.shift_op::<OP>(v);
        self.set::<R>(bus, r);
    }

    #[inline(always)]
    fn rot_a<const OP: u8>(&mut self) {
        let r = self.shift_op::<OP>(self.a);
        self.a = r;
        self.f &= !FZ;
    }

    #[inline(always)]
    fn bit<const N: u8, const R: u8>(&mut self, bus: &mut impl Mem) {
        let v = self.get::<R>(bus);
        self.f = (self.f & FC) | FH | if v & (1 << N) == 0 { FZ } else { 0 };
    }

    #[inline(always)]
    fn res<const N: u8, const R: u8>(&mut self, bus: &mut impl Mem) {
        let v = self.get::<R>(bus);
        self.set::<R>(bus, v & !(1 << N));
    }

    #[inline(always)]
    fn setb<const N: u8, const R: u8>(&mut self, bus: &mut impl Mem) {
        let v = self.get::<R>(bus);
        self.set::<R>(bus, v | (1 << N));
    }

    // ----- Misc -----

    fn daa(&mut self) {
        let mut a = self.a;
        let mut c = self.f & FC != 0;
        if self.f & FN == 0 {
            if c || a > 0x99 {
                a = a.wrapping_add(0x60);
                c = true;
            }
            if self.f & FH != 0 || a & 0x0F > 0x09 {
                a = a.wrapping_add(0x06);
            }
        } else {
            if c {
                a = a.wrapping_sub(0x60);
            }
            if self.f & FH != 0 {
                a = a.wrapping_sub(0x06);
            }
        }
        self.a = a;
        self.f = z(a) | (self.f & FN) | if c { FC } else { 0 };
    }

    fn halt(&mut self, bus: &mut impl Mem) {
        let bus = bus.synced();
        bus.deadline = 0;
        if !self.ime && bus.ie & bus.if_ & 0x1F != 0 {
            // HALT with interrupts disabled and one pending does not halt, and the
            // next opcode byte is read twice.
            self.halt_bug = true;
        } else {
            self.halted = true;
        }
    }

    fn stop(&mut self, bus: &mut impl Mem) {
        // STOP is two bytes long; the second is ignored.
        self.fetch(bus);
        let bus = bus.synced();
        let t = bus.cycles;
        bus.poke(0xFF04, 0);
        bus.cycles = t;
        if bus.speed_switch(t) {
            bus.deadline = 0;
            return;
        }
        if bus.joypad.pressed().bits() == 0 {
            self.stopped = true;
        }
        bus.deadline = 0;
    }

    fn invalid(&mut self) {
        // Undefined opcodes lock the CPU up until power-off; time still passes.
        self.pc = self.pc.wrapping_sub(1);
        self.locked = true;
    }

    pub(crate) fn save(&self, w: &mut Writer) {
        w.bytes(&[
            self.a, self.f, self.b, self.c, self.d, self.e, self.h, self.l,
        ]);
        w.u16(self.sp);
        w.u16(self.pc);
        w.bytes(&[
            self.ime as u8,
            self.ime_delay,
            self.halted as u8,
            self.halt_bug as u8,
            self.stopped as u8,
            self.ld_b_b as u8,
            self.locked as u8,
        ]);
    }

    pub(crate) fn load(&mut self, r: &mut Reader) -> Result<(), StateError> {
        let regs: [u8; 8] = r.array()?;
        [
            self.a, self.f, self.b, self.c, self.d, self.e, self.h, self.l,
        ] = regs;
        self.f &= 0xF0;
        self.sp = r.u16()?;
        self.pc = r.u16()?;
        let s: [u8; 7] = r.array()?;
        self.ime = s[0] != 0;
        self.ime_delay = s[1].min(2);
        self.halted = s[2] != 0;
        self.halt_bug = s[3] != 0;
        self.stopped = s[4] != 0;
        self.ld_b_b = s[5] != 0;
        self.locked = s[6] != 0;
        Ok(())
    }
}

#[inline(always)]
fn z(v: u8) -> u8 {
    if v == 0 { FZ } else { 0 }
}

impl Cpu {
    /// Executes one (non-CB) opcode whose byte has been fetched.
    #[inline(always)]
    fn execute(&mut self, op: u8, bus: &mut impl Mem) {
        match op {
            0x00 => {}
            0x01 => self.ld_rr_nn::<BC>(bus),
            0x02 => bus.write(self.bc(), self.a),
            0x03 => self.inc_rr::<BC>(bus),
            0x04 => self.inc::<B>(bus),
            0x05 => self.dec::<B>(bus),
            0x06 => self.ld_n::<B>(bus),
            0x07 => self.rot_a::<0>(),
            0x08 => {
                let nn = self.fetch16(bus);
                let [hi, lo] = self.sp.to_be_bytes();
                bus.write(nn, lo);
                bus.write(nn.wrapping_add(1), hi);
            }
            0x09 => self.add_hl::<BC>(bus),
            0x0A => self.a = bus.read(self.bc()),
            0x0B => self.dec_rr::<BC>(bus),
            0x0C => self.inc::<C>(bus),
            0x0D => self.dec::<C>(bus),
            0x0E => self.ld_n::<C>(bus),
            0x0F => self.rot_a::<1>(),
            0x10 => self.stop(bus),
            0x11 => self.ld_rr_nn::<DE>(bus),
            0x12 => bus.write(self.de(), self.a),
            0x13 => self.inc_rr::<DE>(bus),
            0x14 => self.inc::<D>(bus),
            0x15 => self.dec::<D>(bus),
            0x16 => self.ld_n::<D>(bus),
            0x17 => self.rot_a::<2>(),
            0x18 => self.jr::<ALWAYS>(bus),
            0x19 => self.add_hl::<DE>(bus),
            0x1A => self.a = bus.read(self.de()),
            0x1B => self.dec_rr::<DE>(bus),
            0x1C => self.inc::<E>(bus),
            0x1D => self.dec::<E>(bus),
            0x1E => self.ld_n::<E>(bus),
            0x1F => self.rot_a::<3>(),
            0x20 => self.jr::<NZ>(bus),
            0x21 => self.ld_rr_nn::<HL>(bus),
            0x22 => {
                let hl = self.hl();
                bus.write(hl, self.a);
                self.set_hl(hl.wrapping_add(1));
            }
            0x23 => self.inc_rr::<HL>(bus),
            0x24 => self.inc::<H>(bus),
            0x25 => self.dec::<H>(bus),
            0x26 => self.ld_n::<H>(bus),
            0x27 => self.daa(),
            0x28 => self.jr::<ZC>(bus),
            0x29 => self.add_hl::<HL>(bus),
            0x2A => {
                let hl = self.hl();
                bus.oam_bug_read_inc(hl);
                self.a = bus.read(hl);
                self.set_hl(hl.wrapping_add(1));
            }
            0x2B => self.dec_rr::<HL>(bus),
            0x2C => self.inc::<L>(bus),
            0x2D => self.dec::<L>(bus),
            0x2E => self.ld_n::<L>(bus),
            0x2F => {
                self.a = !self.a;
                self.f |= FN | FH;
            }
            0x30 => self.jr::<NC>(bus),
            0x31 => self.ld_rr_nn::<SP>(bus),
            0x32 => {
                let hl = self.hl();
                bus.write(hl, self.a);
                self.set_hl(hl.wrapping_sub(1));
            }
            0x33 => self.inc_rr::<SP>(bus),
            0x34 => self.inc::<M>(bus),
            0x35 => self.dec::<M>(bus),
            0x36 => self.ld_n::<M>(bus),
            0x37 => self.f = (self.f & FZ) | FC,
            0x38 => self.jr::<CC>(bus),
            0x39 => self.add_hl::<SP>(bus),
            0x3A => {
                let hl = self.hl();
                bus.oam_bug_read_inc(hl);
                self.a = bus.read(hl);
                self.set_hl(hl.wrapping_sub(1));
            }
            0x3B => self.dec_rr::<SP>(bus),
            0x3C => self.inc::<A>(bus),
            0x3D => self.dec::<A>(bus),
            0x3E => self.ld_n::<A>(bus),
            0x3F => self.f = (self.f & FZ) | ((self.f & FC) ^ FC),
            0x40 => self.ld::<B, B>(bus),
            0x41 => self.ld::<B, C>(bus),
            0x42 => self.ld::<B, D>(bus),
            0x43 => self.ld::<B, E>(bus),
            0x44 => self.ld::<B, H>(bus),
            0x45 => self.ld::<B, L>(bus),
            0x46 => self.ld::<B, M>(bus),
            0x47 => self.ld::<B, A>(bus),
            0x48 => self.ld::<C, B>(bus),
            0x49 => self.ld::<C, C>(bus),
            0x4A => self.ld::<C, D>(bus),
            0x4B => self.ld::<C, E>(bus),
            0x4C => self.ld::<C, H>(bus),
            0x4D => self.ld::<C, L>(bus),
            0x4E => self.ld::<C, M>(bus),
            0x4F => self.ld::<C, A>(bus),
            0x50 => self.ld::<D, B>(bus),
            0x51 => self.ld::<D, C>(bus),
            0x52 => self.ld::<D, D>(bus),
            0x53 => self.ld::<D, E>(bus),
            0x54 => self.ld::<D, H>(bus),
            0x55 => self.ld::<D, L>(bus),
            0x56 => self.ld::<D, M>(bus),
            0x57 => self.ld::<D, A>(bus),
            0x58 => self.ld::<E, B>(bus),
            0x59 => self.ld::<E, C>(bus),
            0x5A => self.ld::<E, D>(bus),
            0x5B => self.ld::<E, E>(bus),
            0x5C => self.ld::<E, H>(bus),
            0x5D => self.ld::<E, L>(bus),
            0x5E => self.ld::<E, M>(bus),
            0x5F => self.ld::<E, A>(bus),
            0x60 => self.ld::<H, B>(bus),
            0x61 => self.ld::<H, C>(bus),
            0x62 => self.ld::<H, D>(bus),
            0x63 => self.ld::<H, E>(bus),
            0x64 => self.ld::<H, H>(bus),
            0x65 => self.ld::<H, L>(bus),
            0x66 => self.ld::<H, M>(bus),
            0x67 => self.ld::<H, A>(bus),
            0x68 => self.ld::<L, B>(bus),
            0x69 => self.ld::<L, C>(bus),
            0x6A => self.ld::<L, D>(bus),
            0x6B => self.ld::<L, E>(bus),
            0x6C => self.ld::<L, H>(bus),
            0x6D => self.ld::<L, L>(bus),
            0x6E => self.ld::<L, M>(bus),
            0x6F => self.ld::<L, A>(bus),
            0x70 => self.ld::<M, B>(bus),
            0x71 => self.ld::<M, C>(bus),
            0x72 => self.ld::<M, D>(bus),
            0x73 => self.ld::<M, E>(bus),
            0x74 => self.ld::<M, H>(bus),
            0x75 => self.ld::<M, L>(bus),
            0x76 => self.halt(bus),
            0x77 => self.ld::<M, A>(bus),
            0x78 => self.ld::<A, B>(bus),
            0x79 => self.ld::<A, C>(bus),
            0x7A => self.ld::<A, D>(bus),
            0x7B => self.ld::<A, E>(bus),
            0x7C => self.ld::<A, H>(bus),
            0x7D => self.ld::<A, L>(bus),
            0x7E => self.ld::<A, M>(bus),
            0x7F => self.ld::<A, A>(bus),
            0x80 => self.alu_r::<0, B>(bus),
            0x81 => self.alu_r::<0, C>(bus),
            0x82 => self.alu_r::<0, D>(bus),
            0x83 => self.alu_r::<0, E>(bus),
            0x84 => self.alu_r::<0, H>(bus),
            0x85 => self.alu_r::<0, L>(bus),
            0x86 => self.alu_r::<0, M>(bus),
            0x87 => self.alu_r::<0, A>(bus),
            0x88 => self.alu_r::<1, B>(bus),
            0x89 => self.alu_r::<1, C>(bus),
            0x8A => self.alu_r::<1, D>(bus),
            0x8B => self.alu_r::<1, E>(bus),
            0x8C => self.alu_r::<1, H>(bus),
            0x8D => self.alu_r::<1, L>(bus),
            0x8E => self.alu_r::<1, M>(bus),
            0x8F => self.alu_r::<1, A>(bus),
            0x90 => self.alu_r::<2, B>(bus),
            0x91 => self.alu_r::<2, C>(bus),
            0x92 => self.alu_r::<2, D>(bus),
            0x93 => self.alu_r::<2, E>(bus),
            0x94 => self.alu_r::<2, H>(bus),
            0x95 => self.alu_r::<2, L>(bus),
            0x96 => self.alu_r::<2, M>(bus),
            0x97 => self.alu_r::<2, A>(bus),
            0x98 => self.alu_r::<3, B>(bus),
            0x99 => self.alu_r::<3, C>(bus),
            0x9A => self.alu_r::<3, D>(bus),
            0x9B => self.alu_r::<3, E>(bus),
            0x9C => self.alu_r::<3, H>(bus),
            0x9D => self.alu_r::<3, L>(bus),
            0x9E => self.alu_r::<3, M>(bus),
            0x9F => self.alu_r::<3, A>(bus),
            0xA0 => self.alu_r::<4, B>(bus),
            0xA1 => self.alu_r::<4, C>(bus),
            0xA2 => self.alu_r::<4, D>(bus),
            0xA3 => self.alu_r::<4, E>(bus),
            0xA4 => self.alu_r::<4, H>(bus),
            0xA5 => self.alu_r::<4, L>(bus),
            0xA6 => self.alu_r::<4, M>(bus),
            0xA7 => self.alu_r::<4, A>(bus),
            0xA8 => self.alu_r::<5, B>(bus),
            0xA9 => self.alu_r::<5, C>(bus),
            0xAA => self.alu_r::<5, D>(bus),
            0xAB => self.alu_r::<5, E>(bus),
            0xAC => self.alu_r::<5, H>(bus),
            0xAD => self.alu_r::<5, L>(bus),
            0xAE => self.alu_r::<5, M>(bus),
            0xAF => self.alu_r::<5, A>(bus),
            0xB0 => self.alu_r::<6, B>(bus),
            0xB1 => self.alu_r::<6, C>(bus),
            0xB2 => self.alu_r::<6, D>(bus),
            0xB3 => self.alu_r::<6, E>(bus),
            0xB4 => self.alu_r::<6, H>(bus),
            0xB5 => self.alu_r::<6, L>(bus),
            0xB6 => self.alu_r::<6, M>(bus),
            0xB7 => self.alu_r::<6, A>(bus),
            0xB8 => self.alu_r::<7, B>(bus),
            0xB9 => self.alu_r::<7, C>(bus),
            0xBA => self.alu_r::<7, D>(bus),
            0xBB => self.alu_r::<7, E>(bus),
            0xBC => self.alu_r::<7, H>(bus),
            0xBD => self.alu_r::<7, L>(bus),
            0xBE => self.alu_r::<7, M>(bus),
            0xBF => self.alu_r::<7, A>(bus),
            0xC0 => self.ret::<NZ>(bus),
            0xC1 => self.pop::<BC>(bus),
            0xC2 => self.jp::<NZ>(bus),
            0xC3 => self.jp::<ALWAYS>(bus),
            0xC4 => self.call::<NZ>(bus),
            0xC5 => self.push::<BC>(bus),
            0xC6 => self.alu_n::<0>(bus),
            0xC7 => self.rst::<0x00>(bus),
            0xC8 => self.ret::<ZC>(bus),
            0xC9 => self.ret::<ALWAYS>(bus),
            0xCA => self.jp::<ZC>(bus),
            0xCB => self.execute_cb(bus),
            0xCC => self.call::<ZC>(bus),
            0xCD => self.call::<ALWAYS>(bus),
            0xCE => self.alu_n::<1>(bus),
            0xCF => self.rst::<0x08>(bus),
            0xD0 => self.ret::<NC>(bus),
            0xD1 => self.pop::<DE>(bus),
            0xD2 => self.jp::<NC>(bus),
            0xD3 => {
                self.invalid();
                bus.poll();
            }
            0xD4 => self.call::<NC>(bus),
            0xD5 => self.push::<DE>(bus),
            0xD6 => self.alu_n::<2>(bus),
            0xD7 => self.rst::<0x10>(bus),
            0xD8 => self.ret::<CC>(bus),
            0xD9 => {
                self.ret::<ALWAYS>(bus);
                self.ime = true;
                self.ime_delay = 0;
                bus.poll();
            }
            0xDA => self.jp::<CC>(bus),
            0xDB => {
                self.invalid();
                bus.poll();
            }
            0xDC => self.call::<CC>(bus),
            0xDD => {
                self.invalid();
                bus.poll();
            }
            0xDE => self.alu_n::<3>(bus),
            0xDF => self.rst::<0x18>(bus),
            0xE0 => {
                let n = self.fetch(bus);
                bus.write(0xFF00 | n as u16, self.a);
            }
            0xE1 => self.pop::<HL>(bus),
            0xE2 => bus.write(0xFF00 | self.c as u16, self.a),
            0xE3 => {
                self.invalid();
                bus.poll();
            }
            0xE4 => {
                self.invalid();
                bus.poll();
            }
            0xE5 => self.push::<HL>(bus),
            0xE6 => self.alu_n::<4>(bus),
            0xE7 => self.rst::<0x20>(bus),
            0xE8 => {
                let e = self.fetch(bus);
                self.sp = self.sp_plus_e(e);
                bus.tick();
                bus.tick();
            }
            0xE9 => self.pc = self.hl(),
            0xEA => {
                let nn = self.fetch16(bus);
                bus.write(nn, self.a);
            }
            0xEB => {
                self.invalid();
                bus.poll();
            }
            0xEC => {
                self.invalid();
                bus.poll();
            }
            0xED => {
                self.invalid();
                bus.poll();
            }
            0xEE => self.alu_n::<5>(bus),
            0xEF => self.rst::<0x28>(bus),
            0xF0 => {
                let n = self.fetch(bus);
                self.a = bus.read(0xFF00 | n as u16);
            }
            0xF1 => self.pop::<AF>(bus),
            0xF2 => self.a = bus.read(0xFF00 | self.c as u16),
            0xF3 => {
                self.ime = false;
                self.ime_delay = 0;
            }
            0xF4 => {
                self.invalid();
                bus.poll();
            }
            0xF5 => self.push::<AF>(bus),
            0xF6 => self.alu_n::<6>(bus),
            0xF7 => self.rst::<0x30>(bus),
            0xF8 => {
                let e = self.fetch(bus);
                let v = self.sp_plus_e(e);
                self.set_hl(v);
                bus.tick();
            }
            0xF9 => {
                bus.oam_bug_write(self.hl());
                self.sp = self.hl();
                bus.tick();
            }
            0xFA => {
                let nn = self.fetch16(bus);
                self.a = bus.read(nn);
            }
            0xFB => {
                if !self.ime && self.ime_delay == 0 {
                    self.ime_delay = 2;
                    bus.poll();
                }
            }
            0xFC => {
                self.invalid();
                bus.poll();
            }
            0xFD => {
                self.invalid();
                bus.poll();
            }
            0xFE => self.alu_n::<7>(bus),
            0xFF => self.rst::<0x38>(bus),
        }
    }

    /// Fetches and executes a CB-prefixed opcode.
    #[inline(always)]
    fn execute_cb(&mut self, bus: &mut impl Mem) {
        let op = self.fetch(bus);
        match op {
            0x00 => self.cb_shift::<0, B>(bus),
            0x01 => self.cb_shift::<0, C>(bus),
            0x02 => self.cb_shift::<0, D>(bus),
            0x03 => self.cb_shift::<0, E>(bus),
            0x04 => self.cb_shift::<0, H>(bus),
            0x05 => self.cb_shift::<0, L>(bus),
            0x06 => self.cb_shift::<0, M>(bus),
            0x07 => self.cb_shift::<0, A>(bus),
            0x08 => self.cb_shift::<1, B>(bus),
            0x09 => self.cb_shift::<1, C>(bus),
            0x0A => self.cb_shift::<1, D>(bus),
            0x0B => self.cb_shift::<1, E>(bus),
            0x0C => self.cb_shift::<1, H>(bus),
            0x0D => self.cb_shift::<1, L>(bus),
            0x0E => self.cb_shift::<1, M>(bus),
            0x0F => self.cb_shift::<1, A>(bus),
            0x10 => self.cb_shift::<2, B>(bus),
            0x11 => self.cb_shift::<2, C>(bus),
            0x12 => self.cb_shift::<2, D>(bus),
            0x13 => self.cb_shift::<2, E>(bus),
            0x14 => self.cb_shift::<2, H>(bus),
            0x15 => self.cb_shift::<2, L>(bus),
            0x16 => self.cb_shift::<2, M>(bus),
            0x17 => self.cb_shift::<2, A>(bus),
            0x18 => self.cb_shift::<3, B>(bus),
            0x19 => self.cb_shift::<3, C>(bus),
            0x1A => self.cb_shift::<3, D>(bus),
            0x1B => self.cb_shift::<3, E>(bus),
            0x1C => self.cb_shift::<3, H>(bus),
            0x1D => self.cb_shift::<3, L>(bus),
            0x1E => self.cb_shift::<3, M>(bus),
            0x1F => self.cb_shift::<3, A>(bus),
            0x20 => self.cb_shift::<4, B>(bus),
            0x21 => self.cb_shift::<4, C>(bus),
            0x22 => self.cb_shift::<4, D>(bus),
            0x23 => self.cb_shift::<4, E>(bus),
            0x24 => self.cb_shift::<4, H>(bus),
            0x25 => self.cb_shift::<4, L>(bus),
            0x26 => self.cb_shift::<4, M>(bus),
            0x27 => self.cb_shift::<4, A>(bus),
            0x28 => self.cb_shift::<5, B>(bus),
            0x29 => self.cb_shift::<5, C>(bus),
            0x2A => self.cb_shift::<5, D>(bus),
            0x2B => self.cb_shift::<5, E>(bus),
            0x2C => self.cb_shift::<5, H>(bus),
            0x2D => self.cb_shift::<5, L>(bus),
            0x2E => self.cb_shift::<5, M>(bus),
            0x2F => self.cb_shift::<5, A>(bus),
            0x30 => self.cb_shift::<6, B>(bus),
            0x31 => self.cb_shift::<6, C>(bus),
            0x32 => self.cb_shift::<6, D>(bus),
            0x33 => self.cb_shift::<6, E>(bus),
            0x34 => self.cb_shift::<6, H>(bus),
            0x35 => self.cb_shift::<6, L>(bus),
            0x36 => self.cb_shift::<6, M>(bus),
            0x37 => self.cb_shift::<6, A>(bus),
            0x38 => self.cb_shift::<7, B>(bus),
            0x39 => self.cb_shift::<7, C>(bus),
            0x3A => self.cb_shift::<7, D>(bus),
            0x3B => self.cb_shift::<7, E>(bus),
            0x3C => self.cb_shift::<7, H>(bus),
            0x3D => self.cb_shift::<7, L>(bus),
            0x3E => self.cb_shift::<7, M>(bus),
            0x3F => self.cb_shift::<7, A>(bus),
            0x40 => self.bit::<0, B>(bus),
            0x41 => self.bit::<0, C>(bus),
            0x42 => self.bit::<0, D>(bus),
            0x43 => self.bit::<0, E>(bus),
            0x44 => self.bit::<0, H>(bus),
            0x45 => self.bit::<0, L>(bus),
            0x46 => self.bit::<0, M>(bus),
            0x47 => self.bit::<0, A>(bus),
            0x48 => self.bit::<1, B>(bus),
            0x49 => self.bit::<1, C>(bus),
            0x4A => self.bit::<1, D>(bus),
            0x4B => self.bit::<1, E>(bus),
            0x4C => self.bit::<1, H>(bus),
            0x4D => self.bit::<1, L>(bus),
            0x4E => self.bit::<1, M>(bus),
            0x4F => self.bit::<1, A>(bus),
            0x50 => self.bit::<2, B>(bus),
            0x51 => self.bit::<2, C>(bus),
            0x52 => self.bit::<2, D>(bus),
            0x53 => self.bit::<2, E>(bus),
            0x54 => self.bit::<2, H>(bus),
            0x55 => self.bit::<2, L>(bus),
            0x56 => self.bit::<2, M>(bus),
            0x57 => self.bit::<2, A>(bus),
            0x58 => self.bit::<3, B>(bus),
            0x59 => self.bit::<3, C>(bus),
            0x5A => self.bit::<3, D>(bus),
            0x5B => self.bit::<3, E>(bus),
            0x5C => self.bit::<3, H>(bus),
            0x5D => self.bit::<3, L>(bus),
            0x5E => self.bit::<3, M>(bus),
            0x5F => self.bit::<3, A>(bus),
            0x60 => self.bit::<4, B>(bus),
            0x61 => self.bit::<4, C>(bus),
            0x62 => self.bit::<4, D>(bus),
            0x63 => self.bit::<4, E>(bus),
            0x64 => self.bit::<4, H>(bus),
            0x65 => self.bit::<4, L>(bus),
            0x66 => self.bit::<4, M>(bus),
            0x67 => self.bit::<4, A>(bus),
            0x68 => self.bit::<5, B>(bus),
            0x69 => self.bit::<5, C>(bus),
            0x6A => self.bit::<5, D>(bus),
            0x6B => self.bit::<5, E>(bus),
            0x6C => self.bit::<5, H>(bus),
            0x6D => self.bit::<5, L>(bus),
            0x6E => self.bit::<5, M>(bus),
            0x6F => self.bit::<5, A>(bus),
            0x70 => self.bit::<6, B>(bus),
            0x71 => self.bit::<6, C>(bus),
            0x72 => self.bit::<6, D>(bus),
            0x73 => self.bit::<6, E>(bus),
            0x74 => self.bit::<6, H>(bus),
            0x75 => self.bit::<6, L>(bus),
            0x76 => self.bit::<6, M>(bus),
            0x77 => self.bit::<6, A>(bus),
            0x78 => self.bit::<7, B>(bus),
            0x79 => self.bit::<7, C>(bus),
            0x7A => self.bit::<7, D>(bus),
            0x7B => self.bit::<7, E>(bus),
            0x7C => self.bit::<7, H>(bus),
            0x7D => self.bit::<7, L>(bus),
            0x7E => self.bit::<7, M>(bus),
            0x7F => self.bit::<7, A>(bus),
            0x80 => self.res::<0, B>(bus),
            0x81 => self.res::<0, C>(bus),
            0x82 => self.res::<0, D>(bus),
            0x83 => self.res::<0, E>(bus),
            0x84 => self.res::<0, H>(bus),
            0x85 => self.res::<0, L>(bus),
            0x86 => self.res::<0, M>(bus),
            0x87 => self.res::<0, A>(bus),
            0x88 => self.res::<1, B>(bus),
            0x89 => self.res::<1, C>(bus),
            0x8A => self.res::<1, D>(bus),
            0x8B => self.res::<1, E>(bus),
            0x8C => self.res::<1, H>(bus),
            0x8D => self.res::<1, L>(bus),
            0x8E => self.res::<1, M>(bus),
            0x8F => self.res::<1, A>(bus),
            0x90 => self.res::<2, B>(bus),
            0x91 => self.res::<2, C>(bus),
            0x92 => self.res::<2, D>(bus),
            0x93 => self.res::<2, E>(bus),
            0x94 => self.res::<2, H>(bus),
            0x95 => self.res::<2, L>(bus),
            0x96 => self.res::<2, M>(bus),
            0x97 => self.res::<2, A>(bus),
            0x98 => self.res::<3, B>(bus),
            0x99 => self.res::<3, C>(bus),
            0x9A => self.res::<3, D>(bus),
            0x9B => self.res::<3, E>(bus),
            0x9C => self.res::<3, H>(bus),
            0x9D => self.res::<3, L>(bus),
            0x9E => self.res::<3, M>(bus),
            0x9F => self.res::<3, A>(bus),
            0xA0 => self.res::<4, B>(bus),
            0xA1 => self.res::<4, C>(bus),
            0xA2 => self.res::<4, D>(bus),
            0xA3 => self.res::<4, E>(bus),
            0xA4 => self.res::<4, H>(bus),
            0xA5 => self.res::<4, L>(bus),
            0xA6 => self.res::<4, M>(bus),
            0xA7 => self.res::<4, A>(bus),
            0xA8 => self.res::<5, B>(bus),
            0xA9 => self.res::<5, C>(bus),
            0xAA => self.res::<5, D>(bus),
            0xAB => self.res::<5, E>(bus),
            0xAC => self.res::<5, H>(bus),
            0xAD => self.res::<5, L>(bus),
            0xAE => self.res::<5, M>(bus),
            0xAF => self.res::<5, A>(bus),
            0xB0 => self.res::<6, B>(bus),
            0xB1 => self.res::<6, C>(bus),
            0xB2 => self.res::<6, D>(bus),
            0xB3 => self.res::<6, E>(bus),
            0xB4 => self.res::<6, H>(bus),
            0xB5 => self.res::<6, L>(bus),
            0xB6 => self.res::<6, M>(bus),
            0xB7 => self.res::<6, A>(bus),
            0xB8 => self.res::<7, B>(bus),
            0xB9 => self.res::<7, C>(bus),
            0xBA => self.res::<7, D>(bus),
            0xBB => self.res::<7, E>(bus),
            0xBC => self.res::<7, H>(bus),
            0xBD => self.res::<7, L>(bus),
            0xBE => self.res::<7, M>(bus),
            0xBF => self.res::<7, A>(bus),
            0xC0 => self.setb::<0, B>(bus),
            0xC1 => self.setb::<0, C>(bus),
            0xC2 => self.setb::<0, D>(bus),
            0xC3 => self.setb::<0, E>(bus),
            0xC4 => self.setb::<0, H>(bus),
            0xC5 => self.setb::<0, L>(bus),
            0xC6 => self.setb::<0, M>(bus),
            0xC7 => self.setb::<0, A>(bus),
            0xC8 => self.setb::<1, B>(bus),
            0xC9 => self.setb::<1, C>(bus),
            0xCA => self.setb::<1, D>(bus),
            0xCB => self.setb::<1, E>(bus),
            0xCC => self.setb::<1, H>(bus),
            0xCD => self.setb::<1, L>(bus),
            0xCE => self.setb::<1, M>(bus),
            0xCF => self.setb::<1, A>(bus),
            0xD0 => self.setb::<2, B>(bus),
            0xD1 => self.setb::<2, C>(bus),
            0xD2 => self.setb::<2, D>(bus),
            0xD3 => self.setb::<2, E>(bus),
            0xD4 => self.setb::<2, H>(bus),
            0xD5 => self.setb::<2, L>(bus),
            0xD6 => self.setb::<2, M>(bus),
            0xD7 => self.setb::<2, A>(bus),
            0xD8 => self.setb::<3, B>(bus),
            0xD9 => self.setb::<3, C>(bus),
            0xDA => self.setb::<3, D>(bus),
            0xDB => self.setb::<3, E>(bus),
            0xDC => self.setb::<3, H>(bus),
            0xDD => self.setb::<3, L>(bus),
            0xDE => self.setb::<3, M>(bus),
            0xDF => self.setb::<3, A>(bus),
            0xE0 => self.setb::<4, B>(bus),
            0xE1 => self.setb::<4, C>(bus),
            0xE2 => self.setb::<4, D>(bus),
            0xE3 => self.setb::<4, E>(bus),
            0xE4 => self.setb::<4, H>(bus),
            0xE5 => self.setb::<4, L>(bus),
            0xE6 => self.setb::<4, M>(bus),
            0xE7 => self.setb::<4, A>(bus),
            0xE8 => self.setb::<5, B>(bus),
            0xE9 => self.setb::<5, C>(bus),
            0xEA => self.setb::<5, D>(bus),
            0xEB => self.setb::<5, E>(bus),
            0xEC => self.setb::<5, H>(bus),
            0xED => self.setb::<5, L>(bus),
            0xEE => self.setb::<5, M>(bus),
            0xEF => self.setb::<5, A>(bus),
            0xF0 => self.setb::<6, B>(bus),
            0xF1 => self.setb::<6, C>(bus),
            0xF2 => self.setb::<6, D>(bus),
            0xF3 => self.setb::<6, E>(bus),
            0xF4 => self.setb::<6, H>(bus),
            0xF5 => self.setb::<6, L>(bus),
            0xF6 => self.setb::<6, M>(bus),
            0xF7 => self.setb::<6, A>(bus),
            0xF8 => self.setb::<7, B>(bus),
            0xF9 => self.setb::<7, C>(bus),
            0xFA => self.setb::<7, D>(bus),
            0xFB => self.setb::<7, E>(bus),
            0xFC => self.setb::<7, H>(bus),
            0xFD => self.setb::<7, L>(bus),
            0xFE => self.setb::<7, M>(bus),
            0xFF => self.setb::<7, A>(bus),
        }
    }
}

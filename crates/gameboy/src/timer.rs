//! DIV/TIMA/TMA/TAC. The 16-bit system counter is a pure function of time
//! (`counter(t) = t + div_add`), so DIV needs no ticking at all; TIMA is advanced lazily
//! by counting the falling edges of the selected counter bit between two accesses, and
//! only the overflow (TMA reload + interrupt) is a scheduled event.

use crate::state::{Reader, StateError, Writer};

/// Cycle value meaning "never".
pub const NEVER: u64 = u64::MAX;

/// Times `t` in `(t0, t1]` at which `t + add` is a multiple of `period` (a power of two):
/// the falling edges of counter bit `log2(period) - 1`.
#[inline]
pub fn edges(t0: u64, t1: u64, add: u64, period: u64) -> u64 {
    if t1 <= t0 {
        return 0;
    }
    let phase = t0.wrapping_add(add) & (period - 1);
    (phase + (t1 - t0)) / period
}

/// First time `> t0` at which `t + add` is a multiple of `period`.
#[inline]
pub fn next_edge(t0: u64, add: u64, period: u64) -> u64 {
    t0 + (period - (t0.wrapping_add(add) & (period - 1)))
}

/// Timer registers and the system counter.
#[derive(Debug, Clone)]
pub struct Timer {
    /// `counter(t) = (t + div_add) mod 2^16`.
    pub(crate) div_add: u64,
    tima: u8,
    tma: u8,
    tac: u8,
    /// TIMA includes every edge up to and including this time.
    synced: u64,
    /// When TIMA overflowed, the time TMA gets loaded and the interrupt raised.
    reload_at: u64,
    /// Time of the last reload (writes in that M-cycle behave specially).
    last_reload: u64,
}

impl Timer {
    /// A timer whose counter reads `counter` at time `now`.
    pub fn new(counter: u16, now: u64) -> Self {
        Self {
            div_add: (counter as u64).wrapping_sub(now),
            tima: 0,
            tma: 0,
            tac: 0xF8,
            synced: now,
            reload_at: NEVER,
            last_reload: NEVER,
        }
    }

    #[inline]
    fn period(&self) -> u64 {
        match self.tac & 3 {
            0 => 1024,
            1 => 16,
            2 => 64,
            _ => 256,
        }
    }

    #[inline]
    fn enabled(&self) -> bool {
        self.tac & 4 != 0
    }

    /// The 16-bit system counter at time `t`.
    #[inline]
    pub fn counter(&self, t: u64) -> u16 {
        t.wrapping_add(self.div_add) as u16
    }

    /// Advances TIMA to time `t`; returns true if the timer interrupt was raised.
    pub fn sync(&mut self, t: u64) -> bool {
        let mut irq = false;
        loop {
            if self.reload_at <= t {
                self.tima = self.tma;
                self.last_reload = self.reload_at;
                self.reload_at = NEVER;
                irq = true;
            }
            if !self.enabled() || t <= self.synced {
                self.synced = self.synced.max(t);
                return irq;
            }
            let p = self.period();
            let n = edges(self.synced, t, self.div_add, p);
            if self.tima as u64 + n <= 0xFF {
                self.tima += n as u8;
                self.synced = t;
                return irq;
            }
            let k = 0x100 - self.tima as u64;
            let e = next_edge(self.synced, self.div_add, p) + (k - 1) * p;
            self.tima = 0;
            self.synced = e;
            self.reload_at = e + 4;
        }
    }

    /// When the next timer interrupt will be raised if nothing is written meanwhile.
    pub fn next_event(&self) -> u64 {
        if self.reload_at != NEVER {
            return self.reload_at;
        }
        if !self.enabled() {
            return NEVER;
        }
        let p = self.period();
        next_edge(self.synced, self.div_add, p) + (0xFF - self.tima as u64) * p + 4
    }

    fn increment(&mut self, t: u64) {
        if self.tima == 0xFF {
            self.tima = 0;
            self.reload_at = t + 4;
        } else {
            self.tima += 1;
        }
    }

    /// DIV at time `t`.
    pub fn read_div(&self, t: u64) -> u8 {
        (self.counter(t) >> 8) as u8
    }

    /// Reads TIMA (call `sync(t)` first).
    pub fn read_tima(&self) -> u8 {
        self.tima
    }

    /// Reads TMA.
    pub fn read_tma(&self) -> u8 {
        self.tma
    }

    /// Reads TAC (unused bits read as 1).
    pub fn read_tac(&self) -> u8 {
        self.tac | 0xF8
    }

    /// Writes DIV at time `t` (after `sync(t)`): the counter restarts from 0, which is a
    /// falling edge of the selected bit if it was set.
    pub fn write_div(&mut self, t: u64) {
        let bit = self.period() >> 1;
        if self.enabled() && self.counter(t) as u64 & bit != 0 {
            self.increment(t);
        }
        self.div_add = 0u64.wrapping_sub(t);
        self.synced = t;
    }

    /// Writes TIMA at time `t` (after `sync(t)`).
    pub fn write_tima(&mut self, t: u64, v: u8) {
        if self.last_reload == t {
            // The M-cycle that reloads TMA wins over the write.
            return;
        }
        if self.reload_at != NEVER {
            // Writing in the M-cycle after the overflow cancels reload and interrupt.
            self.reload_at = NEVER;
        }
        self.tima = v;
    }

    /// Writes TMA at time `t` (after `sync(t)`).
    pub fn write_tma(&mut self, t: u64, v: u8) {
        self.tma = v;
        if self.last_reload == t {
            self.tima = v;
        }
    }

    /// Writes TAC at time `t` (after `sync(t)`). On DMG the timer input is
    /// `enable AND counter bit`, so a write that drops it from 1 to 0 counts an edge.
    pub fn write_tac(&mut self, t: u64, v: u8) {
        let c = self.counter(t) as u64;
        let old = self.enabled() && c & (self.period() >> 1) != 0;
        self.tac = v | 0xF8;
        let new = self.enabled() && c & (self.period() >> 1) != 0;
        if old && !new {
            self.increment(t);
        }
        self.synced = t;
    }

    pub(crate) fn save(&self, w: &mut Writer) {
        w.u64(self.div_add);
        w.u8(self.tima);
        w.u8(self.tma);
        w.u8(self.tac);
        w.u64(self.synced);
        w.u64(self.reload_at);
        w.u64(self.last_reload);
    }

    pub(crate) fn load(&mut self, r: &mut Reader) -> Result<(), StateError> {
        self.div_add = r.u64()?;
        self.tima = r.u8()?;
        self.tma = r.u8()?;
        self.tac = r.u8()? | 0xF8;
        self.synced = r.u64()?;
        self.reload_at = r.u64()?;
        self.last_reload = r.u64()?;
        Ok(())
    }

    /// Checks stored times against the clock `now`.
    pub(crate) fn validate(&self, now: u64) -> Result<(), StateError> {
        use crate::state::check_time;
        check_time(self.synced, now, "timer sync time")?;
        check_time(self.reload_at, now, "timer reload time")?;
        check_time(self.last_reload, now, "timer last reload time")?;
        if self.synced == NEVER {
            return Err(StateError::Invalid("timer sync time is unset"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edge_counting_matches_bit_by_bit() {
        for add in [0u64, 3, 100, 0xABCC] {
            for period in [16u64, 64, 256, 1024] {
                for t0 in 0..70 {
                    for len in 0..300 {
                        let t1 = t0 + len;
                        let mut n = 0;
                        for t in t0 + 1..=t1 {
                            let before = (t - 1 + add) & (period >> 1);
                            let after = (t + add) & (period >> 1);
                            if before != 0 && after == 0 {
                                n += 1;
                            }
                        }
                        assert_eq!(edges(t0, t1, add, period), n, "{add} {period} {t0} {t1}");
                    }
                }
            }
        }
    }

    #[test]
    fn overflow_reloads_after_one_m_cycle() {
        let mut t = Timer::new(0, 0);
        t.write_tac(0, 0x05); // 16 cycles per tick
        t.write_tma(0, 0x42);
        t.write_tima(0, 0xFE);
        assert!(!t.sync(16));
        assert_eq!(t.read_tima(), 0xFF);
        assert_eq!(t.next_event(), 36);
        assert!(!t.sync(32));
        assert_eq!(t.read_tima(), 0);
        assert!(t.sync(36));
        assert_eq!(t.read_tima(), 0x42);
    }
}

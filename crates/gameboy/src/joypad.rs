//! Joypad register P1 and the button set.

use crate::state::{Reader, StateError, Writer};

/// A set of pressed buttons (bit set). Combine with `|`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Buttons(pub u8);

impl Buttons {
    /// No button.
    pub const NONE: Buttons = Buttons(0);
    /// A.
    pub const A: Buttons = Buttons(0x01);
    /// B.
    pub const B: Buttons = Buttons(0x02);
    /// Select.
    pub const SELECT: Buttons = Buttons(0x04);
    /// Start.
    pub const START: Buttons = Buttons(0x08);
    /// D-pad right.
    pub const RIGHT: Buttons = Buttons(0x10);
    /// D-pad left.
    pub const LEFT: Buttons = Buttons(0x20);
    /// D-pad up.
    pub const UP: Buttons = Buttons(0x40);
    /// D-pad down.
    pub const DOWN: Buttons = Buttons(0x80);

    /// Names in bit order, as used by input scripts.
    pub const NAMES: [(&'static str, Buttons); 8] = [
        ("A", Self::A),
        ("B", Self::B),
        ("SELECT", Self::SELECT),
        ("START", Self::START),
        ("RIGHT", Self::RIGHT),
        ("LEFT", Self::LEFT),
        ("UP", Self::UP),
        ("DOWN", Self::DOWN),
    ];

    /// The raw bits.
    pub fn bits(self) -> u8 {
        self.0
    }

    /// All buttons of `other` are pressed in `self`.
    pub fn contains(self, other: Buttons) -> bool {
        self.0 & other.0 == other.0
    }

    /// The button with this (case-insensitive) name.
    pub fn from_name(name: &str) -> Option<Buttons> {
        Self::NAMES
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|&(_, b)| b)
    }
}

impl std::ops::BitOr for Buttons {
    type Output = Buttons;
    fn bitor(self, rhs: Buttons) -> Buttons {
        Buttons(self.0 | rhs.0)
    }
}

impl std::ops::BitOrAssign for Buttons {
    fn bitor_assign(&mut self, rhs: Buttons) {
        self.0 |= rhs.0;
    }
}

impl std::fmt::Display for Buttons {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.0 == 0 {
            return f.write_str("-");
        }
        let mut first = true;
        for (name, b) in Self::NAMES {
            if self.contains(b) {
                if !first {
                    f.write_str("+")?;
                }
                f.write_str(name)?;
                first = false;
            }
        }
        Ok(())
    }
}

/// P1: selection bits written by the game and the buttons held by the player.
#[derive(Debug, Clone, Default)]
pub struct Joypad {
    select: u8,
    pressed: Buttons,
}

impl Joypad {
    /// Joypad as the boot ROM leaves it (P1 reads 0xCF: both groups selected, nothing held).
    pub fn new() -> Self {
        Self {
            select: 0x00,
            pressed: Buttons::NONE,
        }
    }

    /// Input lines P10-P13 (0 = pressed and selected).
    fn lines(&self) -> u8 {
        let mut l = 0x0F;
        if self.select & 0x10 == 0 {
            l &= !(self.pressed.0 >> 4);
        }
        if self.select & 0x20 == 0 {
            l &= !self.pressed.0;
        }
        l & 0x0F
    }

    /// Reads P1.
    pub fn read(&self) -> u8 {
        0xC0 | self.select | self.lines()
    }

    /// Writes P1; true if a line fell (joypad interrupt).
    pub fn write(&mut self, v: u8) -> bool {
        let before = self.lines();
        self.select = v & 0x30;
        before & !self.lines() != 0
    }

    /// Sets the held buttons; true if a selected line fell (joypad interrupt).
    pub fn set(&mut self, b: Buttons) -> bool {
        let before = self.lines();
        self.pressed = b;
        before & !self.lines() != 0
    }

    /// The held buttons.
    pub fn pressed(&self) -> Buttons {
        self.pressed
    }

    pub(crate) fn save(&self, w: &mut Writer) {
        w.u8(self.select);
        w.u8(self.pressed.0);
    }

    pub(crate) fn load(&mut self, r: &mut Reader) -> Result<(), StateError> {
        self.select = r.u8()? & 0x30;
        self.pressed = Buttons(r.u8()?);
        Ok(())
    }
}

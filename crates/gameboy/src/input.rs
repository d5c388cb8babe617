//! Input scripts (`<frame> <buttons>` per line), shared by the CLI, the differential
//! tests and the PyBoy harness. See `notes/contracts.md`:
//!
//! ```text
//! # comment
//! 0 -
//! 120 START
//! 130 a+right
//! ```
//!
//! The set on a line is held from that frame until the next entry's frame; the last entry
//! holds until the run ends. Frames must strictly increase.

use crate::Buttons;

/// Why an input script line was rejected (1-based line number).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct InputError {
    /// 1-based line number.
    pub line: usize,
    /// What is wrong.
    pub message: String,
}

/// A parsed input script: (first frame, buttons held from then on), frames increasing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InputScript {
    entries: Vec<(u64, Buttons)>,
}

impl InputScript {
    /// Parses script text.
    pub fn parse(text: &str) -> Result<Self, InputError> {
        let mut entries: Vec<(u64, Buttons)> = Vec::new();
        for (i, raw) in text.lines().enumerate() {
            let line = i + 1;
            let content = raw.split('#').next().unwrap_or("").trim();
            if content.is_empty() {
                continue;
            }
            let err = |message: String| InputError { line, message };
            let mut parts = content.split_whitespace();
            let frame_text = parts.next().unwrap_or("");
            let buttons_text = parts
                .next()
                .ok_or_else(|| err(format!("expected `<frame> <buttons>`, got {content:?}")))?;
            if let Some(extra) = parts.next() {
                return Err(err(format!("unexpected {extra:?} after the buttons")));
            }
            let frame: u64 = frame_text.parse().map_err(|_| {
                err(format!(
                    "frame {frame_text:?} is not a non-negative integer"
                ))
            })?;
            if let Some(&(prev, _)) = entries.last()
                && frame <= prev
            {
                return Err(err(format!(
                    "frame {frame} does not come after the previous entry's frame {prev}"
                )));
            }
            let mut buttons = Buttons::NONE;
            if buttons_text != "-" {
                for name in buttons_text.split('+') {
                    buttons |= Buttons::from_name(name).ok_or_else(|| {
                        err(format!(
                            "unknown button {name:?} (expected A, B, SELECT, START, RIGHT, LEFT, UP, DOWN or -)"
                        ))
                    })?;
                }
            }
            entries.push((frame, buttons));
        }
        Ok(Self { entries })
    }

    /// Buttons held during frame `frame` (none before the first entry).
    pub fn buttons_at(&self, frame: u64) -> Buttons {
        match self.entries.partition_point(|&(f, _)| f <= frame) {
            0 => Buttons::NONE,
            i => self.entries[i - 1].1,
        }
    }

    /// The entries in order.
    pub fn entries(&self) -> &[(u64, Buttons)] {
        &self.entries
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_holds_until_next_entry() {
        let s = InputScript::parse("# intro\n\n0 -\n10 start  # press\n12 a+Right\n").unwrap();
        assert_eq!(s.buttons_at(0), Buttons::NONE);
        assert_eq!(s.buttons_at(10), Buttons::START);
        assert_eq!(s.buttons_at(11), Buttons::START);
        assert_eq!(s.buttons_at(12), Buttons::A | Buttons::RIGHT);
        assert_eq!(s.buttons_at(9999), Buttons::A | Buttons::RIGHT);
        assert_eq!(
            InputScript::parse("5 B").unwrap().buttons_at(4),
            Buttons::NONE
        );
    }

    #[test]
    fn errors_name_the_line() {
        let e = InputScript::parse("0 A\n0 B\n").unwrap_err();
        assert_eq!(e.line, 2);
        assert!(
            InputScript::parse("x A")
                .unwrap_err()
                .message
                .contains("frame")
        );
        assert!(
            InputScript::parse("1 JUMP")
                .unwrap_err()
                .message
                .contains("JUMP")
        );
        assert!(InputScript::parse("1").is_err());
        assert!(InputScript::parse("1 A B").is_err());
    }
}

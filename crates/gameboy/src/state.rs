//! Save-state container: a fixed header that binds the state to one ROM and one format
//! version, then the machine payload, protected by a CRC-32.
//!
//! Layout (little-endian):
//! `magic[8] | version u32 | total length u32 | ROM SHA-1 [20] | CRC-32 of payload u32 | payload`.

use thiserror::Error;

/// First bytes of every state.
pub const MAGIC: [u8; 8] = *b"ZRLGBST\x1A";
/// Payload format version; bump on any layout change. Version 2 added the sound timing
/// (frame sequencer, length counters, sweep) after the frame count; version 1 states still
/// load, with those counters idle.
pub const FORMAT_VERSION: u32 = 2;
/// Oldest format version this build reads.
pub const OLDEST_VERSION: u32 = 1;
/// Bytes before the payload.
pub const HEADER_LEN: usize = 8 + 4 + 4 + 20 + 4;

/// Why a save state was rejected. The emulator is left unchanged in every case.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum StateError {
    /// Fewer bytes than the header or the header's length field needs.
    #[error("save state truncated: {len} bytes, need at least {needed}")]
    Truncated {
        /// Bytes given.
        len: usize,
        /// Bytes needed.
        needed: usize,
    },
    /// The magic bytes are wrong: not a zelda-rl Game Boy state.
    #[error("not a Game Boy save state (bad magic at offset 0)")]
    BadMagic,
    /// Written by another format version.
    #[error(
        "save state format version {found} is not supported (this build reads versions 1 to {expected})"
    )]
    Version {
        /// Version in the state.
        found: u32,
        /// Version this build reads.
        expected: u32,
    },
    /// The length field (offset 12) disagrees with the data or with this machine.
    #[error("save state size mismatch: {what} (header says {header} bytes, expected {expected})")]
    Size {
        /// Which check failed.
        what: &'static str,
        /// Length recorded in the header.
        header: usize,
        /// Length expected.
        expected: usize,
    },
    /// Made with another ROM.
    #[error("save state belongs to another ROM (SHA-1 {state_rom}, this ROM is {this_rom})")]
    WrongRom {
        /// SHA-1 recorded in the state (hex).
        state_rom: String,
        /// SHA-1 of the loaded ROM (hex).
        this_rom: String,
    },
    /// The CRC-32 (offset 36) does not match the payload: the state is corrupted.
    #[error("save state corrupted: CRC-32 stored {stored:08x}, computed {computed:08x}")]
    Checksum {
        /// CRC in the header.
        stored: u32,
        /// CRC of the payload.
        computed: u32,
    },
    /// The payload is internally inconsistent.
    #[error("save state invalid: {0}")]
    Invalid(&'static str),
}

/// Little-endian serializer for the payload.
pub(crate) struct Writer {
    pub(crate) buf: Vec<u8>,
}

impl Writer {
    pub(crate) fn with_capacity(n: usize) -> Self {
        Self {
            buf: Vec::with_capacity(n),
        }
    }
    pub(crate) fn u8(&mut self, v: u8) {
        self.buf.push(v);
    }
    pub(crate) fn bool(&mut self, v: bool) {
        self.buf.push(v as u8);
    }
    pub(crate) fn u16(&mut self, v: u16) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }
    pub(crate) fn u32(&mut self, v: u32) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }
    pub(crate) fn u64(&mut self, v: u64) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }
    pub(crate) fn bytes(&mut self, v: &[u8]) {
        self.buf.extend_from_slice(v);
    }
}

/// Little-endian deserializer; every read checks the remaining length.
pub(crate) struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(data: &'a [u8]) -> Self {
        Self { data, pos: 0 }
    }
    pub(crate) fn bytes(&mut self, n: usize) -> Result<&'a [u8], StateError> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= self.data.len())
            .ok_or(StateError::Invalid("payload ends early"))?;
        let s = &self.data[self.pos..end];
        self.pos = end;
        Ok(s)
    }
    pub(crate) fn array<const N: usize>(&mut self) -> Result<[u8; N], StateError> {
        let mut a = [0; N];
        a.copy_from_slice(self.bytes(N)?);
        Ok(a)
    }
    pub(crate) fn u8(&mut self) -> Result<u8, StateError> {
        Ok(self.bytes(1)?[0])
    }
    pub(crate) fn bool(&mut self) -> Result<bool, StateError> {
        Ok(self.u8()? != 0)
    }
    pub(crate) fn u16(&mut self) -> Result<u16, StateError> {
        Ok(u16::from_le_bytes(self.array()?))
    }
    pub(crate) fn u32(&mut self) -> Result<u32, StateError> {
        Ok(u32::from_le_bytes(self.array()?))
    }
    pub(crate) fn u64(&mut self) -> Result<u64, StateError> {
        Ok(u64::from_le_bytes(self.array()?))
    }
    pub(crate) fn remaining(&self) -> usize {
        self.data.len() - self.pos
    }
}

/// How far a time stored in a state may lie from the machine's clock (about 60 frames):
/// bounds the catch-up work after loading a crafted state.
pub(crate) const TIME_WINDOW: u64 = 1 << 22;

/// Checks that `t` is `NEVER` or within [`TIME_WINDOW`] of `now`.
pub(crate) fn check_time(t: u64, now: u64, what: &'static str) -> Result<(), StateError> {
    if t == u64::MAX
        || (t <= now.saturating_add(TIME_WINDOW) && t.saturating_add(TIME_WINDOW) >= now)
    {
        Ok(())
    } else {
        Err(StateError::Invalid(what))
    }
}

/// Wraps a payload into a state with header and checksum.
pub(crate) fn seal(payload_writer: Writer, rom_sha1: &[u8; 20]) -> Vec<u8> {
    let mut out = payload_writer.buf;
    let crc = crc32fast::hash(&out[HEADER_LEN..]);
    let total = out.len() as u32;
    out[0..8].copy_from_slice(&MAGIC);
    out[8..12].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
    out[12..16].copy_from_slice(&total.to_le_bytes());
    out[16..36].copy_from_slice(rom_sha1);
    out[36..40].copy_from_slice(&crc.to_le_bytes());
    out
}

/// A writer with room reserved for the header, to be filled by [`seal`].
pub(crate) fn begin(capacity: usize) -> Writer {
    let mut w = Writer::with_capacity(capacity + HEADER_LEN);
    w.bytes(&[0; HEADER_LEN]);
    w
}

/// Checks header, length, ROM binding and checksum; returns the payload and its format
/// version.
pub(crate) fn open<'a>(data: &'a [u8], rom_sha1: &[u8; 20]) -> Result<(&'a [u8], u32), StateError> {
    if data.len() < HEADER_LEN {
        return Err(StateError::Truncated {
            len: data.len(),
            needed: HEADER_LEN,
        });
    }
    if data[0..8] != MAGIC {
        return Err(StateError::BadMagic);
    }
    let version = u32::from_le_bytes(data[8..12].try_into().expect("4 bytes"));
    if !(OLDEST_VERSION..=FORMAT_VERSION).contains(&version) {
        return Err(StateError::Version {
            found: version,
            expected: FORMAT_VERSION,
        });
    }
    let total = u32::from_le_bytes(data[12..16].try_into().expect("4 bytes")) as usize;
    if total != data.len() {
        if total > data.len() {
            return Err(StateError::Truncated {
                len: data.len(),
                needed: total,
            });
        }
        return Err(StateError::Size {
            what: "trailing bytes after the state",
            header: total,
            expected: data.len(),
        });
    }
    if data[16..36] != rom_sha1[..] {
        return Err(StateError::WrongRom {
            state_rom: hex(&data[16..36]),
            this_rom: hex(rom_sha1),
        });
    }
    let stored = u32::from_le_bytes(data[36..40].try_into().expect("4 bytes"));
    let computed = crc32fast::hash(&data[HEADER_LEN..]);
    if stored != computed {
        return Err(StateError::Checksum { stored, computed });
    }
    Ok((&data[HEADER_LEN..], version))
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

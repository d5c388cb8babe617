//! TensorBoard scalars without TensorFlow: event files in the TFRecord format.
//!
//! A file `events.out.tfevents.<seconds>.<host>` is a sequence of records, each
//! `u64 length | u32 masked_crc32c(length) | data | u32 masked_crc32c(data)` (little endian),
//! whose data is a serialized `tensorflow.Event` protobuf. The first event carries
//! `file_version: "brain.Event:2"`; every later one a `Summary` of scalar values
//! (`summary.value { tag, simple_value }`). The protobuf is written by hand: the handful of
//! fields used are stable since TensorFlow 1.0 (`tensorflow/core/util/event.proto`,
//! `tensorflow/core/framework/summary.proto`).
//!
//! [`EventWriter`] appends to a local file (the learner's run folder); [`EventFile`] builds
//! the same bytes in memory, for stores that have no append (upload the whole file again
//! with `Store::put`, which replaces it atomically).

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::crc32c;

/// The value TensorBoard expects in the first event of a file.
pub const FILE_VERSION: &str = "brain.Event:2";

fn varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn key(out: &mut Vec<u8>, field: u32, wire_type: u32) {
    varint(out, u64::from((field << 3) | wire_type));
}

fn bytes_field(out: &mut Vec<u8>, field: u32, data: &[u8]) {
    key(out, field, 2);
    varint(out, data.len() as u64);
    out.extend_from_slice(data);
}

/// `Event { wall_time = 1 (double), step = 2 (int64), file_version = 3 | summary = 5 }`.
fn event(wall_time: f64, step: i64, body: EventBody<'_>) -> Vec<u8> {
    let mut out = Vec::with_capacity(64);
    key(&mut out, 1, 1);
    out.extend_from_slice(&wall_time.to_le_bytes());
    if step != 0 {
        key(&mut out, 2, 0);
        // int64 is encoded as its two's-complement u64 (negative steps take 10 bytes).
        varint(&mut out, step as u64);
    }
    match body {
        EventBody::FileVersion(v) => bytes_field(&mut out, 3, v.as_bytes()),
        EventBody::Scalars(values) => {
            // Summary { repeated Value value = 1 }, Value { tag = 1, simple_value = 2 (float) }
            let mut summary = Vec::with_capacity(values.len() * 24);
            for (tag, v) in values {
                let mut value = Vec::with_capacity(tag.len() + 8);
                bytes_field(&mut value, 1, tag.as_bytes());
                key(&mut value, 2, 5);
                value.extend_from_slice(&v.to_le_bytes());
                bytes_field(&mut summary, 1, &value);
            }
            bytes_field(&mut out, 5, &summary);
        }
    }
    out
}

enum EventBody<'a> {
    FileVersion(&'a str),
    Scalars(&'a [(&'a str, f32)]),
}

/// Appends one TFRecord (length, masked CRC of the length, data, masked CRC of the data).
fn record(out: &mut Vec<u8>, data: &[u8]) {
    let len = (data.len() as u64).to_le_bytes();
    out.extend_from_slice(&len);
    out.extend_from_slice(&crc32c::masked(&len).to_le_bytes());
    out.extend_from_slice(data);
    out.extend_from_slice(&crc32c::masked(data).to_le_bytes());
}

fn now_seconds() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// This machine's name for file names (`HOSTNAME`, then the kernel's), reduced to a safe
/// alphabet.
fn host_name() -> String {
    let raw = std::env::var("HOSTNAME")
        .ok()
        .filter(|h| !h.is_empty())
        .or_else(|| std::fs::read_to_string("/proc/sys/kernel/hostname").ok())
        .unwrap_or_else(|| "localhost".into());
    let clean: String = raw
        .trim()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_') {
                c
            } else {
                '_'
            }
        })
        .collect();
    if clean.is_empty() {
        "localhost".into()
    } else {
        clean
    }
}

/// An event file built in memory.
#[derive(Debug, Clone)]
pub struct EventFile {
    name: String,
    bytes: Vec<u8>,
}

impl EventFile {
    /// A new file named `events.out.tfevents.<now>.<host>.<pid>` (TensorFlow's own
    /// pattern, so two processes started in the same second never collide), holding the
    /// version event.
    pub fn new() -> Self {
        let now = now_seconds();
        Self::with_name(
            format!(
                "events.out.tfevents.{}.{}.{}",
                now as u64,
                host_name(),
                std::process::id()
            ),
            now,
        )
    }

    /// A new file with an explicit name and creation time (tests, and writers that want
    /// one name per run).
    pub fn with_name(name: String, wall_time: f64) -> Self {
        let mut bytes = Vec::new();
        record(
            &mut bytes,
            &event(wall_time, 0, EventBody::FileVersion(FILE_VERSION)),
        );
        Self { name, bytes }
    }

    /// The file name (`events.out.tfevents.<seconds>.<host>`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Adds one scalar at `step`, stamped now.
    pub fn add_scalar(&mut self, tag: &str, step: i64, value: f32) {
        self.add_scalars_at(step, &[(tag, value)], now_seconds());
    }

    /// Adds several scalars of one step as one event, stamped `wall_time`.
    pub fn add_scalars_at(&mut self, step: i64, values: &[(&str, f32)], wall_time: f64) {
        record(
            &mut self.bytes,
            &event(wall_time, step, EventBody::Scalars(values)),
        );
    }

    /// The whole file.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// Writes the whole file to `<prefix>/<name>` in the store (atomic replace), so
    /// `tensorboard --logdir s3://...` sees it; call it after every few updates.
    pub async fn upload(
        &self,
        store: &episodes::Store,
        prefix: &str,
    ) -> Result<String, episodes::StoreError> {
        let key = format!("{}/{}", prefix.trim_end_matches('/'), self.name);
        store.put(&key, self.bytes.clone().into()).await?;
        Ok(key)
    }
}

impl Default for EventFile {
    fn default() -> Self {
        Self::new()
    }
}

/// A run's TensorBoard scalars in its store: appended to a local file for folder stores,
/// or built in memory and uploaded whole (an atomic replace) for S3, where the cluster's
/// TensorBoard reads `--logdir=$STORE`. Files go to `<run>/tensorboard/`.
pub enum Scalars {
    /// `<store root>/<run>/tensorboard/events...`.
    Local(EventWriter),
    /// `<run>/tensorboard/events...` in an object store.
    Store {
        /// The file so far.
        file: EventFile,
        /// Where it goes.
        store: episodes::Store,
        /// `<run>/tensorboard`.
        prefix: String,
        /// Runs the uploads.
        rt: tokio::runtime::Runtime,
    },
}

impl Scalars {
    /// The scalars of `run` in `store`.
    pub fn open(store: &episodes::Store, run: &str) -> io::Result<Self> {
        Ok(match store.local_root() {
            Some(root) => {
                let dir = root.join(run).join("tensorboard");
                Scalars::Local(EventWriter::create(&dir).map_err(|e| {
                    io::Error::new(
                        e.kind(),
                        format!("creating TensorBoard events in {}: {e}", dir.display()),
                    )
                })?)
            }
            None => Scalars::Store {
                file: EventFile::new(),
                store: store.clone(),
                prefix: format!("{run}/tensorboard"),
                rt: tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()?,
            },
        })
    }

    /// Adds several scalars of one step.
    pub fn add_scalars(&mut self, step: i64, values: &[(&str, f32)]) {
        match self {
            Scalars::Local(w) => w.add_scalars(step, values),
            Scalars::Store { file, .. } => file.add_scalars_at(step, values, now_seconds()),
        }
    }

    /// Makes everything added so far visible to TensorBoard.
    pub fn flush(&mut self) -> Result<(), String> {
        match self {
            Scalars::Local(w) => w.flush().map_err(|e| e.to_string()),
            Scalars::Store {
                file,
                store,
                prefix,
                rt,
            } => rt
                .block_on(file.upload(store, prefix))
                .map(|_| ())
                .map_err(|e| e.to_string()),
        }
    }

    /// Adds scalars and flushes; a failure is logged, never fatal (watching must not stop
    /// training).
    pub fn record(&mut self, step: i64, values: &[(&str, f32)]) {
        self.add_scalars(step, values);
        if let Err(e) = self.flush() {
            tracing::warn!(error = %e, "writing TensorBoard events");
        }
    }
}

/// An event file on the local filesystem, appended to as scalars arrive.
#[derive(Debug)]
pub struct EventWriter {
    path: PathBuf,
    file: File,
    buf: Vec<u8>,
}

impl EventWriter {
    /// Creates `dir` if needed and a new event file in it, beginning with the version event.
    pub fn create(dir: &Path) -> io::Result<Self> {
        std::fs::create_dir_all(dir)?;
        let proto = EventFile::new();
        let path = dir.join(proto.name());
        let mut file = OpenOptions::new()
            .create_new(true)
            .append(true)
            .open(&path)?;
        file.write_all(proto.as_bytes())?;
        file.sync_data()?;
        Ok(Self {
            path,
            file,
            buf: Vec::new(),
        })
    }

    /// Where the file is.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Queues one scalar at `step`, stamped now (written by [`EventWriter::flush`]).
    pub fn add_scalar(&mut self, tag: &str, step: i64, value: f32) {
        self.add_scalars(step, &[(tag, value)]);
    }

    /// Queues several scalars of one step as one event.
    pub fn add_scalars(&mut self, step: i64, values: &[(&str, f32)]) {
        record(
            &mut self.buf,
            &event(now_seconds(), step, EventBody::Scalars(values)),
        );
    }

    /// Appends what was queued as whole records and syncs, so a reader never sees half a
    /// record from us (TensorBoard skips a truncated tail and re-reads it later anyway).
    pub fn flush(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        self.file.write_all(&self.buf)?;
        self.file.sync_data()?;
        self.buf.clear();
        Ok(())
    }
}

impl Drop for EventWriter {
    fn drop(&mut self) {
        if let Err(e) = self.flush() {
            tracing::warn!(path = %self.path.display(), error = %e, "TensorBoard events not written");
        }
    }
}

/// Reads the records of an event file back: `(data)` per record, checking both CRCs.
/// Errors name the record index and byte offset.
pub fn read_records(bytes: &[u8]) -> Result<Vec<&[u8]>, String> {
    let mut out = Vec::new();
    let mut at = 0usize;
    while at < bytes.len() {
        let idx = out.len();
        let header = bytes
            .get(at..at + 12)
            .ok_or_else(|| format!("record {idx} at byte {at}: truncated header"))?;
        let len_bytes: [u8; 8] = header[..8].try_into().expect("8 bytes");
        let len_crc = u32::from_le_bytes(header[8..12].try_into().expect("4 bytes"));
        if crc32c::masked(&len_bytes) != len_crc {
            return Err(format!("record {idx} at byte {at}: length CRC mismatch"));
        }
        let len = usize::try_from(u64::from_le_bytes(len_bytes))
            .map_err(|_| format!("record {idx} at byte {at}: length too large"))?;
        let data = bytes
            .get(at + 12..at + 12 + len)
            .ok_or_else(|| format!("record {idx} at byte {at}: truncated data ({len} bytes)"))?;
        let crc = bytes
            .get(at + 12 + len..at + 16 + len)
            .ok_or_else(|| format!("record {idx} at byte {at}: truncated data CRC"))?;
        if crc32c::masked(data) != u32::from_le_bytes(crc.try_into().expect("4 bytes")) {
            return Err(format!("record {idx} at byte {at}: data CRC mismatch"));
        }
        out.push(data);
        at += 16 + len;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints() {
        let mut v = Vec::new();
        varint(&mut v, 300);
        assert_eq!(v, [0xAC, 0x02]);
        let mut v = Vec::new();
        varint(&mut v, (-1i64) as u64);
        assert_eq!(v.len(), 10);
    }

    #[test]
    fn scalar_event_bytes_are_the_protobuf_encoding() {
        // Event{wall_time: 1.5, step: 7, summary{value{tag:"a", simple_value: 2.0}}}
        let e = event(1.5, 7, EventBody::Scalars(&[("a", 2.0)]));
        let mut want = vec![0x09];
        want.extend_from_slice(&1.5f64.to_le_bytes());
        want.extend_from_slice(&[0x10, 7]);
        // summary (field 5, len 10) -> value (field 1, len 8) -> tag "a", simple_value 2.0
        want.extend_from_slice(&[0x2A, 10, 0x0A, 8, 0x0A, 1, b'a', 0x15]);
        want.extend_from_slice(&2.0f32.to_le_bytes());
        assert_eq!(e, want);
    }

    #[test]
    fn records_round_trip_and_corruption_is_named() {
        let mut f = EventFile::with_name("events.out.tfevents.1.test".into(), 1.0);
        f.add_scalars_at(1, &[("loss", 0.5), ("kl", 0.01)], 2.0);
        f.add_scalars_at(2, &[("loss", 0.25)], 3.0);
        let recs = read_records(f.as_bytes()).unwrap();
        assert_eq!(recs.len(), 3);
        assert!(
            recs[0]
                .windows(FILE_VERSION.len())
                .any(|w| w == FILE_VERSION.as_bytes())
        );
        let mut bad = f.as_bytes().to_vec();
        let last = bad.len() - 6;
        bad[last] ^= 1;
        let err = read_records(&bad).unwrap_err();
        assert!(
            err.contains("record 2") && err.contains("data CRC"),
            "{err}"
        );
        let err = read_records(&f.as_bytes()[..f.as_bytes().len() - 2]).unwrap_err();
        assert!(err.contains("truncated"), "{err}");
    }

    #[test]
    fn writer_appends_whole_records() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = EventWriter::create(dir.path()).unwrap();
        let name = w.path().file_name().unwrap().to_string_lossy().to_string();
        assert!(name.starts_with("events.out.tfevents."), "{name}");
        w.add_scalar("train/loss", 1, 0.5);
        w.add_scalars(2, &[("train/loss", 0.4), ("train/entropy", 2.0)]);
        w.flush().unwrap();
        drop(w);
        let bytes = std::fs::read(dir.path().join(&name)).unwrap();
        assert_eq!(read_records(&bytes).unwrap().len(), 3);
    }
}

//! Writing finished segments to the store off the stepping threads.

use std::sync::mpsc;
use std::thread::JoinHandle;

use episodes::{PutOutcome, Segment, Store};

/// Why exporting failed.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// A segment could not be encoded (a bug: recorded segments are always consistent).
    #[error("segment {key}: cannot encode: {reason}")]
    Encode {
        /// Object key.
        key: String,
        /// Why.
        reason: String,
    },
    /// The store refused a write.
    #[error(transparent)]
    Store(#[from] episodes::StoreError),
    /// The exporter thread is gone (it failed earlier; see the first error).
    #[error("the segment exporter stopped after an earlier error")]
    Stopped,
}

/// What the exporter wrote.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ExportStats {
    /// Segments newly written.
    pub written: u64,
    /// Segments that were already stored with the same bytes (re-runs).
    pub already_present: u64,
    /// Encoded bytes of all segments handled.
    pub bytes: u64,
    /// Steps in those segments.
    pub steps: u64,
}

/// A background thread that encodes segments and writes them with `put_new`. The queue is
/// bounded, so a slow store applies back-pressure to the rollout instead of using memory.
pub struct SegmentExporter {
    tx: Option<mpsc::SyncSender<Segment>>,
    handle: Option<JoinHandle<Result<ExportStats, ExportError>>>,
}

impl SegmentExporter {
    /// Starts the exporter for `store` with room for `capacity` queued segments.
    pub fn spawn(store: Store, capacity: usize) -> Self {
        let (tx, rx) = mpsc::sync_channel::<Segment>(capacity);
        let handle = std::thread::Builder::new()
            .name("segment-export".into())
            .spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("tokio runtime for the exporter");
                let mut stats = ExportStats::default();
                for seg in rx {
                    let key = seg.key();
                    let bytes = seg.encode().map_err(|reason| ExportError::Encode {
                        key: key.clone(),
                        reason,
                    })?;
                    stats.bytes += bytes.len() as u64;
                    stats.steps += u64::from(seg.meta.steps);
                    match rt.block_on(store.put_new(&key, bytes.into()))? {
                        PutOutcome::Created => stats.written += 1,
                        PutOutcome::AlreadyPresent => stats.already_present += 1,
                    }
                    tracing::debug!(key, "segment exported");
                }
                Ok(stats)
            })
            .expect("spawning the exporter thread");
        Self {
            tx: Some(tx),
            handle: Some(handle),
        }
    }

    /// Queues a segment; blocks while the queue is full. Fails if the exporter stopped.
    pub fn submit(&self, seg: Segment) -> Result<(), ExportError> {
        self.tx
            .as_ref()
            .expect("exporter not finished")
            .send(seg)
            .map_err(|_| ExportError::Stopped)
    }

    /// Waits for every queued segment to be written and returns the totals (or the first
    /// error).
    pub fn finish(mut self) -> Result<ExportStats, ExportError> {
        drop(self.tx.take());
        self.handle
            .take()
            .expect("joined once")
            .join()
            .unwrap_or(Err(ExportError::Stopped))
    }
}

impl Drop for SegmentExporter {
    fn drop(&mut self) {
        drop(self.tx.take());
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

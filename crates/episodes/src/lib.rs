//! Episode segments and the object store that holds them.
pub mod frames;
pub mod replay;
pub mod segment;
pub mod store;

pub use replay::{ReplayError, ReplayReport, replay};
pub use segment::{EpisodeEnd, Keyframe, Segment, SegmentError, SegmentMeta};
pub use store::{ObjectInfo, PutOutcome, Store, StoreError};

//! A versioned, integrity-checked safetensors container.
//!
//! Layout: a plain safetensors file (readable by any safetensors tool) whose `__metadata__` holds a
//! single key, `zelda_rl`, with a JSON object:
//! `{"kind": ..., "format_version": N, "content_sha1": ..., ...caller fields}`.
//! A single metadata key keeps the bytes deterministic: the safetensors crate writes its metadata
//! from a `HashMap`, so several keys would come out in a random order.
//! `content_sha1` covers every tensor's name, shape and data, in name order, so a flipped bit in
//! the data section (which safetensors itself does not notice) is reported as corruption.

use std::collections::{BTreeMap, HashMap};

use safetensors::tensor::{Dtype, SafeTensors, TensorView};
use serde_json::{Map, Value};
use sha1::{Digest, Sha1};

/// Metadata key under which the container's JSON lives.
pub const META_KEY: &str = "zelda_rl";

/// A host-side f32 tensor.
#[derive(Clone, Debug, PartialEq)]
pub struct HostTensor {
    /// Dimensions.
    pub shape: Vec<usize>,
    /// Row-major values.
    pub data: Vec<f32>,
}

impl HostTensor {
    /// Creates a tensor, checking that the data length matches the shape.
    pub fn new(shape: Vec<usize>, data: Vec<f32>) -> Self {
        assert_eq!(
            shape.iter().product::<usize>(),
            data.len(),
            "shape/data mismatch"
        );
        Self { shape, data }
    }
}

/// Errors reading a container.
#[derive(Debug, thiserror::Error)]
pub enum ContainerError {
    /// The bytes are not a valid safetensors file.
    #[error("not a valid safetensors file: {0}")]
    Safetensors(String),
    /// The safetensors file lacks the `zelda_rl` metadata entry.
    #[error("safetensors file has no `{META_KEY}` metadata (not written by zelda-rl)")]
    MissingMetadata,
    /// The metadata is not the expected JSON object.
    #[error("metadata `{META_KEY}` is not valid: {0}")]
    BadMetadata(String),
    /// The container holds another kind of artefact.
    #[error("wrong file kind: expected `{expected}`, found `{found}`")]
    WrongKind {
        /// What the caller asked for.
        expected: String,
        /// What the file says it is.
        found: String,
    },
    /// The format version is not one this build reads.
    #[error("unsupported format_version {found} for `{kind}` (this build reads {supported})")]
    UnsupportedVersion {
        /// Artefact kind.
        kind: String,
        /// Version in the file.
        found: u64,
        /// Version this build reads.
        supported: u64,
    },
    /// The content digest does not match: the data section was altered.
    #[error("content digest mismatch (file corrupted): stored {stored}, computed {computed}")]
    DigestMismatch {
        /// Digest stored in metadata.
        stored: String,
        /// Digest of the bytes read.
        computed: String,
    },
    /// A tensor has a dtype other than f32.
    #[error("tensor `{name}` has dtype {dtype}, expected F32")]
    BadDtype {
        /// Tensor name.
        name: String,
        /// Dtype found.
        dtype: String,
    },
}

/// A decoded container.
#[derive(Clone, Debug)]
pub struct Container {
    /// The JSON metadata object (including `kind`, `format_version`, `content_sha1`).
    pub meta: Map<String, Value>,
    /// Tensors by name.
    pub tensors: BTreeMap<String, HostTensor>,
}

fn digest(tensors: &BTreeMap<String, HostTensor>) -> String {
    let mut h = Sha1::new();
    for (name, t) in tensors {
        h.update((name.len() as u64).to_le_bytes());
        h.update(name.as_bytes());
        h.update((t.shape.len() as u64).to_le_bytes());
        for &d in &t.shape {
            h.update((d as u64).to_le_bytes());
        }
        for v in &t.data {
            h.update(v.to_le_bytes());
        }
    }
    hex::encode(h.finalize())
}

/// Encodes tensors and metadata fields into container bytes.
///
/// `fields` must not contain `kind`, `format_version` or `content_sha1`; those are set here.
pub fn encode(
    kind: &str,
    format_version: u64,
    fields: Map<String, Value>,
    tensors: &BTreeMap<String, HostTensor>,
) -> Vec<u8> {
    let mut meta = fields;
    meta.insert("kind".into(), Value::String(kind.into()));
    meta.insert("format_version".into(), Value::from(format_version));
    meta.insert("content_sha1".into(), Value::String(digest(tensors)));
    // serde_json's Map is a BTreeMap (no preserve_order feature), so this string is canonical.
    let meta_json = serde_json::to_string(&Value::Object(meta)).expect("JSON of a Map");

    let bytes: Vec<(String, Vec<u8>)> = tensors
        .iter()
        .map(|(name, t)| {
            let mut b = Vec::with_capacity(t.data.len() * 4);
            for v in &t.data {
                b.extend_from_slice(&v.to_le_bytes());
            }
            (name.clone(), b)
        })
        .collect();
    let views: Vec<(String, TensorView<'_>)> = bytes
        .iter()
        .zip(tensors.values())
        .map(|((name, b), t)| {
            let view = TensorView::new(Dtype::F32, t.shape.clone(), b).expect("consistent view");
            (name.clone(), view)
        })
        .collect();
    let mut info = HashMap::new();
    info.insert(META_KEY.to_string(), meta_json);
    safetensors::serialize(views, Some(info)).expect("serialising in-memory tensors")
}

/// Reads the metadata object only, without checking kind, version or digest.
pub fn peek_meta(bytes: &[u8]) -> Result<Map<String, Value>, ContainerError> {
    let (_, metadata) = SafeTensors::read_metadata(bytes)
        .map_err(|e| ContainerError::Safetensors(e.to_string()))?;
    let raw = metadata
        .metadata()
        .as_ref()
        .and_then(|m| m.get(META_KEY))
        .ok_or(ContainerError::MissingMetadata)?;
    match serde_json::from_str::<Value>(raw) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => Err(ContainerError::BadMetadata("not a JSON object".into())),
        Err(e) => Err(ContainerError::BadMetadata(e.to_string())),
    }
}

/// Decodes container bytes, checking kind, version and content digest.
pub fn decode(
    bytes: &[u8],
    expected_kind: &str,
    supported_version: u64,
) -> Result<Container, ContainerError> {
    let meta = peek_meta(bytes)?;
    let kind = meta
        .get("kind")
        .and_then(Value::as_str)
        .ok_or_else(|| ContainerError::BadMetadata("missing string field `kind`".into()))?;
    if kind != expected_kind {
        return Err(ContainerError::WrongKind {
            expected: expected_kind.into(),
            found: kind.into(),
        });
    }
    let version = meta
        .get("format_version")
        .and_then(Value::as_u64)
        .ok_or_else(|| ContainerError::BadMetadata("missing integer `format_version`".into()))?;
    if version != supported_version {
        return Err(ContainerError::UnsupportedVersion {
            kind: kind.into(),
            found: version,
            supported: supported_version,
        });
    }
    let stored = meta
        .get("content_sha1")
        .and_then(Value::as_str)
        .ok_or_else(|| ContainerError::BadMetadata("missing string `content_sha1`".into()))?
        .to_string();

    let st =
        SafeTensors::deserialize(bytes).map_err(|e| ContainerError::Safetensors(e.to_string()))?;
    let mut tensors = BTreeMap::new();
    for (name, view) in st.iter() {
        if view.dtype() != Dtype::F32 {
            return Err(ContainerError::BadDtype {
                name: name.into(),
                dtype: format!("{:?}", view.dtype()),
            });
        }
        let data: Vec<f32> = view
            .data()
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        tensors.insert(
            name.to_string(),
            HostTensor {
                shape: view.shape().to_vec(),
                data,
            },
        );
    }
    let computed = digest(&tensors);
    if computed != stored {
        return Err(ContainerError::DigestMismatch { stored, computed });
    }
    Ok(Container { meta, tensors })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> BTreeMap<String, HostTensor> {
        let mut t = BTreeMap::new();
        t.insert("b".into(), HostTensor::new(vec![2], vec![1.0, -2.0]));
        t.insert(
            "a".into(),
            HostTensor::new(vec![2, 2], vec![0.5, 0.25, 0.0, 3.0]),
        );
        t
    }

    #[test]
    fn round_trip_and_determinism() {
        let mut fields = Map::new();
        fields.insert("x".into(), Value::from(5));
        fields.insert("a".into(), Value::from("y"));
        let b1 = encode("test", 1, fields.clone(), &sample());
        let b2 = encode("test", 1, fields, &sample());
        assert_eq!(b1, b2);
        let c = decode(&b1, "test", 1).unwrap();
        assert_eq!(c.tensors, sample());
        assert_eq!(c.meta["x"], Value::from(5));
    }

    #[test]
    fn detects_kind_version_and_corruption() {
        let b = encode("test", 1, Map::new(), &sample());
        assert!(matches!(
            decode(&b, "other", 1),
            Err(ContainerError::WrongKind { .. })
        ));
        assert!(matches!(
            decode(&b, "test", 2),
            Err(ContainerError::UnsupportedVersion { .. })
        ));
        let mut bad = b.clone();
        let last = bad.len() - 1;
        bad[last] ^= 0x40;
        assert!(matches!(
            decode(&bad, "test", 1),
            Err(ContainerError::DigestMismatch { .. })
        ));
        assert!(matches!(
            decode(&b[..b.len() - 3], "test", 1),
            Err(ContainerError::Safetensors(_))
        ));
        assert!(matches!(
            decode(b"garbage", "test", 1),
            Err(ContainerError::Safetensors(_))
        ));
    }
}

//! The object store every part of the system reads and writes: a local folder by default,
//! S3/MinIO in clusters, memory in tests. One URL names it.
//!
//! Every write is atomic (the local backend writes a temporary file, fsyncs and renames; S3
//! PUTs are atomic by nature), and [`Store::put_new`] makes re-runs idempotent: writing the
//! same bytes again is a no-op, writing different bytes under an existing key is an error,
//! so nothing already stored is ever replaced by accident.

use std::sync::Arc;

use bytes::Bytes;
use futures::TryStreamExt;
use object_store::aws::AmazonS3Builder;
use object_store::local::LocalFileSystem;
use object_store::memory::InMemory;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload};

/// Errors from the object store, each naming the store and the object.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The store URL could not be understood.
    #[error("invalid store URL `{url}`: {reason}")]
    InvalidUrl {
        /// The URL as given.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The object does not exist.
    #[error("object `{key}` not found in store {store}")]
    NotFound {
        /// Store URL.
        store: String,
        /// Object key.
        key: String,
    },
    /// An object already exists under this key with different content.
    #[error(
        "object `{key}` already exists in store {store} with different content \
         ({existing} bytes stored, {new} bytes offered); refusing to overwrite"
    )]
    Conflict {
        /// Store URL.
        store: String,
        /// Object key.
        key: String,
        /// Size of the stored object.
        existing: usize,
        /// Size of the rejected write.
        new: usize,
    },
    /// Any other failure of the backend (unreachable server, credentials, I/O).
    #[error("store {store}: {op} `{key}` failed: {source}")]
    Backend {
        /// Store URL.
        store: String,
        /// What was attempted.
        op: &'static str,
        /// Object key or prefix.
        key: String,
        /// The backend's error.
        #[source]
        source: Box<object_store::Error>,
    },
}

/// What [`Store::put_new`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PutOutcome {
    /// The object was written.
    Created,
    /// The object was already there with exactly these bytes; nothing was written.
    AlreadyPresent,
}

/// One listed object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectInfo {
    /// Key relative to the store's root.
    pub key: String,
    /// Size in bytes.
    pub size: u64,
}

/// A handle on the object store named by a URL. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Store {
    inner: Arc<dyn ObjectStore>,
    root: Path,
    url: String,
    local: Option<std::path::PathBuf>,
}

impl Store {
    /// Opens the store a URL names:
    /// - `file:///abs/dir` or a plain path (`./runs`): a local folder, created if missing;
    /// - `memory://`: a fresh in-process store (tests);
    /// - `s3://bucket/prefix`: S3 or an S3-compatible server (MinIO), configured from the
    ///   usual `AWS_*` variables (`AWS_ENDPOINT_URL`, `AWS_REGION`, `AWS_ACCESS_KEY_ID`,
    ///   `AWS_SECRET_ACCESS_KEY`, ...); path-style requests unless
    ///   `AWS_VIRTUAL_HOSTED_STYLE_REQUEST=true`; plain HTTP is allowed when the endpoint is
    ///   `http://`. `ZELDA_RL_STORE_RETRY_TIMEOUT_SECS` bounds how long failing requests
    ///   are retried (object_store's default is 3 minutes).
    ///
    /// Opening does not contact the server; [`Store::check`] does.
    pub fn open(url: &str) -> Result<Self, StoreError> {
        Self::open_with_vars(url, std::env::vars())
    }

    /// Like [`Store::open`], with the `AWS_*` settings taken from `vars` instead of the
    /// process environment (tests, and callers that hold credentials elsewhere).
    pub fn open_with_vars(
        url: &str,
        vars: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, StoreError> {
        let vars: std::collections::BTreeMap<String, String> = vars
            .into_iter()
            .filter(|(k, _)| k.starts_with("AWS_") || k.starts_with("ZELDA_RL_STORE_"))
            .collect();
        let invalid = |reason: String| StoreError::InvalidUrl {
            url: url.to_string(),
            reason,
        };
        if let Some(rest) = url.strip_prefix("memory://") {
            if !rest.is_empty() && rest != "/" {
                return Err(invalid("memory:// takes no path".into()));
            }
            return Ok(Self {
                inner: Arc::new(InMemory::new()),
                root: Path::default(),
                url: url.to_string(),
                local: None,
            });
        }
        if url.starts_with("s3://") || url.starts_with("s3a://") {
            let parsed = url::Url::parse(url).map_err(|e| invalid(e.to_string()))?;
            let bucket = parsed
                .host_str()
                .filter(|b| !b.is_empty())
                .ok_or_else(|| invalid("missing bucket name (s3://BUCKET/prefix)".into()))?;
            let mut builder = AmazonS3Builder::new();
            for (key, value) in &vars {
                if let Ok(config_key) = key.to_ascii_lowercase().parse() {
                    builder = builder.with_config(config_key, value.clone());
                }
            }
            builder = builder.with_bucket_name(bucket);
            if let Some(v) = vars.get("ZELDA_RL_STORE_RETRY_TIMEOUT_SECS") {
                let secs: u64 = v.parse().map_err(|_| {
                    invalid(format!(
                        "ZELDA_RL_STORE_RETRY_TIMEOUT_SECS must be whole seconds, got `{v}`"
                    ))
                })?;
                builder = builder.with_retry(object_store::RetryConfig {
                    retry_timeout: std::time::Duration::from_secs(secs),
                    max_retries: if secs == 0 { 0 } else { 10 },
                    ..Default::default()
                });
            }
            let endpoint = vars
                .get("AWS_ENDPOINT_URL")
                .or_else(|| vars.get("AWS_ENDPOINT"))
                .cloned();
            if let Some(endpoint) = &endpoint {
                builder = builder.with_endpoint(endpoint.clone());
                if endpoint.starts_with("http://") {
                    builder = builder.with_allow_http(true);
                }
            }
            match (vars.get("AWS_REGION"), vars.get("AWS_DEFAULT_REGION")) {
                (None, Some(region)) => builder = builder.with_region(region.clone()),
                // Region is irrelevant to most S3-compatible servers but required by the
                // signer; pick the AWS default rather than fail.
                (None, None) => builder = builder.with_region("us-east-1"),
                _ => {}
            }
            let store = builder.build().map_err(|e| invalid(e.to_string()))?;
            let root = Path::parse(parsed.path().trim_matches('/'))
                .map_err(|e| invalid(format!("bad prefix: {e}")))?;
            return Ok(Self {
                inner: Arc::new(store),
                root,
                url: url.to_string(),
                local: None,
            });
        }
        let dir = match url.strip_prefix("file://") {
            Some(path) if path.starts_with('/') => std::path::PathBuf::from(path),
            Some(_) => return Err(invalid("file:// URLs need an absolute path".into())),
            None if url.contains("://") => {
                return Err(invalid(
                    "unknown scheme (use file://, s3:// or memory://, or a plain path)".into(),
                ));
            }
            None => std::path::PathBuf::from(url),
        };
        std::fs::create_dir_all(&dir)
            .map_err(|e| invalid(format!("cannot create folder {}: {e}", dir.display())))?;
        let local = LocalFileSystem::new_with_prefix(&dir)
            .map_err(|e| invalid(e.to_string()))?
            .with_fsync(true);
        Ok(Self {
            inner: Arc::new(local),
            root: Path::default(),
            url: url.to_string(),
            local: Some(dir),
        })
    }

    /// The folder of a local store (`None` for S3 and memory stores).
    pub fn local_root(&self) -> Option<&std::path::Path> {
        self.local.as_deref()
    }

    /// The URL this store was opened from.
    pub fn url(&self) -> &str {
        &self.url
    }

    fn path(&self, key: &str) -> Path {
        let mut path = self.root.clone();
        for part in key.split('/').filter(|p| !p.is_empty()) {
            path = path.join(part);
        }
        path
    }

    fn backend(&self, op: &'static str, key: &str, source: object_store::Error) -> StoreError {
        match source {
            object_store::Error::NotFound { .. } => StoreError::NotFound {
                store: self.url.clone(),
                key: key.to_string(),
            },
            source => StoreError::Backend {
                store: self.url.clone(),
                op,
                key: key.to_string(),
                source: Box::new(source),
            },
        }
    }

    /// Contacts the backend once (a listing), so a misconfigured or unreachable store fails
    /// before any work is done.
    pub async fn check(&self) -> Result<(), StoreError> {
        let mut stream = self.inner.list(Some(&self.root));
        stream
            .try_next()
            .await
            .map_err(|e| self.backend("list", "", e))?;
        Ok(())
    }

    /// Writes `bytes` under `key` unless an object is already there. Writing identical bytes
    /// again is a no-op ([`PutOutcome::AlreadyPresent`]); different bytes are a
    /// [`StoreError::Conflict`] and the stored object is left untouched.
    pub async fn put_new(&self, key: &str, bytes: Bytes) -> Result<PutOutcome, StoreError> {
        // Look first: some S3-compatible servers ignore `If-None-Match`, and then the
        // conditional PUT below would silently replace the object.
        if self.exists(key).await? {
            return self.compare_existing(key, &bytes).await;
        }
        let path = self.path(key);
        let opts = PutOptions {
            mode: PutMode::Create,
            ..Default::default()
        };
        match self
            .inner
            .put_opts(&path, PutPayload::from_bytes(bytes.clone()), opts)
            .await
        {
            Ok(_) => Ok(PutOutcome::Created),
            Err(object_store::Error::AlreadyExists { .. })
            | Err(object_store::Error::Precondition { .. }) => {
                self.compare_existing(key, &bytes).await
            }
            // Servers without conditional PUT: the existence check above already ran. The
            // window since then is only open to another writer of the same key, and writers
            // of one key write the same bytes (keys are derived from deterministic content).
            Err(object_store::Error::NotImplemented { .. }) => {
                self.put(key, bytes).await?;
                Ok(PutOutcome::Created)
            }
            Err(e) => Err(self.backend("put", key, e)),
        }
    }

    async fn compare_existing(&self, key: &str, bytes: &Bytes) -> Result<PutOutcome, StoreError> {
        let existing = self.get(key).await?;
        if existing == *bytes {
            Ok(PutOutcome::AlreadyPresent)
        } else {
            Err(StoreError::Conflict {
                store: self.url.clone(),
                key: key.to_string(),
                existing: existing.len(),
                new: bytes.len(),
            })
        }
    }

    /// Writes `bytes` under `key`, atomically replacing any previous object. For objects
    /// that are meant to change (a compacted index, the latest checkpoint pointer).
    pub async fn put(&self, key: &str, bytes: Bytes) -> Result<(), StoreError> {
        self.inner
            .put(&self.path(key), PutPayload::from_bytes(bytes))
            .await
            .map_err(|e| self.backend("put", key, e))?;
        Ok(())
    }

    /// Reads a whole object.
    pub async fn get(&self, key: &str) -> Result<Bytes, StoreError> {
        let result = self
            .inner
            .get(&self.path(key))
            .await
            .map_err(|e| self.backend("get", key, e))?;
        result
            .bytes()
            .await
            .map_err(|e| self.backend("get", key, e))
    }

    /// Reads a whole object, or `None` when it does not exist.
    pub async fn get_opt(&self, key: &str) -> Result<Option<Bytes>, StoreError> {
        match self.get(key).await {
            Ok(b) => Ok(Some(b)),
            Err(StoreError::NotFound { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Whether an object exists.
    pub async fn exists(&self, key: &str) -> Result<bool, StoreError> {
        match self.inner.head(&self.path(key)).await {
            Ok(_) => Ok(true),
            Err(object_store::Error::NotFound { .. }) => Ok(false),
            Err(e) => Err(self.backend("head", key, e)),
        }
    }

    /// Deletes an object (missing objects are not an error).
    pub async fn delete(&self, key: &str) -> Result<(), StoreError> {
        match self.inner.delete(&self.path(key)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(self.backend("delete", key, e)),
        }
    }

    /// Lists every object under `prefix` (a folder-like key prefix), sorted by key.
    pub async fn list(&self, prefix: &str) -> Result<Vec<ObjectInfo>, StoreError> {
        let path = self.path(prefix);
        let metas: Vec<_> = self
            .inner
            .list(Some(&path))
            .try_collect()
            .await
            .map_err(|e| self.backend("list", prefix, e))?;
        let root = self.root.as_ref();
        let mut out: Vec<ObjectInfo> = metas
            .into_iter()
            .map(|m| {
                let full = m.location.as_ref();
                let key = if root.is_empty() {
                    full.to_string()
                } else {
                    full.strip_prefix(root)
                        .map(|k| k.trim_start_matches('/').to_string())
                        .unwrap_or_else(|| full.to_string())
                };
                ObjectInfo { key, size: m.size }
            })
            .collect();
        out.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn exercise(store: &Store) {
        store.check().await.unwrap();
        assert_eq!(
            store
                .put_new("runs/a/x.seg", Bytes::from_static(b"one"))
                .await
                .unwrap(),
            PutOutcome::Created
        );
        assert_eq!(
            store
                .put_new("runs/a/x.seg", Bytes::from_static(b"one"))
                .await
                .unwrap(),
            PutOutcome::AlreadyPresent
        );
        let err = store
            .put_new("runs/a/x.seg", Bytes::from_static(b"two!"))
            .await
            .unwrap_err();
        assert!(
            matches!(
                err,
                StoreError::Conflict {
                    existing: 3,
                    new: 4,
                    ..
                }
            ),
            "{err}"
        );
        assert!(err.to_string().contains("runs/a/x.seg"), "{err}");
        assert_eq!(
            store.get("runs/a/x.seg").await.unwrap(),
            Bytes::from_static(b"one")
        );
        store
            .put("runs/a/y.seg", Bytes::from_static(b"2"))
            .await
            .unwrap();
        store
            .put("runs/b/z", Bytes::from_static(b"3"))
            .await
            .unwrap();
        let listed = store.list("runs/a").await.unwrap();
        let keys: Vec<_> = listed.iter().map(|o| o.key.as_str()).collect();
        assert_eq!(keys, ["runs/a/x.seg", "runs/a/y.seg"]);
        assert_eq!(listed[0].size, 3);
        assert!(store.exists("runs/b/z").await.unwrap());
        assert!(!store.exists("runs/b/nope").await.unwrap());
        let missing = store.get("runs/b/nope").await.unwrap_err();
        assert!(matches!(missing, StoreError::NotFound { .. }));
        assert!(missing.to_string().contains("runs/b/nope"));
        assert_eq!(store.get_opt("runs/b/nope").await.unwrap(), None);
        store.delete("runs/b/z").await.unwrap();
        store.delete("runs/b/z").await.unwrap();
        assert!(!store.exists("runs/b/z").await.unwrap());
    }

    #[tokio::test]
    async fn memory_store() {
        exercise(&Store::open("memory://").unwrap()).await;
    }

    #[tokio::test]
    async fn local_folder_store_plain_path_and_file_url() {
        let dir = tempfile::tempdir().unwrap();
        let plain = dir.path().join("plain");
        exercise(&Store::open(plain.to_str().unwrap()).unwrap()).await;
        assert!(plain.join("runs/a/x.seg").is_file());
        let url = format!("file://{}", dir.path().join("url").display());
        exercise(&Store::open(&url).unwrap()).await;
    }

    #[test]
    fn bad_urls_are_named() {
        for url in [
            "ftp://x/y",
            "file://relative",
            "memory://x",
            "s3:///nobucket",
        ] {
            let err = Store::open(url).unwrap_err();
            assert!(err.to_string().contains(url), "{err}");
        }
    }
}

//! Rendered objects, field paths and findings shared by every check.

use std::fmt;

use serde_json::Value;

/// One rendered Kubernetes object.
#[derive(Debug, Clone)]
pub struct Obj {
    /// The whole object as JSON.
    pub doc: Value,
    /// `apiVersion`, empty when missing.
    pub api_version: String,
    /// `kind`, empty when missing.
    pub kind: String,
    /// `metadata.name`, empty when missing.
    pub name: String,
    /// `metadata.namespace`, if set.
    pub namespace: Option<String>,
}

impl Obj {
    /// Wraps a parsed document.
    pub fn new(doc: Value) -> Self {
        let s = |v: Option<&Value>| v.and_then(Value::as_str).unwrap_or_default().to_string();
        let api_version = s(doc.get("apiVersion"));
        let kind = s(doc.get("kind"));
        let name = s(doc.pointer("/metadata/name"));
        let namespace = doc
            .pointer("/metadata/namespace")
            .and_then(Value::as_str)
            .map(str::to_string);
        Self {
            doc,
            api_version,
            kind,
            name,
            namespace,
        }
    }

    /// `Kind namespace/name` (or `Kind name` for cluster-scoped objects), as errors print it.
    pub fn label(&self) -> String {
        match &self.namespace {
            Some(ns) => format!("{} {}/{}", self.kind, ns, self.name),
            None => format!("{} {}", self.kind, self.name),
        }
    }

    /// Labels of the object.
    pub fn label_value(&self, key: &str) -> Option<&str> {
        self.doc
            .pointer("/metadata/labels")
            .and_then(|l| l.get(key))
            .and_then(Value::as_str)
    }
}

/// A field path inside an object, printed as `spec.template.spec.containers[0].image`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct FieldPath(Vec<Seg>);

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Seg {
    Key(String),
    Index(usize),
}

impl FieldPath {
    /// The object root.
    pub fn root() -> Self {
        Self(Vec::new())
    }

    /// Parses a dotted path such as `spec.workerGroupSpecs.0.template` (numbers are indices).
    pub fn parse(dotted: &str) -> Self {
        Self(
            dotted
                .split('.')
                .filter(|s| !s.is_empty())
                .map(|s| match s.parse::<usize>() {
                    Ok(i) => Seg::Index(i),
                    Err(_) => Seg::Key(s.to_string()),
                })
                .collect(),
        )
    }

    /// Converts a JSON pointer (`/spec/containers/0`) as JSON Schema errors report it.
    pub fn from_pointer(pointer: &str) -> Self {
        let mut segs = Vec::new();
        for raw in pointer.split('/').skip(1) {
            let key = raw.replace("~1", "/").replace("~0", "~");
            match key.parse::<usize>() {
                Ok(i) => segs.push(Seg::Index(i)),
                Err(_) => segs.push(Seg::Key(key)),
            }
        }
        Self(segs)
    }

    /// This path extended by a key.
    pub fn key(&self, k: &str) -> Self {
        let mut v = self.0.clone();
        v.push(Seg::Key(k.to_string()));
        Self(v)
    }

    /// This path followed by `other`.
    pub fn join(&self, other: &FieldPath) -> Self {
        let mut v = self.0.clone();
        v.extend(other.0.iter().cloned());
        Self(v)
    }

    /// This path extended by an index.
    pub fn index(&self, i: usize) -> Self {
        let mut v = self.0.clone();
        v.push(Seg::Index(i));
        Self(v)
    }
}

impl fmt::Display for FieldPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return f.write_str("(object)");
        }
        for (n, seg) in self.0.iter().enumerate() {
            match seg {
                Seg::Index(i) => write!(f, "[{i}]")?,
                Seg::Key(k) => {
                    let plain = k
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
                    if !plain {
                        write!(f, "[{k:?}]")?;
                    } else if n == 0 {
                        f.write_str(k)?;
                    } else {
                        write!(f, ".{k}")?;
                    }
                }
            }
        }
        Ok(())
    }
}

/// A problem found in the tree.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Finding {
    /// Source file(s) the object comes from (relative to the repository root).
    pub file: String,
    /// `Kind namespace/name`, or a description when the finding is not about one object.
    pub object: String,
    /// Field path inside the object (or `-`).
    pub field: String,
    /// What is wrong.
    pub message: String,
}

/// Walks every value of a JSON tree with its path.
pub fn walk<'a>(value: &'a Value, path: &FieldPath, f: &mut dyn FnMut(&FieldPath, &'a Value)) {
    f(path, value);
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                walk(v, &path.key(k), f);
            }
        }
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                walk(v, &path.index(i), f);
            }
        }
        _ => {}
    }
}

/// `value[key]` as a string.
pub fn str_at<'a>(value: &'a Value, pointer: &str) -> Option<&'a str> {
    value.pointer(pointer).and_then(Value::as_str)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pointer_paths_print_like_kubectl_explain() {
        let p = FieldPath::from_pointer("/spec/template/spec/containers/0/image");
        assert_eq!(p.to_string(), "spec.template.spec.containers[0].image");
        let p = FieldPath::from_pointer("/metadata/labels/app.kubernetes.io~1name");
        assert_eq!(p.to_string(), "metadata.labels[\"app.kubernetes.io/name\"]");
        assert_eq!(FieldPath::root().to_string(), "(object)");
    }
}

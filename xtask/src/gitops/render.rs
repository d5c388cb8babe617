//! Rendering kustomizations with `kubectl kustomize`, splitting YAML streams, and finding
//! which source files an object came from (so errors can name the file to edit).

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde::Deserialize;
use serde_json::Value;

use super::model::Obj;

/// Runs `kubectl kustomize DIR` and returns its stdout, or the error text kubectl printed.
pub fn kustomize(kubectl: &Path, dir: &Path) -> Result<String, String> {
    let out = Command::new(kubectl)
        .arg("kustomize")
        .arg(dir)
        .output()
        .map_err(|e| format!("cannot run `{} kustomize`: {e}", kubectl.display()))?;
    if out.status.success() {
        String::from_utf8(out.stdout).map_err(|e| format!("kustomize output is not UTF-8: {e}"))
    } else {
        // kubectl wraps kustomize's message over several indented lines: keep it on one.
        let stderr = String::from_utf8_lossy(&out.stderr);
        let message = stderr.split_whitespace().collect::<Vec<_>>().join(" ");
        Err(format!(
            "`kubectl kustomize {}` failed: {message}",
            dir.display()
        ))
    }
}

/// Splits a multi-document YAML stream into JSON values (empty documents are skipped).
pub fn parse_stream(text: &str) -> Result<Vec<Value>, String> {
    let mut docs = Vec::new();
    for (n, de) in serde_yaml_ng::Deserializer::from_str(text).enumerate() {
        let value = Value::deserialize(de).map_err(|e| format!("YAML document {}: {e}", n + 1))?;
        if !value.is_null() {
            docs.push(value);
        }
    }
    Ok(docs)
}

/// Every `*.yaml`/`*.yml` file under `dir`, sorted.
pub fn yaml_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = fs::read_dir(&d) else {
            continue;
        };
        for entry in entries.flatten() {
            let p = entry.path();
            if p.is_dir() {
                stack.push(p);
            } else if matches!(p.extension().and_then(|e| e.to_str()), Some("yaml" | "yml")) {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

/// Kustomization folders (kind `Kustomization`, not `Component`) under `dir`, sorted.
pub fn kustomizations(dir: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = yaml_files(dir)
        .into_iter()
        .filter(|p| {
            p.file_name().and_then(|n| n.to_str()) == Some("kustomization.yaml") && !is_component(p)
        })
        .filter_map(|p| p.parent().map(Path::to_path_buf))
        .collect();
    out.sort();
    out
}

fn is_component(kustomization: &Path) -> bool {
    fs::read_to_string(kustomization)
        .ok()
        .and_then(|t| parse_stream(&t).ok())
        .and_then(|docs| docs.into_iter().next())
        .and_then(|d| d.get("kind").and_then(Value::as_str).map(str::to_string))
        .is_some_and(|k| k == "Component")
}

/// Where each object of a target is defined, patched or generated.
#[derive(Debug, Default)]
pub struct SourceIndex {
    entries: Vec<Entry>,
    /// The target's own kustomization file, the fallback when nothing matches.
    fallback: String,
}

#[derive(Debug)]
struct Entry {
    kind: String,
    /// Exact name, or a regular-expression-like pattern from a patch target.
    name: String,
    file: String,
    role: Role,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Defines,
    Patches,
    Generates,
}

impl SourceIndex {
    /// Follows the kustomization at `dir` (resources, components, patches, generators).
    pub fn build(repo: &Path, dir: &Path) -> Self {
        let mut idx = Self {
            fallback: rel(repo, &dir.join("kustomization.yaml")),
            ..Self::default()
        };
        let mut seen = BTreeSet::new();
        idx.follow(repo, dir, &mut seen);
        idx
    }

    /// Indexes loose manifest files that are not kustomizations (the Argo CD folder).
    pub fn from_files(repo: &Path, files: &[PathBuf]) -> Self {
        let mut idx = Self::default();
        for f in files {
            idx.add_file(repo, f, Role::Defines);
        }
        idx
    }

    fn follow(&mut self, repo: &Path, dir: &Path, seen: &mut BTreeSet<PathBuf>) {
        let Ok(canon) = dir.canonicalize() else {
            return;
        };
        if !seen.insert(canon) {
            return;
        }
        let kfile = dir.join("kustomization.yaml");
        let Some(k) = fs::read_to_string(&kfile)
            .ok()
            .and_then(|t| parse_stream(&t).ok())
            .and_then(|d| d.into_iter().next())
        else {
            return;
        };
        for key in ["resources", "components", "bases"] {
            for item in k.get(key).and_then(Value::as_array).into_iter().flatten() {
                let Some(p) = item.as_str() else { continue };
                let path = dir.join(p);
                if path.is_dir() {
                    self.follow(repo, &path, seen);
                } else if path.is_file() {
                    self.add_file(repo, &path, Role::Defines);
                }
            }
        }
        for item in k
            .get("patches")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let target = item.get("target");
            if let Some(p) = item.get("path").and_then(Value::as_str) {
                self.add_patch(repo, &dir.join(p), target);
            } else if item.get("patch").is_some()
                && let Some(t) = target
            {
                self.add_target(t, rel(repo, &kfile));
            }
        }
        for item in k
            .get("patchesStrategicMerge")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if let Some(p) = item.as_str() {
                self.add_file(repo, &dir.join(p), Role::Patches);
            }
        }
        for gen_key in ["configMapGenerator", "secretGenerator"] {
            let kind = if gen_key == "configMapGenerator" {
                "ConfigMap"
            } else {
                "Secret"
            };
            for item in k
                .get(gen_key)
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                if let Some(name) = item.get("name").and_then(Value::as_str) {
                    // An overlay's `behavior: merge|replace` generator changes the base's.
                    let role = match item.get("behavior").and_then(Value::as_str) {
                        Some("merge" | "replace") => Role::Patches,
                        _ => Role::Generates,
                    };
                    self.entries.push(Entry {
                        kind: kind.to_string(),
                        name: name.to_string(),
                        file: rel(repo, &kfile),
                        role,
                    });
                }
            }
        }
    }

    fn add_patch(&mut self, repo: &Path, file: &Path, target: Option<&Value>) {
        match target {
            Some(t) => self.add_target(t, rel(repo, file)),
            None => self.add_file(repo, file, Role::Patches),
        }
    }

    fn add_target(&mut self, target: &Value, file: String) {
        let kind = target.get("kind").and_then(Value::as_str).unwrap_or("*");
        let name = target.get("name").and_then(Value::as_str).unwrap_or("*");
        self.entries.push(Entry {
            kind: kind.to_string(),
            name: name.to_string(),
            file,
            role: Role::Patches,
        });
    }

    fn add_file(&mut self, repo: &Path, file: &Path, role: Role) {
        let Some(docs) = fs::read_to_string(file)
            .ok()
            .and_then(|t| parse_stream(&t).ok())
        else {
            return;
        };
        for d in docs {
            let o = Obj::new(d);
            if !o.kind.is_empty() && !o.name.is_empty() {
                self.entries.push(Entry {
                    kind: o.kind,
                    name: o.name,
                    file: rel(repo, file),
                    role,
                });
            }
        }
    }

    /// The file defining (or generating) a rendered object, and the files patching it.
    pub fn describe(&self, obj: &Obj) -> (String, Vec<String>) {
        let matches = |e: &&Entry| {
            (e.kind == obj.kind || e.kind == "*")
                && (e.name == obj.name
                    || e.name == "*"
                    || (e.role == Role::Generates
                        && obj.name.strip_prefix(&e.name).is_some_and(|rest| {
                            rest.is_empty() || (rest.starts_with('-') && rest.len() == 11)
                        }))
                    || (e.role == Role::Patches && pattern_matches(&e.name, &obj.name))
                    || (e.role == Role::Patches
                        && matches!(e.kind.as_str(), "ConfigMap" | "Secret")
                        && obj
                            .name
                            .strip_prefix(&e.name)
                            .is_some_and(|rest| rest.starts_with('-') && rest.len() == 11)))
        };
        let def = self
            .entries
            .iter()
            .filter(matches)
            .find(|e| e.role != Role::Patches)
            .map(|e| e.file.clone())
            .unwrap_or_else(|| {
                if self.fallback.is_empty() {
                    "(unknown file)".to_string()
                } else {
                    self.fallback.clone()
                }
            });
        let patches: BTreeSet<String> = self
            .entries
            .iter()
            .filter(matches)
            .filter(|e| e.role == Role::Patches)
            .map(|e| e.file.clone())
            .collect();
        (def, patches.into_iter().collect())
    }
}

/// Kustomize patch targets accept regular expressions; ours only use literal names and
/// `.*` suffixes, which is what this supports.
fn pattern_matches(pattern: &str, name: &str) -> bool {
    match pattern.strip_suffix(".*") {
        Some(prefix) => name.starts_with(prefix),
        None => pattern == name,
    }
}

/// `path` relative to the repository root, for messages.
pub fn rel(repo: &Path, path: &Path) -> String {
    let repo = repo.canonicalize().unwrap_or_else(|_| repo.to_path_buf());
    let path = path.canonicalize().unwrap_or_else(|_| path.to_path_buf());
    path.strip_prefix(&repo)
        .map(|p| p.display().to_string())
        .unwrap_or_else(|_| path.display().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_split_into_documents_and_skip_empty_ones() {
        let docs = parse_stream("a: 1\n---\n---\nb: [x, y]\n").unwrap();
        assert_eq!(docs.len(), 2);
        assert_eq!(docs[1]["b"][1], "y");
        assert!(parse_stream("a: [unclosed\n").is_err());
    }
}

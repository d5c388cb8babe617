//! The project's own command lines written in the manifests must parse with the real
//! parsers: `zelda-rl ...` with the `zelda-rl` crate's clap `Cli`, and the Ray driver
//! (`python -m zelda_rl.ray.train ...`) with its argparse `build_parser()`.
//!
//! Values are substituted the way the cluster does it: the kubelet expands `$(VAR)` in
//! `command`/`args` from the container's environment (literal values, ConfigMaps of the
//! same render, sample values for Secrets and field references), then a `sh -c` script's
//! shell expands `$VAR`. A `$(VAR)` the environment does not define is reported: the
//! kubelet would pass it through verbatim.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{Map, Value};

use super::model::{FieldPath, Obj};
use super::policy::pod_specs;

/// Which parser a command line belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Parser {
    /// The `zelda-rl` binary.
    ZeldaRl,
    /// `python -m zelda_rl.ray.train`.
    RayDriver,
}

/// One command line found in an object.
#[derive(Debug, Clone)]
pub struct CommandLine {
    /// Field holding it (the container, or the RayJob entrypoint).
    pub field: FieldPath,
    /// Container name, when it comes from a container.
    pub container: Option<String>,
    /// The command as written in the manifest (before substitution).
    pub written: String,
    /// argv after substitution, starting with the program name.
    pub argv: Vec<String>,
    /// Which parser checks it.
    pub parser: Parser,
}

/// Data of the ConfigMaps of one render, by name.
pub type ConfigMaps = HashMap<String, BTreeMap<String, String>>;

/// Collects the ConfigMaps of a render.
pub fn config_maps(objs: &[Obj]) -> ConfigMaps {
    let mut out = ConfigMaps::new();
    for o in objs.iter().filter(|o| o.kind == "ConfigMap") {
        let data = o
            .doc
            .get("data")
            .and_then(Value::as_object)
            .map(|m| {
                m.iter()
                    .filter_map(|(k, v)| v.as_str().map(|s| (k.clone(), s.to_string())))
                    .collect()
            })
            .unwrap_or_default();
        out.insert(o.name.clone(), data);
    }
    out
}

/// The environment a container sees, as far as a render can tell.
pub fn container_env(
    obj: &Obj,
    c: &Map<String, Value>,
    cms: &ConfigMaps,
) -> BTreeMap<String, String> {
    let mut env = BTreeMap::new();
    for from in c
        .get("envFrom")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        if let Some(name) = from.pointer("/configMapRef/name").and_then(Value::as_str) {
            let prefix = from.get("prefix").and_then(Value::as_str).unwrap_or("");
            for (k, v) in cms.get(name).into_iter().flatten() {
                env.insert(format!("{prefix}{k}"), v.clone());
            }
        }
    }
    for e in c.get("env").and_then(Value::as_array).into_iter().flatten() {
        let Some(name) = e.get("name").and_then(Value::as_str) else {
            continue;
        };
        let value = if let Some(v) = e.get("value").and_then(Value::as_str) {
            expand_kubelet(v, &env).0
        } else if let Some(r) = e.pointer("/valueFrom/configMapKeyRef") {
            let cm = r.get("name").and_then(Value::as_str).unwrap_or("");
            let key = r.get("key").and_then(Value::as_str).unwrap_or("");
            match cms.get(cm).and_then(|d| d.get(key)) {
                Some(v) => v.clone(),
                None => format!("sample-{}", name.to_ascii_lowercase()),
            }
        } else if let Some(fp) = e
            .pointer("/valueFrom/fieldRef/fieldPath")
            .and_then(Value::as_str)
        {
            match fp {
                "metadata.namespace" => obj
                    .namespace
                    .clone()
                    .unwrap_or_else(|| "sample-namespace".to_string()),
                "status.podIP" => "10.128.0.10".to_string(),
                _ => format!("sample-{}", name.to_ascii_lowercase()),
            }
        } else {
            format!("sample-{}", name.to_ascii_lowercase())
        };
        env.insert(name.to_string(), value);
    }
    env
}

/// The kubelet's `$(VAR)` expansion: `$$` escapes, unknown references stay verbatim.
/// Returns the expanded text and the unknown names.
pub fn expand_kubelet(text: &str, env: &BTreeMap<String, String>) -> (String, Vec<String>) {
    let mut out = String::new();
    let mut unknown = Vec::new();
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'$' && i + 1 < bytes.len() {
            if bytes[i + 1] == b'$' {
                out.push('$');
                i += 2;
                continue;
            }
            if bytes[i + 1] == b'('
                && let Some(end) = text[i + 2..].find(')')
            {
                let name = &text[i + 2..i + 2 + end];
                let is_name = !name.is_empty()
                    && name
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.');
                if is_name {
                    match env.get(name) {
                        Some(v) => out.push_str(v),
                        None => {
                            unknown.push(name.to_string());
                            out.push_str(&text[i..i + 3 + end]);
                        }
                    }
                    i += 3 + end;
                    continue;
                }
            }
        }
        let ch = text[i..].chars().next().unwrap_or('\0');
        out.push(ch);
        i += ch.len_utf8();
    }
    (out, unknown)
}

/// A POSIX shell's `$VAR` / `${VAR}` expansion (enough for the scripts in the manifests).
fn expand_shell(text: &str, env: &BTreeMap<String, String>) -> (String, Vec<String>) {
    let mut out = String::new();
    let mut unknown = Vec::new();
    let chars: Vec<char> = text.chars().collect();
    let mut i = 0;
    let mut in_single = false;
    while i < chars.len() {
        let c = chars[i];
        if c == '\'' {
            in_single = !in_single;
        }
        if c == '$' && !in_single && i + 1 < chars.len() {
            let (name, next) = if chars[i + 1] == '{' {
                let end = chars[i + 2..].iter().position(|&x| x == '}');
                match end {
                    Some(e) => (
                        chars[i + 2..i + 2 + e].iter().collect::<String>(),
                        i + 3 + e,
                    ),
                    None => (String::new(), i + 1),
                }
            } else {
                let len = chars[i + 1..]
                    .iter()
                    .take_while(|x| x.is_ascii_alphanumeric() || **x == '_')
                    .count();
                (chars[i + 1..i + 1 + len].iter().collect(), i + 1 + len)
            };
            if !name.is_empty() {
                match env.get(&name) {
                    Some(v) => out.push_str(v),
                    None => {
                        unknown.push(name);
                        out.push_str("sample");
                    }
                }
                i = next;
                continue;
            }
        }
        out.push(c);
        i += 1;
    }
    (out, unknown)
}

/// Simple commands of a shell script that run `zelda-rl`, as written.
pub fn zelda_rl_in_script(script: &str) -> Vec<String> {
    let mut found = Vec::new();
    for line in script.lines() {
        let line = line.trim();
        if line.starts_with('#') {
            continue;
        }
        let mut segments = vec![line.to_string()];
        for sep in ["$(", "`", "&&", "||", ";", "|", ")", "{", "}"] {
            segments = segments
                .iter()
                .flat_map(|s| s.split(sep).map(str::to_string).collect::<Vec<_>>())
                .collect();
        }
        for seg in segments {
            let mut words: Vec<&str> = seg.split_whitespace().collect();
            while let Some(first) = words.first() {
                if [
                    "if", "then", "else", "elif", "do", "!", "exec", "time", "while", "until",
                ]
                .contains(first)
                {
                    words.remove(0);
                } else {
                    break;
                }
            }
            if words
                .first()
                .is_some_and(|w| *w == "zelda-rl" || w.ends_with("/zelda-rl"))
            {
                found.push(words.join(" "));
            }
        }
    }
    found
}

/// Splits a shell command into words, dropping redirections.
fn shell_words(cmd: &str) -> Result<Vec<String>, String> {
    let words =
        shlex::split(cmd).ok_or_else(|| format!("cannot split `{cmd}` into shell words"))?;
    let mut out = Vec::new();
    let mut skip_next = false;
    for w in words {
        if skip_next {
            skip_next = false;
            continue;
        }
        let redirect = w.trim_start_matches(|c: char| c.is_ascii_digit());
        if redirect.starts_with('>') || redirect.starts_with('<') {
            // `> file` takes the next word; `>file` and `2>&1` are self-contained.
            skip_next = matches!(redirect, ">" | ">>" | "<");
            continue;
        }
        out.push(w);
    }
    Ok(out)
}

/// Every project command line in one object, with problems found while substituting.
pub fn find(obj: &Obj, cms: &ConfigMaps) -> (Vec<CommandLine>, Vec<(FieldPath, String)>) {
    let mut lines = Vec::new();
    let mut problems = Vec::new();
    for pod in pod_specs(obj) {
        for (path, c, _) in &pod.containers {
            let name = c.get("name").and_then(Value::as_str).map(str::to_string);
            let strings = |k: &str| -> Vec<String> {
                c.get(k)
                    .and_then(Value::as_array)
                    .map(|a| {
                        a.iter()
                            .map(|v| match v {
                                Value::String(s) => s.clone(),
                                other => other.to_string(),
                            })
                            .collect()
                    })
                    .unwrap_or_default()
            };
            let written: Vec<String> = strings("command")
                .into_iter()
                .chain(strings("args"))
                .collect();
            if written.is_empty() {
                continue;
            }
            let env = container_env(obj, c, cms);
            let mut argv = Vec::new();
            for w in &written {
                let (v, unknown) = expand_kubelet(w, &env);
                for u in unknown {
                    problems.push((
                        path.clone(),
                        format!(
                            "$({u}) is not defined in the environment of container {}: the kubelet would pass it on verbatim",
                            name.as_deref().unwrap_or("?")
                        ),
                    ));
                }
                argv.push(v);
            }
            let prog = Path::new(&argv[0])
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or("")
                .to_string();
            if prog == "zelda-rl" {
                lines.push(CommandLine {
                    field: path.clone(),
                    container: name.clone(),
                    written: written.join(" "),
                    argv,
                    parser: Parser::ZeldaRl,
                });
            } else if matches!(prog.as_str(), "sh" | "bash")
                && argv.len() >= 3
                && argv[1].starts_with('-')
                && argv[1].contains('c')
            {
                for cmd in zelda_rl_in_script(&written[2]) {
                    let (expanded, _) = expand_kubelet(&cmd, &env);
                    let (expanded, unknown) = expand_shell(&expanded, &env);
                    for u in unknown {
                        problems.push((
                            path.clone(),
                            format!(
                                "`${u}` in `{cmd}` is not in the environment of container {}",
                                name.as_deref().unwrap_or("?")
                            ),
                        ));
                    }
                    match shell_words(&expanded) {
                        Ok(words) => lines.push(CommandLine {
                            field: path.clone(),
                            container: name.clone(),
                            written: cmd.clone(),
                            argv: words,
                            parser: Parser::ZeldaRl,
                        }),
                        Err(e) => problems.push((path.clone(), e)),
                    }
                }
            }
        }
    }
    if obj.kind == "RayJob"
        && let Some(entry) = obj.doc.pointer("/spec/entrypoint").and_then(Value::as_str)
    {
        let field = FieldPath::parse("spec.entrypoint");
        // KubeRay puts the entrypoint into the submitter container's command line, so
        // the submitter's environment is what the kubelet expands it with.
        let submitter = obj
            .doc
            .pointer("/spec/submitterPodTemplate/spec/containers/0")
            .and_then(Value::as_object);
        let env = submitter
            .map(|c| container_env(obj, c, cms))
            .unwrap_or_default();
        let (expanded, unknown) = expand_kubelet(entry, &env);
        for u in unknown {
            problems.push((
                    field.clone(),
                    format!(
                        "$({u}) is not defined in the RayJob submitter's environment: bash would run `{u}` as a command"
                    ),
                ));
        }
        let (expanded, _) = expand_shell(&expanded, &env);
        match shell_words(&expanded) {
            Ok(words) => {
                let parser = if words.len() >= 3
                    && words[0].starts_with("python")
                    && words[1] == "-m"
                    && words[2] == "zelda_rl.ray.train"
                {
                    Some(Parser::RayDriver)
                } else if words.first().is_some_and(|w| w.ends_with("zelda-rl")) {
                    Some(Parser::ZeldaRl)
                } else {
                    None
                };
                if let Some(parser) = parser {
                    lines.push(CommandLine {
                        field,
                        container: None,
                        written: entry.split_whitespace().collect::<Vec<_>>().join(" "),
                        argv: words,
                        parser,
                    });
                }
            }
            Err(e) => problems.push((field, e)),
        }
    }
    (lines, problems)
}

/// Parses a `zelda-rl` argv with the real CLI; the error text on failure.
pub fn parse_zelda_rl(argv: &[String]) -> Result<(), String> {
    use clap::Parser as _;
    use clap::error::ErrorKind;
    match zelda_rl_cli::Cli::try_parse_from(argv) {
        Ok(_) => Ok(()),
        Err(e) if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) => {
            Err("prints help/version instead of running a command".to_string())
        }
        Err(e) => Err(first_lines(&e.render().to_string())),
    }
}

/// How the Ray driver's own parser is reached.
pub struct PythonDriver {
    /// Interpreter (the project's `.venv/bin/python`).
    pub python: PathBuf,
    /// Folder holding the `zelda_rl` package.
    pub package_root: PathBuf,
    results: HashMap<Vec<String>, Result<(), String>>,
}

impl PythonDriver {
    /// A checker using `python` and the package under `package_root`.
    pub fn new(python: PathBuf, package_root: PathBuf) -> Self {
        Self {
            python,
            package_root,
            results: HashMap::new(),
        }
    }

    /// The driver module file.
    pub fn module_file(&self) -> PathBuf {
        self.package_root.join("zelda_rl/ray/train.py")
    }

    /// Parses the arguments after `python -m zelda_rl.ray.train` with `build_parser()`.
    pub fn parse(&mut self, argv: &[String]) -> Result<(), String> {
        let args: Vec<String> = argv.iter().skip(3).cloned().collect();
        if let Some(r) = self.results.get(&args) {
            return r.clone();
        }
        let result = self.run(&args);
        self.results.insert(args, result.clone());
        result
    }

    fn run(&self, args: &[String]) -> Result<(), String> {
        if !self.module_file().is_file() {
            return Err(format!(
                "not checkable yet: {} does not exist (the Ray driver arrives with issue 7)",
                self.module_file().display()
            ));
        }
        if !self.python.is_file() {
            return Err(format!(
                "not checkable: no Python interpreter at {}",
                self.python.display()
            ));
        }
        let code = "import sys\nsys.path.insert(0, sys.argv[1])\nfrom zelda_rl.ray.train import build_parser\nbuild_parser().parse_args(sys.argv[2:])\n";
        let out = Command::new(&self.python)
            .arg("-c")
            .arg(code)
            .arg(&self.package_root)
            .args(args)
            .output()
            .map_err(|e| format!("cannot run {}: {e}", self.python.display()))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(first_lines(&String::from_utf8_lossy(&out.stderr)))
        }
    }
}

fn first_lines(text: &str) -> String {
    text.lines()
        .map(str::trim_end)
        .filter(|l| !l.trim().is_empty())
        .take(4)
        .collect::<Vec<_>>()
        .join(" | ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn kubelet_expansion_matches_its_rules() {
        let e = env(&[("STORE", "s3://b/runs"), ("N", "3")]);
        let (s, unknown) = expand_kubelet("--store=$(STORE) -n $(N) $$(N) $(MISSING) $(a b)", &e);
        assert_eq!(s, "--store=s3://b/runs -n 3 $(N) $(MISSING) $(a b)");
        assert_eq!(unknown, vec!["MISSING".to_string()]);
    }

    #[test]
    fn shell_scripts_yield_their_zelda_rl_commands() {
        let script = "set -eu\nwant=$(tr -d x < /rom/rom.sha1)\nzelda-rl rom info \"$ROM\" > /tmp/x.txt\nif ! zelda-rl emu run --rom $ROM; then exit 1; fi\n";
        let found = zelda_rl_in_script(script);
        assert_eq!(
            found,
            vec![
                "zelda-rl rom info \"$ROM\" > /tmp/x.txt",
                "zelda-rl emu run --rom $ROM"
            ]
        );
        let (expanded, unknown) = expand_shell(&found[0], &env(&[("ROM", "/rom/rom.gb")]));
        assert!(unknown.is_empty());
        assert_eq!(
            shell_words(&expanded).unwrap(),
            vec!["zelda-rl", "rom", "info", "/rom/rom.gb"]
        );
    }
}

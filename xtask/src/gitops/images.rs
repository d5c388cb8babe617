//! The project's own container images against the manifests that run them.
//!
//! Every `ghcr.io/zelda-rl/<name>` image a rendered manifest uses must be built by
//! `containers/<name>.Containerfile` and carry the release tag `v<workspace version>`. The
//! Containerfile's final stage must run as a numeric non-root `USER` (the kubelet can only
//! verify `runAsNonRoot` for a numeric UID), keep its HOME writable by OpenShift's arbitrary
//! UID in group 0 (`chmod g=u`), and install every program the manifests start with that
//! image: `zelda-rl` copied into a PATH folder, Python programs (`ray`, `tensorboard`) as
//! pinned pip packages of that name, `python -m <module>` as a Python base plus the package
//! holding the module (the `zelda_rl` wheel). Containers without a command run what KubeRay
//! starts in them (`ray start`, `ray job submit`), so Ray images need `ray`.
//!
//! Every Containerfile is also held to the reproducibility rules: pinned base images,
//! pinned pip packages (requirement files included), and the OCI labels `source`,
//! `licenses` and `version` (= the workspace version).

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

use serde_json::Value;

use super::commands::zelda_rl_in_script;
use super::epp::Issue;
use super::model::{FieldPath, Obj};
use super::policy::{image_pinned, pod_specs};

/// Registry and owner of the project's own images.
pub const PREFIX: &str = "ghcr.io/zelda-rl/";

/// Folders on the images' PATH: a file copied into one is a program.
const PATH_DIRS: &[&str] = &[
    "/usr/local/bin",
    "/usr/local/sbin",
    "/usr/bin",
    "/usr/sbin",
    "/bin",
    "/opt/app-root/bin",
];

/// Programs every UBI base image has (the shell and the coreutils the scripts use).
const BASE_PROGRAMS: &[&str] = &[
    "sh", "bash", "cat", "echo", "grep", "printf", "test", "tr", "env", "sleep",
];

/// The OCI labels every image carries.
const LABELS: &[&str] = &[
    "org.opencontainers.image.source",
    "org.opencontainers.image.version",
    "org.opencontainers.image.licenses",
];

/// One instruction of a Containerfile (continuation lines joined).
#[derive(Debug, Clone)]
struct Instr {
    line: usize,
    keyword: String,
    args: String,
}

/// One build stage.
#[derive(Debug, Default)]
struct Stage {
    from: String,
    alias: Option<String>,
    line: usize,
    instrs: Vec<Instr>,
}

/// What a Containerfile's final stage provides, and what is wrong with the file.
#[derive(Debug, Default)]
pub struct Analysis {
    /// The final stage's last `USER`, expanded.
    pub user: Option<String>,
    /// Line of that `USER`.
    user_line: usize,
    /// Programs copied into a PATH folder (file names).
    pub programs: BTreeSet<String>,
    /// pip packages installed in the final stage (normalized names; wheels included).
    pub pip: BTreeSet<String>,
    /// pip packages from a package index (not local wheels): their console scripts are
    /// taken to carry the package's name (`ray`, `tensorboard`).
    pub scripts: BTreeSet<String>,
    /// Whether the final stage has a Python interpreter (a Python base or a python3 RPM).
    pub python: bool,
    /// Whether the final stage sets ENTRYPOINT or CMD.
    pub entrypoint: bool,
    /// Problems of the file itself, as (line, message); line 0 for the whole file.
    pub problems: Vec<(usize, String)>,
}

/// The Containerfiles of the repository, by image name.
pub struct Catalog {
    /// Folder label for messages (`containers`).
    dir: String,
    /// The workspace version the images are released as.
    version: String,
    images: BTreeMap<String, Image>,
}

struct Image {
    file: String,
    analysis: Analysis,
}

impl Catalog {
    /// Loads every `*.Containerfile` of `dir`; requirement files are read relative to the
    /// build context `repo`.
    pub fn load(repo: &Path, dir: &Path, version: &str) -> Self {
        let dir_label = super::render::rel(repo, dir);
        let mut files = Vec::new();
        if let Ok(entries) = fs::read_dir(dir) {
            for e in entries.flatten() {
                let p = e.path();
                if let Some(name) = p
                    .file_name()
                    .and_then(|n| n.to_str())
                    .and_then(|n| n.strip_suffix(".Containerfile"))
                {
                    let text = fs::read_to_string(&p)
                        .map_err(|e| format!("cannot read {}: {e}", p.display()));
                    files.push((name.to_string(), text));
                }
            }
        }
        let read = |rel_path: &str| fs::read_to_string(repo.join(rel_path)).ok();
        let mut cat = Self::from_texts(&dir_label, version, Vec::new(), &read);
        for (name, text) in files {
            let file = format!("{dir_label}/{name}.Containerfile");
            let analysis = match text {
                Ok(t) => analyze(&t, version, &read),
                Err(e) => Analysis {
                    problems: vec![(0, e)],
                    ..Analysis::default()
                },
            };
            cat.images.insert(name, Image { file, analysis });
        }
        cat
    }

    /// A catalog from texts (name, Containerfile text); `read` gives build-context files.
    pub fn from_texts(
        dir: &str,
        version: &str,
        texts: Vec<(&str, &str)>,
        read: &dyn Fn(&str) -> Option<String>,
    ) -> Self {
        let images = texts
            .into_iter()
            .map(|(name, text)| {
                (
                    name.to_string(),
                    Image {
                        file: format!("{dir}/{name}.Containerfile"),
                        analysis: analyze(text, version, read),
                    },
                )
            })
            .collect();
        Self {
            dir: dir.to_string(),
            version: version.to_string(),
            images,
        }
    }

    /// Image names that have a Containerfile.
    pub fn names(&self) -> Vec<&str> {
        self.images.keys().map(String::as_str).collect()
    }

    /// Problems of the Containerfiles themselves, as (file, message).
    pub fn file_problems(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        for img in self.images.values() {
            for (line, msg) in &img.analysis.problems {
                let file = if *line == 0 {
                    img.file.clone()
                } else {
                    format!("{}:{line}", img.file)
                };
                out.push((file, msg.clone()));
            }
        }
        out
    }
}

// ---------------------------------------------------------------------------------------
// Manifests.

/// What a manifest runs with an image.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Need {
    /// A program on PATH, and why (the command as written).
    Program(String, String),
    /// `python -m <module>`.
    Module(String, String),
    /// The image's own ENTRYPOINT/CMD (a container without a command).
    Entrypoint,
}

/// Every problem with the project's images in one render.
pub fn check<'a>(objs: &'a [Obj], catalog: &Catalog) -> Vec<Issue<'a>> {
    let mut out = Vec::new();
    for o in objs {
        for pod in pod_specs(o) {
            for (path, c, init) in &pod.containers {
                let Some(image) = c.get("image").and_then(Value::as_str) else {
                    continue;
                };
                let name = c.get("name").and_then(Value::as_str).unwrap_or("?");
                let needs = container_needs(o, c, *init);
                check_use(
                    o,
                    &path.key("image"),
                    &format!("container {name}"),
                    image,
                    &needs,
                    catalog,
                    &mut out,
                );
            }
        }
        if o.kind == "RayJob"
            && let Some(entry) = o.doc.pointer("/spec/entrypoint").and_then(Value::as_str)
            && let Some(image) = driver_image(o, objs)
        {
            let needs = words_needs(&entry.split_whitespace().collect::<Vec<_>>(), entry);
            check_use(
                o,
                &FieldPath::parse("spec.entrypoint"),
                "the RayJob entrypoint (run on the Ray head)",
                &image,
                &needs,
                catalog,
                &mut out,
            );
        }
    }
    out
}

/// The image the RayJob's entrypoint runs in: the head of the cluster it selects (or
/// creates), else the submitter's.
fn driver_image(job: &Obj, objs: &[Obj]) -> Option<String> {
    let head = "/spec/headGroupSpec/template/spec/containers/0/image";
    let selected = job
        .doc
        .pointer("/spec/clusterSelector/ray.io~1cluster")
        .and_then(Value::as_str)
        .and_then(|cluster| {
            objs.iter()
                .find(|o| o.kind == "RayCluster" && o.name == cluster)
                .and_then(|o| o.doc.pointer(head))
        });
    selected
        .or_else(|| job.doc.pointer(&format!("/spec/rayClusterSpec{head}")))
        .or_else(|| {
            job.doc
                .pointer("/spec/submitterPodTemplate/spec/containers/0/image")
        })
        .and_then(Value::as_str)
        .map(str::to_string)
}

/// The programs a container runs.
fn container_needs(o: &Obj, c: &serde_json::Map<String, Value>, init: bool) -> Vec<Need> {
    let strings = |k: &str| -> Vec<String> {
        c.get(k)
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    };
    let command = strings("command");
    let argv: Vec<String> = command.iter().cloned().chain(strings("args")).collect();
    if command.is_empty() {
        // KubeRay fills in the command of Ray's own containers.
        if o.kind == "RayCluster" && !init {
            return vec![Need::Program(
                "ray".to_string(),
                "ray start (KubeRay's command for head and worker containers)".to_string(),
            )];
        }
        if o.kind == "RayJob" {
            return vec![Need::Program(
                "ray".to_string(),
                "ray job submit (KubeRay's submitter command)".to_string(),
            )];
        }
        if argv.is_empty() {
            return vec![Need::Entrypoint];
        }
    }
    let words: Vec<&str> = argv.iter().map(String::as_str).collect();
    words_needs(&words, &argv.join(" "))
}

/// The programs one command line runs (a `sh -c` script: its shell and its `zelda-rl`s).
fn words_needs(words: &[&str], written: &str) -> Vec<Need> {
    let Some(first) = words.first() else {
        return Vec::new();
    };
    let prog = basename(first);
    let mut needs = Vec::new();
    if prog.starts_with("python") && words.get(1) == Some(&"-m") {
        needs.push(Need::Program(prog.to_string(), written.to_string()));
        if let Some(m) = words.get(2) {
            needs.push(Need::Module((*m).to_string(), written.to_string()));
        }
    } else if matches!(prog, "sh" | "bash")
        && words
            .get(1)
            .is_some_and(|w| w.starts_with('-') && w.contains('c'))
    {
        needs.push(Need::Program(prog.to_string(), written.to_string()));
        for cmd in zelda_rl_in_script(words.get(2).copied().unwrap_or("")) {
            let p = cmd.split_whitespace().next().unwrap_or("");
            needs.push(Need::Program(basename(p).to_string(), cmd.clone()));
        }
    } else {
        needs.push(Need::Program(prog.to_string(), written.to_string()));
    }
    needs
}

fn basename(p: &str) -> &str {
    p.rsplit('/').next().unwrap_or(p)
}

/// Checks one use of an image: Containerfile, tag, programs.
fn check_use<'a>(
    o: &'a Obj,
    field: &FieldPath,
    who: &str,
    image: &str,
    needs: &[Need],
    catalog: &Catalog,
    out: &mut Vec<Issue<'a>>,
) {
    let Some(rest) = image.strip_prefix(PREFIX) else {
        return;
    };
    let (name_tag, digest) = match rest.split_once('@') {
        Some((n, d)) => (n, Some(d)),
        None => (rest, None),
    };
    let (name, tag) = match name_tag.split_once(':') {
        Some((n, t)) => (n, Some(t)),
        None => (name_tag, None),
    };
    let want = format!("v{}", catalog.version);
    match tag {
        Some(t) if t == want => {}
        Some(t) => out.push((
            Some(o),
            field.clone(),
            format!(
                "{who}: image `{image}` has tag {t}, but the release built from this tree is {want} (workspace version {} in Cargo.toml)",
                catalog.version
            ),
        )),
        None => out.push((
            Some(o),
            field.clone(),
            format!(
                "{who}: image `{image}` has no tag{}: use :{want} (the workspace version in Cargo.toml)",
                if digest.is_some() { " (digest only)" } else { "" }
            ),
        )),
    }
    let file = format!("{}/{name}.Containerfile", catalog.dir);
    let Some(img) = catalog.images.get(name) else {
        out.push((
            Some(o),
            field.clone(),
            format!(
                "{who}: image `{image}` has no {file} to build it (images there: {})",
                if catalog.images.is_empty() {
                    "none".to_string()
                } else {
                    catalog.names().join(", ")
                }
            ),
        ));
        return;
    };
    let a = &img.analysis;
    for need in needs {
        let missing = match need {
            Need::Program(p, written) => (!provides_program(a, p)).then(|| {
                format!(
                    "`{p}` (from `{written}`): copy it into a PATH folder or pip-install a pinned package of that name"
                )
            }),
            Need::Module(m, written) => {
                let pkg = normalize(m.split('.').next().unwrap_or(m));
                (!(a.python && a.pip.contains(&pkg))).then(|| {
                    format!(
                        "the Python module `{m}` (from `{written}`): needs Python and the package `{pkg}` (its wheel)"
                    )
                })
            }
            Need::Entrypoint => (!a.entrypoint).then(|| {
                "an ENTRYPOINT or CMD (the container sets no command)".to_string()
            }),
        };
        if let Some(what) = missing {
            out.push((
                Some(o),
                field.clone(),
                format!(
                    "{who} runs image `{image}`, but the final stage of {file} does not provide {what}"
                ),
            ));
        }
    }
}

fn provides_program(a: &Analysis, p: &str) -> bool {
    BASE_PROGRAMS.contains(&p)
        || a.programs.contains(p)
        || a.scripts.contains(&normalize(p))
        || (a.python && (p.starts_with("python") || p.starts_with("pip")))
}

/// PEP 503 name normalization.
fn normalize(name: &str) -> String {
    let mut out = String::new();
    let mut sep = false;
    for c in name.chars() {
        if matches!(c, '-' | '_' | '.') {
            sep = true;
        } else {
            if sep && !out.is_empty() {
                out.push('-');
            }
            sep = false;
            out.push(c.to_ascii_lowercase());
        }
    }
    out
}

// ---------------------------------------------------------------------------------------
// Containerfiles.

/// Splits a Containerfile into global ARGs and stages.
fn parse(text: &str) -> Result<(Vec<Instr>, Vec<Stage>), String> {
    let mut instrs = Vec::new();
    let mut current: Option<(usize, String)> = None;
    for (n, raw) in text.lines().enumerate() {
        let trimmed = raw.trim();
        if trimmed.starts_with('#') || (trimmed.is_empty() && current.is_none()) {
            continue;
        }
        if trimmed.starts_with("<<") || raw.contains("<<EOF") || raw.contains("<<'EOF'") {
            return Err(format!(
                "line {}: heredocs are not supported by this check",
                n + 1
            ));
        }
        let (start, mut acc) = current.take().unwrap_or((n + 1, String::new()));
        let (body, cont) = match trimmed.strip_suffix('\\') {
            Some(b) => (b, true),
            None => (trimmed, false),
        };
        if !acc.is_empty() {
            acc.push(' ');
        }
        acc.push_str(body.trim());
        if cont {
            current = Some((start, acc));
        } else if !acc.trim().is_empty() {
            let (kw, args) = acc
                .trim()
                .split_once(char::is_whitespace)
                .unwrap_or((acc.trim(), ""));
            instrs.push(Instr {
                line: start,
                keyword: kw.to_ascii_uppercase(),
                args: args.trim().to_string(),
            });
        }
    }
    if let Some((line, _)) = current {
        return Err(format!(
            "line {line}: continuation runs past the end of the file"
        ));
    }
    let mut globals = Vec::new();
    let mut stages: Vec<Stage> = Vec::new();
    for i in instrs {
        if i.keyword == "FROM" {
            let words: Vec<&str> = i
                .args
                .split_whitespace()
                .filter(|w| !w.starts_with("--"))
                .collect();
            let (from, alias) = match words.as_slice() {
                [f] => (f.to_string(), None),
                [f, as_, a] if as_.eq_ignore_ascii_case("as") => {
                    (f.to_string(), Some(a.to_string()))
                }
                _ => return Err(format!("line {}: cannot read `FROM {}`", i.line, i.args)),
            };
            stages.push(Stage {
                from,
                alias,
                line: i.line,
                instrs: Vec::new(),
            });
        } else if let Some(s) = stages.last_mut() {
            s.instrs.push(i);
        } else if i.keyword == "ARG" {
            globals.push(i);
        } else {
            return Err(format!(
                "line {}: {} before the first FROM",
                i.line, i.keyword
            ));
        }
    }
    if stages.is_empty() {
        return Err("no FROM: not a Containerfile".to_string());
    }
    Ok((globals, stages))
}

/// `NAME=value` pairs of an ARG/ENV/LABEL instruction (legacy `ENV NAME value` too).
fn pairs(args: &str) -> Vec<(String, Option<String>)> {
    let words =
        shlex::split(args).unwrap_or_else(|| args.split_whitespace().map(str::to_string).collect());
    if words.len() >= 2 && !words[0].contains('=') && !words.iter().skip(1).any(|w| w.contains('='))
    {
        return vec![(words[0].clone(), Some(words[1..].join(" ")))];
    }
    words
        .into_iter()
        .map(|w| match w.split_once('=') {
            Some((k, v)) => (k.to_string(), Some(v.to_string())),
            None => (w, None),
        })
        .collect()
}

/// `$VAR`, `${VAR}` and `${VAR:-default}` from build args and ENV.
fn expand(text: &str, vars: &BTreeMap<String, String>) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::new();
    let mut i = 0;
    while i < chars.len() {
        if chars[i] == '$' && i + 1 < chars.len() {
            if chars[i + 1] == '{'
                && let Some(end) = chars[i + 2..].iter().position(|&c| c == '}')
            {
                let inner: String = chars[i + 2..i + 2 + end].iter().collect();
                let (name, default) = match inner.split_once(":-") {
                    Some((n, d)) => (n.to_string(), Some(d.to_string())),
                    None => (inner.clone(), None),
                };
                match vars.get(&name).filter(|v| !v.is_empty()) {
                    Some(v) => out.push_str(v),
                    None => match default {
                        Some(d) => out.push_str(&d),
                        None => out.push_str(&format!("${{{inner}}}")),
                    },
                }
                i += 3 + end;
                continue;
            }
            let len = chars[i + 1..]
                .iter()
                .take_while(|c| c.is_ascii_alphanumeric() || **c == '_')
                .count();
            if len > 0 {
                let name: String = chars[i + 1..i + 1 + len].iter().collect();
                match vars.get(&name) {
                    Some(v) => out.push_str(v),
                    None => out.push_str(&format!("${name}")),
                }
                i += 1 + len;
                continue;
            }
        }
        out.push(chars[i]);
        i += 1;
    }
    out
}

/// Shell command segments of a RUN line, each split into words.
fn run_segments(args: &str) -> Vec<Vec<String>> {
    let mut text = args.to_string();
    for sep in ["&&", "||", ";", "|"] {
        text = text.replace(sep, "\n");
    }
    text.lines()
        .map(|seg| {
            shlex::split(seg)
                .unwrap_or_else(|| seg.split_whitespace().map(str::to_string).collect())
        })
        .filter(|w| !w.is_empty())
        .collect()
}

/// pip options that take a value.
const PIP_VALUE_OPTIONS: &[&str] = &[
    "-i",
    "--index-url",
    "--extra-index-url",
    "-f",
    "--find-links",
    "-t",
    "--target",
    "--prefix",
    "--root",
    "--platform",
    "--python-version",
    "--implementation",
    "--abi",
    "--upgrade-strategy",
    "--progress-bar",
    "--report",
    "--src",
    "--cache-dir",
    "--only-binary",
    "--no-binary",
];

/// The arguments after `install` of a pip command, if the words are one.
fn pip_install_args(words: &[String]) -> Option<&[String]> {
    let is_pip = |w: &str| {
        let b = basename(w);
        b == "pip" || b.starts_with("pip3")
    };
    let start = if words.first().is_some_and(|w| is_pip(w)) {
        1
    } else if words
        .first()
        .is_some_and(|w| basename(w).starts_with("python"))
        && words.get(1).is_some_and(|w| w == "-m")
        && words.get(2).is_some_and(|w| w == "pip")
    {
        3
    } else {
        return None;
    };
    (words.get(start).is_some_and(|w| w == "install")).then(|| &words[start + 1..])
}

/// The package name of a requirement specifier (`ray[default]==2.60.0` -> `ray`).
fn requirement_name(spec: &str) -> &str {
    let end = spec
        .find(['[', '<', '>', '=', '!', '~', ';', '@', ' '])
        .unwrap_or(spec.len());
    spec[..end].trim()
}

fn pinned(spec: &str) -> bool {
    spec.split(';')
        .next()
        .is_some_and(|s| s.contains("==") && !s.contains('*'))
}

/// Analyses a Containerfile; `read` gives files of the build context (repository root).
pub fn analyze(text: &str, version: &str, read: &dyn Fn(&str) -> Option<String>) -> Analysis {
    let mut a = Analysis::default();
    let (globals, stages) = match parse(text) {
        Ok(p) => p,
        Err(e) => {
            a.problems.push((0, e));
            return a;
        }
    };
    let mut global_vars = BTreeMap::new();
    for i in &globals {
        for (k, v) in pairs(&i.args) {
            global_vars.insert(k, v.unwrap_or_default());
        }
    }
    let aliases: BTreeSet<&str> = stages.iter().filter_map(|s| s.alias.as_deref()).collect();
    let last = stages.len() - 1;
    for (n, stage) in stages.iter().enumerate() {
        let from = expand(&stage.from, &global_vars);
        if from != "scratch"
            && !aliases.contains(from.as_str())
            && let Err(e) = image_pinned(&from)
        {
            a.problems.push((stage.line, format!("FROM: {e}")));
        }
        let final_stage = n == last;
        if final_stage {
            a.python = from.contains("python");
        }
        let mut vars = BTreeMap::new();
        // In-image path -> build-context path, from COPY instructions without --from.
        let mut copies: BTreeMap<String, String> = BTreeMap::new();
        let mut labels: BTreeMap<String, String> = BTreeMap::new();
        let mut home: Option<String> = None;
        let mut group_writable: Vec<String> = Vec::new();
        for i in &stage.instrs {
            match i.keyword.as_str() {
                "ARG" => {
                    for (k, v) in pairs(&i.args) {
                        let v = v
                            .map(|v| expand(&v, &vars))
                            .or_else(|| global_vars.get(&k).cloned())
                            .unwrap_or_default();
                        vars.insert(k, v);
                    }
                }
                "ENV" => {
                    for (k, v) in pairs(&i.args) {
                        let v = expand(&v.unwrap_or_default(), &vars);
                        if k == "HOME" {
                            home = Some(v.clone());
                        }
                        vars.insert(k, v);
                    }
                }
                "LABEL" => {
                    for (k, v) in pairs(&i.args) {
                        labels.insert(k, expand(&v.unwrap_or_default(), &vars));
                    }
                }
                "USER" if final_stage => {
                    a.user = Some(expand(i.args.trim(), &vars));
                    a.user_line = i.line;
                }
                "ENTRYPOINT" | "CMD" if final_stage => a.entrypoint = true,
                "COPY" | "ADD" => {
                    let words: Vec<String> = if i.args.trim_start().starts_with('[') {
                        serde_json::from_str(&i.args).unwrap_or_default()
                    } else {
                        shlex::split(&i.args).unwrap_or_default()
                    };
                    let from_stage = words.iter().any(|w| w.starts_with("--from"));
                    let words: Vec<String> = words
                        .into_iter()
                        .filter(|w| !w.starts_with("--"))
                        .map(|w| expand(&w, &vars))
                        .collect();
                    if let Some((dest, srcs)) = words.split_last() {
                        let dir = dest.trim_end_matches('/');
                        for src in srcs {
                            let target = if dest.ends_with('/') {
                                format!("{dir}/{}", basename(src.trim_end_matches('/')))
                            } else {
                                dest.clone()
                            };
                            if !from_stage {
                                copies.insert(target.clone(), src.clone());
                            }
                            let (parent, file) = target.rsplit_once('/').unwrap_or(("", &target));
                            if final_stage && PATH_DIRS.contains(&parent) && !file.is_empty() {
                                a.programs.insert(file.to_string());
                            }
                        }
                    }
                }
                "RUN" => {
                    let run = expand(&i.args, &vars);
                    for words in run_segments(&run) {
                        if final_stage
                            && let Some(prog) = words.first().map(|w| basename(w))
                            && matches!(prog, "dnf" | "microdnf" | "yum")
                            && words
                                .iter()
                                .any(|w| w.starts_with("python3") && !w.ends_with("-devel"))
                        {
                            a.python = true;
                        }
                        if final_stage
                            && words.first().is_some_and(|w| basename(w) == "chmod")
                            && words.iter().any(|w| w.split(',').any(|m| m == "g=u"))
                        {
                            group_writable.extend(
                                words.iter().skip(1).filter(|w| w.starts_with('/')).cloned(),
                            );
                        }
                        if let Some(args) = pip_install_args(&words) {
                            pip_install(i.line, args, &copies, read, final_stage, &mut a);
                        }
                    }
                }
                _ => {}
            }
        }
        if final_stage {
            check_final(&mut a, stage.line, &labels, version, home, &group_writable);
        }
    }
    a
}

/// Records (and checks the pins of) one `pip install`.
fn pip_install(
    line: usize,
    args: &[String],
    copies: &BTreeMap<String, String>,
    read: &dyn Fn(&str) -> Option<String>,
    final_stage: bool,
    a: &mut Analysis,
) {
    let mut it = args.iter();
    while let Some(w) = it.next() {
        if matches!(w.as_str(), "-r" | "--requirement" | "-c" | "--constraint") {
            let Some(path) = it.next() else { break };
            let constraint = matches!(w.as_str(), "-c" | "--constraint");
            let Some(src) = copies.get(path) else {
                a.problems.push((
                    line,
                    format!("pip: requirement file {path} is not COPYed from the build context in this stage, so its pins cannot be checked"),
                ));
                continue;
            };
            let Some(text) = read(src) else {
                a.problems
                    .push((line, format!("pip: requirement file {src} does not exist")));
                continue;
            };
            for (n, l) in text.lines().enumerate() {
                let spec = l.split(" #").next().unwrap_or("").trim();
                if spec.is_empty() || spec.starts_with('#') || spec.starts_with('-') {
                    continue;
                }
                if !pinned(spec) {
                    a.problems.push((
                        line,
                        format!(
                            "pip: {src}:{}: `{spec}` is not pinned (name==version)",
                            n + 1
                        ),
                    ));
                }
                if final_stage && !constraint {
                    a.pip.insert(normalize(requirement_name(spec)));
                    a.scripts.insert(normalize(requirement_name(spec)));
                }
            }
        } else if let Some(opt) = w.strip_prefix('-') {
            if PIP_VALUE_OPTIONS.contains(&w.as_str()) && !opt.contains('=') {
                it.next();
            }
        } else if w.ends_with(".whl") {
            if final_stage {
                let file = basename(w);
                a.pip
                    .insert(normalize(file.split('-').next().unwrap_or(file)));
            }
        } else if w.contains('/') || w == "." {
            a.problems.push((
                line,
                format!("pip: `{w}` installs from a source tree; build a wheel in a builder stage"),
            ));
        } else {
            if !pinned(w) {
                a.problems
                    .push((line, format!("pip: `{w}` is not pinned (name==version)")));
            }
            if final_stage {
                a.pip.insert(normalize(requirement_name(w)));
                a.scripts.insert(normalize(requirement_name(w)));
            }
        }
    }
}

/// The final stage's user, labels and writable HOME.
fn check_final(
    a: &mut Analysis,
    line: usize,
    labels: &BTreeMap<String, String>,
    version: &str,
    home: Option<String>,
    group_writable: &[String],
) {
    match a.user.as_deref() {
        None => a.problems.push((
            line,
            "the final stage sets no USER, so the image runs as root: add `USER 1001` (numeric, non-root; OpenShift replaces it with an arbitrary UID in group 0)".to_string(),
        )),
        Some(u) => {
            let line = a.user_line;
            let (uid, gid) = match u.split_once(':') {
                Some((u, g)) => (u, Some(g)),
                None => (u, None),
            };
            let numeric = |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_digit());
            if uid == "root" || (numeric(uid) && uid.parse::<u64>().ok() == Some(0)) {
                a.problems.push((
                    line,
                    format!("the final stage runs as root (`USER {u}`): pods with runAsNonRoot refuse to start; use `USER 1001`"),
                ));
            } else if !numeric(uid) || gid.is_some_and(|g| !numeric(g)) {
                a.problems.push((
                    line,
                    format!("the final stage's USER `{u}` is not numeric: the kubelet cannot verify runAsNonRoot for a user name; use `USER 1001`"),
                ));
            }
        }
    }
    for key in LABELS {
        if !labels.contains_key(*key) {
            a.problems
                .push((line, format!("the final stage lacks the label {key}")));
        }
    }
    if let Some(v) = labels.get("org.opencontainers.image.version")
        && v != version
    {
        a.problems.push((
            line,
            format!("label org.opencontainers.image.version is {v}, but the workspace version (Cargo.toml) is {version}"),
        ));
    }
    match home {
        None => a.problems.push((
            line,
            "the final stage sets no HOME: set ENV HOME to a folder group 0 can write (arbitrary UIDs have no home)".to_string(),
        )),
        Some(h) => {
            let covered = h == "/tmp"
                || group_writable.iter().any(|p| {
                    let p = p.trim_end_matches('/');
                    h == p || h.starts_with(&format!("{p}/"))
                });
            if !covered {
                a.problems.push((
                    line,
                    format!("HOME {h} is not made group-writable in the final stage (`chmod -R g=u` on it or a parent): OpenShift's arbitrary UID in group 0 could not write there"),
                ));
            }
        }
    }
}

/// The default `containers/` folder next to `gitops/`.
pub fn default_dir(repo: &Path) -> PathBuf {
    repo.join("containers")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gitops::render::{parse_stream, yaml_files};

    const VERSION: &str = env!("CARGO_PKG_VERSION");

    /// A minimal Containerfile that passes; `{user}` is replaced.
    fn containerfile(user: &str) -> String {
        format!(
            "FROM registry.access.redhat.com/ubi9/ubi:9.6 AS builder\n\
             RUN cargo build --release --locked -p zelda-rl\n\
             FROM registry.access.redhat.com/ubi9/ubi-minimal:9.6\n\
             ARG VERSION={VERSION}\n\
             LABEL org.opencontainers.image.source=\"https://github.com/zelda-rl/zelda-rl\" \\\n  \
               org.opencontainers.image.version=\"${{VERSION}}\" \\\n  \
               org.opencontainers.image.licenses=\"MIT OR Apache-2.0\"\n\
             COPY --from=builder /src/target/release/zelda-rl /usr/local/bin/zelda-rl\n\
             RUN mkdir -p /opt/app-root/src && chmod -R g=u /opt/app-root\n\
             ENV HOME=/opt/app-root/src\n\
             {user}\n"
        )
    }

    fn problems(text: &str) -> Vec<String> {
        analyze(text, VERSION, &|_| None)
            .problems
            .into_iter()
            .map(|(_, m)| m)
            .collect()
    }

    fn job(image: &str, command: &str) -> Obj {
        let doc = serde_json::json!({
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": {"name": "evaluator", "namespace": "ns"},
            "spec": {"template": {"spec": {"containers": [
                {"name": "evaluator", "image": image, "command": [command], "args": ["evaluate"]}
            ]}}}
        });
        Obj::new(doc)
    }

    #[test]
    fn the_final_stage_must_run_as_a_numeric_non_root_user() {
        assert_eq!(problems(&containerfile("USER 1001")), Vec::<String>::new());
        assert_eq!(
            problems(&containerfile("USER 1001:0")),
            Vec::<String>::new()
        );
        let p = problems(&containerfile(""));
        assert!(p.len() == 1 && p[0].contains("sets no USER"), "{p:?}");
        for root in ["USER root", "USER 0", "USER 0:0", "USER root:root"] {
            let p = problems(&containerfile(root));
            assert!(
                p.len() == 1 && p[0].contains("runs as root"),
                "{root}: {p:?}"
            );
        }
        let p = problems(&containerfile("USER app"));
        assert!(p.len() == 1 && p[0].contains("not numeric"), "{p:?}");
        // An earlier stage's USER does not count, and ARGs expand.
        let text = containerfile("").replacen("RUN cargo", "USER 1001\nRUN cargo", 1)
            + "ARG UID=1001\nUSER ${UID}\n";
        assert_eq!(problems(&text), Vec::<String>::new());
        let p = problems(&containerfile("").replacen("RUN cargo", "USER 1001\nRUN cargo", 1));
        assert!(p.len() == 1 && p[0].contains("sets no USER"), "{p:?}");
    }

    #[test]
    fn base_images_pip_packages_labels_and_home_are_checked() {
        let text = containerfile("USER 1001")
            .replace("ubi-minimal:9.6", "ubi-minimal")
            .replace("ARG VERSION", "ARG VERSION=9.9.9\nARG OLD")
            .replace("ENV HOME=/opt/app-root/src", "ENV HOME=/home/app")
            + "RUN pip install --no-cache-dir ray tensorboard==2.21.0\n";
        let p = problems(&text);
        assert!(p.iter().any(|m| m.contains("not pinned (no tag")), "{p:?}");
        assert!(p.iter().any(|m| m.contains("version is 9.9.9")), "{p:?}");
        assert!(p.iter().any(|m| m.contains("HOME /home/app")), "{p:?}");
        assert!(p.iter().any(|m| m.contains("`ray` is not pinned")), "{p:?}");
        assert!(!p.iter().any(|m| m.contains("tensorboard")), "{p:?}");
        assert_eq!(p.len(), 4, "{p:?}");
    }

    #[test]
    fn manifest_images_need_a_containerfile_the_release_tag_and_their_programs() {
        let ok = containerfile("USER 1001");
        let cat = Catalog::from_texts("containers", VERSION, vec![("zelda-rl", &ok)], &|_| None);
        let v = format!("v{VERSION}");
        let objs = vec![job(&format!("ghcr.io/zelda-rl/zelda-rl:{v}"), "zelda-rl")];
        assert!(check(&objs, &cat).is_empty());

        let objs = vec![job(
            &format!("ghcr.io/zelda-rl/zelda-rl-gpu:{v}"),
            "zelda-rl",
        )];
        let issues = check(&objs, &cat);
        assert_eq!(issues.len(), 1);
        let (obj, field, msg) = &issues[0];
        assert_eq!(obj.unwrap().label(), "Job ns/evaluator");
        assert_eq!(field.to_string(), "spec.template.spec.containers[0].image");
        assert!(
            msg.contains("no containers/zelda-rl-gpu.Containerfile"),
            "{msg}"
        );

        let objs = vec![job("ghcr.io/zelda-rl/zelda-rl:v0.0.1", "zelda-rl")];
        let issues = check(&objs, &cat);
        assert!(
            issues.len() == 1 && issues[0].2.contains("tag v0.0.1"),
            "{issues:?}"
        );

        let objs = vec![job(
            &format!("ghcr.io/zelda-rl/zelda-rl:{v}"),
            "tensorboard",
        )];
        let issues = check(&objs, &cat);
        assert!(
            issues.len() == 1 && issues[0].2.contains("does not provide `tensorboard`"),
            "{issues:?}"
        );
        // Other registries' images are not ours to build.
        assert!(check(&[job("docker.io/vllm/vllm-openai:v0.26.0", "vllm")], &cat).is_empty());
    }

    #[test]
    fn pip_packages_and_wheels_provide_programs_and_modules() {
        let reqs = "# pinned\nray[default]==2.60.0\ntensorboard==2.21.0\n";
        let text = containerfile("USER 1001").replace("ubi-minimal:9.6", "python-311:9.6")
            + "COPY containers/r.txt /tmp/r.txt\nRUN pip install -r /tmp/r.txt /tmp/wheels/zelda_rl-*.whl\n";
        let read = |p: &str| (p == "containers/r.txt").then(|| reqs.to_string());
        let a = analyze(&text, VERSION, &read);
        assert!(a.problems.is_empty(), "{:?}", a.problems);
        assert!(a.python);
        assert_eq!(
            a.pip.iter().map(String::as_str).collect::<Vec<_>>(),
            ["ray", "tensorboard", "zelda-rl"]
        );
        assert!(provides_program(&a, "tensorboard") && provides_program(&a, "python"));
        // The zelda_rl wheel is a Python package, not the `zelda-rl` binary (COPYed here).
        assert!(provides_program(&a, "zelda-rl"));
        let no_binary = text.replace(
            "COPY --from=builder /src/target/release/zelda-rl /usr/local/bin/zelda-rl\n",
            "",
        );
        assert!(!provides_program(
            &analyze(&no_binary, VERSION, &read),
            "zelda-rl"
        ));
        let a = analyze(&text, VERSION, &|_| Some("ray>=2\n".to_string()));
        assert!(
            a.problems
                .iter()
                .any(|(_, m)| m.contains("`ray>=2` is not pinned")),
            "{:?}",
            a.problems
        );
    }

    /// The repository's own Containerfiles pass, and provide everything the manifests
    /// under gitops/ run with them (raw files: no kubectl needed).
    #[test]
    fn the_repository_containers_pass() {
        let repo = crate::repo_root();
        let cat = Catalog::load(&repo, &default_dir(&repo), VERSION);
        assert_eq!(
            cat.names(),
            ["zelda-rl", "zelda-rl-ray", "zelda-rl-ray-cuda"]
        );
        assert_eq!(cat.file_problems(), Vec::<(String, String)>::new());
        for (image, extra) in [("zelda-rl-ray", None), ("zelda-rl-ray-cuda", Some("torch"))] {
            let ray = &cat.images[image].analysis;
            for p in ["ray", "tensorboard", "zelda-rl", "boto3"]
                .into_iter()
                .chain(extra)
            {
                assert!(
                    ray.pip.contains(p) || ray.programs.contains(p),
                    "{image}: {p}"
                );
            }
            // The wheel's Python package does not stand in for the binary of the same name.
            assert!(ray.programs.contains("zelda-rl") && !ray.scripts.contains("zelda-rl"));
        }
        let mut objs = Vec::new();
        for f in yaml_files(&repo.join("gitops")) {
            let text = fs::read_to_string(&f).unwrap();
            if let Ok(docs) = parse_stream(&text) {
                objs.extend(docs.into_iter().map(Obj::new));
            }
        }
        let ours = objs
            .iter()
            .filter(|o| serde_json::to_string(&o.doc).unwrap().contains(PREFIX))
            .count();
        assert!(ours >= 5, "only {ours} objects use ghcr.io/zelda-rl images");
        let issues: Vec<String> = check(&objs, &cat)
            .into_iter()
            .map(|(o, f, m)| format!("{}: {f}: {m}", o.map(Obj::label).unwrap_or_default()))
            .collect();
        assert_eq!(issues, Vec::<String>::new());
    }
}

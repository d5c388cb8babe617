//! `cargo xtask gitops`: render every kustomization under `gitops/` and validate the result
//! offline.
//!
//! For the base, every overlay (and any other kustomization below `overlays/`, such as the
//! prod MachineSets) and the Argo CD manifests:
//! 1. `kubectl kustomize` must succeed;
//! 2. every object must validate strictly against its JSON schema, found by apiVersion/kind
//!    under `--schema-location` (kubeconform's layout); a missing schema is an error;
//! 3. policy: OpenShift `restricted-v2` admissibility, pinned images, requests and limits,
//!    probes on serving containers, no Secret data in git;
//! 4. the EPP knobs select real EndpointPickerConfig files whose content matches them;
//! 5. seed conformance: the structure and every number of the deployment design;
//! 6. every `zelda-rl` command line parses with the real CLI, and the Ray driver's with its
//!    argparse parser;
//! 7. the Grafana dashboard charts only metrics zelda-rl exports or vLLM / the llm-d EPP
//!    document, and keeps the panels the project relies on;
//! 8. every `ghcr.io/zelda-rl/<name>` image is built by `containers/<name>.Containerfile`,
//!    tagged `v<workspace version>`, runs as a numeric non-root user and installs the
//!    programs the manifests run with it (`images.rs`).
//!
//! Problems name the source file, the object (`Kind namespace/name`) and the field.

mod commands;
mod dashboard;
mod epp;
mod images;
mod model;
mod policy;
mod render;
mod schema;
mod seed;

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Result, bail};

use commands::{Parser, PythonDriver};
use model::{FieldPath, Finding, Obj};
use render::{SourceIndex, rel};
use schema::{Outcome, Schemas};

/// Options of `cargo xtask gitops`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The GitOps tree to validate (default: `gitops/` of this repository).
    #[arg(long, value_name = "DIR")]
    gitops_dir: Option<PathBuf>,
    /// Folder of JSON schemas in kubeconform's layout (`k8s/v<version>-standalone-strict/`,
    /// `crds/<group>/<kind>_<version>.json`); repeat to search several, first match wins.
    /// Default: `../shared/schemas` next to the repository.
    #[arg(long = "schema-location", value_name = "DIR")]
    schema_location: Vec<PathBuf>,
    /// Kubernetes version of the core schemas (the `k8s/v<version>-standalone-strict` folder).
    #[arg(long, default_value = "1.30.0", value_name = "VERSION")]
    kubernetes_version: String,
    /// kubectl binary used for `kubectl kustomize`.
    #[arg(long, default_value = "kubectl", value_name = "PATH")]
    kubectl: PathBuf,
    /// Python interpreter for the Ray driver's parser (default: `.venv/bin/python`).
    #[arg(long, value_name = "PATH")]
    python: Option<PathBuf>,
    /// Folder holding the `zelda_rl` Python package (default: `python/`).
    #[arg(long, value_name = "DIR")]
    python_path: Option<PathBuf>,
    /// Folder of the project's Containerfiles (default: `containers/` of this repository).
    #[arg(long, value_name = "DIR")]
    containers_dir: Option<PathBuf>,
    /// Skip the seed-conformance and Argo CD checks (for trees that are not zelda-rl's,
    /// such as test fixtures).
    #[arg(long)]
    no_seed: bool,
}

/// One rendered kustomization (or the Argo CD folder).
struct Target {
    /// Name relative to the GitOps folder (`base`, `overlays/dev`, `argocd`).
    name: String,
    objs: Vec<Obj>,
    index: SourceIndex,
}

/// Findings deduplicated across targets (the base's problems show up in every overlay).
#[derive(Default)]
struct Report {
    findings: BTreeMap<(String, String, String, String), Seen>,
    notes: Vec<String>,
}

/// Where a finding was seen.
#[derive(Default)]
struct Seen {
    object: String,
    targets: BTreeSet<String>,
    patches: BTreeSet<String>,
}

impl Report {
    fn add(&mut self, target: &str, f: Finding, obj_key: String, patches: Vec<String>) {
        let seen = self
            .findings
            .entry((f.file.clone(), obj_key, f.field.clone(), f.message.clone()))
            .or_insert_with(|| Seen {
                object: f.object.clone(),
                ..Seen::default()
            });
        if seen.object != f.object {
            // The same object in several namespaces: print it without the namespace.
            seen.object = f
                .object
                .split_once(' ')
                .map_or(f.object.clone(), |(kind, rest)| {
                    format!("{kind} {}", rest.rsplit('/').next().unwrap_or(rest))
                });
        }
        seen.targets.insert(target.to_string());
        seen.patches.extend(patches);
    }

    fn add_obj(&mut self, t: &Target, obj: Option<&Obj>, field: &FieldPath, message: String) {
        let (file, patches, object, key) = match obj {
            Some(o) => {
                let (file, patches) = t.index.describe(o);
                (file, patches, o.label(), format!("{} {}", o.kind, o.name))
            }
            None => {
                let (file, _) = t.index.describe(&Obj::new(serde_json::Value::Null));
                (file, Vec::new(), "-".to_string(), "-".to_string())
            }
        };
        let field = if obj.is_some() {
            field.to_string()
        } else {
            "-".to_string()
        };
        self.add(
            &t.name,
            Finding {
                file,
                object,
                field,
                message,
            },
            key,
            patches,
        );
    }

    fn add_file(&mut self, target: &str, file: String, message: String) {
        self.add(
            target,
            Finding {
                file,
                object: "-".to_string(),
                field: "-".to_string(),
                message,
            },
            "-".to_string(),
            Vec::new(),
        );
    }
}

pub fn run(args: &Args) -> Result<()> {
    let started = Instant::now();
    let repo = crate::repo_root();
    let gitops = args
        .gitops_dir
        .clone()
        .unwrap_or_else(|| repo.join("gitops"));
    if !gitops.is_dir() {
        bail!("no GitOps folder at {}", gitops.display());
    }
    let locations = if args.schema_location.is_empty() {
        vec![repo.join("../shared/schemas")]
    } else {
        args.schema_location.clone()
    };
    for loc in &locations {
        if !loc.is_dir() {
            bail!(
                "schema location {} is not a folder (pass --schema-location DIR)",
                loc.display()
            );
        }
    }
    let mut schemas = Schemas::new(locations.clone(), &args.kubernetes_version);
    let mut driver = PythonDriver::new(
        args.python
            .clone()
            .unwrap_or_else(|| repo.join(".venv/bin/python")),
        args.python_path
            .clone()
            .unwrap_or_else(|| repo.join("python")),
    );
    let mut report = Report::default();
    let containers = args
        .containers_dir
        .clone()
        .unwrap_or_else(|| images::default_dir(&repo));
    let catalog = images::Catalog::load(&repo, &containers, env!("CARGO_PKG_VERSION"));
    for (file, message) in catalog.file_problems() {
        report.add_file("containers", file, message);
    }

    let mut dirs = Vec::new();
    if gitops.join("base/kustomization.yaml").is_file() {
        dirs.push(gitops.join("base"));
    }
    dirs.extend(render::kustomizations(&gitops.join("overlays")));
    println!(
        "gitops: {} kustomization(s) under {} (kubectl kustomize; schemas: {}; Kubernetes v{})",
        dirs.len(),
        rel(&repo, &gitops),
        locations
            .iter()
            .map(|l| l.display().to_string())
            .collect::<Vec<_>>()
            .join(", "),
        args.kubernetes_version.trim_start_matches('v'),
    );

    let mut targets = Vec::new();
    for dir in &dirs {
        let name = rel(&gitops, dir);
        let index = SourceIndex::build(&repo, dir);
        let rendered =
            render::kustomize(&args.kubectl, dir).and_then(|text| render::parse_stream(&text));
        match rendered {
            Ok(docs) => targets.push(Target {
                name,
                objs: docs.into_iter().map(Obj::new).collect(),
                index,
            }),
            Err(e) => {
                report.add_file(&name, rel(&repo, &dir.join("kustomization.yaml")), e);
                println!("  {name:<28} does not render");
            }
        }
    }
    let argocd_dir = gitops.join("argocd");
    if argocd_dir.is_dir() {
        let files = render::yaml_files(&argocd_dir);
        let mut objs = Vec::new();
        for f in &files {
            match fs::read_to_string(f)
                .map_err(|e| e.to_string())
                .and_then(|t| render::parse_stream(&t))
            {
                Ok(docs) => objs.extend(docs.into_iter().map(Obj::new)),
                Err(e) => report.add_file("argocd", rel(&repo, f), e),
            }
        }
        targets.push(Target {
            name: "argocd".to_string(),
            objs,
            index: SourceIndex::from_files(&repo, &files),
        });
    }

    let mut command_results: BTreeMap<(Parser, String), bool> = BTreeMap::new();
    for t in &targets {
        let cms = commands::config_maps(&t.objs);
        for o in &t.objs {
            if o.api_version.is_empty() || o.kind.is_empty() {
                report.add_obj(
                    t,
                    Some(o),
                    &FieldPath::root(),
                    "object without apiVersion/kind".to_string(),
                );
                continue;
            }
            validate_schema(&mut schemas, &mut report, t, o, &o.doc, &FieldPath::root());
            // A MachineSet's providerSpec is free-form in its schema: validate the embedded
            // AWSMachineProviderConfig against its own.
            if o.kind == "MachineSet" {
                let ps = "/spec/template/spec/providerSpec/value";
                if let Some(v) = o.doc.pointer(ps) {
                    validate_schema(
                        &mut schemas,
                        &mut report,
                        t,
                        o,
                        v,
                        &FieldPath::from_pointer(ps),
                    );
                }
            }
            for (field, msg) in policy::check(o) {
                report.add_obj(t, Some(o), &field, msg);
            }
            let (lines, problems) = commands::find(o, &cms);
            for (field, msg) in problems {
                report.add_obj(t, Some(o), &field, msg);
            }
            for line in lines {
                let result = match line.parser {
                    Parser::ZeldaRl => commands::parse_zelda_rl(&line.argv),
                    Parser::RayDriver => driver.parse(&line.argv),
                };
                let what = match line.parser {
                    Parser::ZeldaRl => "the zelda-rl CLI",
                    Parser::RayDriver => {
                        "the Ray driver's parser (zelda_rl.ray.train.build_parser)"
                    }
                };
                command_results.insert((line.parser, line.written.clone()), result.is_ok());
                if let Err(e) = result {
                    let container = line
                        .container
                        .as_deref()
                        .map(|c| format!("container {c}: "))
                        .unwrap_or_default();
                    report.add_obj(
                        t,
                        Some(o),
                        &line.field,
                        format!(
                            "{container}`{}` does not parse with {what}: {e}",
                            line.written
                        ),
                    );
                }
            }
        }
        for (obj, field, msg) in epp::check(&t.objs, &cms) {
            report.add_obj(t, obj, &field, msg);
        }
        for (obj, field, msg) in dashboard::check(&t.objs) {
            report.add_obj(t, obj, &field, msg);
        }
        for (obj, field, msg) in images::check(&t.objs, &catalog) {
            report.add_obj(t, obj, &field, msg);
        }
        if !args.no_seed {
            let overlay = t.name.strip_prefix("overlays/");
            if t.name == "base" || overlay.is_some_and(|o| !o.contains('/')) {
                for (obj, field, msg) in seed::check_design(&t.objs) {
                    report.add_obj(t, obj, &field, msg);
                }
            }
            if let Some(env) = overlay {
                for (obj, field, msg) in seed::check_overlay(env, &t.objs) {
                    report.add_obj(t, obj, &field, msg);
                }
            }
            if t.name.ends_with("/machinesets") {
                for (obj, field, msg) in seed::check_machinesets(&t.objs) {
                    report.add_obj(t, obj, &field, msg);
                }
                if serde_json::to_string(&t.objs.iter().map(|o| &o.doc).collect::<Vec<_>>())
                    .is_ok_and(|s| s.contains("REPLACE-"))
                {
                    report.notes.push(format!(
                        "{}: cluster facts are placeholders (fine while the MachineSets stay disabled in the prod kustomization)",
                        t.name
                    ));
                }
            }
            if t.name == "argocd" {
                for (obj, field, msg) in seed::check_argocd(&t.objs, &gitops, &repo) {
                    report.add_obj(t, obj, &field, msg);
                }
            }
        }
        println!(
            "  {:<28} {:>3} objects  {}",
            t.name,
            t.objs.len(),
            kinds_summary(&t.objs)
        );
    }
    if !args.no_seed {
        check_layout(&gitops, &repo, &targets, &mut report);
    }

    println!(
        "containers: {} Containerfile(s) under {} ({}), release tag v{}",
        catalog.names().len(),
        rel(&repo, &containers),
        catalog.names().join(", "),
        env!("CARGO_PKG_VERSION"),
    );
    let ok = command_results.values().filter(|v| **v).count();
    println!(
        "commands: {} distinct project command line(s) checked, {ok} parse, {} do not",
        command_results.len(),
        command_results.len() - ok
    );
    for n in &report.notes {
        println!("note: {n}");
    }
    let total: usize = targets.iter().map(|t| t.objs.len()).sum();
    for ((file, _, field, message), seen) in &report.findings {
        let targets = seen.targets.iter().cloned().collect::<Vec<_>>().join(", ");
        let patched = if seen.patches.is_empty() {
            String::new()
        } else {
            let list: Vec<&str> = seen.patches.iter().map(String::as_str).collect();
            format!(" (patched by {})", list.join(", "))
        };
        println!(
            "error: {file}{patched}: {}: {field}: {message} [{targets}]",
            seen.object
        );
    }
    println!(
        "gitops: {} target(s), {total} objects, {} problem(s) in {:.1} s",
        targets.len(),
        report.findings.len(),
        started.elapsed().as_secs_f64()
    );
    if !report.findings.is_empty() {
        bail!("{} GitOps problem(s)", report.findings.len());
    }
    Ok(())
}

fn validate_schema(
    schemas: &mut Schemas,
    report: &mut Report,
    t: &Target,
    o: &Obj,
    doc: &serde_json::Value,
    at: &FieldPath,
) {
    let inner = Obj::new(doc.clone());
    match schemas.validate(doc) {
        Outcome::Checked(errors) => {
            for (field, msg) in errors {
                report.add_obj(t, Some(o), &at.join(&field), format!("schema: {msg}"));
            }
        }
        Outcome::Missing(tried) => {
            let list: Vec<String> = tried.iter().map(|p| p.display().to_string()).collect();
            report.add_obj(
                t,
                Some(o),
                &at.key("apiVersion"),
                format!(
                    "no schema for {} {} (tried {})",
                    inner.api_version,
                    inner.kind,
                    list.join(", ")
                ),
            );
        }
    }
}

fn kinds_summary(objs: &[Obj]) -> String {
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for o in objs {
        *counts.entry(o.kind.as_str()).or_default() += 1;
    }
    counts
        .iter()
        .map(|(k, n)| {
            if *n == 1 {
                (*k).to_string()
            } else {
                format!("{k} x{n}")
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// The folder layout the seed prescribes.
fn check_layout(gitops: &Path, repo: &Path, targets: &[Target], report: &mut Report) {
    let mut need = |path: PathBuf, what: &str| {
        if !path.exists() {
            report.add_file(
                "layout",
                rel(repo, &path),
                format!("seed: {what} is missing"),
            );
        }
    };
    need(
        gitops.join("base/kustomization.yaml"),
        "the base kustomization",
    );
    for c in [
        "llm-inference",
        "llm-d-gateway",
        "rl-training",
        "evaluator",
        "storage",
        "networking",
        "monitoring",
    ] {
        need(
            gitops.join(format!("base/{c}/kustomization.yaml")),
            &format!("component {c}"),
        );
    }
    for env in ["dev", "staging", "prod"] {
        need(
            gitops.join(format!("overlays/{env}/kustomization.yaml")),
            &format!("overlay {env}"),
        );
        need(
            gitops.join(format!("overlays/{env}/patches")),
            &format!("the {env} patches/ folder"),
        );
        need(
            gitops.join(format!("argocd/applications/{env}.yaml")),
            &format!("the {env} Application"),
        );
    }
    need(gitops.join("argocd/project.yaml"), "the AppProject");
    for f in [
        "llm-inference-machineset.yaml",
        "pyboy-training-machineset.yaml",
    ] {
        need(
            gitops.join("overlays/prod/machinesets").join(f),
            &format!("prod MachineSet {f}"),
        );
    }
    if !targets
        .iter()
        .any(|t| t.name == "overlays/prod/machinesets")
    {
        need(
            gitops.join("overlays/prod/machinesets/kustomization.yaml"),
            "the prod MachineSets kustomization",
        );
    }
}

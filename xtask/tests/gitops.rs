//! `cargo xtask gitops` against fixture trees (one defect each) and against a copy of the
//! real tree with one seed number changed: every failure must name the file, the object
//! and the field.
//!
//! Needs `kubectl` (for `kubectl kustomize`) and the JSON schemas at `../shared/schemas`
//! (the validator's default `--schema-location`).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// Runs `xtask gitops` with `args`; returns (success, stdout + stderr).
fn gitops(args: &[&str]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_xtask"))
        .arg("gitops")
        .args(args)
        .env("RUST_BACKTRACE", "0")
        .current_dir(repo())
        .output()
        .expect("run xtask");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

fn run_fixture(name: &str) -> (bool, String) {
    let dir = fixture(name);
    gitops(&[
        "--no-seed",
        "--gitops-dir",
        dir.to_str().unwrap(),
        "--python-path",
        "/nonexistent/python-package",
    ])
}

/// The error line mentioning all `parts` (file, object, field, message).
fn assert_error(text: &str, parts: &[&str]) {
    let hit = text
        .lines()
        .filter(|l| l.starts_with("error: "))
        .any(|l| parts.iter().all(|p| l.contains(p)));
    assert!(hit, "no error line with {parts:?} in:\n{text}");
}

#[test]
fn a_clean_tree_passes() {
    let (ok, text) = run_fixture("good");
    assert!(ok, "{text}");
    assert!(
        text.lines()
            .any(|l| l.trim_start().starts_with("overlays/dev") && l.contains(" 2 objects")),
        "{text}"
    );
    assert!(text.contains("0 problem(s)"), "{text}");
}

#[test]
fn a_broken_overlay_fails_and_names_its_kustomization() {
    let (ok, text) = run_fixture("broken-overlay");
    assert!(!ok, "{text}");
    assert_error(
        &text,
        &[
            "broken-overlay/overlays/dev/kustomization.yaml",
            "kubectl kustomize",
            "no-such-patch.yaml",
            "[overlays/dev]",
        ],
    );
}

#[test]
fn an_unknown_field_fails_with_its_path() {
    let (ok, text) = run_fixture("unknown-field");
    assert!(!ok, "{text}");
    assert_error(
        &text,
        &[
            "fixtures/common/workload.yaml",
            "unknown-field/base/typo.yaml",
            "Deployment web",
            "spec.template.spec.containers[0].imagePullPolicyy",
            "unknown field",
        ],
    );
}

#[test]
fn a_missing_schema_is_an_error_not_a_skip() {
    let (ok, text) = run_fixture("missing-schema");
    assert!(!ok, "{text}");
    assert_error(
        &text,
        &[
            "missing-schema/base/widget.yaml",
            "Widget gadget",
            "apiVersion",
            "no schema for widgets.example.com/v1 Widget",
            "crds/widgets.example.com/widget_v1.json",
        ],
    );
}

#[test]
fn unpinned_and_latest_images_fail() {
    let (ok, text) = run_fixture("unpinned-image");
    assert!(!ok, "{text}");
    assert_error(
        &text,
        &[
            "Deployment web",
            "spec.template.spec.containers[0].image",
            "`busybox` is not pinned",
        ],
    );
    assert_error(
        &text,
        &[
            "Deployment web",
            "spec.template.spec.initContainers[0].image",
            "`latest` tag",
        ],
    );
}

#[test]
fn a_pod_restricted_v2_rejects_fails_on_each_violation() {
    let (ok, text) = run_fixture("restricted-v2");
    assert!(!ok, "{text}");
    let sc = "spec.template.spec.containers[0].securityContext";
    assert_error(
        &text,
        &[
            "restricted-v2/base/root.yaml",
            "Deployment web",
            &format!("{sc}.runAsUser"),
        ],
    );
    assert_error(
        &text,
        &[
            "Deployment web",
            &format!("{sc}.allowPrivilegeEscalation"),
            "must be false",
        ],
    );
    assert_error(
        &text,
        &[
            "Deployment web",
            &format!("{sc}.capabilities.add[0]"),
            "SYS_ADMIN",
        ],
    );
    assert_error(
        &text,
        &[
            "Deployment web",
            "spec.template.spec.volumes[0].hostPath",
            "hostPath",
        ],
    );
}

#[test]
fn secret_data_in_git_fails() {
    let (ok, text) = run_fixture("secret-data");
    assert!(!ok, "{text}");
    assert_error(
        &text,
        &[
            "secret-data/base/secret.yaml",
            "Secret minio-credentials",
            "stringData",
            "out of band",
        ],
    );
}

#[test]
fn missing_limits_and_probes_fail() {
    let (ok, text) = run_fixture("no-limits");
    assert!(!ok, "{text}");
    assert_error(
        &text,
        &["Deployment web", "resources.limits.memory", "missing"],
    );
    assert_error(
        &text,
        &["Deployment web", "resources.limits.cpu", "missing"],
    );
    assert_error(
        &text,
        &[
            "Deployment web",
            "containers[0].readinessProbe",
            "serving container",
        ],
    );
}

#[test]
fn zelda_rl_command_lines_are_parsed_by_the_real_cli() {
    let (ok, text) = run_fixture("cli-ok");
    assert!(ok, "{text}");
    assert!(
        text.contains("2 distinct project command line(s) checked, 2 parse, 0 do not"),
        "{text}"
    );

    let (ok, text) = run_fixture("cli-mismatch");
    assert!(!ok, "{text}");
    assert_error(
        &text,
        &[
            "cli-mismatch/base/job.yaml",
            "Job judge",
            "spec.template.spec.containers[0]",
            "container judge",
            "`zelda-rl no-such-subcommand --store $(STORE) --bogus-flag $(UNDEFINED_VAR)`",
            "unrecognized subcommand 'no-such-subcommand'",
        ],
    );
    assert_error(
        &text,
        &[
            "Job judge",
            "$(UNDEFINED_VAR) is not defined",
            "container judge",
        ],
    );
}

#[test]
fn an_uncheckable_ray_driver_is_a_failure_not_a_skip() {
    let (ok, text) = run_fixture("driver-unavailable");
    assert!(!ok, "{text}");
    assert_error(
        &text,
        &[
            "driver-unavailable/base/rayjob.yaml",
            "RayJob burst",
            "spec.entrypoint",
            "python -m zelda_rl.ray.train --workers $(RAY_WORKERS)",
            "not checkable yet",
        ],
    );
}

#[test]
fn epp_knobs_must_be_legal_and_read() {
    let (ok, text) = run_fixture("epp-knob");
    assert!(!ok, "{text}");
    assert_error(
        &text,
        &[
            "ConfigMap epp-knobs",
            "data.ROUTING_STRATEGY",
            "round-robin",
        ],
    );
    assert_error(
        &text,
        &[
            "Deployment web",
            "containers[0].env",
            "PD_ENABLED is set but nothing reads it",
        ],
    );
}

fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for entry in fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let dest = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &dest);
        } else {
            fs::copy(entry.path(), dest).unwrap();
        }
    }
}

/// A copy of the real `gitops/` with every `from` in `file` replaced by `to`.
fn edited_tree(test: &str, file: &str, from: &str, to: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("xtask-gitops-{test}-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    copy_dir(&repo().join("gitops"), &dir);
    let path = dir.join(file);
    let text = fs::read_to_string(&path).unwrap();
    assert!(text.contains(from), "{file} no longer contains {from:?}");
    fs::write(&path, text.replace(from, to)).unwrap();
    dir
}

#[test]
fn seed_numbers_are_enforced_per_overlay() {
    let dir = edited_tree(
        "seed",
        "overlays/dev/kustomization.yaml",
        "- RAY_WORKERS=3",
        "- RAY_WORKERS=4",
    );
    let (ok, text) = gitops(&["--gitops-dir", dir.to_str().unwrap()]);
    let _ = fs::remove_dir_all(&dir);
    assert!(!ok, "{text}");
    assert_error(
        &text,
        &[
            "rl-training/kustomization.yaml",
            "overlays/dev/kustomization.yaml",
            "ConfigMap zelda-rl-dev/zelda-rl-training",
            "data.RAY_WORKERS",
            "seed (dev): RAY_WORKERS=3, found Some(4)",
        ],
    );
}

#[test]
fn prod_decode_tier_keeps_its_gpus() {
    let dir = edited_tree(
        "gpus",
        "overlays/prod/patches/llm-decode.yaml",
        "\"4\"",
        "\"2\"",
    );
    let (ok, text) = gitops(&["--gitops-dir", dir.to_str().unwrap()]);
    let _ = fs::remove_dir_all(&dir);
    assert!(!ok, "{text}");
    assert_error(
        &text,
        &[
            "llm-inference/decode-deployment.yaml",
            "overlays/prod/patches/llm-decode.yaml",
            "Deployment zelda-rl/llm-decode",
            ".resources.limits[\"nvidia.com/gpu\"]",
            "seed (prod): 4 GPU(s) per decode pod, found Some(2)",
        ],
    );
}

//! Policy checks on rendered objects: OpenShift `restricted-v2` admissibility, pinned
//! images, requests and limits, probes on serving containers, no Secret data in git.

use serde_json::{Map, Value};

use super::model::{FieldPath, Obj, walk};

/// Volume types the `restricted-v2` SCC allows.
const RESTRICTED_V2_VOLUMES: &[&str] = &[
    "configMap",
    "csi",
    "downwardAPI",
    "emptyDir",
    "ephemeral",
    "persistentVolumeClaim",
    "projected",
    "secret",
];

/// Kinds whose pods run for long and serve traffic: containers with ports need probes.
const SERVING_KINDS: &[&str] = &[
    "Deployment",
    "StatefulSet",
    "DaemonSet",
    "ReplicaSet",
    "RayCluster",
    "ServingRuntime",
];

/// A pod spec found inside an object.
pub struct PodSpec<'a> {
    /// Path of the pod spec (the map holding `containers`).
    pub path: FieldPath,
    /// The pod spec itself.
    pub spec: &'a Map<String, Value>,
    /// Containers as (path, container), init containers included.
    pub containers: Vec<(FieldPath, &'a Map<String, Value>, bool)>,
}

/// Every pod spec of an object: any map with a `containers` list, wherever the kind puts
/// it (Deployment templates, CronJob job templates, Ray head/worker groups, RayJob
/// submitter templates, KServe runtimes), plus a KServe predictor's `model` container.
pub fn pod_specs(obj: &Obj) -> Vec<PodSpec<'_>> {
    let mut specs = Vec::new();
    walk(&obj.doc, &FieldPath::root(), &mut |path, v| {
        let Some(map) = v.as_object() else { return };
        let has_containers = map
            .get("containers")
            .and_then(Value::as_array)
            .is_some_and(|c| c.iter().all(Value::is_object));
        let is_predictor = obj.kind == "InferenceService"
            && *path == FieldPath::parse("spec.predictor")
            && map.get("model").is_some_and(Value::is_object);
        if !has_containers && !is_predictor {
            return;
        }
        let mut containers = Vec::new();
        for (key, init) in [
            ("initContainers", true),
            ("containers", false),
            ("ephemeralContainers", true),
        ] {
            if let Some(list) = map.get(key).and_then(Value::as_array) {
                for (i, c) in list.iter().enumerate() {
                    if let Some(c) = c.as_object() {
                        containers.push((path.key(key).index(i), c, init));
                    }
                }
            }
        }
        if is_predictor && let Some(m) = map.get("model").and_then(Value::as_object) {
            containers.push((path.key("model"), m, false));
        }
        specs.push(PodSpec {
            path: path.clone(),
            spec: map,
            containers,
        });
    });
    specs
}

/// Every policy violation of one object, as (field, message).
pub fn check(obj: &Obj) -> Vec<(FieldPath, String)> {
    let mut out = Vec::new();
    if obj.kind == "Secret" && obj.api_version == "v1" {
        for key in ["data", "stringData"] {
            if obj
                .doc
                .get(key)
                .and_then(Value::as_object)
                .is_some_and(|m| !m.is_empty())
            {
                out.push((
                    FieldPath::root().key(key),
                    "Secret carries data in git; create it out of band (gitops/README.md)"
                        .to_string(),
                ));
            }
        }
    }
    for pod in pod_specs(obj) {
        check_pod(obj, &pod, &mut out);
    }
    out
}

fn check_pod(obj: &Obj, pod: &PodSpec<'_>, out: &mut Vec<(FieldPath, String)>) {
    let spec = pod.spec;
    let psc = spec.get("securityContext").and_then(Value::as_object);
    let psc_path = pod.path.key("securityContext");
    for key in ["hostNetwork", "hostPID", "hostIPC"] {
        if spec.get(key) == Some(&Value::Bool(true)) {
            out.push((
                pod.path.key(key),
                format!("{key}: true is rejected by restricted-v2"),
            ));
        }
    }
    if let Some(psc) = psc {
        for key in ["runAsUser", "fsGroup"] {
            if psc.contains_key(key) {
                out.push((
                    psc_path.key(key),
                    format!(
                        "fixed {key}: restricted-v2 assigns it from the namespace's range (remove it)"
                    ),
                ));
            }
        }
        if psc.get("runAsNonRoot") == Some(&Value::Bool(false)) {
            out.push((
                psc_path.key("runAsNonRoot"),
                "runAsNonRoot: false is rejected by restricted-v2".to_string(),
            ));
        }
    }
    for (i, vol) in spec
        .get("volumes")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
    {
        if let Some(v) = vol.as_object() {
            for key in v.keys().filter(|k| *k != "name") {
                if !RESTRICTED_V2_VOLUMES.contains(&key.as_str()) {
                    out.push((
                        pod.path.key("volumes").index(i).key(key),
                        format!("volume type `{key}` is not allowed by restricted-v2"),
                    ));
                }
            }
        }
    }
    let pod_non_root = psc.and_then(|s| s.get("runAsNonRoot")) == Some(&Value::Bool(true));
    let pod_seccomp = psc
        .and_then(|s| s.get("seccompProfile"))
        .and_then(|s| s.get("type"))
        .and_then(Value::as_str);
    let is_isvc_model =
        |p: &FieldPath| obj.kind == "InferenceService" && p.to_string().ends_with(".model");
    for (path, c, init) in &pod.containers {
        let csc = c.get("securityContext").and_then(Value::as_object);
        let sc_path = path.key("securityContext");
        let get = |k: &str| csc.and_then(|s| s.get(k));
        if get("privileged") == Some(&Value::Bool(true)) {
            out.push((
                sc_path.key("privileged"),
                "privileged container".to_string(),
            ));
        }
        if get("allowPrivilegeEscalation") != Some(&Value::Bool(false)) {
            out.push((
                sc_path.key("allowPrivilegeEscalation"),
                "must be false (restricted-v2: no privilege escalation)".to_string(),
            ));
        }
        let caps = get("capabilities");
        let drops_all = caps
            .and_then(|c| c.get("drop"))
            .and_then(Value::as_array)
            .is_some_and(|d| d.iter().any(|x| x == "ALL"));
        if !drops_all {
            out.push((
                sc_path.key("capabilities").key("drop"),
                "must drop ALL capabilities (restricted-v2)".to_string(),
            ));
        }
        for (j, add) in caps
            .and_then(|c| c.get("add"))
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .enumerate()
        {
            if add != "NET_BIND_SERVICE" {
                out.push((
                    sc_path.key("capabilities").key("add").index(j),
                    format!("capability {add} is not allowed by restricted-v2"),
                ));
            }
        }
        match get("runAsNonRoot") {
            Some(Value::Bool(true)) => {}
            Some(_) => out.push((
                sc_path.key("runAsNonRoot"),
                "runAsNonRoot must be true (restricted-v2)".to_string(),
            )),
            None if pod_non_root => {}
            None => out.push((
                sc_path.key("runAsNonRoot"),
                "runAsNonRoot: true is required here or in the pod securityContext (restricted-v2)"
                    .to_string(),
            )),
        }
        if get("runAsUser").is_some() {
            out.push((
                sc_path.key("runAsUser"),
                "fixed runAsUser: restricted-v2 assigns the UID from the namespace's range (remove it)"
                    .to_string(),
            ));
        }
        let seccomp = get("seccompProfile")
            .and_then(|s| s.get("type"))
            .and_then(Value::as_str)
            .or(pod_seccomp);
        if seccomp != Some("RuntimeDefault") {
            out.push((
                sc_path.key("seccompProfile").key("type"),
                format!(
                    "seccompProfile must be RuntimeDefault (restricted-v2), found {}",
                    seccomp.unwrap_or("none")
                ),
            ));
        }
        for (j, port) in c
            .get("ports")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .enumerate()
        {
            if port.get("hostPort").is_some() {
                out.push((
                    path.key("ports").index(j).key("hostPort"),
                    "hostPort is not allowed by restricted-v2".to_string(),
                ));
            }
        }
        // A KServe predictor's model container inherits its image from the runtime.
        match c.get("image").and_then(Value::as_str) {
            Some(image) => {
                if let Err(e) = image_pinned(image) {
                    out.push((path.key("image"), e));
                }
            }
            None if is_isvc_model(path) => {}
            None => out.push((path.key("image"), "container without an image".to_string())),
        }
        check_resources(path, c, out);
        let serves = c
            .get("ports")
            .and_then(Value::as_array)
            .is_some_and(|p| !p.is_empty());
        if serves && !init && SERVING_KINDS.contains(&obj.kind.as_str()) {
            for probe in ["readinessProbe", "livenessProbe"] {
                if !c.contains_key(probe) {
                    out.push((
                        path.key(probe),
                        format!("serving container (it declares ports) without a {probe}"),
                    ));
                }
            }
        }
    }
}

fn check_resources(path: &FieldPath, c: &Map<String, Value>, out: &mut Vec<(FieldPath, String)>) {
    let res = c.get("resources");
    for section in ["requests", "limits"] {
        for key in ["cpu", "memory"] {
            let present = res
                .and_then(|r| r.get(section))
                .and_then(|s| s.get(key))
                .is_some_and(|v| !v.is_null());
            if !present {
                out.push((
                    path.key("resources").key(section).key(key),
                    format!("missing resources.{section}.{key}"),
                ));
            }
        }
    }
    let gpu = |s: &str| {
        res.and_then(|r| r.get(s))
            .and_then(|s| s.get("nvidia.com/gpu"))
            .map(|v| v.to_string().trim_matches('"').to_string())
    };
    if let (Some(req), Some(lim)) = (gpu("requests"), gpu("limits"))
        && req != lim
    {
        out.push((
            path.key("resources").key("requests").key("nvidia.com/gpu"),
            format!(
                "GPU request {req} differs from the limit {lim} (extended resources must match)"
            ),
        ));
    }
}

/// An image reference must carry a digest or a tag other than `latest`.
pub fn image_pinned(image: &str) -> Result<(), String> {
    if image.contains("@sha256:") {
        return Ok(());
    }
    let last = image.rsplit('/').next().unwrap_or(image);
    match last.split_once(':') {
        None => Err(format!(
            "image `{image}` is not pinned (no tag or digest; it means `latest`)"
        )),
        Some((_, "latest")) => Err(format!("image `{image}` uses the `latest` tag")),
        Some((_, "")) => Err(format!("image `{image}` has an empty tag")),
        Some(_) => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn images_need_a_tag_or_digest_and_never_latest() {
        assert!(image_pinned("docker.io/vllm/vllm-openai:v0.26.0").is_ok());
        assert!(image_pinned("localhost:5000/x@sha256:0123").is_ok());
        assert!(image_pinned("localhost:5000/x").is_err());
        assert!(image_pinned("busybox").is_err());
        assert!(image_pinned("busybox:latest").is_err());
    }
}

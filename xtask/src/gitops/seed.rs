//! Seed conformance: the deployment design (`shared/seeds/000_*.txt`) names numbers and
//! structure per environment; these checks hold the rendered tree to every one of them.

use std::path::Path;

use serde_json::Value;

use super::epp::{Issue, generated};
use super::model::{FieldPath, Obj, str_at};

/// How MinIO keeps its data in an environment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Minio {
    EmptyDir,
    Pvc,
    PvcWithBackup,
}

/// The seed's numbers for one overlay.
struct Env {
    name: &'static str,
    namespace: &'static str,
    /// Decode replicas, and whether more are allowed ("3+").
    decode_replicas: (u64, bool),
    /// GPUs per decode pod (= tensor-parallel size).
    decode_gpus: u64,
    max_model_len: Option<u64>,
    /// Ray worker pods, and whether more are allowed ("5+").
    ray_pods: (u64, bool),
    ray_workers: u64,
    envs_per_worker: u64,
    batch_size: Option<u64>,
    minio: Minio,
    /// Dedicated `llm-inference` / `pyboy-training` nodes.
    dedicated_nodes: bool,
}

const ENVS: &[Env] = &[
    Env {
        name: "dev",
        namespace: "zelda-rl-dev",
        decode_replicas: (1, false),
        decode_gpus: 1,
        max_model_len: Some(2048),
        ray_pods: (1, false),
        ray_workers: 3,
        envs_per_worker: 3,
        batch_size: None,
        minio: Minio::EmptyDir,
        dedicated_nodes: false,
    },
    Env {
        name: "staging",
        namespace: "zelda-rl-staging",
        decode_replicas: (2, false),
        decode_gpus: 1,
        max_model_len: Some(4096),
        ray_pods: (3, false),
        ray_workers: 18,
        envs_per_worker: 6,
        batch_size: None,
        minio: Minio::Pvc,
        dedicated_nodes: false,
    },
    Env {
        name: "prod",
        namespace: "zelda-rl",
        decode_replicas: (3, true),
        decode_gpus: 4,
        max_model_len: None,
        ray_pods: (5, true),
        ray_workers: 30,
        envs_per_worker: 6,
        batch_size: Some(32768),
        minio: Minio::PvcWithBackup,
        dedicated_nodes: true,
    },
];

/// The node label (and taint key) that dedicates nodes to a pool.
pub const NODE_POOL_KEY: &str = "zelda-rl.io/node-pool";

/// The three judge models: InferenceService, Hugging Face model, tensor-parallel size.
const MODELS: &[(&str, &str, u64)] = &[
    ("qwen25-vl-32b", "Qwen/Qwen2.5-VL-32B-Instruct", 2),
    ("qwen25-32b", "Qwen/Qwen2.5-32B-Instruct", 2),
    ("qwen25-7b", "Qwen/Qwen2.5-7B-Instruct", 1),
];

/// The four judge routes and the pool each one uses (dialog and state share the 7B pool).
const ROUTES: &[(&str, &str)] = &[
    ("/vision", "qwen25-vl-32b"),
    ("/dialog", "qwen25-7b"),
    ("/puzzle", "qwen25-32b"),
    ("/state", "qwen25-7b"),
];

fn find<'a>(objs: &'a [Obj], kind: &str, name: &str) -> Option<&'a Obj> {
    objs.iter().find(|o| o.kind == kind && o.name == name)
}

fn num(v: Option<&Value>) -> Option<u64> {
    match v {
        Some(Value::Number(n)) => n.as_u64(),
        Some(Value::String(s)) => s.parse().ok(),
        _ => None,
    }
}

fn args_of(c: &Value) -> Vec<String> {
    c.get("args")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|v| v.as_str().map(str::to_string))
        .collect()
}

fn container<'a>(pod: &'a Value, name: &str) -> Option<(usize, &'a Value)> {
    pod.get("containers")
        .and_then(Value::as_array)?
        .iter()
        .enumerate()
        .find(|(_, c)| c.get("name").and_then(Value::as_str) == Some(name))
}

fn missing<'a>(what: &str) -> Issue<'a> {
    (
        None,
        FieldPath::root(),
        format!("{what} is missing from this render"),
    )
}

/// The design every render that includes the base must keep (base and every overlay).
pub fn check_design(objs: &[Obj]) -> Vec<Issue<'_>> {
    let mut out = Vec::new();
    // llm-inference: three InferenceServices on vLLM with prefix caching.
    match objs.iter().find(|o| o.kind == "ServingRuntime") {
        Some(rt) => {
            let args = rt
                .doc
                .pointer("/spec/containers/0")
                .map(args_of)
                .unwrap_or_default();
            if !args.iter().any(|a| a == "--enable-prefix-caching") {
                out.push((
                    Some(rt),
                    FieldPath::parse("spec.containers").index(0).key("args"),
                    "the vLLM runtime must enable prefix caching (--enable-prefix-caching)"
                        .to_string(),
                ));
            }
        }
        None => out.push(missing("the vLLM ServingRuntime")),
    }
    for (isvc, model, tp) in MODELS {
        let Some(o) = find(objs, "InferenceService", isvc) else {
            out.push(missing(&format!("InferenceService {isvc} ({model})")));
            continue;
        };
        let m = o.doc.pointer("/spec/predictor/model");
        let args = m.map(args_of).unwrap_or_default();
        let field = FieldPath::parse("spec.predictor.model");
        if args.first().map(String::as_str) != Some(model) {
            out.push((
                Some(o),
                field.key("args").index(0),
                format!("must serve {model}"),
            ));
        }
        if !args.contains(&format!("--tensor-parallel-size={tp}")) {
            out.push((
                Some(o),
                field.key("args"),
                format!("{model} runs with tensor parallel {tp}"),
            ));
        }
        let gpus = num(m.and_then(|m| m.pointer("/resources/limits/nvidia.com~1gpu")));
        if gpus != Some(*tp) {
            out.push((
                Some(o),
                field.key("resources").key("limits").key("nvidia.com/gpu"),
                format!("{model} needs {tp} GPU(s), found {gpus:?}"),
            ));
        }
    }
    // llm-d-gateway: one Gateway, four routes with prefix rewrites, three v1 pools, one EPP each.
    if !objs.iter().any(|o| o.kind == "Gateway") {
        out.push(missing("the inference Gateway"));
    }
    let pools: Vec<&Obj> = objs.iter().filter(|o| o.kind == "InferencePool").collect();
    if pools.len() != 3 {
        out.push((
            None,
            FieldPath::root(),
            format!(
                "expected three InferencePools (vision, puzzle, dialog+state), found {}",
                pools.len()
            ),
        ));
    }
    for p in &pools {
        if p.api_version != "inference.networking.k8s.io/v1" {
            out.push((
                Some(p),
                FieldPath::parse("apiVersion"),
                "InferencePool must be inference.networking.k8s.io/v1".to_string(),
            ));
        }
        let svc_name = str_at(&p.doc, "/spec/endpointPickerRef/name").unwrap_or("");
        let epp = find(objs, "Service", svc_name).and_then(|svc| {
            let sel = svc.doc.pointer("/spec/selector")?.as_object()?;
            objs.iter().find(|d| {
                d.kind == "Deployment"
                    && sel.iter().all(|(k, v)| {
                        d.doc
                            .pointer("/spec/template/metadata/labels")
                            .and_then(|l| l.get(k))
                            == Some(v)
                    })
            })
        });
        match epp {
            None => out.push((
                Some(p),
                FieldPath::parse("spec.endpointPickerRef.name"),
                format!("no EPP Deployment behind Service {svc_name:?}"),
            )),
            Some(d) => {
                let args = d
                    .doc
                    .pointer("/spec/template/spec/containers/0")
                    .map(args_of)
                    .unwrap_or_default();
                if !args.contains(&format!("--pool-name={}", p.name)) {
                    out.push((
                        Some(d),
                        FieldPath::parse("spec.template.spec.containers")
                            .index(0)
                            .key("args"),
                        format!(
                            "this EPP serves InferencePool {} but is not given --pool-name={}",
                            p.name, p.name
                        ),
                    ));
                }
            }
        }
    }
    for (path, pool) in ROUTES {
        let route = objs.iter().find(|o| {
            o.kind == "HTTPRoute"
                && o.doc
                    .pointer("/spec/rules/0/matches/0/path/value")
                    .and_then(Value::as_str)
                    == Some(path)
        });
        let Some(r) = route else {
            out.push(missing(&format!("the HTTPRoute for {path}")));
            continue;
        };
        let rule = FieldPath::parse("spec.rules").index(0);
        let backend = r.doc.pointer("/spec/rules/0/backendRefs/0");
        if backend.and_then(|b| b.get("kind")).and_then(Value::as_str) != Some("InferencePool")
            || backend.and_then(|b| b.get("name")).and_then(Value::as_str) != Some(pool)
        {
            out.push((
                Some(r),
                rule.key("backendRefs"),
                format!("{path} must go to InferencePool {pool}"),
            ));
        }
        let rewrite = r
            .doc
            .pointer("/spec/rules/0/filters")
            .and_then(Value::as_array)
            .is_some_and(|f| {
                f.iter().any(|f| {
                    f.pointer("/urlRewrite/path/type").and_then(Value::as_str)
                        == Some("ReplacePrefixMatch")
                        && f.pointer("/urlRewrite/path/replacePrefixMatch")
                            .and_then(Value::as_str)
                            == Some("/")
                })
            });
        if !rewrite {
            out.push((
                Some(r),
                rule.key("filters"),
                format!("{path} must rewrite its prefix to / (URLRewrite ReplacePrefixMatch): vLLM serves /v1/..."),
            ));
        }
    }
    // rl-training: a Kueue-admitted RayCluster, a RayJob that targets it.
    let cluster = objs.iter().find(|o| o.kind == "RayCluster");
    match cluster {
        None => out.push(missing("the RayCluster")),
        Some(c) => {
            let queue = c.label_value("kueue.x-k8s.io/queue-name");
            if queue.is_none_or(|q| find(objs, "LocalQueue", q).is_none()) {
                out.push((
                    Some(c),
                    FieldPath::parse("metadata.labels").key("kueue.x-k8s.io/queue-name"),
                    format!("the RayCluster must be admitted through a LocalQueue of this render (label names {queue:?})"),
                ));
            }
        }
    }
    match objs.iter().find(|o| o.kind == "RayJob") {
        None => out.push(missing("the training-burst RayJob")),
        Some(j) => {
            let target = str_at(&j.doc, "/spec/clusterSelector/ray.io~1cluster");
            if cluster.is_none_or(|c| Some(c.name.as_str()) != target) {
                out.push((
                    Some(j),
                    FieldPath::parse("spec.clusterSelector"),
                    "the RayJob must target the RayCluster with clusterSelector ray.io/cluster"
                        .to_string(),
                ));
            }
            if j.doc.pointer("/spec/rayClusterSpec").is_some() {
                out.push((
                    Some(j),
                    FieldPath::parse("spec.rayClusterSpec"),
                    "a burst runs on the long-lived RayCluster, not its own".to_string(),
                ));
            }
            if j.label_value("kueue.x-k8s.io/queue-name").is_some() {
                out.push((
                    Some(j),
                    FieldPath::parse("metadata.labels"),
                    "a Kueue-managed RayJob cannot use an existing RayCluster: queue the RayCluster, not the RayJob".to_string(),
                ));
            }
            if j.doc.pointer("/spec/shutdownAfterJobFinishes") == Some(&Value::Bool(true)) {
                out.push((
                    Some(j),
                    FieldPath::parse("spec.shutdownAfterJobFinishes"),
                    "must not tear down the shared cluster".to_string(),
                ));
            }
            let entry = str_at(&j.doc, "/spec/entrypoint").unwrap_or("");
            let words: Vec<&str> = entry.split_whitespace().collect();
            for (flag, var) in [
                ("--workers", "RAY_WORKERS"),
                ("--envs-per-worker", "ENVS_PER_WORKER"),
                ("--batch-size", "BATCH_SIZE"),
                ("--store", "STORE"),
                ("--gateway", "GATEWAY"),
                ("--rom", "ROM"),
            ] {
                let ok = words
                    .windows(2)
                    .any(|w| w[0] == flag && w[1] == format!("$({var})"));
                if !ok {
                    out.push((
                        Some(j),
                        FieldPath::parse("spec.entrypoint"),
                        format!("must pass {flag} $({var})"),
                    ));
                }
            }
        }
    }
    if find(objs, "Service", "ray-dashboard").is_none_or(|s| {
        let ports = s
            .doc
            .pointer("/spec/ports")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        ![8265, 6006]
            .iter()
            .all(|p| ports.iter().any(|x| num(x.get("port")) == Some(*p)))
    }) {
        out.push(missing(
            "the Ray dashboard + TensorBoard Service (ports 8265 and 6006)",
        ));
    }
    // evaluator, storage, networking, monitoring.
    for job in ["evaluator", "reward-model"] {
        if find(objs, "Job", job).is_none() {
            out.push(missing(&format!("the {job} Job")));
        }
    }
    if find(objs, "Deployment", "minio").is_none() || find(objs, "Service", "minio").is_none() {
        out.push(missing("MinIO (Deployment and Service)"));
    }
    if !objs.iter().any(|o| o.kind == "NetworkPolicy") {
        out.push(missing("the NetworkPolicies"));
    }
    for sm in ["vllm", "epp", "training"] {
        if find(objs, "ServiceMonitor", sm).is_none() {
            out.push(missing(&format!("ServiceMonitor {sm}")));
        }
    }
    match objs.iter().find(|o| o.kind == "GrafanaDashboard") {
        None => out.push(missing("the GrafanaDashboard")),
        Some(g) => {
            let cm = str_at(&g.doc, "/spec/configMapRef/name").unwrap_or("");
            let key = str_at(&g.doc, "/spec/configMapRef/key").unwrap_or("");
            let json = find(objs, "ConfigMap", cm)
                .and_then(|c| c.doc.pointer("/data").and_then(|d| d.get(key)))
                .and_then(Value::as_str);
            match json.map(serde_json::from_str::<Value>) {
                Some(Ok(d)) if d.get("panels").is_some() => {}
                Some(Ok(_)) => out.push((
                    Some(g),
                    FieldPath::parse("spec.configMapRef"),
                    "the dashboard JSON has no panels".to_string(),
                )),
                Some(Err(e)) => out.push((
                    Some(g),
                    FieldPath::parse("spec.configMapRef"),
                    format!("the dashboard is not JSON: {e}"),
                )),
                None => out.push((
                    Some(g),
                    FieldPath::parse("spec.configMapRef"),
                    format!("no ConfigMap {cm:?} with key {key:?} in this render"),
                )),
            }
        }
    }
    out
}

/// The overlay-specific numbers. `env` is the overlay folder name.
pub fn check_overlay<'a>(env_name: &str, objs: &'a [Obj]) -> Vec<Issue<'a>> {
    let Some(env) = ENVS.iter().find(|e| e.name == env_name) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    let seed = |what: &str| format!("seed ({}): {what}", env.name);
    for o in objs {
        let cluster_scoped = matches!(
            o.kind.as_str(),
            "ClusterRole" | "ClusterRoleBinding" | "Namespace"
        );
        let machine =
            o.kind == "MachineSet" && o.namespace.as_deref() == Some("openshift-machine-api");
        if !cluster_scoped && !machine && o.namespace.as_deref() != Some(env.namespace) {
            out.push((
                Some(o),
                FieldPath::parse("metadata.namespace"),
                seed(&format!("namespace {}", env.namespace)),
            ));
        }
        if o.kind == "MachineSet"
            && serde_json::to_string(&o.doc).is_ok_and(|s| s.contains("REPLACE-"))
        {
            out.push((
                Some(o),
                FieldPath::parse("spec.template.spec.providerSpec.value"),
                "MachineSets enabled with placeholder cluster facts: fill overlays/prod/machinesets/cluster-params.yaml".to_string(),
            ));
        }
    }
    // Decode tier.
    match find(objs, "Deployment", "llm-decode") {
        None => out.push(missing("the llm-decode Deployment")),
        Some(d) => {
            let replicas = num(d.doc.pointer("/spec/replicas"));
            let (want, more) = env.decode_replicas;
            let ok = replicas.is_some_and(|r| if more { r >= want } else { r == want });
            if !ok {
                out.push((
                    Some(d),
                    FieldPath::parse("spec.replicas"),
                    seed(&format!(
                        "{want}{} LLM decode replica(s), found {replicas:?}",
                        if more { "+" } else { "" }
                    )),
                ));
            }
            let pod = d
                .doc
                .pointer("/spec/template/spec")
                .cloned()
                .unwrap_or_default();
            if let Some((i, c)) = container(&pod, "vllm") {
                let path = FieldPath::parse("spec.template.spec.containers").index(i);
                let gpus = num(c.pointer("/resources/limits/nvidia.com~1gpu"));
                if gpus != Some(env.decode_gpus) {
                    out.push((
                        Some(d),
                        path.key("resources").key("limits").key("nvidia.com/gpu"),
                        seed(&format!(
                            "{} GPU(s) per decode pod, found {gpus:?}",
                            env.decode_gpus
                        )),
                    ));
                }
                let tp = c
                    .get("env")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .find(|e| e.get("name").and_then(Value::as_str) == Some("TENSOR_PARALLEL_SIZE"))
                    .and_then(|e| num(e.get("value")));
                let args = args_of(c);
                if tp != Some(env.decode_gpus)
                    || !args
                        .iter()
                        .any(|a| a == "--tensor-parallel-size=$(TENSOR_PARALLEL_SIZE)")
                {
                    out.push((Some(d), path.key("env"), seed(&format!("tensor parallel {} across the pod's GPUs, found TENSOR_PARALLEL_SIZE={tp:?}", env.decode_gpus))));
                }
                if !args.iter().any(|a| a == "--max-model-len=$(MAX_MODEL_LEN)") {
                    out.push((
                        Some(d),
                        path.key("args"),
                        "vLLM must take --max-model-len=$(MAX_MODEL_LEN) from llm-config"
                            .to_string(),
                    ));
                }
            } else {
                out.push((
                    Some(d),
                    FieldPath::parse("spec.template.spec.containers"),
                    "no `vllm` container".to_string(),
                ));
            }
            if env.dedicated_nodes {
                check_placement(d, "spec.template.spec", "llm-inference", &mut out);
            }
        }
    }
    if let Some(m) = env.max_model_len {
        let v = generated(objs, "ConfigMap", "llm-config")
            .and_then(|c| num(c.doc.pointer("/data/MAX_MODEL_LEN")));
        if v != Some(m) {
            out.push((
                generated(objs, "ConfigMap", "llm-config"),
                FieldPath::parse("data.MAX_MODEL_LEN"),
                seed(&format!("max-model-len={m}, found {v:?}")),
            ));
        }
    }
    if env.dedicated_nodes {
        for o in objs.iter().filter(|o| o.kind == "InferenceService") {
            check_placement(o, "spec.predictor", "llm-inference", &mut out);
        }
    }
    // Ray.
    match find(objs, "RayCluster", "zelda-rl") {
        None => out.push(missing("RayCluster zelda-rl")),
        Some(c) => {
            let (want, more) = env.ray_pods;
            for key in ["replicas", "minReplicas"] {
                let v = num(c.doc.pointer(&format!("/spec/workerGroupSpecs/0/{key}")));
                let ok = v.is_some_and(|r| if more { r >= want } else { r == want });
                if !ok {
                    out.push((
                        Some(c),
                        FieldPath::parse("spec.workerGroupSpecs").index(0).key(key),
                        seed(&format!(
                            "{want}{} Ray worker pod(s), found {v:?}",
                            if more { "+" } else { "" }
                        )),
                    ));
                }
            }
            if env.dedicated_nodes {
                check_placement(
                    c,
                    "spec.workerGroupSpecs.0.template.spec",
                    "pyboy-training",
                    &mut out,
                );
            }
        }
    }
    match find(objs, "ConfigMap", "zelda-rl-training") {
        None => out.push(missing("ConfigMap zelda-rl-training")),
        Some(cm) => {
            let get = |k: &str| num(cm.doc.pointer(&format!("/data/{k}")));
            let mut want = vec![
                ("RAY_WORKERS", env.ray_workers),
                ("ENVS_PER_WORKER", env.envs_per_worker),
            ];
            if let Some(b) = env.batch_size {
                want.push(("BATCH_SIZE", b));
            }
            for (k, v) in want {
                if get(k) != Some(v) {
                    out.push((
                        Some(cm),
                        FieldPath::parse("data").key(k),
                        seed(&format!("{k}={v}, found {:?}", get(k))),
                    ));
                }
            }
            // BURST must reach the objects that run a burst, or bumping it starts nothing.
            let burst = cm.doc.pointer("/data/BURST").and_then(Value::as_str);
            for (kind, name, pointer) in [
                (
                    "RayJob",
                    "train-burst",
                    "/metadata/annotations/zelda-rl.io~1burst",
                ),
                (
                    "Job",
                    "evaluator",
                    "/spec/template/metadata/annotations/zelda-rl.io~1burst",
                ),
                (
                    "Job",
                    "reward-model",
                    "/spec/template/metadata/annotations/zelda-rl.io~1burst",
                ),
            ] {
                if let Some(o) = find(objs, kind, name) {
                    let have = o.doc.pointer(pointer).and_then(Value::as_str);
                    if burst.is_none() || have != burst {
                        out.push((
                            Some(o),
                            FieldPath::from_pointer(pointer),
                            format!(
                                "zelda-rl.io/burst is {have:?} but zelda-rl-training BURST is {burst:?} (the overlay's replacement is missing)"
                            ),
                        ));
                    }
                }
            }
            let pods = find(objs, "RayCluster", "zelda-rl")
                .and_then(|c| num(c.doc.pointer("/spec/workerGroupSpecs/0/replicas")));
            if let (Some(w), Some(p)) = (get("RAY_WORKERS"), pods)
                && (p == 0 || w % p != 0)
            {
                out.push((
                    Some(cm),
                    FieldPath::parse("data.RAY_WORKERS"),
                    format!("{w} rollout actors do not spread evenly over {p} worker pods"),
                ));
            }
        }
    }
    // MinIO.
    if let Some(m) = find(objs, "Deployment", "minio") {
        let data = m
            .doc
            .pointer("/spec/template/spec/volumes")
            .and_then(Value::as_array)
            .and_then(|v| {
                v.iter()
                    .find(|v| v.get("name").and_then(Value::as_str) == Some("data"))
            })
            .cloned()
            .unwrap_or_default();
        let field = FieldPath::parse("spec.template.spec.volumes");
        match env.minio {
            Minio::EmptyDir => {
                if data.get("emptyDir").is_none() {
                    out.push((Some(m), field, seed("MinIO ephemeral (emptyDir)")));
                }
                if let Some(p) = objs.iter().find(|o| o.kind == "PersistentVolumeClaim") {
                    out.push((
                        Some(p),
                        FieldPath::root(),
                        seed("no PVC for an ephemeral MinIO"),
                    ));
                }
            }
            Minio::Pvc | Minio::PvcWithBackup => {
                let claim = str_at(&data, "/persistentVolumeClaim/claimName");
                if claim.is_none_or(|c| find(objs, "PersistentVolumeClaim", c).is_none()) {
                    out.push((Some(m), field, seed("MinIO on a PersistentVolumeClaim")));
                }
            }
        }
        if env.minio == Minio::PvcWithBackup {
            let backup = objs.iter().find(|o| {
                o.kind == "CronJob"
                    && serde_json::to_string(&o.doc)
                        .is_ok_and(|s| s.contains("mc mirror") && s.contains("src/zelda-rl"))
            });
            if backup.is_none() {
                out.push(missing(&seed(
                    "the MinIO backup (a CronJob mirroring the zelda-rl bucket)",
                )));
            }
        }
    }
    out
}

fn check_placement<'a>(o: &'a Obj, pod_path: &str, pool: &str, out: &mut Vec<Issue<'a>>) {
    let pointer = format!("/{}", pod_path.replace('.', "/"));
    let pod = o.doc.pointer(&pointer).cloned().unwrap_or_default();
    let path = FieldPath::parse(pod_path);
    if pod
        .pointer("/nodeSelector")
        .and_then(|n| n.get(NODE_POOL_KEY))
        .and_then(Value::as_str)
        != Some(pool)
    {
        out.push((
            Some(o),
            path.key("nodeSelector"),
            format!("seed (prod): must run on the dedicated {pool} nodes ({NODE_POOL_KEY}={pool})"),
        ));
    }
    let tolerates = pod
        .get("tolerations")
        .and_then(Value::as_array)
        .is_some_and(|t| {
            t.iter().any(|t| {
                t.get("key").and_then(Value::as_str) == Some(NODE_POOL_KEY)
                    && t.get("value").and_then(Value::as_str) == Some(pool)
                    && t.get("effect").and_then(Value::as_str) == Some("NoSchedule")
            })
        });
    if !tolerates {
        out.push((Some(o), path.key("tolerations"), format!("seed (prod): must tolerate the {pool} nodes' taint {NODE_POOL_KEY}={pool}:NoSchedule")));
    }
}

/// The prod MachineSets: instance types, counts, and the labels/taints prod selects.
pub fn check_machinesets(objs: &[Obj]) -> Vec<Issue<'_>> {
    let mut out = Vec::new();
    for (pool, instance, count) in [
        ("llm-inference", "p4d.24xlarge", 3),
        ("pyboy-training", "g4dn.4xlarge", 5),
    ] {
        let ms = objs.iter().find(|o| {
            o.kind == "MachineSet"
                && o.doc
                    .pointer("/spec/template/spec/metadata/labels")
                    .and_then(|l| l.get(NODE_POOL_KEY))
                    .and_then(Value::as_str)
                    == Some(pool)
        });
        let Some(m) = ms else {
            out.push(missing(&format!("the {pool} MachineSet")));
            continue;
        };
        if m.namespace.as_deref() != Some("openshift-machine-api") {
            out.push((
                Some(m),
                FieldPath::parse("metadata.namespace"),
                "MachineSets live in openshift-machine-api".to_string(),
            ));
        }
        let it = str_at(
            &m.doc,
            "/spec/template/spec/providerSpec/value/instanceType",
        );
        if it != Some(instance) {
            out.push((
                Some(m),
                FieldPath::parse("spec.template.spec.providerSpec.value.instanceType"),
                format!("seed (prod): {pool} nodes are {instance}, found {it:?}"),
            ));
        }
        if num(m.doc.pointer("/spec/replicas")) != Some(count) {
            out.push((
                Some(m),
                FieldPath::parse("spec.replicas"),
                format!("seed (prod): {count} {pool} nodes"),
            ));
        }
        let tainted = m
            .doc
            .pointer("/spec/template/spec/taints")
            .and_then(Value::as_array)
            .is_some_and(|t| {
                t.iter().any(|t| {
                    t.get("key").and_then(Value::as_str) == Some(NODE_POOL_KEY)
                        && t.get("value").and_then(Value::as_str) == Some(pool)
                        && t.get("effect").and_then(Value::as_str) == Some("NoSchedule")
                })
            });
        if !tainted {
            out.push((
                Some(m),
                FieldPath::parse("spec.template.spec.taints"),
                format!("dedicated nodes carry the taint {NODE_POOL_KEY}={pool}:NoSchedule"),
            ));
        }
    }
    out
}

/// The Argo CD project and the three Applications.
pub fn check_argocd<'a>(objs: &'a [Obj], gitops_dir: &Path, repo: &Path) -> Vec<Issue<'a>> {
    let mut out = Vec::new();
    match find(objs, "AppProject", "zelda-rl") {
        None => out.push(missing("AppProject zelda-rl")),
        Some(p) => {
            let dests: Vec<&str> = p
                .doc
                .pointer("/spec/destinations")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(|d| d.get("namespace").and_then(Value::as_str))
                .collect();
            for e in ENVS {
                if !dests.contains(&e.namespace) {
                    out.push((
                        Some(p),
                        FieldPath::parse("spec.destinations"),
                        format!("seed: destination namespace {} is missing", e.namespace),
                    ));
                }
            }
            let allowed: Vec<&str> = p
                .doc
                .pointer("/spec/clusterResourceWhitelist")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(|d| d.get("kind").and_then(Value::as_str))
                .collect();
            for kind in ["MachineSet", "ClusterRole", "ClusterRoleBinding"] {
                if !allowed.contains(&kind) {
                    out.push((
                        Some(p),
                        FieldPath::parse("spec.clusterResourceWhitelist"),
                        format!("seed: cluster resource allow list must name {kind}"),
                    ));
                }
            }
            if p.doc
                .pointer("/spec/sourceRepos")
                .and_then(Value::as_array)
                .is_none_or(|r| r.is_empty())
            {
                out.push((
                    Some(p),
                    FieldPath::parse("spec.sourceRepos"),
                    "seed: the source repo must be listed".to_string(),
                ));
            }
        }
    }
    for e in ENVS {
        let app = objs.iter().find(|o| {
            o.kind == "Application"
                && str_at(&o.doc, "/spec/source/path")
                    == Some(&format!("gitops/overlays/{}", e.name))
        });
        let Some(a) = app else {
            out.push(missing(&format!(
                "the Application for gitops/overlays/{}",
                e.name
            )));
            continue;
        };
        let rel_dir = gitops_dir
            .strip_prefix(repo)
            .map(|p| p.display().to_string())
            .unwrap_or_default();
        if rel_dir == "gitops"
            && !gitops_dir
                .join("overlays")
                .join(e.name)
                .join("kustomization.yaml")
                .is_file()
        {
            out.push((
                Some(a),
                FieldPath::parse("spec.source.path"),
                "points at a folder without kustomization.yaml".to_string(),
            ));
        }
        if str_at(&a.doc, "/spec/project") != Some("zelda-rl") {
            out.push((
                Some(a),
                FieldPath::parse("spec.project"),
                "must belong to AppProject zelda-rl".to_string(),
            ));
        }
        if str_at(&a.doc, "/spec/destination/namespace") != Some(e.namespace) {
            out.push((
                Some(a),
                FieldPath::parse("spec.destination.namespace"),
                format!("seed: {} deploys to {}", e.name, e.namespace),
            ));
        }
        let opts: Vec<&str> = a
            .doc
            .pointer("/spec/syncPolicy/syncOptions")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        for o in ["CreateNamespace=true", "ServerSideApply=true"] {
            if !opts.contains(&o) {
                out.push((
                    Some(a),
                    FieldPath::parse("spec.syncPolicy.syncOptions"),
                    format!("seed: sync option {o}"),
                ));
            }
        }
        let auto = a.doc.pointer("/spec/syncPolicy/automated");
        let flag = |k: &str| auto.and_then(|x| x.get(k)) == Some(&Value::Bool(true));
        if !flag("prune") || !flag("selfHeal") {
            out.push((
                Some(a),
                FieldPath::parse("spec.syncPolicy.automated"),
                "seed: prune and self-heal enabled".to_string(),
            ));
        }
        let enabled =
            auto.is_some() && auto.and_then(|x| x.get("enabled")) != Some(&Value::Bool(false));
        let manual = e.name == "prod";
        if manual && enabled {
            out.push((
                Some(a),
                FieldPath::parse("spec.syncPolicy.automated.enabled"),
                "seed workflow: prod is synced by hand (automated.enabled: false)".to_string(),
            ));
        }
        if !manual && !enabled {
            out.push((
                Some(a),
                FieldPath::parse("spec.syncPolicy.automated"),
                format!("seed: {} syncs automatically", e.name),
            ));
        }
    }
    out
}

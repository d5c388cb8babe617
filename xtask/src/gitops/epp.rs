//! The seed's EPP knobs (`ENABLE_KVCACHE_AWARE_SCORER`, `PD_ENABLED`, `ROUTING_STRATEGY`)
//! must change what the endpoint pickers do: each knob value must be legal, each EPP must
//! consume the knobs it is given (in its `--config-file` argument), the file they select
//! must exist in the mounted ConfigMap, and every EndpointPickerConfig file must contain
//! exactly the scheduling its name promises.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use super::commands::{ConfigMaps, container_env, expand_kubelet};
use super::model::{FieldPath, Obj};
use super::render::parse_stream;

/// The knob names and their legal values.
pub const KNOBS: &[(&str, &[&str])] = &[
    ("ENABLE_KVCACHE_AWARE_SCORER", &["true", "false"]),
    ("PD_ENABLED", &["true", "false"]),
    ("ROUTING_STRATEGY", &["prefix-affinity", "load-aware"]),
];

/// A problem: the object (if any), the field and the message.
pub type Issue<'a> = (Option<&'a Obj>, FieldPath, String);

/// Finds the rendered ConfigMap generated as `base` (kustomize may add a hash suffix).
pub fn generated<'a>(objs: &'a [Obj], kind: &str, base: &str) -> Option<&'a Obj> {
    objs.iter().find(|o| {
        o.kind == kind
            && o.name
                .strip_prefix(base)
                .is_some_and(|rest| rest.is_empty() || (rest.starts_with('-') && rest.len() == 11))
    })
}

/// Every knob check for one render.
pub fn check<'a>(objs: &'a [Obj], cms: &ConfigMaps) -> Vec<Issue<'a>> {
    let mut out = Vec::new();
    if let Some(knobs) = generated(objs, "ConfigMap", "epp-knobs") {
        for (name, legal) in KNOBS {
            match knobs
                .doc
                .pointer(&format!("/data/{name}"))
                .and_then(Value::as_str)
            {
                Some(v) if legal.contains(&v) => {}
                Some(v) => out.push((
                    Some(knobs),
                    FieldPath::root().key("data").key(name),
                    format!("{name}={v} is not one of {}", legal.join(", ")),
                )),
                None => out.push((
                    Some(knobs),
                    FieldPath::root().key("data").key(name),
                    format!("knob {name} is missing"),
                )),
            }
        }
    }
    if let Some(cfg) = generated(objs, "ConfigMap", "epp-config") {
        for (file, text) in cms.get(&cfg.name).into_iter().flatten() {
            let field = FieldPath::root().key("data").key(file);
            if let Err(e) = check_config_file(file, text) {
                out.push((Some(cfg), field, e));
            }
        }
    }
    for o in objs.iter().filter(|o| o.kind == "Deployment") {
        let Some(containers) = o
            .doc
            .pointer("/spec/template/spec/containers")
            .and_then(Value::as_array)
        else {
            continue;
        };
        for (i, c) in containers.iter().enumerate() {
            let Some(c) = c.as_object() else { continue };
            let path = FieldPath::parse("spec.template.spec.containers").index(i);
            let args: Vec<String> = c
                .get("command")
                .and_then(Value::as_array)
                .into_iter()
                .chain(c.get("args").and_then(Value::as_array))
                .flatten()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect();
            let joined = args.join(" ");
            let env_names: BTreeSet<String> = c
                .get("env")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(|e| e.get("name").and_then(Value::as_str).map(str::to_string))
                .collect();
            for (knob, _) in KNOBS {
                if env_names.contains(*knob) && !joined.contains(&format!("$({knob})")) {
                    out.push((
                        Some(o),
                        path.key("env"),
                        format!(
                            "{knob} is set but nothing reads it (no $({knob}) in the command line)"
                        ),
                    ));
                }
            }
            let Some(file_arg) = args.iter().find_map(|a| a.strip_prefix("--config-file=")) else {
                continue;
            };
            let env = container_env(o, c, cms);
            let (file, unknown) = expand_kubelet(file_arg, &env);
            if !unknown.is_empty() {
                out.push((
                    Some(o),
                    path.key("args"),
                    format!("--config-file uses undefined {}", unknown.join(", ")),
                ));
                continue;
            }
            if let Err(e) = config_file_present(o, c, &file, cms) {
                out.push((Some(o), path.key("args"), e));
            }
        }
    }
    out
}

/// The file named by `--config-file` must be a key of the ConfigMap mounted at its folder.
fn config_file_present(
    obj: &Obj,
    c: &serde_json::Map<String, Value>,
    file: &str,
    cms: &ConfigMaps,
) -> Result<(), String> {
    let (dir, key) = file
        .rsplit_once('/')
        .ok_or_else(|| format!("--config-file={file} is not an absolute path"))?;
    let mount = c
        .get("volumeMounts")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .find(|m| m.get("mountPath").and_then(Value::as_str) == Some(dir))
        .and_then(|m| m.get("name").and_then(Value::as_str))
        .ok_or_else(|| format!("--config-file={file}: nothing is mounted at {dir}"))?;
    let cm = obj
        .doc
        .pointer("/spec/template/spec/volumes")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .find(|v| v.get("name").and_then(Value::as_str) == Some(mount))
        .and_then(|v| v.pointer("/configMap/name").and_then(Value::as_str))
        .ok_or_else(|| format!("--config-file={file}: volume {mount} is not a ConfigMap"))?;
    match cms.get(cm) {
        Some(data) if data.contains_key(key) => Ok(()),
        Some(data) => Err(format!(
            "--config-file={file}: the knobs select `{key}`, which ConfigMap {cm} does not have (it has: {})",
            data.keys().cloned().collect::<Vec<_>>().join(", ")
        )),
        None => Err(format!(
            "--config-file={file}: ConfigMap {cm} is not in this render"
        )),
    }
}

/// Checks one EndpointPickerConfig file against the knob values its name encodes
/// (`<strategy>.kvcache-<bool>.pd-<bool>.yaml`).
pub fn check_config_file(file: &str, text: &str) -> Result<(), String> {
    let doc = parse_stream(text)?
        .into_iter()
        .next()
        .ok_or_else(|| "empty EndpointPickerConfig".to_string())?;
    let api = doc.get("apiVersion").and_then(Value::as_str).unwrap_or("");
    if !matches!(
        api,
        "llm-d.ai/v1alpha1" | "inference.networking.x-k8s.io/v1alpha1"
    ) || doc.get("kind").and_then(Value::as_str) != Some("EndpointPickerConfig")
    {
        return Err(format!(
            "not an EndpointPickerConfig (apiVersion llm-d.ai/v1alpha1): apiVersion={api:?}"
        ));
    }
    let mut plugins: BTreeMap<String, String> = BTreeMap::new();
    for p in doc
        .get("plugins")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let ty = p
            .get("type")
            .and_then(Value::as_str)
            .ok_or("a plugin without `type`")?;
        let name = p.get("name").and_then(Value::as_str).unwrap_or(ty);
        plugins.insert(name.to_string(), ty.to_string());
    }
    let mut profiles: BTreeMap<String, Vec<(String, f64)>> = BTreeMap::new();
    for prof in doc
        .get("schedulingProfiles")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let pname = prof
            .get("name")
            .and_then(Value::as_str)
            .ok_or("a scheduling profile without `name`")?;
        let mut refs = Vec::new();
        for r in prof
            .get("plugins")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let pref = r
                .get("pluginRef")
                .and_then(Value::as_str)
                .ok_or("a profile entry without `pluginRef`")?;
            let ty = plugins
                .get(pref)
                .ok_or_else(|| format!("profile {pname} refers to undefined plugin {pref}"))?;
            let weight = r.get("weight").and_then(Value::as_f64).unwrap_or(0.0);
            refs.push((ty.clone(), weight));
        }
        profiles.insert(pname.to_string(), refs);
    }
    if profiles.is_empty() {
        return Err("no schedulingProfiles".to_string());
    }
    let Some((strategy, kv, pd)) = knobs_of(file) else {
        return Err("file name does not say which knob values it implements (<strategy>.kvcache-<bool>.pd-<bool>.yaml)".to_string());
    };
    let has_type = |t: &str| plugins.values().any(|v| v == t);
    if pd {
        if !has_type("disagg-profile-handler") {
            return Err("PD_ENABLED=true but no disagg-profile-handler plugin".to_string());
        }
        for (p, filter) in [("prefill", "prefill-filter"), ("decode", "decode-filter")] {
            let refs = profiles
                .get(p)
                .ok_or_else(|| format!("PD_ENABLED=true but no `{p}` scheduling profile"))?;
            if !refs.iter().any(|(t, _)| t == filter) {
                return Err(format!("profile {p} does not start from {filter}"));
            }
        }
    } else if has_type("disagg-profile-handler") || profiles.len() != 1 {
        return Err("PD_ENABLED=false but the config disaggregates prefill/decode".to_string());
    }
    for (pname, refs) in &profiles {
        let weight_of = |t: &str| refs.iter().find(|(ty, _)| ty == t).map(|(_, w)| *w);
        match (kv, weight_of("kv-cache-utilization-scorer")) {
            (true, None) => {
                return Err(format!(
                    "ENABLE_KVCACHE_AWARE_SCORER=true but profile {pname} has no kv-cache-utilization-scorer"
                ));
            }
            (false, Some(_)) => {
                return Err(format!(
                    "ENABLE_KVCACHE_AWARE_SCORER=false but profile {pname} uses kv-cache-utilization-scorer"
                ));
            }
            _ => {}
        }
        let prefix = weight_of("prefix-cache-scorer");
        match strategy.as_str() {
            "prefix-affinity" => {
                let Some(w) = prefix else {
                    return Err(format!(
                        "ROUTING_STRATEGY=prefix-affinity but profile {pname} has no prefix-cache-scorer"
                    ));
                };
                let max_other = refs
                    .iter()
                    .filter(|(t, _)| t != "prefix-cache-scorer" && t.ends_with("-scorer"))
                    .map(|(_, w)| *w)
                    .fold(0.0, f64::max);
                if w <= max_other {
                    return Err(format!(
                        "ROUTING_STRATEGY=prefix-affinity but prefix-cache-scorer (weight {w}) does not dominate profile {pname}"
                    ));
                }
            }
            "load-aware" => {
                if prefix.is_some() {
                    return Err(format!(
                        "ROUTING_STRATEGY=load-aware but profile {pname} scores prefix affinity"
                    ));
                }
                if weight_of("queue-scorer").is_none() {
                    return Err(format!(
                        "ROUTING_STRATEGY=load-aware but profile {pname} has no queue-scorer"
                    ));
                }
            }
            other => return Err(format!("unknown ROUTING_STRATEGY {other} in the file name")),
        }
    }
    Ok(())
}

/// `prefix-affinity.kvcache-true.pd-false.yaml` -> ("prefix-affinity", true, false).
fn knobs_of(file: &str) -> Option<(String, bool, bool)> {
    let stem = file.strip_suffix(".yaml")?;
    let mut parts = stem.split('.');
    let strategy = parts.next()?.to_string();
    let kv = parts.next()?.strip_prefix("kvcache-")?.parse().ok()?;
    let pd = parts.next()?.strip_prefix("pd-")?.parse().ok()?;
    parts.next().is_none().then_some((strategy, kv, pd))
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "apiVersion: llm-d.ai/v1alpha1\nkind: EndpointPickerConfig\nplugins:\n- type: prefix-cache-scorer\n- type: queue-scorer\n- type: max-score-picker\nschedulingProfiles:\n- name: default\n  plugins:\n  - pluginRef: prefix-cache-scorer\n    weight: 3\n  - pluginRef: queue-scorer\n    weight: 2\n  - pluginRef: max-score-picker\n";

    #[test]
    fn file_names_bind_knob_values_to_content() {
        assert!(check_config_file("prefix-affinity.kvcache-false.pd-false.yaml", GOOD).is_ok());
        let e = check_config_file("prefix-affinity.kvcache-true.pd-false.yaml", GOOD).unwrap_err();
        assert!(e.contains("kv-cache-utilization-scorer"), "{e}");
        let e = check_config_file("load-aware.kvcache-false.pd-false.yaml", GOOD).unwrap_err();
        assert!(e.contains("load-aware"), "{e}");
        let e = check_config_file("prefix-affinity.kvcache-false.pd-true.yaml", GOOD).unwrap_err();
        assert!(e.contains("disagg-profile-handler"), "{e}");
        let dangling = GOOD.replace("- pluginRef: queue-scorer", "- pluginRef: queue-scorr");
        let e = check_config_file("prefix-affinity.kvcache-false.pd-false.yaml", &dangling)
            .unwrap_err();
        assert!(e.contains("undefined plugin queue-scorr"), "{e}");
    }
}

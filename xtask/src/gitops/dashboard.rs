//! The Grafana dashboard may only chart metrics that exist: every metric name in a panel
//! query or a template-variable query must be exported by zelda-rl's own code
//! ([`telemetry::metric_names`], derived from the registry itself) or be documented by vLLM
//! or the llm-d endpoint picker (the lists below, with their sources). The dashboard must
//! also keep the panels the project relies on (env steps/s, returns, rooms, judge latency
//! p50/p95 by route, judge error rate, vLLM, EPP).

use std::collections::BTreeSet;

use serde_json::Value;

use super::epp::Issue;
use super::model::{FieldPath, Obj, str_at};

/// A metric family someone else documents.
struct Documented {
    name: &'static str,
    kind: Kind,
}

#[derive(Clone, Copy)]
enum Kind {
    Counter,
    Gauge,
    Histogram,
}

use Kind::{Counter, Gauge, Histogram};

/// vLLM's Prometheus metrics (V1 engine). Source: vllm-project/vllm
/// `vllm/v1/metrics/loggers.py` (`PrometheusStatLogger`: every `name="vllm:..."`) and the
/// "Production Metrics" page of the vLLM docs. Python's client adds `_total` to counters.
const VLLM: &[Documented] = &[
    Documented {
        name: "vllm:num_requests_running",
        kind: Gauge,
    },
    Documented {
        name: "vllm:num_requests_waiting",
        kind: Gauge,
    },
    Documented {
        name: "vllm:kv_cache_usage_perc",
        kind: Gauge,
    },
    Documented {
        name: "vllm:prefix_cache_queries",
        kind: Counter,
    },
    Documented {
        name: "vllm:prefix_cache_hits",
        kind: Counter,
    },
    Documented {
        name: "vllm:num_preemptions",
        kind: Counter,
    },
    Documented {
        name: "vllm:prompt_tokens",
        kind: Counter,
    },
    Documented {
        name: "vllm:generation_tokens",
        kind: Counter,
    },
    Documented {
        name: "vllm:request_success",
        kind: Counter,
    },
    Documented {
        name: "vllm:request_prompt_tokens",
        kind: Histogram,
    },
    Documented {
        name: "vllm:request_generation_tokens",
        kind: Histogram,
    },
    Documented {
        name: "vllm:iteration_tokens_total",
        kind: Histogram,
    },
    Documented {
        name: "vllm:request_max_num_generation_tokens",
        kind: Histogram,
    },
    Documented {
        name: "vllm:request_params_n",
        kind: Histogram,
    },
    Documented {
        name: "vllm:request_params_max_tokens",
        kind: Histogram,
    },
    Documented {
        name: "vllm:time_to_first_token_seconds",
        kind: Histogram,
    },
    Documented {
        name: "vllm:time_per_output_token_seconds",
        kind: Histogram,
    },
    Documented {
        name: "vllm:e2e_request_latency_seconds",
        kind: Histogram,
    },
    Documented {
        name: "vllm:request_queue_time_seconds",
        kind: Histogram,
    },
    Documented {
        name: "vllm:request_inference_time_seconds",
        kind: Histogram,
    },
    Documented {
        name: "vllm:request_prefill_time_seconds",
        kind: Histogram,
    },
    Documented {
        name: "vllm:request_decode_time_seconds",
        kind: Histogram,
    },
];

/// The llm-d endpoint picker's metrics (subsystem `llm_d_epp`). Source: llm-d/llm-d-router
/// v0.10.0 `pkg/epp/metrics/llm_d_router_metrics.go` (`LLMDRouterEndpointPickerSubsystem =
/// "llm_d_epp"`) and its metrics documentation (`llm_d_epp_disagg_decision_total`, recorded
/// by the `disagg-profile-handler` plugin).
const EPP: &[Documented] = &[
    Documented {
        name: "llm_d_epp_request_total",
        kind: Gauge,
    },
    Documented {
        name: "llm_d_epp_request_error_total",
        kind: Gauge,
    },
    Documented {
        name: "llm_d_epp_request_duration_seconds",
        kind: Histogram,
    },
    Documented {
        name: "llm_d_epp_request_size_bytes",
        kind: Histogram,
    },
    Documented {
        name: "llm_d_epp_response_size_bytes",
        kind: Histogram,
    },
    Documented {
        name: "llm_d_epp_request_input_tokens",
        kind: Histogram,
    },
    Documented {
        name: "llm_d_epp_request_output_tokens",
        kind: Histogram,
    },
    Documented {
        name: "llm_d_epp_request_cached_tokens",
        kind: Histogram,
    },
    Documented {
        name: "llm_d_epp_request_running",
        kind: Gauge,
    },
    Documented {
        name: "llm_d_epp_request_ntpot_seconds",
        kind: Histogram,
    },
    Documented {
        name: "llm_d_epp_request_ttft_seconds",
        kind: Histogram,
    },
    Documented {
        name: "llm_d_epp_request_streaming_tpot_seconds",
        kind: Histogram,
    },
    Documented {
        name: "llm_d_epp_average_kv_cache_utilization",
        kind: Gauge,
    },
    Documented {
        name: "llm_d_epp_average_queue_size",
        kind: Gauge,
    },
    Documented {
        name: "llm_d_epp_average_running_requests",
        kind: Gauge,
    },
    Documented {
        name: "llm_d_epp_ready_endpoints",
        kind: Gauge,
    },
    Documented {
        name: "llm_d_epp_scheduler_e2e_duration_seconds",
        kind: Histogram,
    },
    Documented {
        name: "llm_d_epp_scheduler_attempts_total",
        kind: Gauge,
    },
    Documented {
        name: "llm_d_epp_plugin_duration_seconds",
        kind: Histogram,
    },
    Documented {
        name: "llm_d_epp_flow_control_queue_size",
        kind: Gauge,
    },
    Documented {
        name: "llm_d_epp_flow_control_pool_saturation",
        kind: Gauge,
    },
    Documented {
        name: "llm_d_epp_disagg_decision_total",
        kind: Gauge,
    },
];

/// Sample names a documented family exposes (Go's client writes counters under the name it
/// was given, which already ends in `_total`; those are listed as gauges above).
fn samples(d: &Documented) -> Vec<String> {
    match d.kind {
        Counter => vec![format!("{}_total", d.name), format!("{}_created", d.name)],
        Gauge => vec![d.name.to_string()],
        Histogram => ["_bucket", "_sum", "_count"]
            .iter()
            .map(|s| format!("{}{s}", d.name))
            .collect(),
    }
}

/// Every metric name a dashboard may use.
pub fn allowed() -> BTreeSet<String> {
    let mut out: BTreeSet<String> = telemetry::metric_names().into_iter().collect();
    for d in VLLM.iter().chain(EPP) {
        out.extend(samples(d));
    }
    out
}

const AGGREGATIONS: &[&str] = &[
    "sum",
    "min",
    "max",
    "avg",
    "group",
    "stddev",
    "stdvar",
    "count",
    "count_values",
    "bottomk",
    "topk",
    "quantile",
    "limitk",
    "limit_ratio",
];
const KEYWORDS: &[&str] = &[
    "and",
    "or",
    "unless",
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "offset",
    "bool",
    "inf",
    "nan",
    "atan2",
    "start",
    "end",
];
const LABEL_LISTS: &[&str] = &[
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
];

/// The metric names a PromQL expression selects (Grafana `$variables` are skipped).
pub fn metric_names_in(expr: &str) -> Result<Vec<String>, String> {
    let b = expr.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    let skip_to = |i: usize, open: u8, close: u8| -> Result<usize, String> {
        let mut depth = 0;
        let mut j = i;
        let mut quote: Option<u8> = None;
        while j < b.len() {
            let c = b[j];
            if let Some(q) = quote {
                if c == b'\\' {
                    j += 1;
                } else if c == q {
                    quote = None;
                }
            } else if c == b'"' || c == b'\'' || c == b'`' {
                quote = Some(c);
            } else if c == open {
                depth += 1;
            } else if c == close {
                depth -= 1;
                if depth == 0 {
                    return Ok(j + 1);
                }
            }
            j += 1;
        }
        Err(format!("unbalanced `{}` at byte {i}", open as char))
    };
    let ident_start = |c: u8| c.is_ascii_alphabetic() || c == b'_' || c == b':';
    let ident_char = |c: u8| c.is_ascii_alphanumeric() || c == b'_' || c == b':';
    while i < b.len() {
        let c = b[i];
        if c.is_ascii_whitespace() {
            i += 1;
        } else if c == b'"' || c == b'\'' || c == b'`' {
            let mut j = i + 1;
            while j < b.len() && b[j] != c {
                if b[j] == b'\\' {
                    j += 1;
                }
                j += 1;
            }
            if j >= b.len() {
                return Err(format!("unterminated string at byte {i}"));
            }
            i = j + 1;
        } else if c == b'{' {
            i = skip_to(i, b'{', b'}')?;
        } else if c == b'[' {
            i = skip_to(i, b'[', b']')?;
        } else if c == b'$' {
            i += 1;
            if i < b.len() && b[i] == b'{' {
                i = skip_to(i, b'{', b'}')?;
            } else {
                while i < b.len() && ident_char(b[i]) {
                    i += 1;
                }
            }
        } else if c.is_ascii_digit() || (c == b'.' && b.get(i + 1).is_some_and(u8::is_ascii_digit))
        {
            while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'.') {
                i += 1;
            }
        } else if ident_start(c) {
            let start = i;
            while i < b.len() && ident_char(b[i]) {
                i += 1;
            }
            let word = &expr[start..i];
            let mut j = i;
            while j < b.len() && b[j].is_ascii_whitespace() {
                j += 1;
            }
            let lower = word.to_ascii_lowercase();
            if LABEL_LISTS.contains(&lower.as_str()) {
                if j < b.len() && b[j] == b'(' {
                    i = skip_to(j, b'(', b')')?;
                }
            } else if j < b.len() && b[j] == b'(' {
                // A function call or an aggregation with its argument list.
            } else if AGGREGATIONS.contains(&lower.as_str()) || KEYWORDS.contains(&lower.as_str()) {
                // `sum by (x) (...)`, `offset 5m`, `and`, ...
            } else {
                out.push(word.to_string());
            }
        } else {
            i += 1;
        }
    }
    Ok(out)
}

/// The PromQL a Grafana variable query holds (`label_values(metric, label)` -> `metric`).
fn variable_expr(q: &str) -> Option<String> {
    let q = q.trim();
    if let Some(inner) = q
        .strip_prefix("label_values(")
        .and_then(|r| r.strip_suffix(')'))
    {
        // One argument is a bare label; with two, the first is a selector.
        let mut depth = 0;
        for (i, ch) in inner.char_indices() {
            match ch {
                '(' | '{' | '[' => depth += 1,
                ')' | '}' | ']' => depth -= 1,
                ',' if depth == 0 => return Some(inner[..i].to_string()),
                _ => {}
            }
        }
        return None;
    }
    if let Some(inner) = q
        .strip_prefix("query_result(")
        .and_then(|r| r.strip_suffix(')'))
    {
        return Some(inner.to_string());
    }
    None
}

/// Every `(where, expr)` of a dashboard: panel targets (rows' nested panels included) and
/// template variables.
pub fn queries(dashboard: &Value) -> Vec<(String, String)> {
    fn panels(list: &Value, at: &str, out: &mut Vec<(String, String)>) {
        for (i, p) in list.as_array().into_iter().flatten().enumerate() {
            let here = format!("{at}[{i}]");
            let title = p.get("title").and_then(Value::as_str).unwrap_or("?");
            for (k, t) in p
                .get("targets")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .enumerate()
            {
                if let Some(e) = t.get("expr").and_then(Value::as_str) {
                    out.push((
                        format!("{here}.targets[{k}].expr (panel \"{title}\")"),
                        e.to_string(),
                    ));
                }
            }
            if let Some(nested) = p.get("panels") {
                panels(nested, &format!("{here}.panels"), out);
            }
        }
    }
    let mut out = Vec::new();
    panels(
        dashboard.get("panels").unwrap_or(&Value::Null),
        "panels",
        &mut out,
    );
    let vars = dashboard
        .pointer("/templating/list")
        .and_then(Value::as_array)
        .into_iter()
        .flatten();
    for (i, v) in vars.enumerate() {
        let q = match v.get("query") {
            Some(Value::String(s)) => Some(s.clone()),
            Some(Value::Object(o)) => o.get("query").and_then(Value::as_str).map(str::to_string),
            _ => None,
        };
        if let Some(expr) = q.as_deref().and_then(variable_expr) {
            out.push((format!("templating.list[{i}].query"), expr));
        }
    }
    out
}

/// Problems of one dashboard: unknown metrics, unparsable queries, missing panels.
pub fn check_dashboard(dashboard: &Value, allowed: &BTreeSet<String>) -> Vec<String> {
    let mut problems = Vec::new();
    let mut used = BTreeSet::new();
    let mut exprs = Vec::new();
    for (at, expr) in queries(dashboard) {
        match metric_names_in(&expr) {
            Ok(names) => {
                for n in names {
                    if !allowed.contains(&n) {
                        problems.push(format!(
                            "dashboard {at}: metric `{n}` is neither exported by zelda-rl (telemetry::metric_names) \
                             nor a documented vLLM / llm-d EPP metric (xtask/src/gitops/dashboard.rs)"
                        ));
                    }
                    used.insert(n);
                }
            }
            Err(e) => problems.push(format!(
                "dashboard {at}: cannot read the query `{expr}`: {e}"
            )),
        }
        exprs.push(expr);
    }
    let uses = |pred: &dyn Fn(&str) -> bool| used.iter().any(|n| pred(n));
    let required: [(&str, bool); 7] = [
        (
            "env steps/s (zelda_rl_env_steps_total)",
            used.contains("zelda_rl_env_steps_total"),
        ),
        (
            "episode returns (zelda_rl_episode_return_*)",
            uses(&|n| n.starts_with("zelda_rl_episode_return")),
        ),
        (
            "rooms explored (zelda_rl_rooms_visited or zelda_rl_episode_rooms_*)",
            uses(&|n| n == "zelda_rl_rooms_visited" || n.starts_with("zelda_rl_episode_rooms")),
        ),
        (
            "judge latency p50 and p95 by route",
            exprs.iter().any(|e| {
                e.contains("histogram_quantile(0.5")
                    && e.contains("zelda_rl_judge_request_duration_seconds_bucket")
                    && e.contains("route")
            }) && exprs.iter().any(|e| {
                e.contains("histogram_quantile(0.95")
                    && e.contains("zelda_rl_judge_request_duration_seconds_bucket")
                    && e.contains("route")
            }),
        ),
        (
            "judge error rate (zelda_rl_judge_errors_total)",
            used.contains("zelda_rl_judge_errors_total"),
        ),
        ("vLLM panels (vllm:*)", uses(&|n| n.starts_with("vllm:"))),
        (
            "EPP panels (llm_d_epp_*)",
            uses(&|n| n.starts_with("llm_d_epp_")),
        ),
    ];
    for (what, ok) in required {
        if !ok {
            problems.push(format!("dashboard: no panel charts {what}"));
        }
    }
    problems
}

/// Checks the dashboard JSON every GrafanaDashboard of a render points at.
pub fn check(objs: &[Obj]) -> Vec<Issue<'_>> {
    let allowed = allowed();
    let mut out = Vec::new();
    for g in objs.iter().filter(|o| o.kind == "GrafanaDashboard") {
        let cm = str_at(&g.doc, "/spec/configMapRef/name").unwrap_or("");
        let key = str_at(&g.doc, "/spec/configMapRef/key").unwrap_or("");
        let Some(json) = objs
            .iter()
            .find(|o| o.kind == "ConfigMap" && o.name == cm)
            .and_then(|c| c.doc.pointer("/data").and_then(|d| d.get(key)))
            .and_then(Value::as_str)
        else {
            // The seed check reports a missing ConfigMap.
            continue;
        };
        let Ok(dashboard) = serde_json::from_str::<Value>(json) else {
            continue;
        };
        for p in check_dashboard(&dashboard, &allowed) {
            out.push((Some(g), FieldPath::parse("spec.configMapRef"), p));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn promql_metric_names() {
        let names = |e: &str| metric_names_in(e).unwrap();
        assert_eq!(
            names(
                "histogram_quantile(0.95, sum by (le, route) (rate(zelda_rl_judge_request_duration_seconds_bucket{namespace=\"$namespace\"}[5m])))"
            ),
            ["zelda_rl_judge_request_duration_seconds_bucket"]
        );
        assert_eq!(
            names(
                "sum by (route) (rate(a_total[$__rate_interval])) / sum by (route) (rate(b_count{x=~\"a|b\"}[5m] offset 1h))"
            ),
            ["a_total", "b_count"]
        );
        assert_eq!(
            names("max(vllm:kv_cache_usage_perc) > bool 0.5 and on(pod) up"),
            ["vllm:kv_cache_usage_perc", "up"]
        );
        assert_eq!(names("sum without (pod) (x) * 1e3"), ["x"]);
        assert!(metric_names_in("rate(x{a=\"b\"[5m])").is_err());
        assert_eq!(
            variable_expr("label_values(vllm:num_requests_running, namespace)").unwrap(),
            "vllm:num_requests_running"
        );
        assert!(variable_expr("label_values(namespace)").is_none());
    }

    fn dashboard(exprs: &[&str]) -> Value {
        let targets: Vec<Value> = exprs
            .iter()
            .map(|e| serde_json::json!({"expr": e}))
            .collect();
        serde_json::json!({"panels": [{"type": "row", "title": "r", "panels": [{"title": "p", "targets": targets}]}]})
    }

    #[test]
    fn unknown_metrics_and_missing_panels_are_reported() {
        let allowed = allowed();
        let d = dashboard(&[
            "rate(zelda_rl_env_stepz_total[5m])",
            "vllm:num_requests_running",
        ]);
        let p = check_dashboard(&d, &allowed);
        assert!(
            p.iter().any(|m| m.contains("`zelda_rl_env_stepz_total`")
                && m.contains("panels[0].panels[0].targets[0].expr")),
            "{p:?}"
        );
        assert!(
            p.iter().any(|m| m.contains("judge latency p50 and p95")),
            "{p:?}"
        );
        assert!(
            !p.iter().any(|m| m.contains("vllm:num_requests_running")),
            "{p:?}"
        );
    }

    #[test]
    fn a_complete_dashboard_passes() {
        let allowed = allowed();
        let d = dashboard(&[
            "sum(rate(zelda_rl_env_steps_total[5m]))",
            "histogram_quantile(0.5, sum by (le) (rate(zelda_rl_episode_return_bucket[5m])))",
            "max(zelda_rl_rooms_visited)",
            "histogram_quantile(0.5, sum by (le, route) (rate(zelda_rl_judge_request_duration_seconds_bucket[5m])))",
            "histogram_quantile(0.95, sum by (le, route) (rate(zelda_rl_judge_request_duration_seconds_bucket[5m])))",
            "sum by (route) (rate(zelda_rl_judge_errors_total[5m]))",
            "vllm:num_requests_running",
            "llm_d_epp_ready_endpoints",
        ]);
        assert_eq!(check_dashboard(&d, &allowed), Vec::<String>::new());
    }

    #[test]
    fn the_repository_dashboard_passes() {
        let path = crate::repo_root().join("gitops/base/monitoring/dashboards/zelda-rl.json");
        let d: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        assert_eq!(check_dashboard(&d, &allowed()), Vec::<String>::new());
    }
}

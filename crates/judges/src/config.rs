//! Judge routes, models and client limits (`configs/judges.toml`).

use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::Route;

/// The repository's `configs/judges.toml`, the built-in defaults.
pub const DEFAULT_CONFIG: &str = include_str!("../../../configs/judges.toml");

/// How structured output is requested.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ResponseFormatStyle {
    /// `{"type":"json_schema","json_schema":{"name","schema","strict":true}}` (OpenAI, vLLM).
    JsonSchema,
    /// `{"type":"json_object","schema":...}` (llama.cpp and llama-cpp-python servers).
    JsonObject,
}

/// One route's model and limits.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteConfig {
    /// Model name sent in each request.
    pub model: String,
    /// `max_tokens` of each request.
    pub max_tokens: u32,
    /// Requests in flight at once on this route.
    pub concurrency: usize,
    /// Base URL serving `/v1/chat/completions` for this route, instead of `{gateway}/{route}`
    /// (to point one route at a server directly, bypassing the gateway).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
}

/// The four routes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Routes {
    /// `/vision`.
    pub vision: RouteConfig,
    /// `/dialog`.
    pub dialog: RouteConfig,
    /// `/puzzle`.
    pub puzzle: RouteConfig,
    /// `/state`.
    pub state: RouteConfig,
}

/// Everything the gateway judges need besides the gateway URL.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JudgesConfig {
    /// Request `seed`; also seeds the retry jitter.
    pub seed: u64,
    /// Per-attempt timeout, seconds.
    pub timeout_s: f64,
    /// TCP connect timeout, seconds.
    pub connect_timeout_s: f64,
    /// Retries after the first attempt (transport errors, 429, 5xx).
    pub max_retries: u32,
    /// First backoff, seconds.
    pub backoff_base_s: f64,
    /// Largest backoff, seconds.
    pub backoff_max_s: f64,
    /// Largest `Retry-After` honoured, seconds.
    pub max_retry_after_s: f64,
    /// How structured output is requested.
    pub response_format: ResponseFormatStyle,
    /// Keyframes per segment sent to `/vision`.
    pub keyframes: usize,
    /// Change lines per segment in the state text.
    pub state_lines: usize,
    /// Send the system prompt as the start of the user message, for chat templates without
    /// a system role (Gemma's drops it).
    pub system_as_user: bool,
    /// Per-route models and limits.
    pub routes: Routes,
}

/// A configuration that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("reading {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// The TOML did not parse or has wrong fields.
    #[error("{origin}: {message}")]
    Parse {
        /// File name or `built-in`.
        origin: String,
        /// What is wrong, with the position.
        message: String,
    },
    /// A value is out of range.
    #[error("{origin}: field `{field}`: {message}")]
    Invalid {
        /// File name or `built-in`.
        origin: String,
        /// The field's dotted path.
        field: String,
        /// What is wrong.
        message: String,
    },
    /// The gateway URL is not an absolute http(s) URL.
    #[error("gateway URL {url:?}: {message}")]
    Gateway {
        /// The URL given.
        url: String,
        /// What is wrong.
        message: String,
    },
}

impl Default for JudgesConfig {
    fn default() -> Self {
        Self::from_toml(DEFAULT_CONFIG, "built-in configs/judges.toml")
            .expect("configs/judges.toml is valid (checked by a unit test)")
    }
}

impl JudgesConfig {
    /// Parses and checks a TOML document; `origin` names it in errors.
    pub fn from_toml(text: &str, origin: &str) -> Result<Self, ConfigError> {
        let cfg: JudgesConfig = toml::from_str(text).map_err(|e| ConfigError::Parse {
            origin: origin.to_string(),
            message: e.to_string(),
        })?;
        cfg.check(origin)?;
        Ok(cfg)
    }

    /// Reads, parses and checks a TOML file.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
            path: path.display().to_string(),
            source,
        })?;
        Self::from_toml(&text, &path.display().to_string())
    }

    fn check(&self, origin: &str) -> Result<(), ConfigError> {
        let invalid = |field: &str, message: &str| ConfigError::Invalid {
            origin: origin.to_string(),
            field: field.to_string(),
            message: message.to_string(),
        };
        for (field, v) in [
            ("timeout_s", self.timeout_s),
            ("connect_timeout_s", self.connect_timeout_s),
            ("backoff_base_s", self.backoff_base_s),
            ("backoff_max_s", self.backoff_max_s),
        ] {
            if !(v.is_finite() && v > 0.0 && v < 86_400.0) {
                return Err(invalid(
                    field,
                    "must be a number of seconds above 0 and below 86400",
                ));
            }
        }
        if !(self.max_retry_after_s.is_finite()
            && (0.0..86_400.0).contains(&self.max_retry_after_s))
        {
            return Err(invalid("max_retry_after_s", "must be between 0 and 86400"));
        }
        if self.max_retries > 20 {
            return Err(invalid("max_retries", "must be at most 20"));
        }
        for route in Route::ALL {
            let r = self.route(route);
            let name = route.name();
            if r.model.trim().is_empty() {
                return Err(invalid(
                    &format!("routes.{name}.model"),
                    "must not be empty",
                ));
            }
            if r.max_tokens == 0 {
                return Err(invalid(
                    &format!("routes.{name}.max_tokens"),
                    "must be at least 1",
                ));
            }
            if r.concurrency == 0 || r.concurrency > 4096 {
                return Err(invalid(
                    &format!("routes.{name}.concurrency"),
                    "must be 1 to 4096",
                ));
            }
            if let Some(url) = &r.url
                && let Err(e) = crate::client::normalise_gateway(url)
            {
                return Err(invalid(&format!("routes.{name}.url"), &e.to_string()));
            }
        }
        Ok(())
    }

    /// One route's settings.
    pub fn route(&self, route: Route) -> &RouteConfig {
        match route {
            Route::Vision => &self.routes.vision,
            Route::Dialog => &self.routes.dialog,
            Route::Puzzle => &self.routes.puzzle,
            Route::State => &self.routes.state,
        }
    }

    /// One route's settings, mutable.
    pub fn route_mut(&mut self, route: Route) -> &mut RouteConfig {
        match route {
            Route::Vision => &mut self.routes.vision,
            Route::Dialog => &mut self.routes.dialog,
            Route::Puzzle => &mut self.routes.puzzle,
            Route::State => &mut self.routes.state,
        }
    }

    /// Per-attempt timeout.
    pub fn timeout(&self) -> Duration {
        Duration::from_secs_f64(self.timeout_s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_repository_file_is_the_seed_setup() {
        let cfg = JudgesConfig::default();
        assert_eq!(cfg.routes.vision.model, "Qwen/Qwen2.5-VL-32B-Instruct");
        assert_eq!(cfg.routes.puzzle.model, "Qwen/Qwen2.5-32B-Instruct");
        assert_eq!(cfg.routes.dialog.model, "Qwen/Qwen2.5-7B-Instruct");
        assert_eq!(cfg.routes.state.model, "Qwen/Qwen2.5-7B-Instruct");
        assert_eq!(cfg.response_format, ResponseFormatStyle::JsonSchema);
    }

    #[test]
    fn errors_name_the_field() {
        let bad = DEFAULT_CONFIG.replace("concurrency = 16", "concurrency = 0");
        let e = JudgesConfig::from_toml(&bad, "x.toml")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("x.toml") && e.contains("routes.vision.concurrency"),
            "{e}"
        );
        let typo = DEFAULT_CONFIG.replace("max_retries", "max_retrys");
        let e = JudgesConfig::from_toml(&typo, "y.toml")
            .unwrap_err()
            .to_string();
        assert!(e.contains("y.toml") && e.contains("max_retrys"), "{e}");
        let e = JudgesConfig::load(Path::new("/nonexistent/judges.toml"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("/nonexistent/judges.toml"), "{e}");
    }
}

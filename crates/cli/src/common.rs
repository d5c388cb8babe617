//! Pieces several subcommands share: ROM and config loading, the store URL, progress.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use serde::{Deserialize, Serialize};

/// `--rom`: the cartridge, defaulting to the bundled mini-zelda.
#[derive(Debug, Clone, Args)]
pub struct RomArgs {
    /// Cartridge ROM file (your own Link's Awakening dump); defaults to the bundled
    /// mini-zelda test cartridge.
    #[arg(long, env = "ROM")]
    pub rom: Option<PathBuf>,
    /// Save state to start every episode from (needed for games whose boot goes through a
    /// file menu, like Link's Awakening).
    #[arg(long)]
    pub start_state: Option<PathBuf>,
}

impl RomArgs {
    /// The ROM bytes and a display name.
    pub fn load(&self) -> Result<(Vec<u8>, String)> {
        match &self.rom {
            Some(path) => Ok((
                std::fs::read(path).with_context(|| format!("reading ROM {}", path.display()))?,
                path.display().to_string(),
            )),
            None => Ok((zelda::MINI_ZELDA.to_vec(), "mini-zelda (bundled)".into())),
        }
    }

    /// The start state bytes, if one was given.
    pub fn load_start_state(&self) -> Result<Option<Vec<u8>>> {
        self.start_state
            .as_ref()
            .map(|p| {
                std::fs::read(p).with_context(|| format!("reading start state {}", p.display()))
            })
            .transpose()
    }
}

/// `--store`: where runs live.
#[derive(Debug, Clone, Args)]
pub struct StoreArgs {
    /// Object store URL: a folder (`./runs`, `file:///abs/dir`), `s3://bucket/prefix`
    /// (credentials and endpoint from the AWS_* environment variables) or `memory://`.
    #[arg(long, env = "STORE", default_value = "./runs")]
    pub store: String,
}

impl StoreArgs {
    /// Opens the store.
    pub fn open(&self) -> Result<episodes::Store> {
        Ok(episodes::Store::open(&self.store)?)
    }
}

/// The settings file (TOML): every table optional, every field defaulted.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// `[env]`
    pub env: zelda::EnvConfig,
    /// `[reward]`
    pub reward: zelda::RewardConfig,
    /// `[segments]`
    pub segments: rollout::RecorderConfig,
}

impl Settings {
    /// Reads and validates a settings file; errors name the file and the field.
    pub fn load(path: Option<&Path>) -> Result<Self> {
        let settings: Settings = match path {
            None => Settings::default(),
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("reading config {}", path.display()))?;
                toml::from_str(&text).with_context(|| format!("config {}", path.display()))?
            }
        };
        let name = path.map_or("default settings".into(), |p| p.display().to_string());
        settings
            .env
            .validate()
            .map_err(|e| anyhow::anyhow!("config {name}: {e}"))?;
        settings
            .reward
            .validate()
            .map_err(|e| anyhow::anyhow!("config {name}: {e}"))?;
        settings
            .segments
            .validate()
            .map_err(|e| anyhow::anyhow!("config {name}: {e}"))?;
        Ok(settings)
    }

    /// Hash of the settings that change what an env does (recorded in segments).
    pub fn env_hash(&self) -> String {
        episodes::segment::config_hash(&(&self.env, &self.reward))
    }
}

/// A progress bar on a terminal; hidden otherwise (structured logs report progress then).
pub fn progress_bar(len: u64, what: &str) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(len);
    bar.set_style(
        ProgressStyle::with_template(&format!(
            "{what} [{{elapsed_precise}}] {{wide_bar}} {{pos}}/{{len}} ({{per_sec}}, eta {{eta}}) {{msg}}"
        ))
        .expect("valid template"),
    );
    bar.enable_steady_tick(Duration::from_millis(250));
    bar
}

/// A current-thread tokio runtime for commands that talk to the store.
pub fn runtime() -> Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?)
}

/// Where the networks run, from `--backend` (`flex`, `tch-cpu`, `tch-cuda`, `tch-cuda:N`).
pub fn backend(name: &str) -> Result<ppo::Backend> {
    ppo::Backend::parse(name).map_err(|e| anyhow::anyhow!("--backend: {e}"))
}

/// Reads a `zelda-rl train` checkpoint: `reference` is a local file or a key in `store`;
/// a `.json` one is a run's pointer (`<run>/checkpoints/latest.json`) and is followed.
/// Returns the checkpoint's own key (or path) with its decoded state.
pub fn read_checkpoint(
    rt: &tokio::runtime::Runtime,
    store: &episodes::Store,
    reference: &str,
) -> Result<(String, train::checkpoint::TrainState)> {
    let read = |key: &str| -> Result<Vec<u8>> {
        let path = Path::new(key);
        if path.is_file() {
            return std::fs::read(path).with_context(|| format!("reading {}", path.display()));
        }
        Ok(rt
            .block_on(store.get_opt(key))
            .with_context(|| format!("reading {key} from {}", store.url()))?
            .with_context(|| {
                format!(
                    "checkpoint `{key}`: neither a file nor an object in {}",
                    store.url()
                )
            })?
            .to_vec())
    };
    let mut key = reference.to_string();
    let mut bytes = read(&key)?;
    if key.ends_with(".json") {
        let latest: train::checkpoint::Latest = serde_json::from_slice(&bytes)
            .with_context(|| format!("{key}: not a checkpoint pointer (latest.json)"))?;
        key = latest.key;
        bytes = read(&key)?;
    }
    let state = train::checkpoint::TrainState::decode(&bytes, &key)?;
    Ok((key, state))
}

/// Writes a local file atomically: temporary file in the same folder, fsync, rename.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = path
        .file_name()
        .with_context(|| format!("{} has no file name", path.display()))?;
    let tmp = dir.join(format!(
        ".{}.tmp-{}",
        name.to_string_lossy(),
        std::process::id()
    ));
    let result = (|| -> Result<()> {
        let mut f =
            std::fs::File::create(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path).with_context(|| format!("renaming onto {}", path.display()))?;
        Ok(())
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// What a stepping loop reports as it goes: Prometheus metrics per env step and episode,
/// and, when a HUD is given, the envs' live view. `rollout` and `train` share it.
pub struct Live {
    /// The process's metrics.
    pub metrics: telemetry::Metrics,
    /// The HUD feed, if publishing.
    pub feed: Option<telemetry::HudFeed>,
    rooms: Vec<Option<zelda::RoomKey>>,
    // Positive and negative parts apart: a batch of +1 and -1 is not "nothing happened".
    reward_sums: [(f64, f64); zelda::reward::COMPONENTS],
    steps: u64,
}

impl Live {
    /// Metrics for `n_envs` envs, publishing to `hud` (a HUD base URL) if given.
    pub fn new(
        metrics: telemetry::Metrics,
        hud: Option<&str>,
        run: &str,
        worker: u32,
        n_envs: usize,
    ) -> Result<Self> {
        let feed = hud
            .map(|url| telemetry::HudFeed::new(url, run, &worker.to_string(), n_envs))
            .transpose()?;
        if let Some(feed) = &feed {
            tracing::info!(
                endpoint = feed.publisher().endpoint(),
                "publishing to the HUD"
            );
        }
        Ok(Self {
            metrics,
            feed,
            rooms: vec![None; n_envs],
            reward_sums: [(0.0, 0.0); zelda::reward::COMPONENTS],
            steps: 0,
        })
    }

    /// After every batch step; `rewards[i]` is env i's reward as the learner sees it.
    pub fn step(&mut self, envs: &rollout::VecEnv, rewards: impl Fn(usize) -> f32) {
        self.steps += 1;
        self.metrics.env_steps(envs.len() as u64);
        for (i, last) in self.rooms.iter_mut().enumerate() {
            let state = envs.state(i);
            if *last != Some(state.room) {
                *last = Some(state.room);
                self.metrics.room_entered(state.room);
            }
            telemetry::add_reward_parts(&mut self.reward_sums, envs.reward_components(i));
            if let Some(feed) = self.feed.as_mut() {
                let env = envs.env(i);
                feed.observe(
                    i,
                    telemetry::EnvTick {
                        state,
                        reward: rewards(i),
                        done: envs.terminated(i) || envs.truncated(i),
                        episode: env.episode(),
                        step: env.steps(),
                    },
                );
            }
        }
        // Reward counters in batches: eight label lookups per env step would cost more
        // than the sums.
        if self.steps.is_multiple_of(64) {
            self.flush_rewards();
        }
        if let Some(feed) = self.feed.as_mut() {
            feed.maybe_publish(|i| &envs.env(i).gameboy().frame()[..]);
        }
    }

    /// When an episode ends.
    pub fn episode(&mut self, ep: &rollout::EpisodeStats) {
        self.metrics.episode_finished(
            f64::from(ep.ret),
            u64::from(ep.length),
            u64::from(ep.rooms),
            ep.terminated,
        );
        if let Some(feed) = self.feed.as_mut() {
            feed.episode_finished(ep.into());
        }
    }

    /// Adds the reward sums not yet counted to the metrics.
    pub fn flush_rewards(&mut self) {
        self.metrics.reward_parts(&self.reward_sums);
        self.reward_sums = [(0.0, 0.0); zelda::reward::COMPONENTS];
    }

    /// Counts what is left and sends the HUD the final view (waiting up to 2 s).
    pub fn finish(&mut self, envs: &rollout::VecEnv) -> Option<telemetry::PublisherStats> {
        self.flush_rewards();
        self.feed.take().map(|f| {
            f.finish(
                Duration::from_secs(2),
                |i| &envs.env(i).gameboy().frame()[..],
            )
        })
    }
}

/// The judges to ask: the gateway's LLM judges, or the offline heuristic judge when no
/// gateway is given or `offline` is set.
pub fn judges(
    gateway: Option<&str>,
    offline: bool,
    config: Option<&PathBuf>,
) -> Result<judges::Judges> {
    let config = match config {
        Some(path) => judges::JudgesConfig::load(path)?,
        None => judges::JudgesConfig::default(),
    };
    Ok(match (gateway, offline) {
        (Some(url), false) => judges::Judges::gateway(url, config)?,
        (None, false) => {
            tracing::info!(
                "no gateway (--gateway or GATEWAY): the offline heuristic judge scores segments"
            );
            judges::Judges::offline()
        }
        (_, true) => judges::Judges::offline(),
    })
}

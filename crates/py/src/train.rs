//! The Ray driver's objects (`zelda_rl._core.RolloutWorker`, `zelda_rl._core.Learner`):
//! thin wrappers of `train::distributed`, living inside Ray actors. Everything that
//! crosses actors is bytes (policies, chunks, snapshots) or JSON text (requests,
//! reports), so Ray's object store carries it without pickling Rust objects.

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyBytes;
use train::Settings;
use train::distributed::{Chunk, CollectRequest};
use train::settings::Overrides;

use crate::{TrainError as PyTrainError, env_err};

fn train_err(e: train::TrainError) -> PyErr {
    PyTrainError::new_err(e.to_string())
}

/// The run's settings: `settings_toml` (a whole `zelda-rl train` settings file, or the
/// defaults) with the command line's overrides.
fn settings(
    settings_toml: Option<&str>,
    envs: Option<usize>,
    batch_size: Option<usize>,
    seed: Option<u64>,
    bursts: Option<u32>,
) -> PyResult<Settings> {
    Settings::parse(settings_toml.unwrap_or(""), "settings_toml")
        .and_then(|s| {
            s.with_overrides(&Overrides {
                envs,
                batch_size,
                seed,
                bursts,
                ..Default::default()
            })
        })
        .map_err(train_err)
}

fn store(url: &str) -> PyResult<episodes::Store> {
    episodes::Store::open(url).map_err(|e| PyValueError::new_err(format!("store `{url}`: {e}")))
}

fn backend(name: &str) -> PyResult<ppo::Backend> {
    ppo::Backend::parse(name).map_err(|e| PyValueError::new_err(format!("backend: {e}")))
}

fn rom_bytes(rom: Option<&[u8]>) -> Vec<u8> {
    rom.unwrap_or(zelda::MINI_ZELDA).to_vec()
}

/// Hosts `envs` environments and a copy of the policy; answers one round of env steps per
/// `collect` call, writing the round's segments to the store.
#[pyclass(module = "zelda_rl._core")]
pub struct RolloutWorker {
    // Boxed: the worker holds 64-byte-aligned types, and Python allocates the object with
    // 16-byte alignment.
    inner: Box<train::distributed::RolloutWorker>,
}

#[pymethods]
impl RolloutWorker {
    /// Builds worker `worker` of run `run` with `envs` envs; the settings must be the
    /// learner's (same `settings_toml`, `total_envs`, `batch_size` and `seed`).
    #[new]
    #[pyo3(signature = (store, run, worker, envs, total_envs, batch_size=None, seed=None, settings_toml=None, rom=None, start_state=None, threads=1, backend="flex"))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        store: &str,
        run: &str,
        worker: u32,
        envs: usize,
        total_envs: usize,
        batch_size: Option<usize>,
        seed: Option<u64>,
        settings_toml: Option<&str>,
        rom: Option<&[u8]>,
        start_state: Option<&[u8]>,
        threads: usize,
        backend: &str,
    ) -> PyResult<Self> {
        let spec = train::distributed::WorkerSpec {
            rom: rom_bytes(rom),
            start_state: start_state.map(<[u8]>::to_vec),
            store: self::store(store)?,
            run: run.to_string(),
            settings: settings(settings_toml, Some(total_envs), batch_size, seed, None)?,
            worker,
            envs,
            threads,
            backend: self::backend(backend)?,
        };
        let inner = py
            .detach(|| train::distributed::RolloutWorker::new(spec))
            .map_err(env_err)?;
        Ok(Self {
            inner: Box::new(inner),
        })
    }

    /// Continues from a snapshot of this worker's envs (`Learner.worker_snapshot`).
    fn restore(&mut self, py: Python<'_>, snapshot: &[u8]) -> PyResult<()> {
        py.detach(|| self.inner.restore(snapshot))
            .map_err(train_err)
    }

    /// Runs the round `request_json` (`Learner.next_request`) with `policy`
    /// (`Learner.policy_bytes`) and returns the chunk bytes for `Learner.update`.
    fn collect<'py>(
        &mut self,
        py: Python<'py>,
        request_json: &str,
        policy: &[u8],
    ) -> PyResult<Bound<'py, PyBytes>> {
        let request: CollectRequest = serde_json::from_str(request_json)
            .map_err(|e| PyValueError::new_err(format!("request_json: {e}")))?;
        let chunk = py
            .detach(|| self.inner.collect(&request, policy).map(|c| c.encode()))
            .map_err(train_err)?;
        Ok(PyBytes::new(py, &chunk))
    }

    /// Envs on the worker.
    fn __len__(&self) -> usize {
        self.inner.len()
    }
}

/// Owns PPO and the run's state (checkpoints, evaluation, reward model).
#[pyclass(module = "zelda_rl._core")]
pub struct Learner {
    // Boxed for the same reason as `RolloutWorker`'s.
    inner: Box<train::distributed::Learner>,
}

#[pymethods]
impl Learner {
    /// Starts (or with `resume`, continues) run `run` in `store` for workers hosting
    /// `workers[i]` envs each. `gateway`: the LLM judges' base URL (`None`: offline judge);
    /// `tensorboard`: scalars under `<run>/tensorboard/`, as `zelda-rl train` writes them;
    /// `restart_to`: replace a lost learner of a job with that many bursts as its target
    /// (from the latest checkpoint, or from the start if there is none yet).
    #[new]
    #[pyo3(signature = (store, run, workers, batch_size=None, seed=None, bursts=None, settings_toml=None, rom=None, resume=false, add_bursts=None, restart_to=None, gateway=None, eval_concurrency=32, backend="flex", tensorboard=true))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        store: &str,
        run: &str,
        workers: Vec<usize>,
        batch_size: Option<usize>,
        seed: Option<u64>,
        bursts: Option<u32>,
        settings_toml: Option<&str>,
        rom: Option<&[u8]>,
        resume: bool,
        add_bursts: Option<u32>,
        restart_to: Option<u32>,
        gateway: Option<&str>,
        eval_concurrency: usize,
        backend: &str,
        tensorboard: bool,
    ) -> PyResult<Self> {
        let judges = match gateway {
            Some(url) => judges::Judges::gateway(url, judges::JudgesConfig::default())
                .map_err(|e| PyValueError::new_err(format!("gateway `{url}`: {e}")))?,
            None => judges::Judges::offline(),
        };
        let total = workers.iter().sum();
        let spec = train::distributed::LearnerSpec {
            rom: rom_bytes(rom),
            store: self::store(store)?,
            run: run.to_string(),
            settings: settings(settings_toml, Some(total), batch_size, seed, bursts)?,
            workers,
            backend: self::backend(backend)?,
            resume,
            add_bursts,
            restart_to,
            judges,
            eval_concurrency: eval_concurrency.max(1),
            tensorboard,
        };
        let inner = py
            .detach(|| train::distributed::Learner::open(spec))
            .map_err(train_err)?;
        Ok(Self {
            inner: Box::new(inner),
        })
    }

    /// Where the run stands, as JSON (`burst`, `update`, `updates_per_burst`, `horizon`,
    /// `target_bursts`, `env_steps`, `reward_model`, `done`).
    fn status(&self) -> String {
        serde_json::to_string(&self.inner.status()).expect("JSON")
    }

    /// The next round's request as JSON, or `None` when the burst's rollouts are done
    /// (call `finish_burst`) or the run is.
    fn next_request(&self) -> Option<String> {
        self.inner
            .next_request()
            .map(|r| serde_json::to_string(&r).expect("JSON"))
    }

    /// Worker `w`'s env snapshot at the current update boundary (`None` for a new run).
    fn worker_snapshot<'py>(&self, py: Python<'py>, w: usize) -> Option<Bound<'py, PyBytes>> {
        self.inner.worker_snapshot(w).map(|s| PyBytes::new(py, s))
    }

    /// The current policy for the workers.
    fn policy_bytes<'py>(&mut self, py: Python<'py>) -> PyResult<Bound<'py, PyBytes>> {
        let bytes = py.detach(|| self.inner.policy_bytes()).map_err(train_err)?;
        Ok(PyBytes::new(py, &bytes))
    }

    /// One PPO update on one chunk per worker (in worker order); returns the report as JSON.
    fn update(&mut self, py: Python<'_>, chunks: Vec<Vec<u8>>) -> PyResult<String> {
        let report = py
            .detach(|| {
                let chunks = chunks
                    .iter()
                    .enumerate()
                    .map(|(w, c)| Chunk::decode(c, &format!("worker {w}'s chunk")))
                    .collect::<Result<Vec<_>, _>>()?;
                self.inner.update(&chunks)
            })
            .map_err(train_err)?;
        Ok(serde_json::to_string(&report).expect("JSON"))
    }

    /// The job's Prometheus metrics (OpenMetrics text, the families of
    /// `zelda-rl train --metrics-addr`), counted since this learner started.
    fn metrics_text(&self) -> String {
        self.inner.metrics().encode()
    }

    /// Ends the burst (evaluation, reward model, checkpoint); returns its summary as JSON.
    fn finish_burst(&mut self, py: Python<'_>) -> PyResult<String> {
        let summary = py
            .detach(|| self.inner.finish_burst(false))
            .map_err(train_err)?;
        Ok(serde_json::to_string(&summary).expect("JSON"))
    }
}

//! One environment for Python (`zelda_rl._core.Env`).

use numpy::{PyArray3, PyArrayMethods};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyTuple};
use pyo3::{IntoPyObjectExt, intern};
use zelda::reward::COMPONENTS;
use zelda::{GameState, ZeldaEnv};

use crate::{Observation, config, env_err, new_observation, state_dict, write_state};

/// Grey level of each DMG shade (0 lightest), as in screenshots and the observation.
const GREY: [u8; 4] = [0xFF, 0xAA, 0x55, 0x00];

/// One Link's Awakening (or mini-zelda) environment, stepped one agent action at a time.
#[pyclass(module = "zelda_rl._core")]
pub struct Env {
    env: ZeldaEnv,
    components: [f32; COMPONENTS],
    // The last step's `info` and the state it holds: the next step's is a copy with only
    // the changed entries rewritten (a private dict; callers get copies).
    info: Option<(GameState, Py<PyDict>)>,
}

/// A 160x144 frame of shades as a new RGB `uint8 [144, 160, 3]` array.
pub(crate) fn rgb<'py>(py: Python<'py>, frame: &[u8]) -> Bound<'py, PyArray3<u8>> {
    // SAFETY: a new contiguous array, fully written below before Python sees it.
    unsafe {
        let rgb = PyArray3::<u8>::new(py, [gameboy::HEIGHT, gameboy::WIDTH, 3], false);
        let out = rgb.as_slice_mut().expect("new array is contiguous");
        for (px, &shade) in out.chunks_exact_mut(3).zip(frame.iter()) {
            px.fill(GREY[usize::from(shade & 3)]);
        }
        rgb
    }
}

/// What one step gives Python: the new observation, the outcome and the info dict.
type Played<'py> = (
    Bound<'py, PyArray3<u8>>,
    Bound<'py, numpy::PyArray1<f32>>,
    zelda::StepResult,
    Bound<'py, PyDict>,
);

impl Env {
    fn play<'py>(&mut self, py: Python<'py>, action: usize) -> PyResult<Played<'py>> {
        let n = self.env.actions().len();
        if action >= n {
            return Err(PyValueError::new_err(format!(
                "action {action} is out of range 0..{n}"
            )));
        }
        let out = self.env.step(action);
        self.components = out.reward.components;
        let (frames, features) = self.observation(py);
        let state = *self.env.state();
        let info = match &self.info {
            Some((prev, cached)) => {
                let cached = cached.bind(py);
                write_state(py, cached, Some(prev), &state)?;
                cached.set_item(intern!(py, "steps"), self.env.steps())?;
                cached.copy()?
            }
            None => {
                let d = state_dict(py, &state)?;
                d.set_item(intern!(py, "steps"), self.env.steps())?;
                self.info = Some((state, d.copy()?.unbind()));
                d
            }
        };
        if let Some((prev, _)) = &mut self.info {
            *prev = state;
        }
        Ok((frames, features, out, info))
    }

    fn observation<'py>(&self, py: Python<'py>) -> Observation<'py> {
        new_observation(py, self.env.config().frame_stack, |fr, fe| {
            self.env.write_observation(fr, fe)
        })
    }
}

#[pymethods]
impl Env {
    /// Builds the environment on `rom` (default: the embedded mini-zelda), powered on and
    /// run to normal play, or loaded from `start_state` (a save state of that ROM, needed
    /// by games with a file menu), with the `[env]`/`[reward]` tables of `config_toml`,
    /// and resets it with `seed`.
    #[new]
    #[pyo3(signature = (rom=None, seed=0, config_toml=None, start_state=None))]
    fn new(
        rom: Option<&[u8]>,
        seed: u64,
        config_toml: Option<&str>,
        start_state: Option<&[u8]>,
    ) -> PyResult<Self> {
        let (env_cfg, reward_cfg) = config::parse(config_toml)?;
        // The archive belongs to a vector env; one env alone would silently ignore these.
        let archive_settings = [
            ("env.explore_resets", env_cfg.explore_resets),
            ("reward.novelty", reward_cfg.novelty),
        ];
        if let Some((name, _)) = archive_settings.iter().find(|(_, v)| *v != 0.0) {
            return Err(PyValueError::new_err(format!(
                "{name} needs the vector env's exploration archive: use ZeldaVectorEnv (or \
                 zelda-rl train/rollout), or set it to 0"
            )));
        }
        let rom = rom.unwrap_or(zelda::MINI_ZELDA).to_vec();
        let mut env = match start_state {
            Some(s) => ZeldaEnv::with_start_state(rom, s.to_vec(), env_cfg, reward_cfg),
            None => ZeldaEnv::new(rom, env_cfg, reward_cfg),
        }
        .map_err(env_err)?;
        env.reset(seed);
        Ok(Self {
            env,
            components: [0.0; COMPONENTS],
            info: None,
        })
    }

    /// Starts a new episode from the start state (after a `seed`-chosen number of idle
    /// frames) and returns its first observation `(frames, features)`.
    fn reset<'py>(&mut self, py: Python<'py>, seed: u64) -> Observation<'py> {
        self.env.reset(seed);
        self.components = [0.0; COMPONENTS];
        self.observation(py)
    }

    /// Plays action index `action`; returns `(frames, features, reward, terminated,
    /// truncated, info)` with `info` the decoded game state plus `steps` (no episode
    /// counter: the same seed and actions must give the same info).
    /// The episode is not reset here: call `reset` after it ends.
    fn step<'py>(&mut self, py: Python<'py>, action: usize) -> PyResult<Bound<'py, PyTuple>> {
        let (frames, features, out, info) = self.play(py, action)?;
        PyTuple::new(
            py,
            [
                frames.into_any(),
                features.into_any(),
                out.reward.total().into_bound_py_any(py)?,
                out.terminated.into_bound_py_any(py)?,
                out.truncated.into_bound_py_any(py)?,
                info.into_any(),
            ],
        )
    }

    /// `step` in Gymnasium's shape, built in Rust to save the repacking in Python:
    /// `({"frames": frames, "features": features}, reward, terminated, truncated, info)`.
    fn step_gym<'py>(&mut self, py: Python<'py>, action: usize) -> PyResult<Bound<'py, PyTuple>> {
        let (frames, features, out, info) = self.play(py, action)?;
        let obs = PyDict::new(py);
        obs.set_item(intern!(py, "frames"), frames)?;
        obs.set_item(intern!(py, "features"), features)?;
        PyTuple::new(
            py,
            [
                obs.into_any(),
                out.reward.total().into_bound_py_any(py)?,
                out.terminated.into_bound_py_any(py)?,
                out.truncated.into_bound_py_any(py)?,
                info.into_any(),
            ],
        )
    }

    /// The current observation `(frames, features)` again.
    fn observation_now<'py>(&self, py: Python<'py>) -> Observation<'py> {
        self.observation(py)
    }

    /// The current screen as RGB `uint8 [144, 160, 3]` (DMG shades as greys).
    fn render<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray3<u8>> {
        rgb(py, self.env.gameboy().frame())
    }

    /// The decoded game state (the same dict as a step's `info`, without the counters).
    fn state<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        state_dict(py, self.env.state())
    }

    /// The last step's reward by component name (see `REWARD_COMPONENTS`).
    fn reward_components<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let d = PyDict::new(py);
        for (name, v) in zelda::RewardConfig::NAMES.iter().zip(self.components) {
            d.set_item(name, v)?;
        }
        Ok(d)
    }

    /// Everything needed to continue this environment exactly, as bytes.
    fn snapshot<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyBytes>> {
        let bytes = postcard::to_allocvec(&self.env.snapshot()).map_err(env_err)?;
        Ok(PyBytes::new(py, &bytes))
    }

    /// Continues from `snapshot()` bytes of an environment with the same ROM and settings.
    fn restore(&mut self, snapshot: &[u8]) -> PyResult<()> {
        let snap: zelda::EnvSnapshot = postcard::from_bytes(snapshot)
            .map_err(|e| env_err(format!("snapshot unreadable ({e})")))?;
        self.env.restore(&snap).map_err(env_err)
    }

    /// The emulator's save state (for `start_state` of another env or a replay).
    fn save_state<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, &self.env.gameboy().save_state())
    }

    /// Seconds Rust alone takes to play `actions` on this environment (the step and the
    /// observation written into reused buffers, resetting with seed 0 when an episode
    /// ends), the GIL released: the anchor of `python/bench_step.py`, which replays the
    /// same actions from the same snapshot through Python.
    fn bench_steps(&mut self, py: Python<'_>, actions: Vec<usize>) -> PyResult<f64> {
        let n = self.env.actions().len();
        if let Some(bad) = actions.iter().find(|&&a| a >= n) {
            return Err(PyValueError::new_err(format!(
                "action {bad} is out of range 0..{n}"
            )));
        }
        let env = &mut self.env;
        let mut frames = vec![0u8; env.config().frame_stack * zelda::obs::FRAME_PIXELS];
        let mut features = vec![0f32; zelda::obs::FEATURES];
        Ok(py.detach(move || {
            let start = std::time::Instant::now();
            for &a in &actions {
                let out = env.step(a);
                if out.done() {
                    env.reset(0);
                }
                env.write_observation(&mut frames, &mut features);
                std::hint::black_box((&frames, &features, out.reward.total()));
            }
            start.elapsed().as_secs_f64()
        }))
    }

    /// Number of actions.
    #[getter]
    fn n_actions(&self) -> usize {
        self.env.actions().len()
    }

    /// Action names in index order.
    #[getter]
    fn action_names(&self) -> Vec<&'static str> {
        self.env.actions().names()
    }

    /// Observation frames stacked.
    #[getter]
    fn frame_stack(&self) -> usize {
        self.env.config().frame_stack
    }

    /// Emulator frames per agent step.
    #[getter]
    fn frame_skip(&self) -> u32 {
        self.env.config().frame_skip
    }

    /// Steps taken in the current episode.
    #[getter]
    fn steps(&self) -> u32 {
        self.env.steps()
    }

    /// Episodes started so far (1 after the first reset).
    #[getter]
    fn episode(&self) -> u64 {
        self.env.episode()
    }

    /// The step limit after which an episode is truncated.
    #[getter]
    fn max_steps(&self) -> u32 {
        self.env.config().max_steps
    }
}

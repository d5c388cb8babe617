//! A batch of environments for Python (`zelda_rl._core.VecEnv`), stepped in Rust.

use numpy::{PyArray1, PyArray2, PyArray4, PyArrayMethods, PyReadonlyArray1};
use pyo3::exceptions::{PyIndexError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList, PyTuple};
use pyo3::{IntoPyObjectExt, intern};
use rollout::{RecorderConfig, SegmentContext};
use zelda::obs::{FEATURES, FRAME_HEIGHT, FRAME_WIDTH};

use crate::{Observation, config, env_err, new_observation, state_dict};

/// The seed env `env` of a `VecEnv(seed=seed)` starts episode `episode` (1 = the first)
/// with, so a single `Env` can replay it.
#[pyfunction]
pub(crate) fn episode_seed(seed: u64, env: u32, episode: u64) -> u64 {
    rollout::derive_seed(seed, &[0, u64::from(env), episode])
}

/// `n` environments stepped together in Rust (on `threads` threads, GIL released).
///
/// Autoreset is *same-step* (Gymnasium's `AutoresetMode.SAME_STEP`): when a step ends an
/// env's episode, that env is reset inside the same step, the returned observation is the
/// new episode's first, and the final one is kept for `final_observation(i)`.
#[pyclass(module = "zelda_rl._core")]
pub struct VecEnv {
    inner: rollout::VecEnv,
    actions: Vec<usize>,
    stack: usize,
}

impl VecEnv {
    fn check_index(&self, i: usize) -> PyResult<()> {
        if i >= self.inner.len() {
            return Err(PyIndexError::new_err(format!(
                "env index {i} is out of range 0..{}",
                self.inner.len()
            )));
        }
        Ok(())
    }

    fn observations<'py>(
        &self,
        py: Python<'py>,
    ) -> (Bound<'py, PyArray4<u8>>, Bound<'py, PyArray2<f32>>) {
        let n = self.inner.len();
        // SAFETY: new contiguous arrays, fully overwritten before Python sees them.
        unsafe {
            let frames = PyArray4::<u8>::new(py, [n, self.stack, FRAME_HEIGHT, FRAME_WIDTH], false);
            let features = PyArray2::<f32>::new(py, [n, FEATURES], false);
            frames
                .as_slice_mut()
                .expect("new array is contiguous")
                .copy_from_slice(self.inner.frames());
            features
                .as_slice_mut()
                .expect("new array is contiguous")
                .copy_from_slice(self.inner.features());
            (frames, features)
        }
    }
}

#[pymethods]
impl VecEnv {
    /// Builds `n` environments on `rom` (default: the embedded mini-zelda; booted once, or
    /// loaded from `start_state`), with the `[env]`/`[reward]` tables of `config_toml`,
    /// seeded from `seed` (see `episode_seed`), and resets them.
    #[new]
    #[pyo3(signature = (n, rom=None, seed=0, config_toml=None, threads=1, start_state=None))]
    fn new(
        py: Python<'_>,
        n: usize,
        rom: Option<&[u8]>,
        seed: u64,
        config_toml: Option<&str>,
        threads: usize,
        start_state: Option<&[u8]>,
    ) -> PyResult<Self> {
        let (env_cfg, reward_cfg) = config::parse(config_toml)?;
        let stack = env_cfg.frame_stack;
        let rom = rom.unwrap_or(zelda::MINI_ZELDA).to_vec();
        let start_state = start_state.map(<[u8]>::to_vec);
        let ctx = SegmentContext {
            run: String::new(),
            burst: 0,
            worker: 0,
            policy: String::new(),
            cartridge_sha1: String::new(),
            cartridge_title: String::new(),
            config_hash: String::new(),
        };
        let inner = py
            .detach(move || {
                rollout::VecEnv::new(
                    &rom,
                    start_state,
                    n,
                    env_cfg,
                    reward_cfg,
                    threads,
                    seed,
                    ctx,
                    RecorderConfig::default(),
                    false,
                )
            })
            .map_err(env_err)?;
        Ok(Self {
            inner,
            actions: vec![0; n],
            stack,
        })
    }

    /// Resets every environment (new episodes, seeds continuing the env's sequence) and
    /// returns the batch observation `(frames [n, stack, 72, 80], features [n, F])`.
    fn reset<'py>(
        &mut self,
        py: Python<'py>,
    ) -> (Bound<'py, PyArray4<u8>>, Bound<'py, PyArray2<f32>>) {
        let inner = &mut self.inner;
        py.detach(|| inner.reset_all());
        self.observations(py)
    }

    /// Steps env `i` with `actions[i]` for every `i` (an int64 array of length `n`);
    /// returns `(frames, features, rewards float32 [n], terminated bool [n], truncated
    /// bool [n])`, autoresetting in the same step.
    fn step<'py>(
        &mut self,
        py: Python<'py>,
        actions: PyReadonlyArray1<'py, i64>,
    ) -> PyResult<Bound<'py, PyTuple>> {
        let acts = actions.as_slice()?;
        let n = self.inner.len();
        if acts.len() != n {
            return Err(PyValueError::new_err(format!(
                "actions has {} entries, expected one per env ({n})",
                acts.len()
            )));
        }
        let n_actions = self.inner.n_actions();
        for (i, (&a, slot)) in acts.iter().zip(self.actions.iter_mut()).enumerate() {
            *slot = usize::try_from(a)
                .ok()
                .filter(|&a| a < n_actions)
                .ok_or_else(|| {
                    PyValueError::new_err(format!(
                        "actions[{i}] = {a} is out of range 0..{n_actions}"
                    ))
                })?;
        }
        let (inner, acts) = (&mut self.inner, &self.actions);
        py.detach(|| inner.step(acts));
        // Explorers' episodes (`env.explorers`) are not the caller's; `archive_stats` shows
        // what they found. Dropped here so they do not pile up.
        self.inner.take_explorer_episodes();
        let (frames, features) = self.observations(py);
        let rewards: Vec<f32> = (0..n).map(|i| self.inner.reward(i)).collect();
        let terminated: Vec<bool> = (0..n).map(|i| self.inner.terminated(i)).collect();
        let truncated: Vec<bool> = (0..n).map(|i| self.inner.truncated(i)).collect();
        PyTuple::new(
            py,
            [
                frames.into_any(),
                features.into_any(),
                PyArray1::from_vec(py, rewards).into_any(),
                PyArray1::from_vec(py, terminated).into_any(),
                PyArray1::from_vec(py, truncated).into_any(),
            ],
        )
    }

    /// The observation `(frames, features)` env `i` ended its last episode on (valid after
    /// a step where it terminated or was truncated).
    fn final_observation<'py>(&self, py: Python<'py>, i: usize) -> PyResult<Observation<'py>> {
        self.check_index(i)?;
        let (fr, fe) = self.inner.final_observation(i);
        Ok(new_observation(py, self.stack, |f, g| {
            f.copy_from_slice(fr);
            g.copy_from_slice(fe);
        }))
    }

    /// Episodes finished since the last call, as dicts: `env`, `episode`, `return`,
    /// `length`, `rooms`, `instruments`, `terminated`, `components` (by name) and `state`
    /// (the decoded state at the end).
    fn take_episodes<'py>(&mut self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let list = PyList::empty(py);
        for ep in self.inner.take_episodes() {
            let d = PyDict::new(py);
            d.set_item(intern!(py, "env"), ep.env)?;
            d.set_item(intern!(py, "episode"), ep.episode)?;
            d.set_item(intern!(py, "return"), ep.ret)?;
            d.set_item(intern!(py, "length"), ep.length)?;
            d.set_item(intern!(py, "rooms"), ep.rooms)?;
            d.set_item(intern!(py, "instruments"), ep.instruments)?;
            d.set_item(intern!(py, "terminated"), ep.terminated)?;
            let comps = PyDict::new(py);
            for (name, v) in zelda::RewardConfig::NAMES.iter().zip(ep.components) {
                comps.set_item(name, v)?;
            }
            d.set_item(intern!(py, "components"), comps)?;
            d.set_item(intern!(py, "state"), state_dict(py, &ep.last)?)?;
            list.append(d)?;
        }
        Ok(list)
    }

    /// Env `i`'s decoded state (after the last step, so after its reset if it ended).
    fn state<'py>(&self, py: Python<'py>, i: usize) -> PyResult<Bound<'py, PyDict>> {
        self.check_index(i)?;
        state_dict(py, self.inner.state(i))
    }

    /// The last step's reward components of env `i`, by name.
    fn reward_components<'py>(&self, py: Python<'py>, i: usize) -> PyResult<Bound<'py, PyDict>> {
        self.check_index(i)?;
        let d = PyDict::new(py);
        for (name, v) in zelda::RewardConfig::NAMES
            .iter()
            .zip(self.inner.reward_components(i))
        {
            d.set_item(name, v.into_bound_py_any(py)?)?;
        }
        Ok(d)
    }

    /// Env `i`'s current screen as RGB `uint8 [144, 160, 3]`.
    fn render<'py>(&self, py: Python<'py>, i: usize) -> PyResult<Bound<'py, numpy::PyArray3<u8>>> {
        self.check_index(i)?;
        Ok(crate::env::rgb(py, self.inner.env(i).gameboy().frame()))
    }

    /// The Go-Explore archive's size: `cells` reached, `states` kept (episodes can start
    /// there; at most `env.explore_cells`) and their packed `state_bytes`, its `rooms` and
    /// `progress`, and the goal ladder's `ladder_cells`, `ladder_top`, `ladder_frontier` and
    /// the frontier's `ladder_frontier_tries` and `ladder_frontier_wins`.
    fn archive_stats<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let a = self.inner.explore_stats();
        let d = PyDict::new(py);
        d.set_item(intern!(py, "cells"), a.cells)?;
        d.set_item(intern!(py, "states"), a.states)?;
        d.set_item(intern!(py, "state_bytes"), a.state_bytes)?;
        d.set_item(intern!(py, "rooms"), a.rooms)?;
        d.set_item(intern!(py, "progress"), a.progress)?;
        d.set_item(intern!(py, "ladder_cells"), a.ladder.cells)?;
        d.set_item(intern!(py, "ladder_top"), a.ladder.top)?;
        d.set_item(intern!(py, "ladder_frontier"), a.ladder.frontier)?;
        d.set_item(
            intern!(py, "ladder_frontier_tries"),
            a.ladder.frontier_tries,
        )?;
        d.set_item(intern!(py, "ladder_frontier_wins"), a.ladder.frontier_wins)?;
        Ok(d)
    }

    /// Everything needed to continue these environments exactly, as bytes.
    fn snapshot<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, &self.inner.snapshot())
    }

    /// Continues from `snapshot()` bytes of a vector env with the same ROM, size, seed and
    /// settings.
    fn restore(&mut self, snapshot: &[u8]) -> PyResult<()> {
        self.inner.restore(snapshot).map_err(env_err)
    }

    /// The current batch observation `(frames, features)` again.
    fn observation_now<'py>(
        &self,
        py: Python<'py>,
    ) -> (Bound<'py, PyArray4<u8>>, Bound<'py, PyArray2<f32>>) {
        self.observations(py)
    }

    /// Env 0's start state (the save state every reset returns to), to build more envs
    /// without booting again.
    fn start_state<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, self.inner.env(0).start_state())
    }

    /// Number of environments.
    #[getter]
    fn num_envs(&self) -> usize {
        self.inner.len()
    }

    /// Number of actions.
    #[getter]
    fn n_actions(&self) -> usize {
        self.inner.n_actions()
    }

    /// Action names in index order.
    #[getter]
    fn action_names(&self) -> Vec<&'static str> {
        self.inner.env(0).actions().names()
    }

    /// Observation frames stacked.
    #[getter]
    fn frame_stack(&self) -> usize {
        self.stack
    }
}

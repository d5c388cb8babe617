//! Python bindings of the zelda-rl environments: the `zelda_rl._core` extension module.
//!
//! - [`Env`] is one [`zelda::ZeldaEnv`]; `zelda_rl.env.ZeldaEnv` wraps it as a Gymnasium
//!   `Env`.
//! - [`VecEnv`] is a [`rollout::VecEnv`]: every environment steps in Rust, on its thread
//!   pool, with the GIL released; `zelda_rl.env.ZeldaVectorEnv` wraps it as a Gymnasium
//!   `VectorEnv` (same-step autoreset, like the Rust loop).
//! - `RolloutWorker` and `Learner` are the Ray driver's actors' objects
//!   (`train::distributed`): policy and chunk bytes cross the actors.
//! - [`bench_rust_steps`] times the same stepping without Python, the anchor of
//!   `python/bench_step.py`.
//!
//! Observations are NumPy arrays: frames `uint8 [stack, 72, 80]` (oldest first), features
//! `float32 [FEATURES]` (layout `zelda::obs::FEATURES_VERSION`).

pub mod config;
mod env;
mod train;
mod vec_env;

use numpy::{PyArray1, PyArray3, PyArrayMethods};
use pyo3::prelude::*;
use pyo3::types::PyDict;
use pyo3::{create_exception, intern};
use zelda::obs::{FEATURES, FRAME_HEIGHT, FRAME_WIDTH};
use zelda::{Direction, GameState};

pub use env::Env;
pub use vec_env::VecEnv;

create_exception!(
    _core,
    ConfigError,
    pyo3::exceptions::PyValueError,
    "A settings value (config_toml) was refused; the message names the field."
);
create_exception!(
    _core,
    TrainError,
    pyo3::exceptions::PyRuntimeError,
    "A training step failed or was refused (store, checkpoint, chunk, learner); the message says which."
);
create_exception!(
    _core,
    EnvError,
    pyo3::exceptions::PyValueError,
    "An environment could not be built (cartridge, start state, sizes or snapshot refused)."
);

impl From<config::ConfigError> for PyErr {
    fn from(e: config::ConfigError) -> Self {
        ConfigError::new_err(e.to_string())
    }
}

/// Converts an environment error into the Python `EnvError`.
fn env_err(e: impl std::fmt::Display) -> PyErr {
    EnvError::new_err(e.to_string())
}

/// One observation as NumPy arrays: frames `uint8 [stack, 72, 80]`, features `float32 [F]`.
type Observation<'py> = (Bound<'py, PyArray3<u8>>, Bound<'py, PyArray1<f32>>);

/// A fresh `uint8 [stack, 72, 80]` array and a fresh `float32 [FEATURES]` array filled by
/// `write` (which must write every element: the arrays start uninitialised).
fn new_observation<'py>(
    py: Python<'py>,
    stack: usize,
    write: impl FnOnce(&mut [u8], &mut [f32]),
) -> Observation<'py> {
    // SAFETY: both arrays are new, contiguous and unshared, and `write` overwrites every
    // element before Python can see them.
    unsafe {
        let frames = PyArray3::<u8>::new(py, [stack, FRAME_HEIGHT, FRAME_WIDTH], false);
        let features = PyArray1::<f32>::new(py, [FEATURES], false);
        write(
            frames.as_slice_mut().expect("new array is contiguous"),
            features.as_slice_mut().expect("new array is contiguous"),
        );
        (frames, features)
    }
}

/// The decoded game state as a dict (the `info` of a step): every `GameState` field, the
/// room as `indoor`/`map`/`room` plus its global index, and the derived counts.
fn state_dict<'py>(py: Python<'py>, s: &GameState) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    write_state(py, &d, None, s)?;
    Ok(d)
}

/// Writes `s` into a `state_dict` dict; with `prev` (the state `d` already holds), only
/// the entries that differ. A step usually changes two or three of them, and each
/// `set_item` costs about 50 ns, a third of the Python overhead of a step.
fn write_state(
    py: Python<'_>,
    d: &Bound<'_, PyDict>,
    prev: Option<&GameState>,
    s: &GameState,
) -> PyResult<()> {
    // `get` reads one entry's value from a state; the entry is written when it differs.
    macro_rules! put {
        ($key:literal, $get:expr) => {{
            let get = $get;
            let value = get(s);
            if prev.is_none_or(|p| get(p) != value) {
                d.set_item(intern!(py, $key), value)?;
            }
        }};
    }
    put!("mode", |s: &GameState| s.mode);
    put!("x", |s: &GameState| s.x);
    put!("y", |s: &GameState| s.y);
    if prev.is_none_or(|p| p.direction != s.direction) {
        let direction = match s.direction {
            Direction::Right => intern!(py, "right"),
            Direction::Left => intern!(py, "left"),
            Direction::Up => intern!(py, "up"),
            Direction::Down => intern!(py, "down"),
        };
        d.set_item(intern!(py, "direction"), direction)?;
    }
    put!("indoor", |s: &GameState| s.room.indoor);
    put!("map", |s: &GameState| s.room.map);
    put!("room", |s: &GameState| s.room.room);
    put!("room_index", |s: &GameState| s.room.global_index());
    put!("health", |s: &GameState| s.health);
    put!("max_hearts", |s: &GameState| s.max_hearts);
    put!("rupees", |s: &GameState| s.rupees);
    put!("small_keys", |s: &GameState| s.small_keys);
    put!("instruments", |s: &GameState| s.instrument_count());
    put!("dialog", |s: &GameState| s.dialog);
    put!("deaths", |s: &GameState| s.deaths);
    put!("rooms_visited", |s: &GameState| s.rooms_visited);
    Ok(())
}

/// SplitMix64 step: the action stream of [`bench_actions`] and [`bench_rust_steps`].
fn splitmix(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The `n` actions (of `n_actions`) that [`bench_rust_steps`] plays for `seed`, so the
/// Python side of the bench can play exactly the same ones.
#[pyfunction]
#[pyo3(signature = (n, seed, n_actions))]
fn bench_actions(
    py: Python<'_>,
    n: usize,
    seed: u64,
    n_actions: usize,
) -> PyResult<Bound<'_, PyArray1<i64>>> {
    if n_actions == 0 {
        return Err(pyo3::exceptions::PyValueError::new_err(
            "n_actions must be at least 1",
        ));
    }
    let mut s = seed;
    let v: Vec<i64> = (0..n)
        .map(|_| (splitmix(&mut s) % n_actions as u64) as i64)
        .collect();
    Ok(PyArray1::from_vec(py, v))
}

/// Seconds Rust alone takes for `n` steps of one environment (built like `Env(rom, seed,
/// config_toml)`, actions from [`bench_actions`], observation written into reused buffers
/// every step, reset with `seed + episode` when an episode ends), the GIL released.
#[pyfunction]
#[pyo3(signature = (n, seed, rom=None, config_toml=None))]
fn bench_rust_steps(
    py: Python<'_>,
    n: usize,
    seed: u64,
    rom: Option<&[u8]>,
    config_toml: Option<&str>,
) -> PyResult<f64> {
    let (env_cfg, reward_cfg) = config::parse(config_toml)?;
    let rom = rom.unwrap_or(zelda::MINI_ZELDA).to_vec();
    let mut env = zelda::ZeldaEnv::new(rom, env_cfg, reward_cfg).map_err(env_err)?;
    env.reset(seed);
    let n_actions = env.actions().len() as u64;
    let mut frames = vec![0u8; env.config().frame_stack * zelda::obs::FRAME_PIXELS];
    let mut features = vec![0f32; FEATURES];
    Ok(py.detach(move || {
        let mut s = seed;
        let mut episodes = 0u64;
        let start = std::time::Instant::now();
        for _ in 0..n {
            let a = (splitmix(&mut s) % n_actions) as usize;
            let out = env.step(a);
            if out.done() {
                episodes += 1;
                env.reset(seed.wrapping_add(episodes));
            }
            env.write_observation(&mut frames, &mut features);
            std::hint::black_box((&frames, &features, out.reward.total()));
        }
        start.elapsed().as_secs_f64()
    }))
}

/// The Python module `zelda_rl._core`.
#[pymodule]
fn _core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add_class::<Env>()?;
    m.add_class::<VecEnv>()?;
    m.add_class::<train::RolloutWorker>()?;
    m.add_class::<train::Learner>()?;
    m.add("TrainError", py.get_type::<TrainError>())?;
    m.add("ConfigError", py.get_type::<ConfigError>())?;
    m.add("EnvError", py.get_type::<EnvError>())?;
    m.add("FEATURES", FEATURES)?;
    m.add("FEATURES_VERSION", zelda::obs::FEATURES_VERSION)?;
    m.add("FRAME_HEIGHT", FRAME_HEIGHT)?;
    m.add("FRAME_WIDTH", FRAME_WIDTH)?;
    m.add("SCREEN_HEIGHT", gameboy::HEIGHT)?;
    m.add("SCREEN_WIDTH", gameboy::WIDTH)?;
    m.add("REWARD_COMPONENTS", zelda::RewardConfig::NAMES.to_vec())?;
    m.add(
        "MINI_ZELDA",
        pyo3::types::PyBytes::new(py, zelda::MINI_ZELDA),
    )?;
    m.add_function(wrap_pyfunction!(bench_actions, m)?)?;
    m.add_function(wrap_pyfunction!(bench_rust_steps, m)?)?;
    m.add_function(wrap_pyfunction!(vec_env::episode_seed, m)?)?;
    Ok(())
}

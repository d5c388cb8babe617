//! Action selection.

/// Chooses one action per environment from a batch of observations.
pub trait Policy {
    /// A short name recorded in segments (`random`, a checkpoint key, ...).
    fn name(&self) -> String;
    /// Fills `actions[i]` for each of the `actions.len()` environments. `frames` and
    /// `features` are the batch's contiguous observation buffers.
    fn act(&mut self, frames: &[u8], features: &[f32], actions: &mut [usize]);
}

/// Uniformly random actions from a seeded generator.
#[derive(Debug, Clone)]
pub struct RandomPolicy {
    n_actions: usize,
    state: u64,
}

impl RandomPolicy {
    /// Random over `n_actions` actions, reproducible from `seed`.
    pub fn new(n_actions: usize, seed: u64) -> Self {
        assert!(n_actions > 0, "a policy needs at least one action");
        Self {
            n_actions,
            state: seed,
        }
    }
}

impl Policy for RandomPolicy {
    fn name(&self) -> String {
        "random".into()
    }

    fn act(&mut self, _frames: &[u8], _features: &[f32], actions: &mut [usize]) {
        for a in actions {
            self.state = crate::splitmix(self.state);
            *a = (self.state % self.n_actions as u64) as usize;
        }
    }
}

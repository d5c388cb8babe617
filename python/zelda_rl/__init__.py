"""zelda-rl from Python: the Ray driver (``python -m zelda_rl.ray.train``).

The Gymnasium environment and the PyO3 bindings to the Rust core are not here yet
(issue 7); the driver runs the Rust ``zelda-rl`` binary.
"""

__version__ = "0.1.0"

"""Ray entry points of zelda-rl."""

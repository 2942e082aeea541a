"""LightningModules of the suite: training logic only, networks live in `lightning_modules.nets`."""

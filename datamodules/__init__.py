"""LightningDataModules: the NASA benchmark sets, MicroLite, a lab's own folder, synthetic micrographs."""

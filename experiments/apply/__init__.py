"""Applying a trained model to a lab's micrographs: predict, measure, export."""

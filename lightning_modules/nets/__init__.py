"""Plain-torch segmentation and classification networks (no Lightning, no file I/O)."""

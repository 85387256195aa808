"""Checkpoint inspection: streamed loading, weight spectra, and the inspect page."""

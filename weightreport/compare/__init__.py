"""Comparing runs: the distance between two runs' histograms and the diff report."""

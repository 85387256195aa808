"""The training side: the Collector, its hooks and probes, and the snapshots it writes to a run directory."""

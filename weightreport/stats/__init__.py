"""The statistics engine: one description of a tensor, filled by the exact host, compiled CPU, torch and split backends."""

"""Linear probes of the layers' states over a corpus analysis, with control tasks."""

"""Stage 4b (resemblance.smk): resemblance of Gramians, gate saturation, invariance probes."""

"""Stage 3 (activations.smk): every activation of every step, as Parquet tables."""

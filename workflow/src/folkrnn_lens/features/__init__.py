"""The musical features of each step, read off the tokens (features.parquet)."""

"""Corpus mode (corpus_analysis.smk): many tunes through the model, aggregated."""

"""Stage 2 (model.smk): folk-rnn v2, its checkpoints and its reference arithmetic."""

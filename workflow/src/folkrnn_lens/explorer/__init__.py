"""Stage 6 (explorer.smk): one interactive page per transcription, linked views of its
matrices, steps, units and score, and a front page for the whole run."""

"""Stage 4 (matrices.smk): the part-9 matrices of one transcription and their summary."""

"""BLAS threads of a rule script: Snakemake sets them for shell jobs, not for scripts."""

import os


def pin_blas_threads(threads: int) -> None:
    """Let numpy's (and torch's) BLAS use the rule's threads. Call before numpy
    loads, so jobs that run side by side do not oversubscribe the cores."""
    for variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[variable] = str(threads)

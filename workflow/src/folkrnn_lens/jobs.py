"""What a job's process needs before its work: the BLAS threads of a rule script
(Snakemake sets them for shell jobs, not for scripts), and this package on the
jobs' path."""

import os
from pathlib import Path


def pin_blas_threads(threads: int) -> None:
    """Let numpy's (and torch's) BLAS use the rule's threads, so jobs that run side
    by side do not oversubscribe the cores, and a result does not depend on how
    many jobs ran beside it. The variables reach libraries not yet loaded; the
    script's preamble has already loaded numpy (unpickling the params), so
    threadpoolctl sets the BLAS that is loaded."""
    for variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[variable] = str(threads)
    from threadpoolctl import threadpool_limits

    threadpool_limits(threads)


def export_package_path() -> str:
    """Put the folder holding this package first on PYTHONPATH, which local, conda
    and SLURM jobs inherit: a rule script's params hold the package's settings
    objects, unpickled before the script's own code runs."""
    folder = str(Path(__file__).resolve().parent.parent)
    paths = [folder, *[p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p and p != folder]]
    os.environ["PYTHONPATH"] = os.pathsep.join(paths)
    return folder

"""Logging for rule scripts: messages go to the rule's log file and to stderr."""

from __future__ import annotations

import logging
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def log_to(path: str | Path):
    """Log to ``path`` (and stderr) for the duration; an error is logged with its
    traceback before it propagates, so the log file tells why a job failed."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(path, mode="w", encoding="utf-8")
    console = logging.StreamHandler()
    root = logging.getLogger()
    formatter = logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    for h in (handler, console):
        h.setFormatter(formatter)
        root.addHandler(h)
    root.setLevel(logging.INFO)
    logging.captureWarnings(True)
    try:
        yield
    except Exception:
        logging.getLogger("folkrnn_lens").exception("failed")
        raise
    finally:
        for h in (handler, console):
            root.removeHandler(h)
        handler.close()

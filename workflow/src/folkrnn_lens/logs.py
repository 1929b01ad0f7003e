"""Logging for rule scripts: messages go to the rule's log file and to stderr."""

from __future__ import annotations

import logging
import time
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


def eta(started: float, done: int, total: int) -> str:
    """', 12 s so far, about 30 s left': progress of a long job for its log, so an
    unchanging log never hides a job that is still working. ``started`` is a
    time.perf_counter() reading; the estimate assumes the items cost alike."""
    elapsed = time.perf_counter() - started
    left = elapsed / done * (total - done) if done else float("nan")
    return f", {_duration(elapsed)} so far, about {_duration(left)} left"


def _duration(seconds: float) -> str:
    if seconds != seconds:  # NaN: nothing done yet
        return "? s"
    if seconds < 120:
        return f"{seconds:.0f} s"
    return f"{seconds / 60:.1f} min"


class Progress:
    """Counts work done of ``total`` and logs it with an estimate of the time left, at
    most every ``every`` seconds (and at the end), so a long job's log keeps moving."""

    def __init__(self, logger: logging.Logger, label: str, total: int, every: float = 5.0):
        self.logger, self.label, self.total, self.every = logger, label, total, every
        self.done, self.started = 0, time.perf_counter()
        self._last = self.started

    def advance(self, count: int, what: str = "") -> None:
        self.done += count
        now = time.perf_counter()
        if now - self._last >= self.every or self.done >= self.total:
            self._last = now
            detail = f" ({what})" if what else ""
            self.logger.info(
                "%s: %d of %d%s%s",
                self.label,
                self.done,
                self.total,
                detail,
                eta(self.started, self.done, self.total),
            )

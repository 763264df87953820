"""Logging setup: one JSON object per line (for log pipelines), or plain text for a terminal.

Code logs events with context in ``extra`` (``log.info("run finished", extra={"run_id": ...,
"job_id": ..., "slot": ...})``); the JSON formatter writes those fields next to the message, so
every firing, claim and failure line can be found by schedule id, run id or slot.
"""

from __future__ import annotations

import json
import logging
import sys
import time

# Attributes every LogRecord has; anything else on a record came from ``extra``.
# (uvicorn adds "color_message", the same text with terminal colours.)
_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message",
    "asctime",
    "taskName",
    "color_message",
}
FORMATS = ("auto", "json", "text")


class JsonFormatter(logging.Formatter):
    # A burst writes two lines a run: the encoder is made once and the timestamp's seconds part
    # formatted once a second.
    _encoder = json.JSONEncoder(default=str, ensure_ascii=False)
    _second = -1
    _second_text = ""

    def format(self, record: logging.LogRecord) -> str:
        event = {
            "ts": self._timestamp(record.created),
            "level": record.levelname.lower(),
            "logger": record.name,
            "event": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                event[key] = value
        if record.exc_info:
            event["exception"] = self.formatException(record.exc_info)
        return self._encoder.encode(event)

    def _timestamp(self, created: float) -> str:
        """ISO 8601 in UTC to the millisecond, as ``datetime.isoformat(timespec="milliseconds")``."""
        second = int(created)
        if second != self._second:
            self._second, self._second_text = second, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        return f"{self._second_text}.{int((created - second) * 1000):03d}+00:00"


def configure_logging(fmt: str = "auto", level: str = "INFO") -> None:
    """Send every logger's records to stderr; ``auto`` is text on a terminal, JSON otherwise."""
    if fmt == "auto":
        fmt = "text" if sys.stderr.isatty() else "json"
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        JsonFormatter() if fmt == "json" else logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s")
    )
    # Neither format shows the caller's file and line, thread or process: skip collecting them
    # for every record (the logging cookbook's optimisation; a burst logs two lines a run).
    logging._srcfile = None
    logging.logThreads = logging.logProcesses = logging.logMultiprocessing = False
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())

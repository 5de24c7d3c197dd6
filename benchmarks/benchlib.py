"""What the benchmark scripts share: a stderr log line and a counter of XLA compilations.

Imported as a sibling module (the scripts run as ``python benchmarks/NAME.py``).
"""

from __future__ import annotations

import sys
import time
from typing import Any

import jax


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


class CompileCounter:
    """Counts XLA backend compilations, to prove a timed region compiled nothing."""

    def __init__(self) -> None:
        self.count = 0
        jax.monitoring.register_event_duration_secs_listener(self._on_event)

    def _on_event(self, event: str, duration: float, **kwargs: Any) -> None:
        if event == "/jax/core/compile/backend_compile_duration":
            self.count += 1


COMPILES = CompileCounter()

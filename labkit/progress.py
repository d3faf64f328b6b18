"""Progress that fits where it runs: a widget bar in JupyterLab, a bar in a terminal, plain lines
under papermill/CI (LABKIT_PROGRESS=lines), nothing with LABKIT_PROGRESS=off."""

from __future__ import annotations

import os
import sys
import time

from labkit.console import say


def _mode() -> str:
    mode = os.environ.get("LABKIT_PROGRESS", "auto")
    if mode != "auto":
        return mode
    if os.environ.get("CI"):
        return "lines"
    try:
        from IPython import get_ipython

        shell = get_ipython()
        if shell is not None and type(shell).__name__ == "ZMQInteractiveShell":
            import ipywidgets  # noqa: F401

            return "notebook"
    except ImportError:
        pass
    return "bar" if sys.stderr.isatty() else "lines"


class Progress:
    """`update(n)` as work advances; `close()` at the end. Lines mode prints every `every_s` seconds."""

    def __init__(self, total: int | None, desc: str, unit: str = "ev", every_s: float = 2.0) -> None:
        self.mode, self.total, self.desc, self.unit, self.every_s = _mode(), total, desc, unit, every_s
        self.n, self.t0, self._last = 0, time.monotonic(), 0.0
        self.bar = None
        if self.mode == "notebook":
            from tqdm.notebook import tqdm

            self.bar = tqdm(total=total, desc=desc, unit=unit, unit_scale=True)
        elif self.mode == "bar":
            from tqdm import tqdm

            self.bar = tqdm(total=total, desc=desc, unit=unit, unit_scale=True, mininterval=0.5)

    def update(self, n: int = 1) -> None:
        self.n += n
        if self.bar is not None:
            self.bar.update(n)
        elif self.mode == "lines":
            now = time.monotonic()
            if now - self._last >= self.every_s:
                self._last = now
                self._line()

    def _line(self) -> None:
        el = time.monotonic() - self.t0
        of = f"/{self.total:,}" if self.total else ""
        say(f"{self.desc}: {self.n:,}{of} {self.unit} in {el:.1f}s ({self.n / max(el, 1e-9):,.0f}/s)")

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
        elif self.mode == "lines":
            self._line()

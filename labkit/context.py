"""The running context: the settings, the stack they select, the addresses seen from where, and the tokens.

One `Lab` per settings object, built once (a CLI call's, a notebook's `setup()`, a `Job`'s own) and handed out by
`of(settings)`: the same settings object always gives the same Lab, so the stack is built once and asked once
for each token. Before it, `submit_pipeline` built three stacks, and every `Influx()` one more (in docker mode a
`docker compose exec` each). Settings are immutable in practice (changes are `model_copy`s, new objects), so a
Lab never goes stale; a copy with another mode or home gets a Lab of its own.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING

from labkit.settings import Settings
from labkit.settings import get as get_settings

if TYPE_CHECKING:
    from labkit.stack.base import JobSide, Stack


TOKEN_TTL_S = 60.0


@dataclass(eq=False)
class Lab:
    settings: Settings
    _tokens: dict[str, tuple[float, str]] = field(default_factory=dict, repr=False)

    @cached_property
    def stack(self) -> Stack:
        from labkit import stack

        return stack.get(self.settings)

    @property
    def mode(self) -> str:
        return self.settings.mode

    # addresses as this machine (the host) reaches the services: the stack answers them
    @property
    def kafka(self) -> str:
        return self.stack.get_bootstrap_server()

    @property
    def flink(self) -> str:
        return self.stack.get_flink_url()

    @property
    def influx(self) -> str:
        return self.stack.get_influx_url()

    @cached_property
    def job_side(self) -> JobSide:
        """Addresses and the token file as the Flink job sees them (maybe in a container)."""
        return self.stack.job_side()

    def token(self, role: str = "read") -> str:
        """The stack's InfluxDB token for `role` (admin, write, read), asked at most once a minute: a verify
        polling InfluxDB reuses it, and a stack wiped and brought up again (new tokens) is seen within a minute."""
        now = time.monotonic()
        cached = self._tokens.get(role)
        if cached is not None and now - cached[0] > TOKEN_TTL_S:
            # a local stack reads its credentials when it is built: build it again, or a wiped and re-made
            # stack's new tokens would never be seen
            self.__dict__.pop("stack", None)
            self.__dict__.pop("job_side", None)
            cached = None
        if cached is None:
            cached = self._tokens[role] = (now, self.stack.influx_token(role))
        return cached[1]

    def __repr__(self) -> str:  # never the tokens
        return f"Lab(mode={self.mode!r}, home={str(self.settings.home)!r})"


#: the Labs of the most recent settings objects. A Lab holds its settings (and its stack holds them too), so a
#: registry of weak references could never let one go; a short LRU keeps the few a process uses (the CLI call's,
#: the notebook's, a job's, a test's copies) and drops the rest. Keyed by identity: settings are not hashable,
#: and two equal copies may still be meant apart (a home of their own).
KEPT = 16
_labs: OrderedDict[int, Lab] = OrderedDict()
_lock = threading.Lock()


def of(settings: Settings | None = None) -> Lab:
    """The Lab of `settings` (default: the process's settings), the same one each time for the same object."""
    settings = settings if settings is not None else get_settings()
    key = id(settings)
    with _lock:
        lab = _labs.get(key)
        if lab is not None and lab.settings is settings:
            _labs.move_to_end(key)
            return lab
        lab = _labs[key] = Lab(settings)
        while len(_labs) > KEPT:
            _labs.popitem(last=False)
        return lab

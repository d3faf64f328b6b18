"""What a service run as a local process provides to the local stack."""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path

from labkit.credentials import Credentials
from labkit.settings import Settings
from labkit.stack.process import ManagedProcess
from labkit.stack.readiness import WaitStrategy


class LocalService(ABC):
    name: str
    #: settings that name the ports this service binds (checked for conflicts before start)
    port_settings: tuple[str, ...] = ()

    def __init__(self, settings: Settings, creds: Credentials) -> None:
        self.settings, self.creds = settings, creds
        self.home: Path = settings.home / self.name
        self.process = ManagedProcess(self.name, settings.home)

    @property
    @abstractmethod
    def address(self) -> str: ...

    @abstractmethod
    def prepare(self) -> None:
        """Write config files and do first-run initialisation that needs no running process."""

    @abstractmethod
    def command(self) -> tuple[list[str], dict[str, str]]:
        """The command line and extra environment."""

    @abstractmethod
    def readiness(self) -> WaitStrategy: ...

    def after_ready(self) -> None:  # noqa: B027 (an optional hook)
        """First-run work that needs the running service (onboarding, topics)."""

    def ports(self) -> dict[str, int]:
        return {s: getattr(self.settings, s.removeprefix("LABKIT_").lower()) for s in self.port_settings}

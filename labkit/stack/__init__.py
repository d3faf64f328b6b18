"""Stack control: one interface (`Stack`), three backends (local, docker, external)."""

from __future__ import annotations

from labkit.settings import Settings
from labkit.settings import get as get_settings
from labkit.stack.base import ServiceStatus, Stack, StackStatus


def get(settings: Settings | None = None, mode: str | None = None) -> Stack:
    """The stack for `mode` (default: the LABKIT_MODE setting)."""
    settings = settings or get_settings()
    mode = mode or settings.mode
    if mode != settings.mode:
        settings = settings.model_copy(update={"mode": mode})
    if mode == "local":
        from labkit.stack.local import LocalStack

        return LocalStack(settings)
    if mode == "docker":
        from labkit.stack.docker import DockerStack, docker_settings

        return DockerStack(docker_settings(settings))
    from labkit.stack.external import ExternalStack

    return ExternalStack(settings)


__all__ = ["ServiceStatus", "Stack", "StackStatus", "get"]

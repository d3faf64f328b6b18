"""PyFlink's Flink distribution (bin/, lib/, conf/): where it is, checked against the pinned version.

A leaf module: the provisioning of the connector, the UDF jar and the loopback patch all need the distribution's
folder, and none of them may import the others' modules for it (they used to form an import circle).
"""

from __future__ import annotations

from pathlib import Path

from labkit.errors import MissingToolError
from labkit.versions import FLINK, FLINK_KAFKA_CONNECTOR


def flink_home() -> Path:
    """PyFlink's distribution folder, checked against the pinned version."""
    try:
        import pyflink
        from pyflink.version import __version__
    except ImportError as e:
        raise MissingToolError(
            "PyFlink (the apache-flink package) is not installed.", f"pip install 'apache-flink=={FLINK}'"
        ) from e
    if __version__ != FLINK:
        raise MissingToolError(
            f"apache-flink {__version__} is installed but the lab is pinned to {FLINK} "
            f"(the Kafka connector {FLINK_KAFKA_CONNECTOR} only works with it).",
            f"pip install 'apache-flink=={FLINK}'",
        )
    return Path(pyflink.__file__).parent

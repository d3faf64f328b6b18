"""Pins fit together in one place; environment.yml carries pyproject's deps; nothing secret is committed."""

import re
import subprocess
import tomllib
from pathlib import Path

import yaml

from labkit import versions

ROOT = Path(__file__).resolve().parents[2]


def _pyproject():
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def test_environment_yml_lists_exactly_pyprojects_deps():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip = next(d for d in env["dependencies"] if isinstance(d, dict))["pip"]
    p = _pyproject()["project"]
    expected = set(p["dependencies"]) | set(p["optional-dependencies"]["dev"]) | {"-e ."}
    assert set(pip) == expected
    conda = [d for d in env["dependencies"] if isinstance(d, str)]
    assert "python=3.11" in conda
    assert f"openjdk={versions.JAVA_MAJOR}" in conda


def test_pyflink_pin_matches_versions():
    deps = _pyproject()["project"]["dependencies"]
    assert f"apache-flink=={versions.FLINK}" in deps
    assert f"grafana-foundation-sdk=={versions.GRAFANA_FOUNDATION_SDK}" in deps
    # the connector is built for exactly this Flink minor
    assert versions.FLINK_KAFKA_CONNECTOR.endswith("-" + ".".join(versions.FLINK.split(".")[:2]))


def test_installed_pyflink_is_the_pinned_one():
    from pyflink.version import __version__

    assert __version__ == versions.FLINK


def test_no_secret_is_committed():
    files = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True).stdout.split()
    assert ".env" not in files and "compose/.env" not in files
    pattern = re.compile(r"(token|password)[ \t]*[:=][ \t]*['\"]?[A-Za-z0-9_\-]{20,}", re.I)
    for f in files:
        path = ROOT / f
        if (
            path.suffix in {".py", ".yml", ".yaml", ".json", ".md", ".toml", ".env", ".example", ".ipynb"}
            and path.is_file()
        ):
            assert not pattern.search(path.read_text(errors="ignore")), f"possible secret in {f}"


def test_every_suite_that_needs_the_stack_is_marked_so():
    """`-m stack` selects the suites that need services; a suite without the mark would be run, or left out,
    by accident."""
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    unmarked = [
        str(p.relative_to(root))
        for d in ("stack", "pipeline")
        for p in sorted((root / d).glob("test_*.py"))
        if not re.search(r"^pytestmark = \[?pytest\.mark\.stack", p.read_text(), re.M)
    ]
    assert not unmarked, unmarked


def test_no_two_test_files_share_a_name():
    """The test folders are not packages, so pytest imports each test file under its bare name: two files called
    the same in different folders cannot be collected in one run (`pytest tests -m slow` failed CI so)."""
    from collections import Counter

    root = Path(__file__).resolve().parents[1]
    names = Counter(p.name for p in root.rglob("test_*.py") if "__pycache__" not in p.parts)
    assert not [n for n, k in names.items() if k > 1], [n for n, k in names.items() if k > 1]

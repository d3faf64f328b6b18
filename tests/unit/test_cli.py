"""Bad CLI arguments and settings get one sentence and a fix (exit 2), never a traceback."""

import subprocess
import sys
from pathlib import Path

import pytest

LABKIT = str(Path(sys.executable).with_name("labkit"))


@pytest.mark.parametrize(
    ("args", "env", "expected"),
    [
        (["--mode", "foo", "status"], {}, "--mode 'foo' is not a mode"),
        (["produce", "-n", "1", "--rate", "-5"], {}, "rate must be positive"),
        (["produce", "-n", "1", "--scenario", "meteor"], {}, "unknown scenario 'meteor'"),
        (["produce", "-n", "1", "--late", "2"], {}, "late_fraction must be between 0 and 1"),
        (["produce", "-n", "1", "--engine", "turbo"], {}, "unknown producer engine"),
        (["query", "nope"], {}, "unknown measurement 'nope'"),
        (["status"], {"LABKIT_KAFKA_PORT": "abc"}, "setting LABKIT_KAFKA_PORT is invalid"),
        (["status"], {"LABKIT_INFLUX_PORT": "9092"}, "each service needs its own port"),
        (["logs", "nosuchservice"], {}, "there is no service 'nosuchservice'"),
    ],
)
def test_bad_input_is_one_sentence(args, env, expected, tmp_path):
    import os

    full_env = {k: v for k, v in os.environ.items() if not k.startswith("LABKIT_")}
    full_env.update(env, LABKIT_HOME=str(tmp_path))
    r = subprocess.run([LABKIT, *args], capture_output=True, text=True, env=full_env, timeout=60)
    assert r.returncode == 2, r.stdout + r.stderr
    assert expected in r.stderr
    assert "Traceback" not in r.stderr and "fix:" in r.stderr or expected in r.stderr


def test_bad_option_type_is_a_usage_error(tmp_path):
    r = subprocess.run([LABKIT, "produce", "--count", "many"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "Traceback" not in r.stderr

"""Bad CLI arguments and settings get one sentence and a fix (exit 2), never a traceback."""

import subprocess

import pytest

from tests.cli import LABKIT


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
    # One sentence and a fix, never a traceback. (This was `A and B or expected in r.stderr`, true whenever the
    # line above passed, so it could not fail; each condition is now asserted on its own.)
    assert "Traceback" not in r.stderr, r.stderr
    assert "fix:" in r.stderr, r.stderr


def test_bad_option_type_is_a_usage_error(tmp_path):
    r = subprocess.run([LABKIT, "produce", "--count", "many"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "Traceback" not in r.stderr


def test_the_global_mode_option_reaches_every_command_through_the_settings(monkeypatch):
    """`labkit --mode docker submit` must submit to the docker stack: the option becomes the mode every command's
    settings read, not only the stack commands'."""
    from labkit import cli
    from labkit import settings as settings_mod

    monkeypatch.setenv("LABKIT_MODE", "local")
    settings_mod.get.cache_clear()
    assert settings_mod.get().mode == "local"
    try:
        cli.main(mode="docker")
        assert settings_mod.get().mode == "docker"
    finally:
        monkeypatch.setenv("LABKIT_MODE", "local")
        settings_mod.get.cache_clear()


def test_a_missing_need_skips_on_a_laptop_and_fails_in_ci(monkeypatch):
    import pytest

    from tests.requirements import need

    need(True, "nothing is missing")  # no effect
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception):
        need(False, "kcat is not installed")
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="CI must run this suite, but kcat is not installed"):
        need(False, "kcat is not installed")

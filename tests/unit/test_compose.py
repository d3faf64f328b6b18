"""The compose stack, checked without a Docker engine: the spec (via compose-go, the library docker compose
uses), healthchecks, loopback-only ports, no literal secrets, pins that match the local stack."""

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from labkit import versions

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "compose" / "docker-compose.yml"
DUMMY = {
    "INFLUXDB_ADMIN_PASSWORD": "x" * 12,
    "INFLUXDB_ADMIN_TOKEN": "y" * 12,
    "GRAFANA_ADMIN_PASSWORD": "z" * 12,
    "JUPYTER_TOKEN": "t" * 12,
}


@pytest.fixture(scope="module")
def compose():
    return yaml.safe_load(COMPOSE.read_text())


@pytest.mark.skipif(shutil.which("go") is None, reason="go not installed")
def test_compose_file_validates_against_the_compose_spec():
    import os

    r = subprocess.run(
        ["go", "run", ".", str(COMPOSE)],
        cwd=ROOT / "tools" / "composecheck",
        env={**os.environ, **DUMMY},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert r.returncode == 0, r.stderr
    assert set(r.stdout.split()) >= {"kafka", "jobmanager", "taskmanager", "influxdb", "grafana", "jupyter"}


@pytest.mark.skipif(shutil.which("go") is None, reason="go not installed")
def test_missing_secrets_are_refused_with_a_hint():
    r = subprocess.run(
        ["go", "run", ".", str(COMPOSE)],
        cwd=ROOT / "tools" / "composecheck",
        capture_output=True,
        text=True,
        timeout=600,
        env={k: v for k, v in __import__("os").environ.items() if k not in DUMMY},
    )
    assert r.returncode != 0 and "labkit up --mode docker" in r.stderr


def test_every_service_has_a_healthcheck_or_is_a_one_shot(compose):
    for name, svc in compose["services"].items():
        if svc.get("restart") == "no":  # one-shot init: dependents wait for service_completed_successfully
            continue
        assert "healthcheck" in svc, f"{name} has no healthcheck"


def test_dependents_wait_for_health(compose):
    for name, svc in compose["services"].items():
        for dep, cond in (svc.get("depends_on") or {}).items():
            wanted = (
                "service_completed_successfully"
                if compose["services"][dep].get("restart") == "no"
                else "service_healthy"
            )
            assert cond["condition"] == wanted, f"{name} -> {dep}"


def test_every_one_shot_is_awaited_by_a_long_running_service(compose):
    """`docker compose up --wait` fails on a one-shot's clean exit unless a running service depends on its
    completion (docker/compose#10596); a CI run hit it with kafka-init."""
    default = {n: s for n, s in compose["services"].items() if not s.get("profiles")}
    one_shots = {n for n, s in default.items() if s.get("restart") == "no"}
    adopted = {
        dep
        for n, s in default.items()
        if n not in one_shots
        for dep, cond in (s.get("depends_on") or {}).items()
        if cond.get("condition") == "service_completed_successfully"
    }
    assert one_shots and one_shots <= adopted, f"not awaited by a running service: {one_shots - adopted}"


def test_ports_are_published_on_loopback_only(compose):
    for name, svc in compose["services"].items():
        for port in svc.get("ports", []):
            assert str(port).startswith("127.0.0.1:"), f"{name} publishes {port} beyond loopback"


def test_no_literal_secrets(compose):
    for name, svc in compose["services"].items():
        env = svc.get("environment") or {}
        for key, value in env.items() if isinstance(env, dict) else []:
            if re.search(r"TOKEN|PASSWORD|SECRET", key) and isinstance(value, str):
                assert value.startswith("${") or value.startswith("/secrets/"), f"{name}.{key} is a literal secret"
    example = (ROOT / "compose" / ".env.example").read_text()
    for line in example.splitlines():
        if re.match(r"^\w*(TOKEN|PASSWORD)\w*=", line):
            assert line.endswith("="), f"a secret has a value in .env.example: {line}"


def test_images_are_pinned_and_match_the_local_stack(compose):
    images = {name: svc.get("image") for name, svc in compose["services"].items()}
    assert images["kafka"] == versions.IMAGES["kafka"]
    assert images["influxdb"] == versions.IMAGES["influxdb"]
    assert images["grafana"] == versions.IMAGES["grafana"]
    for name, img in images.items():
        assert img and ":" in img and not img.endswith(":latest"), f"{name} image not pinned"
    args = compose["x-flink-build"]["args"]
    assert args["FLINK_VERSION"] == versions.FLINK
    assert args["PYFLINK_VERSION"] == versions.FLINK
    assert args["KAFKA_CONNECTOR_VERSION"] == versions.FLINK_KAFKA_CONNECTOR
    dockerfile = (ROOT / "compose" / "flink" / "Dockerfile").read_text()
    assert f"ARG FLINK_VERSION={versions.FLINK}" in dockerfile
    assert f"ARG PYFLINK_VERSION={versions.FLINK}" in dockerfile
    assert f"ARG KAFKA_CONNECTOR_VERSION={versions.FLINK_KAFKA_CONNECTOR}" in dockerfile
    assert f"ARG FLINK_IMAGE=flink:${{FLINK_VERSION}}-java{versions.JAVA_MAJOR}" in dockerfile
    assert "clickstream-udf.jar" in dockerfile  # the same Java functions as the local stack
    assert versions.IMAGES["flink"] == f"flink:{versions.FLINK}-java{versions.JAVA_MAJOR}"


def test_ci_override_only_swaps_images_for_ones_built_here_at_the_same_versions():
    """CI's override (compose/ci/) may change images and nothing else but Grafana's profile."""
    from labkit.stack.provision.docker_ci import images

    override = yaml.safe_load((ROOT / "compose" / "ci" / "docker-compose.ci.yml").read_text())
    tags = images()
    for name, svc in override["services"].items():
        extra = set(svc) - {"image", "build", "profiles"}
        assert not extra, f"the CI override changes {extra} of {name}"
        if "image" in svc:
            assert svc["image"] in tags.values(), f"{name}: {svc['image']} is not built by docker_ci"
        if "build" in svc:
            assert set(svc["build"]) == {"args"}
            assert set(svc["build"]["args"].values()) <= set(tags.values())
        if "profiles" in svc:
            assert name == "grafana"
    assert tags["kafka"].endswith(versions.KAFKA) and tags["influxdb"].endswith(versions.INFLUXDB)
    assert tags["flink"].endswith(f"{versions.FLINK}-java{versions.JAVA_MAJOR}")


def test_stack_fits_an_8_gb_laptop(compose):
    def mb(v: str) -> float:
        n, unit = float(v[:-1]), v[-1].lower()
        return n * 1024 if unit == "g" else n

    total = sum(mb(svc["deploy"]["resources"]["limits"]["memory"]) for svc in compose["services"].values())
    assert total <= 8 * 1024 - 1024, f"{total} MB of limits leaves no room for the host"


def test_grafana_is_anonymous_viewer_with_embedding(compose):
    env = compose["services"]["grafana"]["environment"]
    assert env["GF_AUTH_ANONYMOUS_ENABLED"] == "true"
    assert env["GF_AUTH_ANONYMOUS_ORG_ROLE"] == "Viewer"
    assert env["GF_SECURITY_ALLOW_EMBEDDING"] == "true"


def test_generated_env_file_has_random_private_secrets(tmp_path):
    import os
    import stat

    from labkit.stack.docker import ensure_env_file

    shutil.copy(ROOT / "compose" / ".env.example", tmp_path / ".env.example")
    env = ensure_env_file(tmp_path)
    assert stat.S_IMODE(os.stat(env).st_mode) == 0o600
    values = dict(
        line.split("=", 1) for line in env.read_text().splitlines() if "=" in line and not line.startswith("#")
    )
    assert len(values["INFLUXDB_ADMIN_TOKEN"]) >= 32 and len(values["GRAFANA_ADMIN_PASSWORD"]) >= 16
    assert len(values["JUPYTER_TOKEN"]) >= 32


def test_an_older_env_file_gets_the_secrets_it_lacks_and_keeps_the_rest(tmp_path):
    """compose/.env made before JUPYTER_TOKEN existed: compose would refuse to start (the variable is required),
    so the docker backend appends it; the values already there (the running InfluxDB's token) stay."""
    import os
    import stat

    from dotenv import dotenv_values

    from labkit.stack.docker import ensure_env_file

    env = tmp_path / ".env"
    env.write_text("INFLUXDB_ADMIN_PASSWORD=p\nINFLUXDB_ADMIN_TOKEN=keep-me\nGRAFANA_ADMIN_PASSWORD=g")
    ensure_env_file(tmp_path)
    values = dotenv_values(env)
    assert values["INFLUXDB_ADMIN_TOKEN"] == "keep-me" and values["GRAFANA_ADMIN_PASSWORD"] == "g"
    assert len(values["JUPYTER_TOKEN"]) >= 32
    assert stat.S_IMODE(os.stat(env).st_mode) == 0o600
    before = env.read_text()
    ensure_env_file(tmp_path)
    assert env.read_text() == before  # nothing missing: left as it is


def test_jupyter_requires_a_token_and_gets_the_read_token_only(compose):
    """JupyterLab runs arbitrary code for whoever reaches it: a token is required, and it holds no admin token
    and none of /secrets (the write token) — only a copy of the read token in a volume of its own."""
    jupyter = compose["services"]["jupyter"]
    env = jupyter["environment"]
    command = " ".join(jupyter["command"])

    assert env["JUPYTER_TOKEN"].startswith("${JUPYTER_TOKEN:?"), "compose must refuse to start without a token"
    assert "ServerApp.token=" not in command and "IdentityProvider.token=" not in command  # never emptied
    assert 'if [ -z "$${JUPYTER_TOKEN:-}" ]' in command  # and the container refuses an empty one
    assert "JUPYTER_TOKEN=" in (ROOT / "compose" / ".env.example").read_text()
    dockerfile = (ROOT / "compose" / "jupyter" / "Dockerfile").read_text().splitlines()
    (cmd,) = [ln for ln in dockerfile if ln.startswith("CMD")]
    assert "ServerApp.token=" not in cmd  # the image's own default must not switch login off either

    assert "LABKIT_INFLUX_TOKEN" not in env  # the admin token
    assert not [k for k, v in env.items() if "INFLUXDB_ADMIN" in str(v)], env
    assert "INFLUXDB_ADMIN" not in command

    volumes = [str(v) for v in jupyter["volumes"]]
    assert not [v for v in volumes if "/secrets" in v or v.split(":")[0] == "secrets"], volumes
    assert "jupyter-secrets:/run/labkit:ro" in volumes
    assert "cat /run/labkit/influx-read.token" in command
    # what lands in that volume: influxdb-init copies the read token there, and only that file
    init = compose["services"]["influxdb-init"]
    assert "jupyter-secrets:/jupyter-secrets" in init["volumes"]
    copied = [ln for ln in init["command"][0].splitlines() if "/jupyter-secrets/" in ln]
    assert copied and all("influx-read.token" in ln for ln in copied), copied
    assert not [ln for ln in copied if "write" in ln or "admin" in ln.lower()]
    assert jupyter["ports"] == ["127.0.0.1:${JUPYTER_HOST_PORT:-8888}:8888"]


def test_flink_in_docker_has_no_web_submission_and_no_open_cors(compose):
    """The same REST hardening as the local stack's conf writer (labkit/stack/flink.py)."""
    props = dict(
        line.split(": ", 1)
        for line in compose["x-flink-common"]["environment"]["FLINK_PROPERTIES"].splitlines()
        if line.strip()
    )
    assert props["web.submit.enable"] == "false"
    assert props["web.access-control-allow-origin"] == "http://127.0.0.1:${FLINK_HOST_PORT:-8081}"
    for name in ("jobmanager", "taskmanager"):
        assert (
            compose["services"][name]["environment"]["FLINK_PROPERTIES"]
            == (compose["x-flink-common"]["environment"]["FLINK_PROPERTIES"])
        )


def test_docker_mode_without_docker_says_so_and_suggests_local(monkeypatch):
    from labkit.errors import MissingToolError
    from labkit.settings import load
    from labkit.stack.docker import DockerStack

    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(MissingToolError) as e:
        DockerStack(load(mode="docker")).up()
    assert "Docker" in e.value.message and "--mode local" in e.value.hint


def test_docker_backend_publishes_the_settings_ports_and_names_a_wrong_override():
    from labkit.errors import LabkitError
    from labkit.settings import load
    from labkit.stack.docker import DockerStack

    st = DockerStack(load(mode="docker", kafka_port=29092, influx_port=28086, grafana_url="http://127.0.0.1:23000"))
    assert st._ports() == {
        "KAFKA_HOST_PORT": "29092",
        "FLINK_HOST_PORT": "8081",
        "INFLUXDB_HOST_PORT": "28086",
        "GRAFANA_HOST_PORT": "23000",
    }
    files = DockerStack(load(mode="docker", compose_override="ci/docker-compose.ci.yml"))._files()
    assert files[-2:] == ["-f", str(ROOT / "compose" / "ci" / "docker-compose.ci.yml")]
    with pytest.raises(LabkitError) as e:
        DockerStack(load(mode="docker", compose_override="ci/nope.yml"))._files()
    assert "LABKIT_COMPOSE_OVERRIDE" in e.value.message and "ci/docker-compose.ci.yml" in e.value.hint


def test_compose_makes_the_topics_and_ports_the_settings_name(compose, monkeypatch, tmp_path):
    """One owner per fact: the settings name the lab's topics, their partitions and the host ports; compose's
    kafka-init and its published ports must say the same, or docker mode drifts from local mode."""
    from labkit.settings import load

    monkeypatch.chdir(tmp_path)  # no .env of the working directory
    for k in [k for k in __import__("os").environ if k.startswith("LABKIT_")]:
        monkeypatch.delenv(k)
    s = load(home=tmp_path / "home")
    script = "\n".join(compose["services"]["kafka-init"]["command"])
    made = re.search(r"for t in ([\w ]+); do", script)
    assert made and set(made[1].split()) == {s.topic, s.dlq_topic}, script
    assert f"--partitions {s.partitions} " in script, script
    published = {
        name: re.search(r":\$\{\w+:-(\d+)\}:", svc["ports"][0])[1]
        for name, svc in compose["services"].items()
        if svc.get("ports")
    }
    assert published["kafka"] == str(s.kafka_port)
    assert published["jobmanager"] == str(s.flink_rest_port)
    assert published["influxdb"] == str(s.influx_port)


def test_compose_env_is_read_in_one_place(tmp_path):
    """compose_env() is the one reader of compose/.env (the docker backend's token and settings, publishing a
    dashboard): nothing before the file exists, and its values as docker compose reads them."""
    from labkit.stack.docker import compose_env

    assert compose_env(tmp_path) == {}
    (tmp_path / ".env").write_text("# a comment\nGRAFANA_ADMIN_PASSWORD=g\nINFLUXDB_ORG=clickstream\n")
    assert compose_env(tmp_path) == {"GRAFANA_ADMIN_PASSWORD": "g", "INFLUXDB_ORG": "clickstream"}

"""The hardening issue, checked without a running stack: secrets masked in settings and printed job specs,
secret files 0600 and never written through a symlink, workshop files outside the repository and gone after
teardown, and the local Flink REST API without web submission or an open CORS policy."""

from __future__ import annotations

import json
import os
import stat
import uuid
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from labkit import credentials
from labkit import settings as settings_mod
from labkit.errors import ConfigError
from labkit.settings import load


def _mode(path: Path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


def _planted_link(tmp_path: Path, at: Path) -> Path:
    """A symlink at `at` to a file holding a marker; returns the file, which must stay untouched."""
    victim = tmp_path / f"victim-{uuid.uuid4().hex[:6]}"
    victim.write_text("untouched\n")
    os.chmod(victim, 0o644)
    at.parent.mkdir(parents=True, exist_ok=True)
    at.symlink_to(victim)
    return victim


# ---- 1. tokens are secrets --------------------------------------------------------------------------------


def test_settings_never_show_tokens_but_clients_get_them(clean, monkeypatch):
    from labkit.stack.external import ExternalStack
    from labkit.workshop import _influx

    admin, write, read, password = (f"{r}-{uuid.uuid4().hex}" for r in ("admin", "write", "read", "pw"))
    monkeypatch.setenv("LABKIT_INFLUX_TOKEN", admin)  # as users set them: environment (or .env)
    s = load(mode="external", influx_write_token=write, influx_read_token=read, kafka_sasl_password=password)
    shown = [repr(s), str(s), s.model_dump_json(), json.dumps(s.model_dump(mode="json")), repr(s.model_dump())]
    for text in shown:
        for secret in (admin, write, read, password):
            assert secret not in text, f"a secret is shown: {text[:200]}"
    assert "**********" in repr(s)

    st = ExternalStack(s)  # what every client (readiness checks, Influx, jobs) gets its token from
    assert (st.influx_token("admin"), st.influx_token("write"), st.influx_token("read")) == (admin, write, read)
    assert settings_mod.reveal(s.influx_token) == admin
    from labkit.influx import Influx

    with Influx(s) as db:  # the notebooks' client: the read token, raw
        assert db.client.token == read
    with _influx(s) as http:  # the workshop's admin client
        assert http.headers["Authorization"] == f"Token {admin}"
    # model_copy does not validate: a plain str put there still reaches the client as it is
    assert ExternalStack(s.model_copy(update={"influx_read_token": "plain"})).influx_token("read") == "plain"
    # without the role's own token, external mode falls back to the admin token, as before
    assert ExternalStack(load(mode="external", influx_token=admin)).influx_token("read") == admin


# ---- 2. labkit submit --print-spec / --spec-file -----------------------------------------------------------


def _secured_env(clean: Path, via_file: bool) -> tuple[dict[str, str], str]:
    marker = uuid.uuid4().hex  # unique: found anywhere in the output means the password leaked
    password = f"p\"q'r\\s{marker}"  # quotes and a backslash: JAAS and SQL both escape them
    env = {
        "LABKIT_MODE": "external",
        "LABKIT_KAFKA_BOOTSTRAP": "k1:9092",
        "LABKIT_KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT",
        "LABKIT_KAFKA_SASL_USERNAME": "alice",
        "LABKIT_FLINK_REST_URL": "http://flink:8081",
        "LABKIT_INFLUX_URL": "http://influx:8086",
        "LABKIT_INFLUX_TOKEN": f"admin-{uuid.uuid4().hex}",
        "LABKIT_INFLUX_WRITE_TOKEN": f"write-{uuid.uuid4().hex}",
        "LABKIT_FLINK_INFLUX_TOKEN_FILE": "/shared/a.write-token",
    }
    if via_file:
        pw = clean / "kafka.password"
        pw.write_text(password + "\n")
        os.chmod(pw, 0o600)
        env["LABKIT_KAFKA_SASL_PASSWORD_FILE"] = str(pw)
    else:
        env["LABKIT_KAFKA_SASL_PASSWORD"] = password
    return env, marker


def _submit(args: list[str], env: dict[str, str]):
    from labkit.cli import app

    settings_mod.get.cache_clear()
    try:
        return CliRunner().invoke(app, ["submit", *args], env=env)
    finally:
        settings_mod.get.cache_clear()


@pytest.mark.parametrize("via_file", [False, True], ids=["password-variable", "password-file"])
def test_print_spec_masks_secrets(clean, via_file):
    env, marker = _secured_env(clean, via_file)
    r = _submit(["--print-spec"], env)
    assert r.exit_code == 0, r.output
    assert marker not in r.output
    for k in ("LABKIT_INFLUX_TOKEN", "LABKIT_INFLUX_WRITE_TOKEN"):
        assert env[k] not in r.output
    spec = json.loads(r.output)
    ddl = "\n".join(spec["ddl"])
    assert 'username="alice" password="***"' in ddl  # the connector options still say what is configured
    assert spec["config"]["pipeline.name"] == "clickstream-metrics"  # and the rest of the spec is all there


def test_spec_file_has_the_secrets_is_private_and_refuses_a_symlink(clean):
    env, marker = _secured_env(clean, via_file=False)
    out = clean / "specs" / "job.json"
    r = _submit(["--spec-file", str(out)], env)
    assert r.exit_code == 0, r.output
    assert marker not in r.output  # nothing printed but where the file is
    assert _mode(out) == 0o600
    spec = json.loads(out.read_text())
    assert marker in "\n".join(spec["ddl"])  # the real password: the file is what `flink run` is given

    # --print-spec beside --spec-file: the file has the secret, the terminal does not
    both = clean / "specs" / "both.json"
    r = _submit(["--print-spec", "--spec-file", str(both)], env)
    assert r.exit_code == 0 and marker not in r.output and marker in both.read_text()

    link = clean / "specs" / "planted.json"
    victim = _planted_link(clean, link)
    r = _submit(["--spec-file", str(link)], env)
    assert isinstance(r.exception, ConfigError) and "symbolic link" in r.exception.message
    assert victim.read_text() == "untouched\n" and _mode(victim) == 0o644
    assert link.is_symlink()


def test_masked_spec_catches_a_secret_that_reaches_the_spec_another_way(clean):
    """The password is kept out by building from masked settings; any secret that still shows up (a future
    field, say) is replaced by the second pass."""
    from labkit.cli import MASK, masked_spec

    token = f"tok-{uuid.uuid4().hex}"
    s = load(mode="external", influx_token=token)
    spec = masked_spec(s, lambda _: {"config": {"x": f"Token {token}"}, "ddl": [token, 1], "n": 4})
    assert spec == {"config": {"x": f"Token {MASK}"}, "ddl": [MASK, 1], "n": 4}


# ---- 3. secret files: 0600, never through a symlink ---------------------------------------------------------


def test_write_secret_is_private_atomic_and_refuses_symlinks(tmp_path):
    old = os.umask(0)  # even a permissive umask gives 0600
    try:
        p = credentials.write_secret(tmp_path / "sub" / "s.token", "one")
    finally:
        os.umask(old)
    assert p.read_text() == "one" and _mode(p) == 0o600
    os.chmod(p, 0o644)
    credentials.write_secret(p, "two")  # an existing file is replaced, and ends up 0600 again
    assert p.read_text() == "two" and _mode(p) == 0o600
    assert sorted(x.name for x in p.parent.iterdir()) == ["s.token"]  # no temporary file left behind

    link = tmp_path / "link.token"
    victim = _planted_link(tmp_path, link)
    with pytest.raises(ConfigError, match="symbolic link"):
        credentials.write_secret(link, "secret")
    assert victim.read_text() == "untouched\n" and _mode(victim) == 0o644
    dangling = tmp_path / "dangling.token"
    dangling.symlink_to(tmp_path / "would-be-created")
    with pytest.raises(ConfigError):
        credentials.write_secret(dangling, "secret")
    assert not (tmp_path / "would-be-created").exists()


def test_credentials_file_refuses_symlinks(tmp_path):
    home = tmp_path / "home"
    # the old fixed temporary name, planted as a link: no longer used, so never written through
    victim = _planted_link(tmp_path, home / "secrets.tmp")
    creds = credentials.load_or_create(home)
    assert victim.read_text() == "untouched\n"
    assert _mode(credentials.path(home)) == 0o600
    assert credentials.load_or_create(home).influx_admin_token == creds.influx_admin_token

    other = tmp_path / "other"
    victim = _planted_link(tmp_path, credentials.path(other))
    with pytest.raises(ConfigError, match="symbolic link"):
        credentials.save(other, creds)
    assert victim.read_text() == "untouched\n"


def test_local_jobs_token_file_refuses_symlinks(clean):
    from labkit.stack.local import LocalStack

    home = clean / "home"
    credentials.save(home, credentials.Credentials(influx_write_token="w-token"))
    st = LocalStack(load(home=home))
    side = st.job_side()
    assert Path(side.token_file).read_text() == "w-token" and _mode(Path(side.token_file)) == 0o600
    Path(side.token_file).unlink()
    victim = _planted_link(clean, Path(side.token_file))
    with pytest.raises(ConfigError, match="symbolic link"):
        st.job_side()
    assert victim.read_text() == "untouched\n"


# ---- 3. workshop: files outside the repository, private, removed on teardown ------------------------------


class _Admin:
    def create_acls(self, acls):
        return {"failed": []}

    def list_topics(self):
        return []

    def list_groups(self):
        return []

    def delete_acls(self, acls):
        return None

    def close(self):
        return None


class _Http:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def get(self, *a, **kw):
        class R:
            def json(self):
                return {"buckets": []}

        return R()


class _Flink:
    def __init__(self, url):
        pass

    def jobs(self):
        return []


@pytest.fixture
def fake_cluster(clean, monkeypatch):
    """The instructor's settings and a cluster that accepts everything (the real one: tests/cluster)."""
    from labkit import workshop
    from labkit.jobs import control
    from labkit.stack import kafka

    tokens: dict[str, str] = {}

    def bucket_token(http, bucket, action, description):
        tokens[f"{bucket['name']} {action}"] = f"{action}-{uuid.uuid4().hex}"
        return tokens[f"{bucket['name']} {action}"]

    monkeypatch.setattr(workshop, "_admin", lambda s: _Admin())
    monkeypatch.setattr(workshop, "_influx", lambda s: _Http())
    monkeypatch.setattr(workshop, "_org_id", lambda http, org: "org")
    monkeypatch.setattr(workshop, "_bucket", lambda http, org_id, name: {"name": name, "id": name})
    monkeypatch.setattr(workshop, "_drop_tokens", lambda http, org_id, who: None)
    monkeypatch.setattr(workshop, "_set_quota", lambda admin, user, rates: None)
    monkeypatch.setattr(workshop, "bucket_token", bucket_token)
    monkeypatch.setattr(kafka, "ensure_topics", lambda bootstrap, settings: None)
    monkeypatch.setattr(control, "Flink", _Flink)
    instructor = load(mode="external", influx_token=f"admin-{uuid.uuid4().hex}")
    return instructor, tokens


def test_workshop_files_go_under_the_home_are_private_and_teardown_removes_them(fake_cluster, clean):
    from labkit import workshop

    instructor, tokens = fake_cluster
    made = workshop.create(2, settings=instructor)
    home_dir = workshop.default_out_dir(instructor)
    assert home_dir == instructor.home / "workshop" / "attendees"
    assert not (clean / "cwd" / "attendees").exists()  # nothing in the working folder (a repository clone)
    for a in made:
        settings_file, token_file = Path(a.settings_file), Path(a.token_file)
        assert settings_file.parent == home_dir and token_file.parent == home_dir / "tokens"
        assert _mode(settings_file) == 0o600 and _mode(token_file) == 0o600
        assert token_file.read_text().strip() == tokens[f"{a.bucket} write"]
        s = a.settings()  # the attendee's file loads, tokens masked like everyone's
        assert settings_mod.reveal(s.influx_read_token) == tokens[f"{a.bucket} read"]
        assert s.flink_influx_token_file == str(token_file)
    assert _mode(instructor.home / "workshop" / "attendees.json") == 0o600

    # an attendee recorded before token files were: teardown finds the file through their settings file
    registry = instructor.home / "workshop" / "attendees.json"
    people = json.loads(registry.read_text())
    del people[1]["token_file"]
    registry.write_text(json.dumps(people))

    assert workshop.teardown(instructor) == ["a01", "a02"]
    for a in made:
        assert not Path(a.settings_file).exists()
        assert not Path(a.token_file).exists(), "teardown left a token file behind"
    assert workshop.attendees(instructor) == []


def test_workshop_quotas_cap_partition_mutations_and_teardown_removes_every_quota(fake_cluster, clean, monkeypatch):
    """Each attendee gets a controller mutation quota beside the byte rates (the only brake on raising partition
    counts: Kafka applies no topic policy to CreatePartitions), and teardown removes all three keys, so a user
    made again later starts without an old one."""
    from labkit import workshop

    instructor, _ = fake_cluster
    set_calls: list[tuple[str, dict | None]] = []
    monkeypatch.setattr(workshop, "_set_quota", lambda admin, user, rates: set_calls.append((user, rates)))
    workshop.create(2, settings=instructor, controller_mutations_per_s=7)
    assert set_calls == [
        (f"labkit-{a}", {"producer_byte_rate": workshop.PRODUCER_BYTES_PER_S,
                         "consumer_byte_rate": workshop.CONSUMER_BYTES_PER_S, "controller_mutation_rate": 7})
        for a in ("a01", "a02")
    ]  # fmt: skip
    set_calls.clear()
    workshop.teardown(instructor)
    assert set_calls == [("labkit-a01", None), ("labkit-a02", None)]


def test_workshop_quota_requests_set_the_keys_given_and_remove_all_three(monkeypatch):
    """What `_set_quota` sends: the keys given are set (Kafka refuses a 0, so none is filled in for a key left
    out); None removes the byte rates and the controller mutation rate."""
    from kafka.protocol.admin import AlterClientQuotasRequest

    from labkit import workshop

    sent: list = []

    class Response:
        entries: list = []

    monkeypatch.setattr(workshop, "_send", lambda admin, request: sent.append(request) or Response())
    workshop._set_quota(None, "labkit-a01", {"controller_mutation_rate": 10})
    workshop._set_quota(None, "labkit-a01", None)
    ops = [[(o.key, o.value, o.remove) for o in r.entries[0].ops] for r in sent]
    assert all(isinstance(r, AlterClientQuotasRequest) for r in sent)
    assert ops[0] == [("controller_mutation_rate", 10.0, False)]
    assert ops[1] == [(k, 0.0, True) for k in ("producer_byte_rate", "consumer_byte_rate", "controller_mutation_rate")]
    with pytest.raises(ValueError, match="not a workshop quota"):
        workshop._set_quota(None, "labkit-a01", {"request_percentage": 5})


def test_workshop_refuses_to_write_secrets_through_symlinks(fake_cluster, clean):
    from labkit import workshop

    instructor, _ = fake_cluster
    out = clean / "out"
    victim = _planted_link(clean, out / "tokens" / "a01.write-token")
    with pytest.raises(ConfigError, match="symbolic link"):
        workshop.create(1, out_dir=out, settings=instructor)
    assert victim.read_text() == "untouched\n" and _mode(victim) == 0o644

    (out / "tokens" / "a01.write-token").unlink()
    victim = _planted_link(clean, out / "a01.env")
    with pytest.raises(ConfigError, match="symbolic link"):
        workshop.create(1, out_dir=out, settings=instructor)
    assert victim.read_text() == "untouched\n" and _mode(victim) == 0o644


def test_workshop_create_help_names_the_default_folder():
    from labkit.cli import app

    r = CliRunner().invoke(app, ["workshop", "create", "--help"], env={"COLUMNS": "200"})
    assert r.exit_code == 0
    text = " ".join(r.output.replace("│", " ").split())
    assert "(default: LABKIT_HOME/workshop/attendees, outside the repository" in text  # the --out option's own help
    ignored = (Path(__file__).resolve().parents[2] / ".gitignore").read_text().splitlines()
    assert "attendees/" in ignored  # `--out attendees` inside the repository is not committed either


# ---- 4. Flink REST ------------------------------------------------------------------------------------------


def _flink_conf(conf_dir: Path) -> dict:
    return yaml.safe_load((conf_dir / "config.yaml").read_text())


def test_local_flink_has_no_web_submission_and_cors_for_its_own_origin_only(clean):
    from labkit.stack.flink import LocalJobManager, conf_folder, write_conf

    s = load(home=clean / "home", flink_rest_port=18081)
    write_conf(LocalJobManager(s, credentials.Credentials()))
    conf = _flink_conf(s.home / "flink" / "conf")
    assert conf["web.submit.enable"] is False  # no /jars upload and run; `flink run` uses POST /jobs
    assert conf["web.access-control-allow-origin"] == "http://127.0.0.1:18081"
    assert conf["web.cancel.enable"] is True  # left as it was
    assert conf["rest.port"] == 18081

    # the session cluster tests/cluster builds with conf_folder gets no web submission either
    assert _flink_conf(conf_folder(clean / "other", {"rest.port": 8081}))["web.submit.enable"] is False


def test_an_attendee_cannot_point_their_job_at_another_attendees_bucket_or_token(tmp_path):
    """Attendee a01 sets a02's token file and bucket (the issue's attack): labkit refuses to load such settings,
    naming the setting; a01's own bucket and token file load. (The boundary itself is where the job runs; this
    guard stops the obvious attempt and the copy-paste mistake before a spec is built.)"""
    own = dict(home=tmp_path, mode="external", namespace="a01", influx_token="t" * 20)
    ok = load(**own, influx_bucket="clickstream-a01", flink_influx_token_file=str(tmp_path / "a01.write-token"))
    assert ok.influx_bucket == "clickstream-a01"
    with pytest.raises(ConfigError, match="LABKIT_FLINK_INFLUX_TOKEN_FILE .*not attendee a01"):
        load(**own, influx_bucket="clickstream-a01", flink_influx_token_file=str(tmp_path / "a02.write-token"))
    with pytest.raises(ConfigError, match="LABKIT_INFLUX_BUCKET .*not attendee a01"):
        load(**own, influx_bucket="clickstream-a02", flink_influx_token_file=str(tmp_path / "a01.write-token"))
    with pytest.raises(ConfigError, match="LABKIT_INFLUX_BUCKET"):
        load(**own, influx_bucket="clickstream")  # the shared bucket is nobody's in a workshop
    assert load(home=tmp_path, mode="external", influx_token="t" * 20, influx_bucket="anything").namespace is None

"""docs/k8s: the Kubernetes manifests are valid against Strimzi's and the Flink Kubernetes Operator's published CRD
schemas (as the pinned @kubernetes-models packages ship them, run by tools/k8s-validate with Node), the validator
rejects broken ones, and the manifests say what labkit says (versions, an attendee's grants)."""

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from labkit import versions, workshop

ROOT = Path(__file__).resolve().parents[2]
TOOL = ROOT / "tools" / "k8s-validate"
MANIFESTS = sorted((ROOT / "docs" / "k8s").glob("*.yaml"))


@pytest.fixture(scope="module")
def validate():
    node, npm = shutil.which("node"), shutil.which("npm")
    if not (node and npm):
        pytest.fail("Node.js and npm are needed to validate docs/k8s (the machine's setup installs them)")
    if not (TOOL / "node_modules").exists():
        subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=TOOL, check=True, capture_output=True)

    def run(*files: Path) -> subprocess.CompletedProcess:
        return subprocess.run([node, "validate.mjs", *map(str, files)], cwd=TOOL, capture_output=True, text=True)

    return run


def _docs(path: Path) -> list[dict]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def test_every_manifest_validates_against_its_crd_schema(validate):
    assert len(MANIFESTS) >= 4
    r = validate(*MANIFESTS)
    assert r.returncode == 0, r.stdout + r.stderr
    kinds = {line.split()[2] for line in r.stdout.splitlines() if line.startswith("OK ")}
    assert kinds == {"Kafka", "KafkaNodePool", "KafkaUser", "FlinkDeployment"}, r.stdout


@pytest.mark.parametrize(
    ("file", "path", "value", "message"),
    [
        ("flink-session.yaml", ("spec", "flinkVersion"), "v9_9", "/spec/flinkVersion must be equal to one of the allowed values"),
        ("flink-session.yaml", ("spec", "taskManager", "replicas"), "twelve", "/spec/taskManager/replicas must be integer"),
        ("attendee-a01.yaml", ("spec", "authentication", "type"), "password", "/spec/authentication"),
        ("attendee-a01.yaml", ("spec", "quotas", "producerByteRate"), -1, "/spec/quotas/producerByteRate must be >= 0"),
    ],
)  # fmt: skip
def test_the_validator_rejects_a_broken_manifest(validate, tmp_path, file, path, value, message):
    doc = _docs(ROOT / "docs" / "k8s" / file)[0]
    node = doc
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    broken = tmp_path / file
    broken.write_text(yaml.safe_dump(doc))
    r = validate(broken)
    assert r.returncode == 1 and "INVALID" in r.stdout and message in r.stdout, r.stdout + r.stderr


def test_manifests_pin_the_labs_versions():
    flink = f"v{'_'.join(versions.FLINK.split('.')[:2])}"
    for path in MANIFESTS:
        for d in _docs(path):
            if d["kind"] == "FlinkDeployment":
                assert d["spec"]["flinkVersion"] == flink, path.name
                assert d["spec"]["image"].endswith(f":{versions.FLINK}-java17"), path.name
            if d["kind"] == "Kafka":
                assert str(d["spec"]["kafka"]["version"]) == versions.KAFKA, path.name


def test_the_attendee_user_grants_what_labkit_workshop_grants():
    (user,) = _docs(ROOT / "docs" / "k8s" / "attendee-a01.yaml")
    assert user["metadata"]["name"] == workshop.USER_PREFIX + "a01"
    grants = {(a["resource"]["type"], a["resource"]["name"], a["resource"]["patternType"], op)
              for a in user["spec"]["authorization"]["acls"] for op in a["operations"]}  # fmt: skip
    strimzi = {"ALL": "All", "READ": "Read", "WRITE": "Write", "CREATE": "Create", "DELETE": "Delete",
               "DESCRIBE": "Describe", "DESCRIBE_CONFIGS": "DescribeConfigs", "ALTER": "Alter"}  # fmt: skip
    labkit_acls = {(str(a.resource_pattern.resource_type.name).lower(), a.resource_pattern.resource_name,
                    str(a.resource_pattern.pattern_type.name).lower().replace("prefixed", "prefix"),
                    strimzi[str(a.operation.name)])
                   for a in workshop._acls(user["metadata"]["name"], "a01.")}  # fmt: skip
    assert grants == labkit_acls
    # no ALTER on topics, neither in labkit's grants nor the manifest's: CreatePartitions needs it, and no topic
    # policy sees a partition increase (the cap covers CreateTopics only)
    topic_ops = {op for kind, _, _, op in grants if kind == "topic"}
    assert topic_ops and not topic_ops & {"All", "Alter"}
    assert ("group", "a01.", "prefix", "All") in grants
    assert user["spec"]["quotas"] == {
        "producerByteRate": workshop.PRODUCER_BYTES_PER_S,
        "consumerByteRate": workshop.CONSUMER_BYTES_PER_S,
        "controllerMutationRate": workshop.CONTROLLER_MUTATIONS_PER_S,
    }

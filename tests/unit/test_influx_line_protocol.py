"""The lab's JVM InfluxDB writer (InfluxWriter.java) encodes every point as the influxdb-client Python library did
for the Python writer it replaced: same escapes, tag order, types and skipped values, so a replay after the change
of writer overwrites the same series instead of starting new ones. One table of cases, through both encoders."""

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from influxdb_client import Point, WritePrecision

from labkit.stack.provision import udf
from labkit.stack.provision.pyflink_dist import flink_home

HARNESS = Path(__file__).with_name("java") / "EncodeCheck.java"

# (measurement, tags, fields): JSON objects as Flink's JSON_OBJECT writes them, and hand-written ones
CASES = [
    ("http_counts", {"stream": "clickstream", "status": "200"}, {"count": 42}),
    ("url counts,x", {"url": "/a b,c=d", "stream": "s"}, {"hits": 7, "share": 0.25}),
    ("m", {"url": "/back\\slash", "stream": "s"}, {"n": 1}),
    ("m", {"url": "/ends\\", "stream": "s"}, {"n": 1}),
    ("m", {"url": "/tab\there\nnewline\rcr", "k=ey, x": "v"}, {"n": 1}),
    ("m", {"empty": "", "none": None, "stream": "s"}, {"n": 1}),
    ("m", {"flag": True, "off": False, "int": 5, "float": 12345678.0, "small": 0.1, "tiny": 1e-05}, {"n": 1}),
    ("m", {"stream": "s"}, {"int": -3, "big": 2**62, "whole": 3.0, "tenth": 0.1, "tiny": 1e-05, "e16": 1e16}),
    ("m", {"stream": "s"}, {"huge": 1.5e300, "ratio": 0.123456789012345, "neg": -0.5, "quarter": 2.5e-4}),
    ("m", {"stream": "s"}, {"ok": True, "bad": False, "note": 'say "hi" \\ bye\nline'}),
    ("m", {"stream": "s"}, {"gone": None, "kept": 1, "b key,x=y": 2}),
    ("m", {"stream": "s"}, {"gone": None}),  # no field with a value: no point
    ("m", {"stream": "s"}, {}),
    ("ünïcode", {"page": "/café"}, {"n": 1, "s": "naïve"}),
    ("zz", {"b": "2", "a": "1", "c": "3"}, {"z": 1, "a": 2, "m": 3}),
]


def python_line(measurement: str, tags: str, fields: str, ts: int) -> str:
    """What the Python writer (runner.InfluxWrite, until session 17) sent for one row."""
    p = Point(measurement).time(ts, WritePrecision.MS)
    for k, v in json.loads(tags).items():
        p = p.tag(k, "" if v is None else str(v))
    for k, v in json.loads(fields).items():
        if v is not None:
            p = p.field(k, float(v) if isinstance(v, float) else v)
    return p.to_line_protocol() or "<none>"


@pytest.fixture(scope="module")
def java_encode(tmp_path_factory):
    java = shutil.which("java")
    if not (java and shutil.which("javac")):
        pytest.skip("needs a JDK (javac, java): the lab's Java functions are compiled with it")
    cp = str(flink_home() / "lib" / "*")
    jar = udf.compile_jar([*udf._sources(), HARNESS], cp, tmp_path_factory.mktemp("encode") / "encode.jar")

    def encode(rows: list[tuple[str, str, str, int]]) -> list[str]:
        stdin = "".join(json.dumps(list(r)) + "\n" for r in rows)
        r = subprocess.run([java, "-cp", f"{jar}:{cp}", "lab.clickstream.EncodeCheck"], input=stdin.encode(),
                           capture_output=True, check=True)  # fmt: skip
        return r.stdout.decode().split("\0")[:-1]

    return encode


def test_every_case_encodes_as_the_python_client_did(java_encode):
    rows = [(m, json.dumps(t), json.dumps(f), 1_700_000_000_000 + i) for i, (m, t, f) in enumerate(CASES)]
    java = java_encode(rows)
    python = [python_line(*r) for r in rows]
    assert len(java) == len(rows)
    diffs = [(r[0], r[1], r[2], j, p) for r, j, p in zip(rows, java, python, strict=True) if j != p]
    assert diffs == [], "\n".join(f"{d[:3]}\n  java:   {d[3]}\n  python: {d[4]}" for d in diffs)


def test_the_comparison_can_fail(java_encode):
    # the harness reports what Java made, not an echo: a point Python would write differently is told apart
    (line,) = java_encode([("m", json.dumps({"url": "/x"}), json.dumps({"n": 1}), 5)])
    assert line == "m,url=/x n=1i 5" != python_line("m", json.dumps({"url": "/y"}), json.dumps({"n": 1}), 5)

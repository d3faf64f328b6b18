"""labkit.context: one Lab per settings object, so the stack is built once and each token asked once."""

from labkit import context, jobs
from labkit.settings import load
from labkit.stack.local import LocalStack


def test_the_same_settings_give_the_same_lab_and_stack_a_copy_its_own(tmp_path):
    s = load(home=tmp_path / "home")
    lab = context.of(s)
    assert context.of(s) is lab and lab.stack is context.of(s).stack
    assert jobs._stack(s) is lab.stack  # what submit_pipeline and base_spec use: no stack of their own
    other = s.model_copy(update={"mode": "external", "influx_url": "http://127.0.0.1:1"})
    assert context.of(other) is not lab and context.of(other).mode == "external"
    lab._tokens["read"] = (0.0, "s3cr3t-read-token")
    assert "s3cr3t" not in repr(lab) and "local" in repr(lab)


def test_a_token_is_asked_of_the_stack_once_per_lab(tmp_path, monkeypatch):
    asked = []

    def counting(self, role="admin"):  # the stack's answer is not the point here: how often it is asked is
        asked.append(role)
        return f"token-{role}"

    monkeypatch.setattr(LocalStack, "influx_token", counting)
    s = load(home=tmp_path / "home")
    lab = context.of(s)
    first = lab.token("read")
    assert lab.token("read") == first and asked == ["read"]
    lab.token("write")
    assert asked == ["read", "write"]
    stack = lab.stack
    lab._tokens["read"] = (lab._tokens["read"][0] - context.TOKEN_TTL_S - 1, first)  # a minute later
    lab.token("read")
    assert asked == ["read", "write", "read"]
    assert lab.stack is not stack  # built again: a local stack reads its credentials when it is built


def test_only_the_most_recent_labs_are_kept(tmp_path):
    first = load(home=tmp_path / "home")
    lab = context.of(first)
    for i in range(context.KEPT):
        context.of(first.model_copy(update={"home": tmp_path / f"h{i}"}))
    assert len(context._labs) <= context.KEPT
    assert context.of(first) is not lab  # evicted, then built again for the same settings

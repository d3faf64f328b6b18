"""Claims: a sentence about the data that the data do not bear out shows a note to an attendee, and fails the
notebook run in CI, quoting the sentence."""

import nbformat
import papermill
import pytest

from labkit import claims
from labkit.claims import ClaimFailed, claim


def test_a_claim_that_holds_shows_nothing(monkeypatch, capsys):
    monkeypatch.setenv(claims.STRICT_ENV, "1")
    before = len(claims.NOTES)
    assert claim("p50 stays flat", 1.05 < 1.3, "p50 rose 1.05×") is None
    assert claim("callable holds", lambda: True) is None
    assert len(claims.NOTES) == before and capsys.readouterr().out == ""


def test_a_false_claim_raises_in_ci_quoting_the_sentence(monkeypatch):
    monkeypatch.setenv(claims.STRICT_ENV, "1")
    with pytest.raises(ClaimFailed, match="p50 stays flat.*p50 rose 4.0×"):
        claim("p50 stays flat", 4.0 < 1.3, "p50 rose 4.0×")


def test_a_false_claim_is_a_note_for_an_attendee_and_does_not_raise(monkeypatch):
    monkeypatch.delenv(claims.STRICT_ENV, raising=False)
    claim("the 401s lead", False, "/search leads with 812 errors")
    note = claims.NOTES[-1]
    assert note.sentence == "the 401s lead" and "/search leads" in note.observed
    assert "the 401s lead" in note._repr_html_() and "changed a parameter" in note._repr_html_()


def test_a_claim_whose_data_are_missing_does_not_hold(monkeypatch):
    monkeypatch.setenv(claims.STRICT_ENV, "1")
    with pytest.raises(ClaimFailed, match="could not be evaluated.*KeyError"):
        claim("p95 rises", lambda: {}["p95"] > 1)


def test_say_renders_markdown_computed_from_the_data():
    s = claims.say(f"**{1234:,}** events were late")
    assert s._repr_markdown_() == "**1,234** events were late"


def _book(tmp_path, sentence_holds: bool):
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "language": "python", "display_name": "Python 3"}
    nb.metadata["language_info"] = {"name": "python"}
    params = nbformat.v4.new_code_cell("ratio = 4.0")
    params.metadata["tags"] = ["parameters"]
    nb.cells = [
        params,
        nbformat.v4.new_markdown_cell("**What to notice:** p50 stays flat."),
        nbformat.v4.new_code_cell(
            'from labkit.claims import claim\nclaim("p50 stays flat", ratio < 1.3, f"p50 rose {ratio}×")'
        ),
    ]
    p = tmp_path / "book.ipynb"
    nbformat.write(nb, p)
    return p, {"ratio": 1.1 if sentence_holds else 4.0}


def test_a_false_claim_fails_the_notebook_run_and_a_true_one_passes(tmp_path, monkeypatch):
    """The real papermill run, as labkit.notebooks_ci makes it (strict claims in the kernel's environment)."""
    monkeypatch.setenv(claims.STRICT_ENV, "1")
    book, good = _book(tmp_path, True)
    papermill.execute_notebook(
        str(book), str(tmp_path / "ok.ipynb"), parameters=good, kernel_name="python3", progress_bar=False
    )
    book, bad = _book(tmp_path, False)
    with pytest.raises(papermill.PapermillExecutionError, match="p50 stays flat"):
        papermill.execute_notebook(
            str(book), str(tmp_path / "bad.ipynb"), parameters=bad, kernel_name="python3", progress_bar=False
        )

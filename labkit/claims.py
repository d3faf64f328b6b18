"""Claims: the sentences a notebook states about its charts and runs, checked against that run's data.

A course notebook says things like "the 5xx share rises, not 4xx" or "p50 barely moves". Each such sentence is
backed by a `claim(...)` in a code cell right after it, evaluated on the data the cell above just showed:

    claim("the 5xx share (red) rises, not 4xx", peak_5xx > 3 * peak_4xx,
          f"5xx peaked at {peak_5xx:.1%}, 4xx at {peak_4xx:.1%}")

* It holds: nothing is shown (the attendee reads the text, not a wall of green ticks).
* It does not hold, in CI (`LABKIT_STRICT_CLAIMS=1`, set by `labkit.notebooks_ci`): `ClaimFailed` is raised,
  quoting the sentence and what the data showed, so a false sentence fails the notebook run.
* It does not hold for an attendee: a note says which sentence this run does not bear out and what it shows
  instead. An attendee who changed a parameter (a seed, a count) may rightly see other data; their run must
  not stop on it.

Where a number depends on the seed, a notebook states it with `say(...)` (Markdown computed from the data)
rather than asserting a constant.
"""

from __future__ import annotations

import html
import os
from collections.abc import Callable
from dataclasses import dataclass

STRICT_ENV = "LABKIT_STRICT_CLAIMS"


class ClaimFailed(AssertionError):
    """A notebook's sentence that this run's data do not bear out (CI only)."""


@dataclass(frozen=True)
class ClaimNote:
    """What an attendee sees when a sentence does not hold for their run."""

    sentence: str
    observed: str

    def _repr_html_(self) -> str:
        return (
            "<div class='labkit-claim' data-state='differs' style='border-left:4px solid #f9a825;padding:4px 10px'>"
            f"ℹ️ <b>Your run differs from the text.</b> The text says: <i>“{html.escape(self.sentence)}”</i>. "
            f"This run shows: {html.escape(self.observed)}. "
            "If you changed a parameter (a seed, a count, a scenario), that can be right: read the chart, "
            "not the sentence. If you did not, tell the instructor.</div>"
        )

    def __repr__(self) -> str:
        return f"note: the text says {self.sentence!r}; this run shows: {self.observed}"


def strict() -> bool:
    return os.environ.get(STRICT_ENV, "").strip().lower() in ("1", "true", "yes")


#: the notes shown in this kernel, newest last (tests and an instructor's summary read them)
NOTES: list[ClaimNote] = []


def claim(sentence: str, holds: bool | Callable[[], bool], observed: str | Callable[[], str] = "") -> None:
    """Check one sentence of the text against the data: shows nothing when it holds, a note when it does not
    (or raises `ClaimFailed` in CI). An error while evaluating counts as not holding: a claim whose data are
    missing is not borne out either. Returns None, so a cell ending in a claim shows nothing more."""
    try:
        ok = bool(holds() if callable(holds) else holds)
        seen = observed() if callable(observed) else observed
    except Exception as e:  # the data the claim reads are missing or of another shape: it is not borne out
        ok, seen = False, f"the claim could not be evaluated ({type(e).__name__}: {e})"
    if ok:
        return
    seen = seen or "something else"
    if strict():
        raise ClaimFailed(f"the notebook says “{sentence}”, but this run's data show: {seen}")
    NOTES.append(ClaimNote(sentence, seen))
    _display(NOTES[-1])


def _display(note: ClaimNote) -> None:
    try:
        from IPython.display import display

        display(note)
    except ImportError:  # outside IPython: the return value is the note
        pass


class Say:
    """Markdown computed from the data: the sentence states this run's number, so it is true by construction."""

    def __init__(self, markdown: str) -> None:
        self.markdown = markdown

    def _repr_markdown_(self) -> str:
        return self.markdown

    def __repr__(self) -> str:
        return self.markdown


def say(markdown: str) -> Say:
    """Show a sentence whose numbers come from this run, e.g. say(f"**{late:,}** events were late")."""
    return Say(markdown)


def ratio(a: float, b: float) -> float:
    """a / b, with b == 0 giving infinity (a claim "rises n-fold" over a zero baseline holds when a > 0)."""
    a, b = float(a), float(b)
    if b == 0:
        return float("inf") if a > 0 else 1.0
    return a / b

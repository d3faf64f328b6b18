"""What a checker returns: pass or "not yet", with a specific message, and never an exception.

An attendee's wrong answer can have any shape (None, a typo in SQL, a DataFrame without the column, a
string where a number was asked). `checker` turns whatever goes wrong while grading into "not yet"
feedback that names the problem, so a notebook cell never stops on a wrong answer.
"""

from __future__ import annotations

import functools
import html
from collections.abc import Callable
from dataclasses import dataclass, field

#: the marker CI looks for in executed notebooks (`labkit.notebooks_ci`): one per checker call
MARKER = "labkit-check"


@dataclass
class Feedback:
    ok: bool
    message: str
    exercise: str = ""
    hints: list[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        return self.ok

    def __repr__(self) -> str:
        head = ("✅ " if self.ok else "❌ not yet: ") + self.message
        return "\n".join([head, *(f"   hint: {h}" for h in self.hints)])

    def _repr_html_(self) -> str:
        color = "#2e7d32" if self.ok else "#c62828"
        hints = "".join(f"<li>{html.escape(h)}</li>" for h in self.hints)
        state = "pass" if self.ok else "fail"
        return (
            f"<div class='{MARKER}' data-exercise='{html.escape(self.exercise)}' data-state='{state}' "
            f"style='border-left:4px solid {color};padding:4px 10px'>"
            f"<b style='color:{color}'>{'✅' if self.ok else '❌ not yet:'}</b> {html.escape(self.message)}"
            + (f"<ul style='margin:4px 0'>{hints}</ul>" if hints else "")
            + "</div>"
        )


def not_yet(message: str, *hints: str) -> Feedback:
    return Feedback(False, message, hints=list(hints))


def passed(message: str) -> Feedback:
    return Feedback(True, message)


def checker(exercise: str) -> Callable:
    """Decorate a checker: its result carries the exercise name, and any exception becomes feedback."""

    def wrap(fn: Callable[..., Feedback]) -> Callable[..., Feedback]:
        @functools.wraps(fn)
        def run(*args, **kwargs) -> Feedback:
            try:
                fb = fn(*args, **kwargs)
            except Exception as e:  # a wrong answer of an unexpected shape: feedback, never a traceback
                from labkit.errors import LabkitError

                text = e.message if isinstance(e, LabkitError) else f"{type(e).__name__}: {e}"
                fb = not_yet(
                    f"your answer could not be graded: {text.strip().splitlines()[0][:300] if text.strip() else text}",
                    "read the error above, fix your answer and run the checker again",
                )
            fb.exercise = exercise
            return fb

        run.exercise = exercise
        return run

    return wrap

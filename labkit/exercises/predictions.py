"""Predictions recorded before an experiment runs, and graded as they were recorded.

A prediction is worth something only if it was made before the result was seen. So a notebook records it
(`record`), the experiment cell marks the moment its result exists (`lock`), and the checker grades what was
recorded before that moment, saying so kindly when the attendee's current answer differs.

Where: `<LABKIT_HOME>/predictions/<name>.json`, one small JSON file per prediction, mode 0600 in a 0700
folder (the lab's home holds secrets too, and nobody else needs to read an attendee's guesses). A symbolic
link where the folder or the file would be is refused, never followed: a planted link must not make labkit
overwrite or read a file elsewhere.

What a file holds, and why each part:
* `value`, `recorded_at`: the prediction that counts for the current run, and when (wall clock) it was made.
* `locked_at`: when a run's result came to exist. From then on `value` is final for that run: recording again
  does not replace it, it is noticed.
* `run`: a fingerprint of the result the checker graded, so that the checker can tell a re-run experiment
  (a new result) from the same result checked again, even when the notebook does not call `lock`.
* `later`: a prediction recorded after the lock. It is kept (and shown) but counts only for the next run:
  `lock` (or the checker, on seeing a new result) moves it into `value`.

Lifecycle, for one name:
    record(A)            → value A                              "🔒 prediction recorded at 10:02:11: A"
    record(B)            → value B (still before the run)       replaces A
    lock()  [run ends]   → value B, locked
    record(C)            → value B, later C                     "the result already exists ... C is noticed"
    check(C, result)     → grades B: "you recorded B before the run and now say C: graded as recorded"
    lock()  [run again]  → value C (recorded before this run), locked

Call `lock` in the experiment cell. Without it the checker locks when it first sees a result, which still
catches a change made after that first check, but not one made between the run and the first check.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import html
import json
import math
import numbers
import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from labkit.errors import LabkitError
from labkit.exercises.feedback import Feedback, checker, not_yet, passed

if TYPE_CHECKING:
    import pandas as pd

    from labkit.settings import Settings

FOLDER = "predictions"
_NAME = re.compile(r"^[a-z][a-z0-9_]{0,63}$")  # a file name, never a path: no "..", no "/"


# ---- what is stored -----------------------------------------------------------------------------------------
@dataclass
class Prediction:
    """One prediction's file. `recorded_at` is None for a lock with nothing recorded before the run."""

    name: str
    value: Any = None
    recorded_at: float | None = None
    locked_at: float | None = None
    run: str | None = None
    later: dict | None = None  # {"value": ..., "recorded_at": ...}: recorded after the lock

    @property
    def was_recorded(self) -> bool:
        return self.recorded_at is not None

    @property
    def locked(self) -> bool:
        return self.locked_at is not None


@dataclass
class Recorded:
    """What `record` and `lock` show in the notebook: a confirmation, or a notice (never a checker's verdict,
    so it carries no `labkit-check` marker and notebook CI does not mistake it for one)."""

    ok: bool
    message: str
    name: str = ""
    value: Any = None
    hints: list[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        return self.ok

    def __repr__(self) -> str:
        return "\n".join([self.message, *(f"   {h}" for h in self.hints)])

    def _repr_html_(self) -> str:
        color = "#1565c0" if self.ok else "#ef6c00"
        hints = "".join(f"<li>{html.escape(h)}</li>" for h in self.hints)
        return (
            f"<div class='labkit-prediction' data-prediction='{html.escape(self.name)}' "
            f"style='border-left:4px solid {color};padding:4px 10px'>{html.escape(self.message)}"
            + (f"<ul style='margin:4px 0'>{hints}</ul>" if hints else "")
            + "</div>"
        )


# ---- the public API -----------------------------------------------------------------------------------------
def record(name: str, value: object, settings: Settings | None = None) -> Recorded:
    """Record the prediction `value` for `name` now, before the experiment runs, and show when.

    Before the run, recording again replaces the prediction. Once the run's result exists (`lock`), the
    recorded prediction is final for that run: a different one is kept as noticed and counts for the next run.
    Never raises for an attendee's value: a value JSON cannot hold is stored as its repr."""
    try:
        path = _path(name, settings)
        old = _load(path, name)
        now = time.time()
        new = _normal(value)
        if old is not None and old.locked:
            if old.was_recorded and _same(old.value, new):
                old.later = None  # back to what was recorded before the run: nothing to notice any more
                _save(path, old)
                return Recorded(
                    True,
                    f"🔒 unchanged: this prediction was recorded at {_hms(old.recorded_at)}, before the run: "
                    f"{_show(old.value)}",
                    name,
                    old.value,
                )
            old.later = {"value": new, "recorded_at": now}
            _save(path, old)
            before = (
                f"your prediction recorded at {_hms(old.recorded_at)}, before the run, was {_show(old.value)}"
                if old.was_recorded
                else "no prediction was recorded before the run"
            )
            return Recorded(
                False,
                f"🔒 the run's result already exists (since {_hms(old.locked_at)}): {before}. This new one, "
                f"{_show(new)}, is kept and noticed; predictions are graded as recorded before the run, so it "
                "counts for the next run.",
                name,
                new,
                ["to predict afresh, record before you run the experiment again"],
            )
        _save(path, Prediction(name, new, now))
        replaced = (
            f" (replaces the one recorded at {_hms(old.recorded_at)}, also before the run)"
            if old is not None and old.was_recorded and not _same(old.value, new)
            else ""
        )
        return Recorded(True, f"🔒 prediction recorded at {_hms(now)}: {_show(new)}{replaced}", name, new)
    except LabkitError as e:
        return Recorded(False, f"not recorded: {e.message}", name, value, [e.hint] if e.hint else [])
    except OSError as e:  # the home not writable, the disk full: say so, never stop the notebook
        return Recorded(False, f"not recorded: {e}", name, value, ["check that the lab's home is writable"])


def lock(name: str, result: object = None, settings: Settings | None = None) -> Recorded:
    """Mark that the experiment's result for `name` exists now: call it in the experiment cell, right after
    the run. The prediction recorded so far becomes final for this run; one recorded after the previous run
    (kept in `later`) was made before this one, so it becomes the recorded prediction now.

    `result` (optional) is the run's result: its fingerprint lets the checker recognise the same run later."""
    try:
        path = _path(name, settings)
        rec = _load(path, name) or Prediction(name)  # nothing recorded: the lock alone marks "after the run"
        if rec.later is not None:
            rec.value, rec.recorded_at, rec.later = rec.later["value"], rec.later["recorded_at"], None
        rec.locked_at, rec.run = time.time(), _fingerprint(result)
        _save(path, rec)
        if not rec.was_recorded:
            return Recorded(
                False,
                f"🔒 the run's result exists (since {_hms(rec.locked_at)}), and no prediction was recorded before it",
                name,
                None,
                ["next time, record your prediction before running the experiment"],
            )
        return Recorded(
            True,
            f"🔒 the run's result exists (since {_hms(rec.locked_at)}): your prediction recorded at "
            f"{_hms(rec.recorded_at)} counts, {_show(rec.value)}",
            name,
            rec.value,
        )
    except LabkitError as e:
        return Recorded(False, f"not locked: {e.message}", name, None, [e.hint] if e.hint else [])
    except OSError as e:
        return Recorded(False, f"not locked: {e}", name, None, ["check that the lab's home is writable"])


def recorded(name: str, settings: Settings | None = None) -> Prediction | None:
    """The stored prediction for `name`, or None. Raises LabkitError for a symbolic link or a bad name."""
    return _load(_path(name, settings), name)


def settle(name: str, result: object, settings: Settings | None = None) -> Prediction | None:
    """The prediction that counts for the run that produced `result` (None: nothing recorded at all).

    The checker calls this: seeing a result is proof that the run happened, so a prediction not yet locked is
    locked now. A result it has not seen before (the experiment ran again without `lock`) starts a new run, and a
    prediction recorded after the previous run counts for it. Writes nothing when nothing was recorded."""
    path = _path(name, settings)
    rec = _load(path, name)
    if rec is None:
        return None
    fp = _fingerprint(result)
    if not rec.locked:
        rec.locked_at, rec.run = time.time(), fp
    elif rec.run is None:
        rec.run = fp  # locked by the experiment cell; this is the result of that run
    elif fp is not None and fp != rec.run:
        if rec.later is not None:
            rec.value, rec.recorded_at, rec.later = rec.later["value"], rec.later["recorded_at"], None
        rec.locked_at, rec.run = time.time(), fp
    else:
        return rec
    _save(path, rec)
    return rec


UNREADABLE = object()  # what graded_prediction grades when the recording cannot be read


def graded_prediction(name: str, current: object, result: object, settings: Settings | None = None) -> tuple:
    """(the prediction to grade, a note for the feedback): the one recorded before the run when there is one
    (the note says so when the current answer differs), else the current one with a note on recording first.
    A recording that cannot be read (a symlink, a broken file) is graded as nothing: (UNREADABLE, the reason), since
    grading the current answer instead would let a broken file stand in for "recorded before the run"."""
    try:
        rec = settle(name, result, settings)
    except (LabkitError, OSError) as e:
        return UNREADABLE, f"your recorded prediction could not be read: {getattr(e, 'message', e)}"
    if rec is not None and rec.was_recorded:
        recorded_value = _normal(rec.value)
        if isinstance(recorded_value, str):
            recorded_value = recorded_value.strip().upper()
        if not _same(recorded_value, current):
            return recorded_value, (
                f"You recorded {_show(recorded_value)} at {_hms(rec.recorded_at)}, before the run, and now say "
                f"{_show(current)}: predictions are graded as recorded, so this grades the recorded one. "
            )
        return recorded_value, ""
    if rec is not None and rec.later is not None:
        return current, "(Recorded only after the run's result existed, so this grades your current answer.) "
    return current, f"(Not recorded before the run: next time use predictions.record({name!r}, ...) first.) "


# ---- the watermark experiment of notebook 03 ----------------------------------------------------------------
KEYS = ("fewest_late", "fastest_results")
SHARE_KEY = "late_share_5s"  # optional: predictions recorded before it existed have only KEYS
SHARE_TOLERANCE = 0.15


@checker("watermark_prediction")
def check_watermark_prediction(
    prediction: object, result: pd.DataFrame | None = None, settings: Settings | None = None
) -> Feedback:
    """Grade the watermark prediction against the experiment's `result` (columns delay_s, late, wait_s).

    What is graded is the prediction recorded before the run (`record`), when there is one: a prediction is a
    statement about the unknown. If the attendee's current `prediction` differs, the feedback says so kindly
    and grades the recorded one. Without a recording, the current one is graded, with a note.

    Keys: `fewest_late` and `fastest_results`, each one of the run's delays; optionally `late_share_5s`, the
    share (0..1) of the run's stragglers (the events drawn late) that the 5 s delay counts as late, graded as
    within ±0.15 of the measured share. The result of `labkit.jobs.experiment.run` has no stragglers total, so
    the share is measured as late at 5 s / late at 0 s: with no delay every straggler (sent 2 s or more after it
    happened) is late, and an on-time event never is (a partition's events arrive in event-time order). A result
    with a `stragglers` column is measured against that instead."""
    if result is None:
        problem = _shape_problem(prediction, None)
        if problem:
            return not_yet(*problem)
        try:
            rec = recorded("watermark_prediction", settings)
        except (LabkitError, OSError):
            rec = None
        if rec is not None and rec.was_recorded and not rec.locked and _same(rec.value, _normal(prediction)):
            return not_yet(
                f"your prediction has the right shape and was recorded at {_hms(rec.recorded_at)}; now run the "
                "experiment and check again with its result"
            )
        return not_yet(
            "your prediction has the right shape; now run the experiment and check again with its result",
            f"record it first, so it counts as made before the run: predictions.record('watermark_prediction', "
            f"{_show(_normal(prediction))})",
        )
    bad = _result_problem(result)
    if bad:
        return not_yet(bad, "pass the experiment's result table: check_watermark_prediction(prediction, wm.result)")
    delays = sorted(int(d) for d in result["delay_s"])

    graded, note = graded_prediction("watermark_prediction", _normal(prediction), result, settings)
    if graded is UNREADABLE:
        return not_yet(note, "record it again with predictions.record('watermark_prediction', ...) and re-run")

    problem = _shape_problem(graded, delays)
    if problem:
        return not_yet(_after(note, problem[0]), *problem[1:])

    r = result.set_index(result["delay_s"].astype(int))
    late, wait = r["late"].astype(float), r["wait_s"].astype(float)
    fewest = {int(d) for d in late.index[late == late.min()]}
    fastest = {int(d) for d in wait.index[wait == wait.min()]}
    facts = "; ".join(f"delay {d} s: {int(late[d])} late, results {wait[d]:.1f} s after a window ends" for d in delays)
    wrong = [k for k, want in (("fewest_late", fewest), ("fastest_results", fastest)) if int(graded[k]) not in want]

    share_msg, share_wrong = "", False
    if graded.get(SHARE_KEY) is not None:
        measured, how = _measured_share(result)
        said = float(graded[SHARE_KEY])
        if measured is None:
            share_msg = f" late_share_5s was not graded: {how}."
        else:
            share_wrong = abs(said - measured) > SHARE_TOLERANCE
            share_msg = (
                f" The 5 s delay counted {measured:.0%} of the stragglers as late ({how}); you said {said:.0%}"
                + (f", more than ±{SHARE_TOLERANCE:.0%} off." if share_wrong else ", close enough.")
            )
    if wrong or share_wrong:
        named = wrong + ([SHARE_KEY] if share_wrong else [])
        return not_yet(
            _after(note, f"the run disagrees with your prediction for {', '.join(named)} ({facts}).{share_msg}"),
            "a window fires when the watermark passes its end: the longer the delay, the later it fires, "
            "and the more stragglers arrive in time",
            *(
                ["a 5 s delay rescues only the stragglers less than 5 s late: how late did this run send them?"]
                if share_wrong
                else []
            ),
        )
    return passed(
        f"{note}Right: {facts}.{share_msg} The trade-off: a longer watermark delay waits for stragglers (fewer "
        "late events) but every result appears later; a shorter one is fresher but counts more events late. "
        "Pick it from how late your real events arrive."
    )


def _shape_problem(prediction: object, delays: list[int] | None) -> list[str] | None:
    """What is wrong with the prediction's shape, as [message, *hints]; None when it can be graded.
    `delays`: the run's delays, or None before the run (any of the notebook's 0, 5, 30)."""
    allowed = delays if delays is not None else [0, 5, 30]
    template = "{'fewest_late': <delay>, 'fastest_results': <delay>, 'late_share_5s': <0..1>}"
    if not isinstance(prediction, dict):
        return [f"give your prediction as a dict, not {type(prediction).__name__}", template]
    missing = [k for k in KEYS if prediction.get(k) is None]
    if missing:
        return [f"fill in {' and '.join(missing)}: each one of the delays {allowed} (seconds)", template]
    for k in KEYS:
        v = prediction[k]
        if isinstance(v, str):
            return [f"prediction[{k!r}] is the string {v!r}: give the delay as a number of seconds, e.g. {allowed[-1]}"]
        n = _number(v)
        if n is None or n not in [float(d) for d in allowed]:
            return [f"prediction[{k!r}] is {v!r}, not one of the run's delays {allowed} (seconds)"]
    share = prediction.get(SHARE_KEY)
    if share is None:
        return None
    if isinstance(share, str):
        return [f"prediction['late_share_5s'] is the string {share!r}: give a number between 0 and 1, e.g. 0.5"]
    s = _number(share)
    if s is None or math.isnan(s):
        return [f"prediction['late_share_5s'] is {share!r}: give a number between 0 and 1 (a share of the stragglers)"]
    if 1 < s <= 100:
        return [f"prediction['late_share_5s'] is {share!r}, which looks like a percentage: give a share, {s / 100:g}"]
    if not 0 <= s <= 1:
        return [f"prediction['late_share_5s'] is {share!r}: a share of the stragglers lies between 0 and 1"]
    return None


def _result_problem(result: object) -> str | None:
    import pandas as pd

    if not isinstance(result, pd.DataFrame):
        return f"the result should be the experiment's table (a DataFrame), not {type(result).__name__}"
    need = {"delay_s", "late", "wait_s"}
    if not need <= set(result.columns):
        return f"the result has no column(s) {sorted(need - set(result.columns))}: is it wm.result?"
    if result.empty:
        return "the result is empty: the experiment measured no windows (run it again, a little longer)"
    cols = result[sorted(need)]
    if not all(pd.api.types.is_numeric_dtype(cols[c]) for c in cols) or cols.isna().any().any():
        return "the result's delay_s, late and wait_s must all be numbers: is it the experiment's wm.result?"
    return None


def _measured_share(result: pd.DataFrame) -> tuple[float | None, str]:
    """The share of the stragglers the 5 s delay counted late, and how it was measured (or why it was not)."""
    r = result.set_index(result["delay_s"].astype(int))
    if 5 not in r.index:
        return None, f"the run had no 5 s delay (delays {sorted(r.index)})"
    late5 = float(r.loc[5, "late"])
    if "stragglers" in r.columns and float(r.loc[5, "stragglers"]) > 0:
        return late5 / float(r.loc[5, "stragglers"]), "late at 5 s / stragglers sent"
    if 0 not in r.index:
        return None, "the result has no stragglers total and no 0 s delay to count them by"
    late0 = float(r.loc[0, "late"])
    if late0 <= 0:
        return None, "no event was late even at 0 s: the run had no stragglers in its measured windows"
    return min(late5 / late0, 1.0), "late at 5 s / late at 0 s, where every straggler is late"


# ---- files: no symbolic links, mode 0600 --------------------------------------------------------------------
def _path(name: str, settings: Settings | None) -> Path:
    if not isinstance(name, str) or not _NAME.match(name):
        raise LabkitError(f"{name!r} is not a prediction name", "use lower-case letters, digits and _")
    if settings is None:
        from labkit.settings import get

        settings = get()
    folder = Path(settings.home) / FOLDER
    if folder.is_symlink():
        raise LabkitError(
            f"{folder} is a symbolic link; labkit does not write predictions through links",
            f"remove the link ({folder}) and record again",
        )
    return folder / f"{name}.json"


def _load(path: Path, name: str) -> Prediction | None:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except FileNotFoundError:
        return None
    except OSError as e:
        if e.errno == errno.ELOOP:
            raise LabkitError(
                f"{path} is a symbolic link; labkit does not read or write predictions through links",
                f"remove the link ({path}) and record again",
            ) from None
        raise
    with os.fdopen(fd) as f:
        try:
            data = json.load(f)
        except ValueError:
            return None  # only a hand-edited file is not JSON: treat it as no recording
    if not isinstance(data, dict):
        return None
    return Prediction(
        name,
        data.get("value"),
        data.get("recorded_at"),
        data.get("locked_at"),
        data.get("run"),
        data.get("later"),
    )


def _save(path: Path, rec: Prediction) -> None:
    """Write atomically (a new file, then rename over the old one), mode 0600. A symbolic link at `path` is
    refused; and rename replaces a link rather than following it, so a link planted meanwhile is not written
    through either."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)  # only when writing: reading creates nothing
    if path.is_symlink():
        raise LabkitError(
            f"{path} is a symbolic link; labkit does not write predictions through links",
            f"remove the link ({path}) and record again",
        )
    data = {
        "name": rec.name,
        "value": rec.value,
        "recorded_at": rec.recorded_at,
        "recorded_at_local": time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(rec.recorded_at))
        if rec.recorded_at
        else None,
        "locked_at": rec.locked_at,
        "run": rec.run,
        "later": rec.later,
    }
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()  # a leftover of a crashed write (unlink removes a link itself, never its target)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    try:
        os.fchmod(fd, 0o600)  # whatever the umask
        with os.fdopen(fd, "w") as f:
            json.dump(data, f, indent=1, default=_jsonable)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


# ---- values -------------------------------------------------------------------------------------------------
def _after(note: str, text: str) -> str:
    """`text` as a sentence of its own after the note about the recording (if any)."""
    return note + text[0].upper() + text[1:] if note else text


def _jsonable(o: object) -> object:
    if hasattr(o, "item"):  # numpy scalars
        try:
            return o.item()
        except (ValueError, TypeError):
            pass
    if isinstance(o, (set, frozenset, tuple)):
        return list(o)
    return repr(o)


def _normal(value: object) -> Any:
    """The value as it reads back from its file (tuples become lists, numpy numbers plain ones), so that a
    prediction compares equal to its recording."""
    return json.loads(json.dumps(value, default=_jsonable))


def _same(a: object, b: object) -> bool:
    return json.dumps(a, sort_keys=True, default=_jsonable) == json.dumps(b, sort_keys=True, default=_jsonable)


def _show(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 160 else text[:157] + "..."


def _hms(t: float | None) -> str:
    return time.strftime("%H:%M:%S", time.localtime(t)) if t else "?"


def _number(x: object) -> float | None:
    if isinstance(x, bool) or x is None:
        return None
    if isinstance(x, numbers.Number):
        return float(x)  # type: ignore[arg-type]
    if hasattr(x, "item"):
        try:
            return float(x.item())
        except (ValueError, TypeError):
            return None
    return None


def _fingerprint(result: object) -> str | None:
    """Which run a result came from: a hash of the result table's values (every run measures different ones)."""
    import pandas as pd

    if not isinstance(result, pd.DataFrame) or result.empty:
        return None
    try:
        digest = pd.util.hash_pandas_object(result, index=True).values.tobytes()
    except TypeError:  # unhashable cells: fall back to the text of the table
        digest = result.to_csv().encode()
    return hashlib.sha256(digest + ",".join(map(str, result.columns)).encode()).hexdigest()[:16]

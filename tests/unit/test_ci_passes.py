"""CI runs every notebook in both passes (the attendee's first run, and with its solutions), somewhere: the
Makefile's `test` target spreads them over local mode and docker mode's step, and a reshuffle for time must
not drop one."""

import re
import shlex

from labkit.paths import REPO_ROOT

NOTEBOOKS = sorted(p.stem[:2] for p in (REPO_ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))


def _runs(target: str) -> list[list[str]]:
    """The argument lists of the `labkit.notebooks_ci` calls in a Makefile target's recipe."""
    text = (REPO_ROOT / "Makefile").read_text()
    recipe = re.search(rf"^{re.escape(target)}:.*?\n((?:\t.*\n|[^\S\n]*\n)+)", text, re.M)
    assert recipe, f"no target {target} in the Makefile"
    runs = []
    for line in recipe.group(1).replace("\\\n", " ").splitlines():
        for part in line.split(";"):
            words = shlex.split(part.replace("$$", "$"), comments=False) if "notebooks_ci" in part else []
            if words:
                runs.append(words[words.index("labkit.notebooks_ci") + 1 :])
    return runs


def _covered(runs: list[list[str]], wanted: str) -> set[str]:
    got: set[str] = set()
    for args in runs:
        passes, skip, names, i = ["attendee", "solution"], [], [], 0
        while i < len(args):
            if args[i] == "--pass":
                passes, i = [args[i + 1]], i + 2
            elif args[i] == "--skip":
                skip, i = args[i + 1].split(","), i + 2
            elif args[i].startswith("-") or args[i].startswith(("&", "|", ">")):
                break
            else:
                names.append(args[i])
                i += 1
        if wanted in passes:
            got |= {n for n in (names or NOTEBOOKS) if n not in skip}
    return got


def test_make_test_runs_every_notebook_in_both_passes():
    runs = _runs("test") + _runs("docker-suite")
    assert len(NOTEBOOKS) >= 10
    for wanted in ("attendee", "solution"):
        missing = sorted(set(NOTEBOOKS) - _covered(runs, wanted))
        assert not missing, f"CI's {wanted} pass runs no copy of notebook(s) {missing}"


def test_the_pass_reader_sees_a_skip():
    # the reader itself: a skipped notebook is not counted as run
    runs = [["--pass", "solution", "--skip", "08"], ["--pass", "attendee", "08"]]
    assert "08" not in _covered(runs, "solution") and _covered(runs, "attendee") == {"08"}

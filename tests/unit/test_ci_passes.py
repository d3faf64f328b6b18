"""CI runs every notebook in both passes (the attendee's first run, and with its solutions), somewhere: the
Makefile's `test` target spreads them over local mode and docker mode's step, and a reshuffle for time must
not drop one."""

import re
import shlex

from labkit.paths import REPO_ROOT

NOTEBOOKS = sorted(p.stem[:2] for p in (REPO_ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))


def _variables(text: str) -> dict[str, str]:
    """The Makefile's simple assignments (`X := v`, `X ?= v`, `X = v`), then the overrides the `test` target's
    docker step is started with (`docker-suite X=v` in `docker-beside-start`): the values CI's recipes see."""
    found = dict(re.findall(r"^([A-Z_]+)\s*[:?]?=\s*(.*?)\s*$", text, re.M))
    start = re.search(r"^docker-beside-start:.*?\n((?:\t.*\n)+)", text, re.M)
    if start:
        found.update(re.findall(r"docker-suite(?:\s+--?[\w-]+)*\s+([A-Z_]+)=(\S+)", start.group(1)))
    return found


def _expand(text: str, variables: dict[str, str]) -> str:
    """`$(X)` replaced by its value, repeatedly (a value may name another variable); an unknown one fails."""
    for _ in range(10):
        new = re.sub(r"\$\(([A-Z_]+)\)", lambda m: variables[m.group(1)], text)
        if new == text:
            return text
        text = new
    raise AssertionError(f"Makefile variables nest too deep in {text!r}")


def _runs(target: str) -> list[list[str]]:
    """The argument lists of the `labkit.notebooks_ci` calls in a Makefile target's recipe, its variables
    expanded (`$(BIN)` and the like are left alone by the reader: only the arguments after the module matter)."""
    text = (REPO_ROOT / "Makefile").read_text()
    variables = _variables(text)
    recipe = re.search(rf"^{re.escape(target)}:.*?\n((?:\t.*\n|[^\S\n]*\n)+)", text, re.M)
    assert recipe, f"no target {target} in the Makefile"
    runs = []
    for line in recipe.group(1).replace("\\\n", " ").splitlines():
        outside_ci = False  # inside `if ... [ -z "$$CI" ]; then ... fi`: a contributor's fallback CI never takes
        for part in line.split(";"):
            if '-z "$$CI"' in part:
                outside_ci = True
            if outside_ci:
                outside_ci = part.strip() != "fi"
                continue
            words = shlex.split(part.replace("$$", "$"), comments=False) if "notebooks_ci" in part else []
            if words:
                args = " ".join(words[words.index("labkit.notebooks_ci") + 1 :])
                runs.append(_expand(args, variables).split())
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
                names += args[i].split(",")
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


def test_the_reader_expands_the_makefiles_variables():
    # the lists are variables (ATTENDEE_HERE: run here as attendees, skipped by the docker step): unexpanded, a
    # `--skip $(X)` would skip nothing and every notebook would look covered
    runs = _runs("test") + _runs("docker-suite")
    assert runs and not any("$(" in a for args in runs for a in args), runs

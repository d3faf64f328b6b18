"""The course notebooks are committed clean and teach in the same shape: goals and time first, a parameters cell,
every chart followed by what to notice, every exercise followed by its checker, a recap and official links."""

import ast
import re
from pathlib import Path

import nbformat
import papermill
import pytest

from labkit.exercises import checks
from labkit.notebooks_ci import CHECK, CI_PARAMETERS, check_executed

BOOKS = sorted((Path(__file__).resolve().parents[2] / "notebooks").glob("[0-9][0-9]_*.ipynb"))
CHART = re.compile(r"(plots\.\w+\(|px\.\w+\(|notebook\.panel\(|\.figure\(|\.plot\()")


def test_the_course_is_complete():
    assert [b.stem[:2] for b in BOOKS] == [f"{i:02d}" for i in range(11)]
    assert {b.stem for b in BOOKS} == set(CI_PARAMETERS)


@pytest.mark.parametrize("path", BOOKS, ids=lambda p: p.stem)
def test_committed_without_outputs_and_with_a_parameters_cell(path):
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, f"{path.name} has outputs: run nbstripout"
    tagged = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1
    # papermill sees every assignment as a parameter (it skips lines with a second "=", even in a comment),
    # and CI overrides only parameters that exist
    assigned = {t.id for node in ast.parse(tagged[0].source).body if isinstance(node, ast.Assign) for t in node.targets}
    assert set(papermill.inspect_notebook(str(path))) == assigned
    assert set(CI_PARAMETERS[path.stem]) <= assigned
    assert "use_solution" in assigned  # CI's solution pass switches every exercise to its answer
    if "seed" in assigned:  # the attendee pass runs the default seed; the solution pass must run another one
        default = next(
            node.value.value
            for node in ast.parse(tagged[0].source).body
            if isinstance(node, ast.Assign) and node.targets[0].id == "seed"
        )
        assert CI_PARAMETERS[path.stem].get("seed", default) != default, f"{path.stem}: CI runs only its default seed"


@pytest.mark.parametrize("path", BOOKS, ids=lambda p: p.stem)
def test_each_notebook_teaches_in_the_course_shape(path):
    nb = nbformat.read(path, as_version=4)
    first = nb.cells[0]
    assert first.cell_type == "markdown"
    assert "**Time:**" in first.source and "**Builds on:**" in first.source
    assert re.search(r"You will (learn to|practise)", first.source)
    md = "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
    assert "## Recap" in md and "**Learn more:**" in md
    assert re.search(
        r"https://(kafka\.apache\.org|nightlies\.apache\.org/flink|docs\.influxdata\.com|grafana\.com)", md
    )
    assert "✍️" in md


@pytest.mark.parametrize("path", BOOKS, ids=lambda p: p.stem)
def test_every_chart_is_followed_by_what_to_notice(path):
    cells = nbformat.read(path, as_version=4).cells
    for i, cell in enumerate(cells):
        if cell.cell_type != "code" or "check" in cell.metadata.get("tags", []) or not CHART.search(cell.source):
            continue
        nxt = next((c for c in cells[i + 1 :] if c.cell_type == "markdown"), None)
        assert nxt is not None and "What to notice" in nxt.source, (
            f"{path.name}: no 'What to notice' after {cell.source[:60]!r}"
        )


@pytest.mark.parametrize("path", BOOKS, ids=lambda p: p.stem)
def test_every_exercise_has_a_checker_cell_and_a_solution_switch(path):
    cells = nbformat.read(path, as_version=4).cells
    exercises = [c for c in cells if c.cell_type == "code" and "# ✍️" in c.source]
    assert exercises, f"{path.name} has no exercise"
    for c in exercises:
        assert "use_solution" in c.source, (
            f"{path.name}: an exercise cell without the solution switch: {c.source[:60]!r}"
        )
    check_cells = [c for c in cells if "check" in c.metadata.get("tags", [])]
    assert len(check_cells) >= 1
    for c in check_cells:
        assert re.search(r"check_\w+\(", c.source), f"{path.name}: a check cell that runs no checker"


def test_every_question_is_asked_somewhere():
    text = "\n".join(c.source for p in BOOKS for c in nbformat.read(p, as_version=4).cells)
    for name in checks.QUESTIONS:
        assert f'ask("{name}")' in text and f'check_choice("{name}"' in text


def test_the_ci_reader_of_executed_notebooks_sees_states_and_empty_charts(tmp_path):
    """check_executed is what makes the notebook CI fail: prove it flags what it must."""
    from labkit.exercises.feedback import not_yet, passed

    def book(*outputs, tags=("check",)):
        nb = nbformat.v4.new_notebook()
        cell = nbformat.v4.new_code_cell("check_x(1)")
        cell.metadata["tags"] = list(tags)
        cell.outputs = list(outputs)
        nb.cells = [cell]
        p = tmp_path / "b.ipynb"
        nbformat.write(nb, p)
        return p

    def html_out(fb):
        return nbformat.v4.new_output("execute_result", {"text/html": fb._repr_html_()}, execution_count=1)

    ok, no = passed("fine"), not_yet("nope")
    ok.exercise = no.exercise = "x"
    assert CHECK.search(ok._repr_html_())
    assert check_executed(book(html_out(ok)), "pass") == []
    assert check_executed(book(html_out(no)), "fail") == []
    assert check_executed(book(html_out(no)), "pass")  # a failing checker in the solution pass
    assert check_executed(book(html_out(ok)), "fail")  # a starter answer that passes: the exercise is no exercise
    assert check_executed(book(), "pass")  # a check cell that showed nothing
    empty = nbformat.v4.new_output(
        "display_data", {"application/vnd.plotly.v1+json": {"data": [{"x": [], "y": []}], "layout": {}}}
    )
    full = nbformat.v4.new_output(
        "display_data", {"application/vnd.plotly.v1+json": {"data": [{"x": [1], "y": [2]}], "layout": {}}}
    )
    assert check_executed(book(empty, tags=()), "pass")
    assert check_executed(book(full, tags=()), "pass") == []


@pytest.mark.parametrize("path", BOOKS, ids=lambda p: p.stem)
def test_every_what_to_notice_is_backed_by_claims_on_the_data(path):
    """Each 'What to notice' paragraph is followed, before the next markdown, by a cell that checks it against the
    run's data (labkit.claims): a sentence the data do not bear out fails the CI run."""
    cells = nbformat.read(path, as_version=4).cells
    for i, cell in enumerate(cells):
        if cell.cell_type != "markdown" or "**What to notice:**" not in cell.source:
            continue
        nxt = cells[i + 1] if i + 1 < len(cells) else None
        assert nxt is not None and nxt.cell_type == "code" and "claim(" in nxt.source, (
            f"{path.name}: no claim cell after {cell.source[:80]!r}"
        )
        assert "claim" in nxt.metadata.get("tags", []), f"{path.name}: tag the claim cell 'claim'"


@pytest.mark.parametrize("path", BOOKS, ids=lambda p: p.stem)
def test_every_code_cell_compiles(path):
    """A syntax error in a cell is found in a second here, not after minutes of a notebook run."""
    for cell in nbformat.read(path, as_version=4).cells:
        if cell.cell_type == "code":
            src = "\n".join(line for line in cell.source.splitlines() if not line.lstrip().startswith(("%", "!")))
            compile(src, f"{path.name}", "exec")

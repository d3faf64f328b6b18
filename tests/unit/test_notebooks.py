"""The course notebooks are committed clean: no outputs, one `parameters` cell, numbered 00-08."""

import ast
from pathlib import Path

import nbformat
import papermill
import pytest

from labkit.notebooks_ci import CI_PARAMETERS

BOOKS = sorted((Path(__file__).resolve().parents[2] / "notebooks").glob("[0-9][0-9]_*.ipynb"))


def test_the_course_is_complete():
    assert [b.stem[:2] for b in BOOKS] == [f"{i:02d}" for i in range(9)]
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
    # explanations before code, and a question or exercise for the attendee
    assert nb.cells[0].cell_type == "markdown"
    assert any("✍️" in c.source for c in nb.cells if c.cell_type == "markdown")

"""The analysis notebook in notebooks/ runs top to bottom in a real Jupyter kernel (nbclient), so
it never rots: a load test from a kernel that is not monkeypatched, then the arrays analysed."""

from __future__ import annotations

from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

NOTEBOOK = Path(__file__).resolve().parent.parent / "notebooks" / "latency_analysis.ipynb"


def test_latency_analysis_notebook_executes(tmp_path: Path) -> None:
    nb = nbformat.read(NOTEBOOK, as_version=4)
    client = nbclient.NotebookClient(nb, timeout=180, kernel_name="python3", resources={"metadata": {"path": tmp_path}})
    client.execute()  # raises CellExecutionError, with the cell and traceback, if any cell fails

    outputs = [o for cell in nb.cells if cell.cell_type == "code" for o in cell.outputs]
    texts = [str(o.get("data", {}).get("text/plain", "")) + o.get("text", "") for o in outputs]
    # The run cell's live progress display ends on the final line.
    assert any(t.startswith("done ") and "requests" in t for t in texts), texts
    # The result's summary, with no failed requests against the demo target.
    summary = next(t for t in texts if t.startswith("<Result "))
    assert " 0 failures" in summary, summary
    # Figures were drawn (the distribution, latency over time, result.plot()).
    assert sum("image/png" in o.get("data", {}) for o in outputs) >= 3

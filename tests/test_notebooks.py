"""The course notebooks: one identical setup cell, committed without outputs, and (opt-in) run top to bottom.

The run is slow (minutes), so it is marked ``notebooks`` and skipped unless ``RUN_NOTEBOOKS=1``::

    RUN_NOTEBOOKS=1 python -m pytest tests/test_notebooks.py -m notebooks

It executes every notebook in quick mode (``CSE_QUICK=1``) with nbclient, in order (later notebooks
reuse the runs saved by earlier ones), checks that each finishes within ``NOTEBOOK_MAX_SECONDS``
(default 180) and writes the executed copies to ``notebooks/executed/`` (git-ignored).
"""

import ast
import asyncio
import json
import os
import re

import pytest

from cse_helpers import course
from cse_helpers.run_course import NOTEBOOK_DIR, execute_notebook, notebook_names, run_summary

NOTEBOOKS = notebook_names()


def load(name):
    with open(os.path.join(NOTEBOOK_DIR, name), encoding="utf-8") as f:
        return json.load(f)


def source(cell):
    return "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]


def code_cells(notebook):
    return [source(c) for c in notebook["cells"] if c["cell_type"] == "code"]


def test_the_course_has_five_numbered_notebooks_and_their_solutions():
    assert [name[:2] for name in NOTEBOOKS] == ["00", "01", "02", "03", "04", "05"]
    assert NOTEBOOKS[-1] == "05_solutions.ipynb"  # run last, like the others (tests/test_exercises.py)


def test_the_setup_cell_is_identical_in_every_notebook():
    setups = {name: code_cells(load(name))[0] for name in NOTEBOOKS}
    first = setups[NOTEBOOKS[0]]
    assert "course.setup(" in first
    for name, cell in setups.items():
        assert cell == first, f"{name}: its first code cell differs from {NOTEBOOKS[0]}'s setup cell"


def test_the_setup_cell_clones_the_repository_named_in_course():
    setup = code_cells(load(NOTEBOOKS[0]))[0]
    assert re.search(r'^REPO_URL = "([^"]+)"', setup, re.M).group(1) == course.REPO_URL
    assert "google.colab" in setup and "course.setup(seed=42)" in setup
    # CSE_REPO_URL first, then REPO_URL; the placeholder is recognised (tests/test_colab.py runs the cell)
    assert 'os.environ.get("CSE_REPO_URL") or REPO_URL' in setup
    assert f'url.endswith("{course.PLACEHOLDER_URL.removeprefix("https://github.com")}")' in setup


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_is_committed_without_outputs(name):
    for cell in load(name)["cells"]:
        if cell["cell_type"] == "code":
            assert cell.get("outputs") == [] and cell.get("execution_count") is None, f"{name}: strip the outputs"


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_opens_with_a_title_and_its_own_colab_link(name):
    first = load(name)["cells"][0]
    assert first["cell_type"] == "markdown" and source(first).startswith(f"# {int(name[:2])}.")
    assert "colab.research.google.com/github/" in source(first) and f"/notebooks/{name})" in source(first)


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_code_is_valid_python(name):
    for cell in code_cells(load(name)):
        ast.parse(cell)


@pytest.fixture(scope="module")
def runs_dir(tmp_path_factory):
    return str(tmp_path_factory.mktemp("notebook-runs"))


@pytest.mark.notebooks
@pytest.mark.skipif(os.environ.get("RUN_NOTEBOOKS") != "1", reason="slow: set RUN_NOTEBOOKS=1 to run the notebooks")
@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_runs_in_quick_mode(name, runs_dir, monkeypatch):
    monkeypatch.setenv("CSE_QUICK", "1")
    monkeypatch.setenv("CSE_RUNS_DIR", runs_dir)  # shared by the notebooks of this session, in order
    # The longest quick-mode cell (DiffCSE's 80 training steps with its evaluations) took 47 s on 2 idle
    # cores; one still running after 150 s is interrupted, so a hang fails with the line it hung on
    # instead of using up the notebook's whole budget.
    cell_timeout = int(os.environ.get("NOTEBOOK_CELL_TIMEOUT", "150"))
    seconds = execute_notebook(os.path.join(NOTEBOOK_DIR, name), os.path.join(NOTEBOOK_DIR, "executed", name),
                               timeout=cell_timeout)
    print(f"{name}: {seconds:.1f} s")
    limit = float(os.environ.get("NOTEBOOK_MAX_SECONDS", "180"))
    assert seconds < limit, f"{name} took {seconds:.0f} s in quick mode (limit {limit:.0f} s)"


def test_run_summary_adds_up_windows_and_leaves_the_warm_up_out_of_the_speed():
    history = {"log": [{"step": 10, "steps_per_s": 2.0, "sentences_per_s": 128.0},   # 5 s, the warm-up
                       {"step": 20, "steps_per_s": 10.0, "sentences_per_s": 640.0},  # 1 s
                       {"step": 25, "steps_per_s": 5.0, "sentences_per_s": 320.0}],  # 1 s
               "eval": [{"step": 10, "spearman": 0.31}, {"step": 20, "spearman": float("nan")},
                        {"step": 25, "spearman": 0.42}]}
    s = run_summary(history, budget_steps=2000)
    assert s["steps"] == 25 and s["seconds"] == pytest.approx(7.0)
    assert s["steps_per_s"] == pytest.approx(7.5) and s["sentences_per_s"] == pytest.approx(480.0)
    assert s["best_spearman"] == 0.42 and s["budget_minutes"] == pytest.approx(2000 / 7.5 / 60)
    with pytest.raises(ValueError, match="no logged steps"):
        run_summary({"log": [], "eval": []}, 2000)


def test_execute_notebook_writes_the_executed_copy_and_names_the_failing_cell(tmp_path, monkeypatch):
    import nbformat
    from nbclient.exceptions import CellExecutionError

    monkeypatch.delenv("MPLBACKEND", raising=False)
    good, bad = tmp_path / "good.ipynb", tmp_path / "bad.ipynb"
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("print(6 * 7)"), nbformat.v4.new_code_cell(
        "import os\nprint(os.environ['MPLBACKEND'])")]), good)
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x = 1"),
                                                   nbformat.v4.new_code_cell("1 / 0")]), bad)
    assert execute_notebook(str(good), str(tmp_path / "out" / "good.ipynb")) > 0
    executed = nbformat.read(tmp_path / "out" / "good.ipynb", as_version=4)
    assert executed.cells[0].outputs[0]["text"] == "42\n"
    assert executed.cells[1].outputs[0]["text"] == "module://matplotlib_inline.backend_inline\n"  # inline figures
    assert "MPLBACKEND" not in os.environ  # set for the kernel only
    with pytest.raises(CellExecutionError, match="ZeroDivisionError"):
        execute_notebook(str(bad), str(tmp_path / "out" / "bad.ipynb"))
    assert nbformat.read(tmp_path / "out" / "bad.ipynb", as_version=4).cells[1].outputs[0]["ename"] == \
        "ZeroDivisionError"


def test_a_stuck_cell_is_interrupted_and_its_error_names_the_line(tmp_path):
    import nbformat
    from nbclient.exceptions import CellExecutionError

    stuck = tmp_path / "stuck.ipynb"
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("import time\n\ntime.sleep(60)")]),
                   stuck)
    with pytest.raises(CellExecutionError, match=r"KeyboardInterrupt") as error:
        execute_notebook(str(stuck), str(tmp_path / "out.ipynb"), timeout=3)
    assert "time.sleep(60)" in str(error.value)


def test_run_course_refuses_an_unknown_notebook_before_running_any(capsys, tmp_path, monkeypatch):
    from cse_helpers.run_course import main

    for name in ("CSE_QUICK", "CSE_RUNS_DIR"):  # main() sets them: restored after the test
        monkeypatch.setenv(name, "")

    with pytest.raises(SystemExit):
        main(["--quick", "--notebooks", "1", "7", "--runs_dir", str(tmp_path), "--out", str(tmp_path)])
    assert "--notebooks 7: give numbers or names of 00_text_matching.ipynb" in capsys.readouterr().err
    assert not os.listdir(tmp_path)  # nothing was run or written


def test_stack_dump_prints_where_the_kernel_is_and_leaves_the_copy_clean(tmp_path, capfd):
    import nbformat

    slow = tmp_path / "slow.ipynb"
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(
        "import time\n\ndef waiting_here():\n    time.sleep(2.5)\n\nwaiting_here()")]), slow)
    execute_notebook(str(slow), str(tmp_path / "out.ipynb"), stack_dump=1)
    assert "in waiting_here" in capfd.readouterr().err  # faulthandler's dump, from the kernel process
    executed = nbformat.read(tmp_path / "out.ipynb", as_version=4)
    assert len(executed.cells) == 1 and "waiting_here()" in executed.cells[0].source


class _LostReplyKernel:
    """A kernel client stub whose shell channel returns ``replies`` in turn, then nothing (a lost reply)."""

    def __init__(self, replies=()):
        self.replies = list(replies)
        self.shell_channel = self

    async def get_msg(self, timeout=None):
        from queue import Empty

        if self.replies:
            return self.replies.pop(0)
        await asyncio.sleep(min(timeout or 0.01, 0.01))
        raise Empty


def _poll(kernel, cell, iopub_done=True):
    import nbformat

    from cse_helpers.run_course import notebook_client

    async def run():
        client = notebook_client(nbformat.v4.new_notebook(), record_timing=False)
        client.kc = kernel
        output_task = asyncio.ensure_future(asyncio.sleep(0 if iopub_done else 3600))
        alive_task = asyncio.ensure_future(asyncio.sleep(3600))
        await asyncio.sleep(0.001)
        try:
            return client, await client._async_poll_for_reply("m1", cell, 60, output_task, alive_task)
        finally:
            output_task.cancel()
            alive_task.cancel()

    return asyncio.run(run())


def test_a_lost_execute_reply_does_not_hold_up_the_notebook(monkeypatch):
    import nbformat
    from nbclient.exceptions import CellExecutionError

    from cse_helpers import run_course

    monkeypatch.setattr(run_course, "POLL_SECONDS", 0.01)
    monkeypatch.setattr(run_course, "REPLY_GRACE_SECONDS", 0.05)
    cell = nbformat.v4.new_code_cell("show_widgets()", execution_count=7)
    _, reply = _poll(_LostReplyKernel(), cell)
    assert reply["parent_header"]["msg_id"] == "m1" and reply["content"] == {"status": "ok", "execution_count": 7}

    cell.outputs = [nbformat.v4.new_output("error", ename="ValueError", evalue="bad knob",
                                           traceback=["ValueError: bad knob"])]
    client, reply = _poll(_LostReplyKernel(), cell)
    assert (reply["content"]["status"], reply["content"]["ename"]) == ("error", "ValueError")
    with pytest.raises(CellExecutionError, match="bad knob"):
        asyncio.run(client._check_raise_for_error(cell, 0, reply))


def test_the_kernels_own_reply_is_used_when_it_comes(monkeypatch):
    import nbformat

    from cse_helpers import run_course

    monkeypatch.setattr(run_course, "POLL_SECONDS", 0.01)
    other = {"parent_header": {"msg_id": "m0"}, "header": {}, "content": {"status": "ok"}}
    mine = {"parent_header": {"msg_id": "m1"}, "header": {}, "content": {"status": "ok", "execution_count": 3}}
    _, reply = _poll(_LostReplyKernel([other, mine]), nbformat.v4.new_code_cell("x = 1"))
    assert reply is mine

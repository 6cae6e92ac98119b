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
from cse_helpers.tools.run_course import NOTEBOOK_DIR, execute_notebook, notebook_names, run_summary

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


# ---- the executed copies (``make course``; another folder with CSE_EXECUTED_DIR): skipped when absent -------

EXECUTED_DIR = os.environ.get("CSE_EXECUTED_DIR", os.path.join(NOTEBOOK_DIR, "executed"))


def executed(name):
    """The executed copy of notebook ``name``, or a skip when ``make course`` has not written it."""
    path = os.path.join(EXECUTED_DIR, name)
    if not os.path.isfile(path):
        pytest.skip(f"no executed copy {path} (run `make course`, or set CSE_EXECUTED_DIR)")
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def text_of(value) -> str:
    return "".join(value) if isinstance(value, list) else str(value)


def printed_text(notebook) -> str:
    """Everything the notebook's cells printed or displayed as text (streams, text/plain, HTML tables, Markdown),
    and the texts its widgets showed (their saved state: readouts, labels, outputs)."""
    parts = []

    def add_output(output):
        parts.append(text_of(output.get("text", "")))
        for mime in ("text/plain", "text/html", "text/markdown", "text/latex"):
            parts.append(text_of(output.get("data", {}).get(mime, "")))

    for cell in notebook["cells"]:
        for output in cell.get("outputs", []):
            add_output(output)
    state = notebook.get("metadata", {}).get("widgets", {}).get("application/vnd.jupyter.widget-state+json", {})
    for model in state.get("state", {}).values():
        model = model.get("state", {})
        for key in ("value", "description"):
            if isinstance(model.get(key), str):
                parts.append(model[key])
        for output in model.get("outputs", []):
            add_output(output)
    return "\n".join(parts)


@pytest.mark.notebooks  # `make course` runs them on the copies it has just written
@pytest.mark.parametrize("name", [n for n in NOTEBOOKS if n[:2] in ("01", "02", "03")])
def test_each_loss_playground_leaves_a_static_picture_in_the_executed_copy(name):
    """A widget needs a running kernel; the playground's figure at its default knobs stays in the cell's
    outputs as a plain picture (cse_helpers.classroom.widgets.LossPlayground), for every copy read without one."""
    cells = [c for c in executed(name)["cells"] if c["cell_type"] == "code" and "widgets.LossPlayground(" in source(c)]
    assert cells, f"{name}: no cell creates a widgets.LossPlayground"
    for cell in cells:
        pictures = [o for o in cell.get("outputs", []) if "image/png" in o.get("data", {})]
        assert pictures, f"{name}: the loss playground's cell holds no image/png output:\n{source(cell)}"
        assert len(text_of(pictures[-1]["data"]["image/png"])) > 10_000  # a figure, not a placeholder


# Numbers that a notebook's markdown may state without its outputs printing them: the papers' figures and
# settings, each with where it comes from. Anything else in the text must be printed beside it.
CITED = {
    "0.05": "SimCSE's temperature, tau = 0.05 (Gao et al., 2021)",
    "0.32": "ESimCSE's duplication rate, dup_rate = 0.32 (Wu et al., 2022)",
    "0.995": "ESimCSE's momentum of the queue's encoder (Wu et al., 2022)",
    "0.005": "DiffCSE's RTD weight lambda = 0.005 for STS (Chuang et al., 2022)",
    "76.25": "unsupervised SimCSE with BERT-base: its average over the seven STS tasks (Gao et al., 2021)",
}
# ...and those cited in one notebook only
CITED_IN = {
    "03_diffcse.ipynb": {"80%": "BERT's masking recipe: 80% [MASK], 10% random, 10% kept (Devlin et al., 2019)",
                         "10%": "BERT's masking recipe, as above (Devlin et al., 2019)"},
    "05_solutions.ipynb": {"30%": "DiffCSE's mask ratio for BERT, masking_ratio 0.30 (Chuang et al., 2022)",
                           "80%": "BERT's masking recipe: 80% [MASK], the other 20% split (Devlin et al., 2019)",
                           "20%": "BERT's masking recipe, as above (Devlin et al., 2019)",
                           "0.5%": "1 - 0.995: how far ESimCSE's momentum encoder moves per step (Wu et al., 2022)"},
}

DECIMAL = re.compile(r"(?<![\w.])\d*\.\d{2,}(?![\d.]*\d)")  # 0.456, 0.52, .05: two or more decimals
PERCENT_OR_SECONDS = re.compile(r"(?<![\w.])(\d+(?:\.\d+)?) ?(%|s\b)")  # 15%, 180 s
NOT_PROSE = re.compile(r"\]\([^)]*\)|https?://\S+|arXiv:\s*\S+|<[^>]+>", re.I)  # link targets, URLs, tags


def markdown_numbers(text: str) -> list[tuple[str, str, str]]:
    """``(number as checked, how it must appear, the sentence)`` for each number of a markdown cell that an
    output must produce: decimals with at least two digits after the point, and numbers of seconds or percent."""
    text = NOT_PROSE.sub(" ", text)
    found = []
    for match in DECIMAL.finditer(text):
        found.append((match.group(0), match.group(0), match.start()))
    for match in PERCENT_OR_SECONDS.finditer(text):
        unit = match.group(2)
        key = match.group(1) + unit if unit == "%" else f"{match.group(1)} s"
        found.append((key, match.group(1), match.start()))
    out = []
    for key, number, at in found:
        stop = text.rfind(". ", 0, at)
        start = max(stop + 2 if stop >= 0 else 0, text.rfind("\n", 0, at) + 1)
        ends = [e for e in (text.find(". ", at), text.find("\n", at)) if e >= 0]
        out.append((key, number, " ".join(text[start:min(ends) if ends else len(text)].split())[:200]))
    return out


def produced(key: str, number: str, haystack: str) -> bool:
    """Whether ``haystack`` (code and printed text) holds the number as the markdown states it: a decimal with
    the same digits (not part of a longer number), a percentage with its %, seconds with " s"."""
    digits = re.escape(number.lstrip("0") if number.startswith("0.") else number)
    lead = r"(?<![\d.])0?" if number.startswith("0.") else r"(?<![\d.])"
    if key.endswith("%"):
        return re.search(lead + digits + r" ?%", haystack) is not None
    if key.endswith(" s"):
        return re.search(lead + digits + r" ?s\b", haystack) is not None
    return re.search(lead + digits + r"(?!\d)", haystack) is not None


def unproduced_numbers(notebook, cited: dict = CITED) -> list[str]:
    """``'cell 7: 0.456 in "..."'`` for each number of the markdown that no code or output of the notebook
    produces and that is not a cited figure (``cited``)."""
    haystack = "\n".join([source(c) for c in notebook["cells"] if c["cell_type"] == "code"]
                         + [printed_text(notebook)])
    missing = []
    for number, cell in enumerate(notebook["cells"], 1):
        if cell["cell_type"] != "markdown":
            continue
        for key, digits, sentence in markdown_numbers(source(cell)):
            if key not in cited and not produced(key, digits, haystack):
                missing.append(f'cell {number}: {key} in "{sentence}"')
    return missing


def test_markdown_numbers_are_found_only_where_the_outputs_print_them():
    text = ("The loss falls to 0.456 after 80 steps (12 s, 15% of the budget); see "
            "[the paper](https://arxiv.org/abs/2104.08821), arXiv:2104.08821, tau = 0.05 and 1.5 or 2.")
    assert [(k, d) for k, d, _ in markdown_numbers(text)] == [("0.456", "0.456"), ("0.05", "0.05"),
                                                               ("12 s", "12"), ("15%", "15")]
    assert markdown_numbers("Over 3 seeds.\nIt took 9 s here")[0][2] == "It took 9 s here"
    printed = "final dev Spearman 0.4561, loss .456 after 12 s; 15 % masked"
    assert produced("0.456", "0.456", printed)  # ".456" as printed by a format without the leading 0
    assert not produced("0.456", "0.456", "0.4561 only") and not produced("0.45", "0.45", "0.456")
    assert produced("12 s", "12", printed) and not produced("12 s", "12", "12 steps")
    assert produced("15%", "15", printed) and not produced("15%", "15", "0.15")
    notebook = {"cells": [{"cell_type": "markdown", "source": "Spearman 0.52 here, 0.61 there, tau 0.05."},
                          {"cell_type": "code", "source": "print(score)", "outputs": [
                              {"output_type": "stream", "name": "stdout", "text": ["Spearman 0.52\n"]}]}],
                "metadata": {}}
    assert unproduced_numbers(notebook) == ['cell 1: 0.61 in "Spearman 0.52 here, 0.61 there, tau 0.05."']


@pytest.mark.notebooks
@pytest.mark.parametrize("name", NOTEBOOKS)
def test_every_number_in_the_markdown_is_printed_by_the_notebook(name):
    """A number in a notebook's text must be one its code or outputs produce (the text then says what the
    reader sees), or a cited paper figure or setting (:data:`CITED`)."""
    missing = unproduced_numbers(executed(name), {**CITED, **CITED_IN.get(name, {})})
    assert not missing, (f"{name}: numbers in the markdown that no code or output of this run produces "
                         "(print them from the code, or cite them in CITED / CITED_IN with their source):\n"
                         + "\n".join(missing))


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


@pytest.mark.slow  # starts a Jupyter kernel
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


@pytest.mark.slow  # starts a Jupyter kernel
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
    from cse_helpers.tools.run_course import main

    for name in ("CSE_QUICK", "CSE_RUNS_DIR"):  # main() sets them: restored after the test
        monkeypatch.setenv(name, "")

    with pytest.raises(SystemExit):
        main(["--quick", "--notebooks", "1", "7", "--runs_dir", str(tmp_path), "--out", str(tmp_path)])
    assert "--notebooks 7: give numbers or names of 00_text_matching.ipynb" in capsys.readouterr().err
    assert not os.listdir(tmp_path)  # nothing was run or written


@pytest.mark.slow  # starts a Jupyter kernel
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

    from cse_helpers.tools.run_course import notebook_client

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

    from cse_helpers.tools import run_course

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

    from cse_helpers.tools import run_course

    monkeypatch.setattr(run_course, "POLL_SECONDS", 0.01)
    other = {"parent_header": {"msg_id": "m0"}, "header": {}, "content": {"status": "ok"}}
    mine = {"parent_header": {"msg_id": "m1"}, "header": {}, "content": {"status": "ok", "execution_count": 3}}
    _, reply = _poll(_LostReplyKernel([other, mine]), nbformat.v4.new_code_cell("x = 1"))
    assert reply is mine

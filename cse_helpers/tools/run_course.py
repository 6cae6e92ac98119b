"""Execute the course notebooks top to bottom, in order, and report how long each one took.

::

    python -m cse_helpers.tools.run_course            # the mode setup() picks: quick without a GPU, full with one
    python -m cse_helpers.tools.run_course --quick    # CSE_QUICK=1
    python -m cse_helpers.tools.run_course --full     # CSE_QUICK=0; CSE_MODEL and CSE_SETTINGS apply as usual

Each notebook runs in a fresh Jupyter kernel (nbclient), the way a learner runs it with *Run all*; an
error in any cell stops the run and names the cell. Executed copies, with their figures, are written
to ``notebooks/executed/`` (or ``--out``), also when a cell fails. The notebooks share one runs folder
(``--runs_dir``), so notebook 4 loads what notebooks 1-3 trained.

At the end it prints, for each training run it finds there, the steps, the training speed, the best
dev Spearman and how long the full mode's step budget would take at that speed: the figures needed
to size ``MODE_SETTINGS`` for a GPU. ``tests/test_notebooks.py`` uses :func:`execute_notebook` too.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import statistics
import sys
import time

from ..constants import METHODS, REPO_ROOT
from ..course import MODE_SETTINGS

NOTEBOOK_DIR = os.path.join(REPO_ROOT, "notebooks")


def notebook_names(notebook_dir: str = NOTEBOOK_DIR) -> list[str]:
    """The numbered notebooks (``00_*.ipynb`` ...), in course order; the last one solves the exercises."""
    return sorted(name for name in os.listdir(notebook_dir) if re.fullmatch(r"\d\d_\w+\.ipynb", name))


#: Seconds between two looks at the kernel's shell channel while a cell runs.
POLL_SECONDS = 1.0
#: Seconds to wait for a cell's execute_reply after the kernel reported the cell finished (idle).
REPLY_GRACE_SECONDS = 10.0


def notebook_client(notebook, **kwargs):
    """An nbclient ``NotebookClient`` that does not wait for an execute_reply that never comes.

    Seen here: after a cell that displays widgets (the loss playground), the kernel reported the
    cell finished on IOPub, but nbclient's one long wait on the shell channel returned only at the
    cell timeout (600 s on a CPU in CI; 1,800 s on a GPU, where it looked like a hang); the same
    symptom as jupyter/nbclient#312. This client looks at the shell channel every
    :data:`POLL_SECONDS`, and once the kernel has been idle for :data:`REPLY_GRACE_SECONDS`
    without a reply it goes on, taking the cell's status from its outputs (an error output means
    the cell failed). Everything else is nbclient's own behaviour, the timeout included.
    """
    from queue import Empty
    from time import monotonic

    from nbclient import NotebookClient
    from nbclient.client import timestamp
    from nbclient.util import ensure_async

    class Client(NotebookClient):
        async def _async_poll_for_reply(self, msg_id, cell, timeout, task_poll_output_msg, task_poll_kernel_alive):
            deadline = None if timeout is None else monotonic() + timeout
            idle_since = None
            while True:
                try:
                    msg = await ensure_async(self.kc.shell_channel.get_msg(timeout=POLL_SECONDS))
                except Empty:
                    if task_poll_output_msg.done():  # IOPub said "idle" for this cell
                        idle_since = idle_since or monotonic()
                        if monotonic() - idle_since >= REPLY_GRACE_SECONDS:
                            self.log.warning("No execute_reply %.0f s after the kernel went idle; going on.",
                                             REPLY_GRACE_SECONDS)
                            task_poll_kernel_alive.cancel()
                            return reply_from_outputs(msg_id, cell)
                    if deadline is not None and monotonic() >= deadline:
                        task_poll_kernel_alive.cancel()
                        await self._async_check_alive()
                        reply = await self._async_handle_timeout(timeout, cell)  # interrupts, or raises
                        if reply is not None:
                            reply["parent_header"] = {"msg_id": msg_id}
                            return reply
                        deadline = monotonic() + timeout  # the interrupted cell's reply is on its way
                    continue
                if msg["parent_header"].get("msg_id") != msg_id:
                    continue
                if self.record_timing:
                    cell["metadata"]["execution"]["shell.execute_reply"] = timestamp(msg)
                try:
                    await asyncio.wait_for(task_poll_output_msg, self.iopub_timeout)
                except (asyncio.TimeoutError, Empty):
                    self.log.warning("Timeout waiting for IOPub output")
                task_poll_kernel_alive.cancel()
                return msg

    return Client(notebook, **kwargs)


def reply_from_outputs(msg_id: str, cell) -> dict:
    """An execute_reply for ``cell`` built from its outputs: ``error`` if one of them is an error."""
    errors = [o for o in cell.get("outputs", []) if o.get("output_type") == "error"]
    content = {"status": "ok", "execution_count": cell.get("execution_count")}
    if errors:
        content.update(status="error", ename=errors[-1]["ename"], evalue=errors[-1]["evalue"],
                       traceback=errors[-1]["traceback"])
    return {"parent_header": {"msg_id": msg_id}, "header": {"msg_type": "execute_reply"}, "metadata": {},
            "content": content}


def stack_dump_cell(every: float):
    """A code cell that makes the kernel print every thread's Python stack to its stderr every ``every`` s.

    For finding where a notebook hangs: unlike an interrupt, :mod:`faulthandler` also reports a
    thread blocked inside C code (a CUDA call, a lock). The stacks go to the process's own stderr,
    i.e. the terminal that runs :func:`execute_notebook`, not into the notebook.
    """
    import nbformat

    return nbformat.v4.new_code_cell(
        f"import faulthandler, sys\nfaulthandler.dump_traceback_later({every}, repeat=True, file=sys.__stderr__)")


def execute_notebook(path: str, out_path: str, timeout: int = 600, stack_dump: float | None = None) -> float:
    """Run the notebook at ``path`` in a fresh kernel, write the executed copy to ``out_path``; seconds taken.

    The kernel starts in the notebook's folder and inherits this process's environment (``CSE_QUICK``,
    ``CSE_RUNS_DIR``, ...). A failing cell raises nbclient's ``CellExecutionError`` (with the cell and
    its traceback) after the copy is written. A cell still running after ``timeout`` seconds is
    interrupted, as the stop button would, so the error shows the line it was stuck on. With
    ``stack_dump`` the kernel also prints its stacks every ``stack_dump`` seconds (:func:`stack_dump_cell`).
    """
    import nbformat

    env = {"MPLBACKEND": "module://matplotlib_inline.backend_inline", **os.environ}  # the kernel's environment
    notebook = nbformat.read(path, as_version=4)
    if stack_dump:
        notebook.cells.insert(0, stack_dump_cell(stack_dump))
    client = notebook_client(notebook, timeout=timeout, interrupt_on_timeout=True, kernel_name="python3",
                             resources={"metadata": {"path": os.path.dirname(os.path.abspath(path))}})
    start = time.perf_counter()
    try:
        client.execute(env=env)
    finally:
        seconds = time.perf_counter() - start
        if stack_dump:
            notebook.cells.pop(0)  # the executed copy holds the course's cells only
        os.makedirs(os.path.dirname(os.path.abspath(out_path)), exist_ok=True)
        nbformat.write(notebook, out_path)
    return seconds


def run_summary(history: dict, budget_steps: int) -> dict:
    """Steps, speed and best dev Spearman of one training run's history (see ``train.History``).

    The wall time of a run is the sum of its logging windows (evaluations and saves fall inside
    them); the speed leaves out the first window, which holds the warm-up (kernel choice, caches).
    """
    log = history.get("log", [])
    if not log:
        raise ValueError("this history has no logged steps")
    steps = [r["step"] - (log[i - 1]["step"] if i else 0) for i, r in enumerate(log)]
    seconds = [n / r["steps_per_s"] for n, r in zip(steps, log)]
    steady = log[1:] or log
    speed = statistics.median(r["steps_per_s"] for r in steady)
    spearman = [r["spearman"] for r in history.get("eval", []) if r.get("spearman") == r.get("spearman")]
    return {"steps": log[-1]["step"], "seconds": sum(seconds), "steps_per_s": speed,
            "sentences_per_s": statistics.median(r["sentences_per_s"] for r in steady),
            "best_spearman": max(spearman) if spearman else float("nan"),
            "budget_steps": budget_steps, "budget_minutes": budget_steps / speed / 60}


def run_summaries(runs_dir: str, budget_steps: int = MODE_SETTINGS["full"]["max_steps"]) -> dict[str, dict]:
    """:func:`run_summary` of every method saved under ``runs_dir/<method>/last``."""
    out = {}
    for method in METHODS:
        path = os.path.join(runs_dir, method, "last", "history.json")
        if os.path.isfile(path):
            with open(path, encoding="utf-8") as f:
                out[method] = run_summary(json.load(f), budget_steps)
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m cse_helpers.tools.run_course", description=__doc__.split("\n")[0])
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_true", help="force quick mode (CSE_QUICK=1)")
    mode.add_argument("--full", action="store_true", help="force full mode (CSE_QUICK=0)")
    parser.add_argument("--notebooks", nargs="*", help="names or numbers of the notebooks to run (default: all)")
    parser.add_argument("--out", default=os.path.join(NOTEBOOK_DIR, "executed"), help="folder for executed copies")
    parser.add_argument("--runs_dir", default=None, help="runs folder shared by the notebooks (CSE_RUNS_DIR)")
    parser.add_argument("--timeout", type=int, default=1800, help="seconds one cell may take (then interrupted)")
    parser.add_argument("--stack_dump", type=float, default=None, metavar="SECONDS",
                        help="print the kernel's stacks to stderr every SECONDS (to find a hang)")
    args = parser.parse_args(argv)

    if args.quick or args.full:
        os.environ["CSE_QUICK"] = "1" if args.quick else "0"
    if args.runs_dir or not os.environ.get("CSE_RUNS_DIR"):
        import torch

        from ..course import quick_mode_requested

        mode = "quick" if quick_mode_requested(torch.cuda.is_available()) else "full"
        os.environ["CSE_RUNS_DIR"] = os.path.abspath(args.runs_dir or os.path.join(NOTEBOOK_DIR, "runs", mode))
    names = notebook_names()
    if args.notebooks:
        def named(name: str, wanted: str) -> bool:  # "01_simcse.ipynb", "01" or "1"
            return name == wanted or name[:2] == wanted.zfill(2)

        unknown = [x for x in args.notebooks if not any(named(n, x) for n in names)]
        if unknown:
            parser.error(f"--notebooks {' '.join(unknown)}: give numbers or names of {', '.join(names)}")
        names = [n for n in names if any(named(n, x) for x in args.notebooks)]
    for name in names:
        seconds = execute_notebook(os.path.join(NOTEBOOK_DIR, name), os.path.join(args.out, name), args.timeout,
                                   args.stack_dump)
        print(f"{name}: {seconds:.1f} s", flush=True)

    for method, s in run_summaries(os.environ["CSE_RUNS_DIR"]).items():
        print(f"{method}: {s['steps']} steps in {s['seconds']:.0f} s, {s['steps_per_s']:.2f} steps/s "
              f"({s['sentences_per_s']:.0f} sentences/s), best dev Spearman {s['best_spearman']:.4f}; "
              f"{s['budget_steps']} steps would take {s['budget_minutes']:.1f} min")
    return 0


if __name__ == "__main__":
    sys.exit(main())

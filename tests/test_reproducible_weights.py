"""The same seed gives the same run: five steps of each method on the tiny BERT, against numbers stored before the
package was reorganised (tests/data/short_runs.json), once for each transformers version the project is tested with
(the newest and the oldest supported: DiffCSE's numbers depend on it). On the machine and torch build they were
recorded with, the final weights must be bit-identical (a SHA-256 over every tensor of the objective); elsewhere
(another CPU's kernels round differently) the per-step losses and the sum of the encoder's weights must agree
closely. A transformers version without a record is reported as a skip that names it."""

import hashlib
import json
import os

import pytest
import torch
import transformers

from cse_helpers.constants import METHODS
from cse_helpers.train import train

from .conftest import SAMPLE_TRAIN

RECORD = os.path.join(os.path.dirname(__file__), "data", "short_runs.json")


def weights_sha256(module: torch.nn.Module) -> str:
    digest = hashlib.sha256()
    state = module.state_dict()
    for name in sorted(state):
        digest.update(name.encode())
        digest.update(state[name].detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


@pytest.fixture
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the record was made with one thread: summation order is part of "bit-identical"
    yield
    torch.set_num_threads(threads)


@pytest.mark.parametrize("method", METHODS)
def test_a_short_run_repeats_the_recorded_one(tiny_bert_dir, tmp_path, one_thread, method):
    with open(RECORD, encoding="utf-8") as f:
        record = json.load(f)
    runs = record["runs_by_transformers"].get(transformers.__version__)
    if runs is None:
        pytest.skip(f"no short run recorded with transformers {transformers.__version__} (recorded: "
                    f"{', '.join(record['runs_by_transformers'])}); record one at the same commit to compare")
    expected = runs[method]
    extra = {"generator": tiny_bert_dir} if method == "diffcse" else {}
    result = train(model=tiny_bert_dir, method=method, train_path=SAMPLE_TRAIN, save_dir=str(tmp_path),
                   progress_bar=False, **record["settings"], **extra)

    losses = [entry["loss"] for entry in result.history["log"]]
    assert losses == pytest.approx(expected["losses"], rel=1e-4)
    weight_sum = float(sum(p.double().sum() for p in result.encoder.parameters()))
    assert weight_sum == pytest.approx(expected["weight_sum"], rel=1e-6)
    same_build = (torch.__version__ == record["recorded_with"]["torch"]
                  and torch.backends.cpu.get_cpu_capability() == record["recorded_with"]["cpu_capability"])
    if same_build:
        assert weights_sha256(result.objective) == expected["sha256"]

"""benchmarks/sweep_quick.py --record: how the seeds the notebooks read are written (no training here)."""

import importlib.util
import json
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from cse_helpers.classroom.results import recorded_spread, seed_spearmans
from cse_helpers.constants import DEFAULT_MODEL

ROOT = Path(__file__).resolve().parents[1]
BASE = {"batch_size": 32, "max_seq_len": 48, "dropout": 0.1, "learning_rate": 0.0003, "max_steps": 80}


def _sweep():
    """benchmarks/ is not a package: load the script as the module ``sweep_quick`` (once)."""
    if "sweep_quick" not in sys.modules:
        spec = importlib.util.spec_from_file_location("sweep_quick", ROOT / "benchmarks" / "sweep_quick.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules["sweep_quick"] = module
        spec.loader.exec_module(module)
    return sys.modules["sweep_quick"]


def _args(dev="data/dev.tsv"):
    return SimpleNamespace(model=DEFAULT_MODEL, dev_path=str(ROOT / dev))


def test_record_merges_seeds_by_run_key_and_the_spread_follows(tmp_path):
    sweep, path = _sweep(), str(tmp_path / "quick_seeds.json")
    sweep.record(path, [{"key": "esimcse queue_size=0", "seed": 1, "spearman": 0.45381},
                        {"key": "esimcse queue_size=0", "seed": 0, "spearman": 0.45330}], BASE, _args(), 0.33536)
    sweep.record(path, [{"key": "esimcse queue_size=0", "seed": 2, "spearman": 0.45731},
                        {"key": "esimcse queue_size=0", "seed": 0, "spearman": 0.46000}], BASE, _args(), 0.33536)
    recorded = json.load(open(path, encoding="utf-8"))
    assert recorded["model"] == "cse_helpers/default_model" and recorded["dev"] == "data/dev.tsv"
    entry = recorded["runs"]["esimcse queue_size=0"]
    assert entry["seeds"] == [0, 1, 2] and entry["spearman"] == [0.46, 0.4538, 0.4573]  # seed 0 re-run: replaced
    assert seed_spearmans("esimcse queue_size=0", path=path) == [0.46, 0.4538, 0.4573]
    assert recorded_spread("esimcse queue_size=0", path=path) == pytest.approx(0.46 - 0.4538)


def test_record_refuses_runs_of_other_settings_instead_of_mixing_them(tmp_path):
    sweep, path = _sweep(), str(tmp_path / "quick_seeds.json")
    sweep.record(path, [{"key": "simcse", "seed": 0, "spearman": 0.4597}], BASE, _args(), 0.33536)
    with pytest.raises(SystemExit, match="other settings, model or dev file"):
        sweep.record(path, [{"key": "simcse", "seed": 1, "spearman": 0.4}], {**BASE, "max_steps": 40}, _args(), 0.3)
    assert json.load(open(path, encoding="utf-8"))["runs"]["simcse"]["spearman"] == [0.4597]


def test_a_grid_setting_that_train_does_not_know_is_refused(capsys):
    with pytest.raises(SystemExit):
        _sweep().main(["--grid", "queue_sze=0"])
    assert "--grid 'queue_sze=0'" in capsys.readouterr().err

"""Shared fixtures: tiny BERT and ERNIE models built offline from configs, and the sample data."""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # tests never touch the network
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import pytest  # noqa: E402
import torch  # noqa: E402

from cse_helpers.constants import DATA_DIR, REPO_ROOT, TUTORIAL_PAIRS  # noqa: E402
from cse_helpers.data import read_pairs, read_train_texts  # noqa: E402
from cse_helpers.tools.tiny import build_tiny_model  # noqa: E402

ROOT = REPO_ROOT
SAMPLE_TRAIN = os.path.join(DATA_DIR, "train.txt")
SAMPLE_DEV = os.path.join(DATA_DIR, "dev.tsv")

torch.set_num_threads(min(2, torch.get_num_threads()))


@pytest.fixture
def poison_loss(monkeypatch):
    """``poison_loss(step, value)``: from the ``step``-th loss on (that one only, with ``once``), SimCSE's
    contrastive loss is multiplied by ``value`` (nan or inf), as a diverging run would produce."""
    from cse_helpers.objectives import SimCSE

    original = SimCSE.contrastive_loss

    def install(step: int, value: float = float("nan"), once: bool = False):
        calls = {"n": 0}

        def poisoned(self, z1, z2):
            calls["n"] += 1
            loss = original(self, z1, z2)
            hit = calls["n"] == step if once else calls["n"] >= step
            return loss * value if hit else loss

        monkeypatch.setattr(SimCSE, "contrastive_loss", poisoned)

    yield install
    monkeypatch.setattr(SimCSE, "contrastive_loss", original)


@pytest.fixture(scope="session")
def sample_texts():
    return read_train_texts(SAMPLE_TRAIN)


@pytest.fixture(scope="session")
def sample_pairs():
    return read_pairs(SAMPLE_DEV)


def _corpus(texts, pairs):
    return list(texts) + [s for a, b, _ in pairs for s in (a, b)] + [s for p in TUTORIAL_PAIRS for s in p]


@pytest.fixture(scope="session", params=["bert", "ernie"])
def tiny_model_dir(request, tmp_path_factory, sample_texts, sample_pairs):
    """A tiny BERT and a tiny ERNIE (hidden 32, 2 layers), each with a character vocabulary."""
    out = tmp_path_factory.mktemp(f"tiny-{request.param}")
    return build_tiny_model(str(out), _corpus(sample_texts, sample_pairs), model_type=request.param,
                            hidden_size=32, num_hidden_layers=2, num_attention_heads=2, max_position_embeddings=64)


@pytest.fixture(scope="session")
def tiny_bert_dir(tmp_path_factory, sample_texts, sample_pairs):
    out = tmp_path_factory.mktemp("tiny-bert-only")
    return build_tiny_model(str(out), _corpus(sample_texts, sample_pairs), model_type="bert",
                            hidden_size=32, num_hidden_layers=2, num_attention_heads=2, max_position_embeddings=64)

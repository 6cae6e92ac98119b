"""The exercise checkers accept a right answer and reject typical wrong ones with a message that says what is wrong.

Right answers come from ``notebooks/05_solutions.ipynb`` itself: its code cells (all but the setup cell) are
executed here, in this process, in quick mode, so the fast suite knows the solutions pass their checks.
Wrong answers are the mistakes a learner is likely to make.
"""

import json
import math
import os
import random
import re
from collections import Counter

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from scipy.stats import pearsonr, spearmanr

from cse_helpers import course, evaluate
from cse_helpers.classroom import exercises
from cse_helpers.encoder import SentenceEncoder
from cse_helpers.tools.run_course import NOTEBOOK_DIR, notebook_names

LESSONS = [name for name in notebook_names() if name[:2] != "05"]
SOLUTIONS = "05_solutions.ipynb"
CHECKS = sorted(name for name in dir(exercises) if name.startswith("check_"))


def cells(name):
    with open(os.path.join(NOTEBOOK_DIR, name), encoding="utf-8") as f:
        notebook = json.load(f)
    return [(c["cell_type"], "".join(c["source"])) for c in notebook["cells"]]


@pytest.fixture(scope="module")
def solved(tmp_path_factory):
    """The namespace of 05_solutions after running its code cells after the setup cell (quick mode)."""
    code = [source for kind, source in cells(SOLUTIONS) if kind == "code"]
    namespace = {"course": course, "C": course.setup(seed=42, quick=True, verbose=False,
                                                      runs_dir=str(tmp_path_factory.mktemp("runs")))}
    cwd = os.getcwd()
    os.chdir(NOTEBOOK_DIR)  # where Jupyter runs it
    try:
        for source in code[1:]:
            exec(compile(source, SOLUTIONS, "exec"), namespace)  # a failing check raises here (or_raise)
    finally:
        os.chdir(cwd)
    return namespace


def wrong(verdict, *phrases):
    """The verdict rejects the answer and its message holds every phrase."""
    assert not verdict and verdict.attempted, verdict.message
    for phrase in phrases:
        assert phrase in verdict.message, f"{phrase!r} not in: {verdict.message}"
    return verdict.message


# ---- the verdict, and answers that are not there yet ----------------------------------------------

def stub(*args):
    ...


@pytest.mark.parametrize("name", CHECKS)
def test_an_unanswered_exercise_says_not_attempted_and_gives_nothing_away(name):
    check = getattr(exercises, name)
    for answer in (None,) if name in ("check_mask_fractions", "check_dropout_ablation") else (None, stub):
        verdict = check(answer)
        assert not verdict and not verdict.attempted
        assert verdict.message.startswith("…") and "not attempted yet" in verdict.message
        assert not re.search(r"\d\.\d", verdict.message), verdict.message  # no expected values


def test_a_verdict_is_true_only_for_a_right_answer_and_shows_its_message():
    right, not_yet = exercises.check_spearman(lambda s, y: spearmanr(s, y)[0]), exercises.check_spearman(None)
    assert bool(right) and repr(right) == str(right) == right.message and right.message.startswith("✔")
    assert right.or_raise() is right
    with pytest.raises(AssertionError, match="not attempted yet"):
        not_yet.or_raise()


def test_an_error_in_the_learners_code_is_reported_not_raised():
    message = wrong(exercises.check_character_jaccard(lambda a, b: len(a) / 0), "raised ZeroDivisionError")
    assert "蛋黄" in message  # on which input


# ---- the solutions notebook -----------------------------------------------------------------------

@pytest.mark.slow  # runs the solutions notebook's code (about 20 s)
def test_the_solutions_notebook_answers_every_exercise_and_each_answer_passes(solved):
    answers = {"check_character_jaccard": "jaccard", "check_spearman": "spearman",
               "check_spearman_noise": "bootstrap", "check_tau1_loss_floor": "levels",
               "check_alignment": "alignment", "check_uniformity": "uniformity", "check_word_repetition": "repeat",
               "check_momentum_update": "update", "check_length_cue": "length_cue", "check_rtd_labels": "rtd_labels",
               "check_conditioning_losses": "conditioning_losses",
               "check_mask_fractions": "fractions", "check_mean_pooling": "mean_pool", "check_top_k": "top_k"}
    answers["check_dropout_ablation"] = "dropout_runs"
    assert sorted(answers) == CHECKS
    for check, answer in answers.items():
        verdict = getattr(exercises, check)(solved[answer])
        assert verdict and verdict.message.startswith("✔"), verdict.message
    solutions = "\n".join(source for kind, source in cells(SOLUTIONS) if kind == "code")
    for check in CHECKS:
        assert f"exercises.{check}(" in solutions and ").or_raise()" in solutions


def test_every_checker_is_an_exercise_of_a_lesson_and_each_lesson_has_two_or_three():
    used = []
    for name in LESSONS:
        source = [(kind, text) for kind, text in cells(name)]
        exercises_at = next(i for i, (kind, text) in enumerate(source) if text.startswith("## Exercises"))
        tail = source[exercises_at + 1:]
        titles = [text for kind, text in tail if kind == "markdown" and text.startswith("### Exercise")]
        assert 2 <= len(titles) <= 3, name
        answers = [text for kind, text in tail if kind == "code" and text.startswith("# your answer here")]
        assert len(answers) == len(titles), f"{name}: one answer cell per exercise"
        checks = re.findall(r"exercises\.(check_\w+)\(", "\n".join(text for kind, text in tail if kind == "code"))
        assert checks and all(c in CHECKS for c in checks), name
        assert all(text.startswith("### Exercise") or kind == "code" for kind, text in tail), \
            f"{name}: the exercises are the end of the notebook"
        used += checks
    assert sorted(used) == CHECKS


@pytest.mark.parametrize("name", LESSONS)
def test_the_exercise_cells_run_as_committed_and_say_not_attempted(name):
    source = cells(name)
    start = next(i for i, (kind, text) in enumerate(source) if text.startswith("## Exercises"))
    namespace = {}
    for kind, text in source[start:]:
        if kind == "code":
            exec(compile(text, name, "exec"), namespace)  # "Run all" must not stop at an unanswered exercise
    calls = re.findall(r"exercises\.(check_\w+)\((\w+)\)", "\n".join(text for _, text in source[start:]))
    assert calls
    for check, answer in calls:
        verdict = getattr(exercises, check)(namespace[answer])
        assert not verdict.attempted and "not attempted yet" in verdict.message, f"{name}: {check}"


@pytest.mark.parametrize("name", LESSONS)
def test_each_lesson_opens_with_objectives_prerequisites_study_time_and_the_glossary(name):
    (title_kind, title), (kind, header) = cells(name)[:2]
    assert title_kind == kind == "markdown" and title.startswith(f"# {int(name[:2])}.")
    objectives = re.findall(r"^- ", header.split("**Prerequisites:**")[0], re.M)
    assert "**Learning objectives.**" in header and 3 <= len(objectives) <= 5
    assert "**Prerequisites:**" in header and "**Study time:**" in header and "min" in header
    assert "(GLOSSARY.md)" in header


def test_the_glossary_defines_the_course_terms_with_references():
    with open(os.path.join(NOTEBOOK_DIR, "GLOSSARY.md"), encoding="utf-8") as f:
        glossary = f.read()
    entries = dict(re.findall(r"^\*\*(.+?)\*\* (.+?)(?=\n\n|\n## )", glossary, re.M | re.S))
    for term in ("Alignment", "Anisotropy", "Hard negative", "InfoNCE", "Momentum encoder", "Pooler",
                 "Positive pair / negative pair", "Queue", "RTD, replaced-token detection",
                 "Spearman correlation, and its noise", "Temperature τ", "Uniformity", "Word repetition"):
        assert term in entries, term
        assert re.search(r"\(\D*\d{4}\)|\d{4}\)", entries[term]), f"{term}: no reference"
        assert 2 <= entries[term].count(". ") + 1 <= 6, term
    for paper in ("Gao, Yao & Chen (2021)", "Wu et al. (2022)", "Chuang et al. (2022)", "Wang & Isola (2020)",
                  "He, Fan, Wu, Xie & Girshick (2020)", "Clark, Luong, Le & Manning (2020)"):
        assert paper in glossary
    with open(os.path.join(NOTEBOOK_DIR, "..", "README.md"), encoding="utf-8") as f:
        assert "notebooks/GLOSSARY.md" in f.read()


# ---- notebook 0 -----------------------------------------------------------------------------------

def test_character_jaccard_rejects_multisets_and_other_denominators():
    def multiset(a, b):
        ca, cb = Counter(a), Counter(b)
        return sum((ca & cb).values()) / sum((ca | cb).values())

    wrong(exercises.check_character_jaccard(multiset), "repeated characters", "多多益善")
    wrong(exercises.check_character_jaccard(lambda a, b: 2 * len(set(a) & set(b)) / (len(set(a)) + len(set(b)))),
          "Dice coefficient", "expected 0.6154")


def test_spearman_rejects_pearson_and_ranks_without_ties():
    wrong(exercises.check_spearman(lambda s, y: pearsonr(s, y)[0]), "Pearson's r of the raw values")

    def ordinal(s, y):
        rank = lambda x: np.argsort(np.argsort(x, kind="stable"), kind="stable")  # noqa: E731
        return np.corrcoef(rank(s), rank(y))[0, 1]

    wrong(exercises.check_spearman(ordinal), "Ties", "0/1 labels")


def test_spearman_noise_rejects_resampling_without_replacement_unpaired_or_unseeded():
    def permutations(scores, labels, n_resamples=1000, seed=0):
        rng = np.random.default_rng(seed)
        return [spearmanr(scores[i], labels[i])[0] for i in (rng.permutation(len(scores)) for _ in range(n_resamples))]

    def unpaired(scores, labels, n_resamples=1000, seed=0):
        rng = np.random.default_rng(seed)
        n = len(scores)
        return [spearmanr(scores[rng.integers(0, n, n)], labels[rng.integers(0, n, n)])[0] for _ in range(n_resamples)]

    def unseeded(scores, labels, n_resamples=1000, seed=0):
        return unpaired_ok(scores, labels, n_resamples, np.random.default_rng())

    def unpaired_ok(scores, labels, n_resamples, rng):
        n = len(scores)
        return [spearmanr(scores[i], labels[i])[0] for i in (rng.integers(0, n, n) for _ in range(n_resamples))]

    wrong(exercises.check_spearman_noise(permutations), "*with* replacement")
    wrong(exercises.check_spearman_noise(unpaired), "separately", "Resample *pairs*")
    wrong(exercises.check_spearman_noise(unseeded), "same seed")
    wrong(exercises.check_spearman_noise(lambda s, y, n, seed: [0.3] * 10), "one Spearman per resample")


def test_spearman_noise_reports_the_standard_error_of_a_right_answer():
    def vectorised(scores, labels, n_resamples=1000, seed=0):  # another right answer: all resamples at once
        index = np.random.default_rng(seed).integers(0, len(scores), size=(n_resamples, len(scores)))
        return evaluate.spearman_rows(scores[index], labels[index])

    verdict = exercises.check_spearman_noise(vectorised)
    assert verdict and "standard error" in verdict.message and "95% interval" in verdict.message


# ---- notebook 1 -----------------------------------------------------------------------------------

def test_tau1_levels_reject_the_antipodal_floor_and_accept_the_simplex_one():
    simplex = lambda b: (math.log1p((2 * b - 2) * math.exp(-b / (b - 1))), math.log(2 * b - 1))  # noqa: E731
    verdict = exercises.check_tau1_loss_floor(simplex)
    assert verdict and "0.948" in verdict.message and "1.946" in verdict.message, verdict.message
    antipodal = lambda b: (math.log1p((2 * b - 2) * math.exp(-2)), math.log(2 * b - 1))  # noqa: E731
    wrong(exercises.check_tau1_loss_floor(antipodal), "got lowest = 0.5944 for B=4", "expected 0.9484",
          "more than two unit vectors cannot do", "-1/(N-1)")


def test_tau1_levels_reject_counting_the_row_against_itself_and_the_b_by_b_form():
    def chance_with_the_diagonal(b):
        lowest, _ = exercises.simcse._matrix_loss_levels(b)
        return lowest, math.log(2 * b)

    message = wrong(exercises.check_tau1_loss_floor(chance_with_the_diagonal), "got chance = 2.0794 for B=4",
                    "expected 1.9459", "row against itself")
    assert "masked" in message
    info_nce_form = lambda b: (math.log1p((b - 1) * math.exp(-b / (b - 1))), math.log(b))  # noqa: E731
    wrong(exercises.check_tau1_loss_floor(info_nce_form), "lowest", "info_nce's B x B form")
    all_rows_on_a_simplex = lambda b: (math.log1p((2 * b - 2) * math.exp(-2 * b / (2 * b - 1))),  # noqa: E731
                                       math.log(2 * b - 1))
    wrong(exercises.check_tau1_loss_floor(all_rows_on_a_simplex), "only B distinct points")
    wrong(exercises.check_tau1_loss_floor(lambda b: math.log(2 * b - 1)), "two numbers")


@pytest.mark.parametrize("batch_size", [2, 3, 4, 8])
def test_tau1_lowest_loss_is_reached_by_the_simplex_and_not_beaten_by_gradient_descent(batch_size):
    from cse_helpers.losses import simcse_matrix_loss

    lowest, chance = exercises.simcse._matrix_loss_levels(batch_size)
    assert chance == pytest.approx(math.log(2 * batch_size - 1), rel=1e-6)
    simplex = exercises.simplex_views(batch_size, dim=16)
    assert float(simcse_matrix_loss(simplex, temperature=1.0)) == pytest.approx(lowest, rel=1e-6)
    # free unit vectors, optimised from a random start: they reach the bound and never go below it
    x = torch.randn(2 * batch_size, 16, generator=torch.Generator().manual_seed(batch_size), requires_grad=True)
    optimizer = torch.optim.Adam([x], lr=0.05)
    for _ in range(400):
        loss = simcse_matrix_loss(F.normalize(x, dim=1), temperature=1.0)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    reached = float(simcse_matrix_loss(F.normalize(x.detach(), dim=1), temperature=1.0))
    assert lowest - 1e-6 <= reached < lowest + 1e-3
    antipodal = math.log1p((2 * batch_size - 2) * math.exp(-2))
    assert antipodal < lowest or batch_size == 2  # the antipodal "floor" is out of reach for B > 2


class _FakeRun:
    """What check_dropout_ablation reads of a TrainResult: its history, scores and run folder."""

    def __init__(self, folder, spearman, **settings):
        os.makedirs(folder, exist_ok=True)
        base = {"model": "m", "method": "simcse", "dropout": 0.1, "learning_rate": 3e-4, "batch_size": 8,
                "max_steps": 4, "seed": 42}
        with open(os.path.join(folder, "training_args.json"), "w") as f:
            json.dump({**base, **settings}, f)
        self.last_dir, self.final_scores = str(folder), None
        self.history = {"log": [{"loss": 0.02 + settings.get("dropout", 0.1)}, {"loss": 0.01}],
                        "eval": [{"spearman": spearman, "spearman_ci": (spearman - 0.05, spearman + 0.05)}]}


def test_the_dropout_ablation_needs_one_change_only_and_reports_the_verdict(tmp_path):
    without, with_dropout = _FakeRun(tmp_path / "a", 0.30, dropout=0.0), _FakeRun(tmp_path / "b", 0.45)
    verdict = exercises.check_dropout_ablation((without, with_dropout))
    assert verdict and "dropout 0.1 is higher than dropout 0 beyond the noise" in verdict.message, verdict.message
    assert "seed" in verdict.message and "representation collapse" in verdict.message
    wrong(exercises.check_dropout_ablation((with_dropout, without)), "the first run was trained with dropout 0.1")
    other = _FakeRun(tmp_path / "c", 0.45, max_steps=8)
    wrong(exercises.check_dropout_ablation((without, other)), "differ in max_steps")
    wrong(exercises.check_dropout_ablation((without, 0.45)), "TrainResult")
    wrong(exercises.check_dropout_ablation(without), "a pair")


def test_alignment_rejects_the_unsquared_distance_and_all_pairs():
    wrong(exercises.check_alignment(lambda za, zb: (za - zb).norm(dim=1).mean()), "square (alpha = 2)")
    wrong(exercises.check_alignment(lambda za, zb: torch.cdist(za, zb).pow(2).mean()), "each positive pair only")
    assert exercises.check_alignment(lambda za, zb: (2 - 2 * (za * zb).sum(1)).mean())  # the same on unit vectors


def test_uniformity_rejects_the_diagonal_a_wrong_t_and_a_missing_log():
    wrong(exercises.check_uniformity(lambda z: torch.cdist(z, z).pow(2).mul(-2).exp().mean().log()), "with itself")
    wrong(exercises.check_uniformity(lambda z: torch.pdist(z).pow(2).mul(-1).exp().mean().log()), "t is 2")
    wrong(exercises.check_uniformity(lambda z: torch.pdist(z).pow(2).mul(-2).exp().mean()), "log is missing")


# ---- notebook 2 -----------------------------------------------------------------------------------

def repetition_with(count, positions="sample"):
    """A word repetition whose number of repeats is ``count(n, dup_rate, rng)``."""
    def repeat(tokens, dup_rate, rng):
        n = len(tokens)
        k = count(n, dup_rate, rng)
        chosen = Counter(rng.sample(range(n), k) if positions == "sample" else rng.choices(range(n), k=k))
        out = []
        for i, token in enumerate(tokens):
            out += [token] * (1 + chosen[i])
        return out
    return repeat


def test_word_repetition_rejects_a_wrong_count_rule():
    fixed = repetition_with(lambda n, rate, rng: int(rate * n))
    wrong(exercises.check_word_repetition(fixed), "the numbers of repeats you drew were", "includes 0")
    no_minimum = repetition_with(lambda n, rate, rng: rng.randint(0, int(rate * n)))
    wrong(exercises.check_word_repetition(no_minimum), "N=3 tokens and dup_rate=0.1")
    per_token = repetition_with(lambda n, rate, rng: sum(rng.random() < rate for _ in range(n)))
    wrong(exercises.check_word_repetition(per_token), "you repeated up to")


def test_word_repetition_rejects_broken_order_triples_mutation_and_a_private_rng():
    def at_the_end(tokens, dup_rate, rng):
        return list(tokens) + rng.sample(list(tokens), min(rng.randint(0, max(2, int(dup_rate * len(tokens)))),
                                                         len(tokens)))

    def in_place(tokens, dup_rate, rng):
        tokens.insert(0, tokens[0])
        return tokens

    rule = lambda n, rate, rng: min(rng.randint(0, max(2, int(rate * n))), n)  # noqa: E731
    wrong(exercises.check_word_repetition(at_the_end), "the order changed")
    wrong(exercises.check_word_repetition(repetition_with(rule, positions="choices")), "more than twice in a row")
    wrong(exercises.check_word_repetition(in_place), "changed the list it was given")
    private = repetition_with(lambda n, rate, rng: rule(n, rate, random.Random()))
    message = wrong(exercises.check_word_repetition(lambda t, r, rng: private(t, r, random.Random())), "same seed")
    assert "from the rng you are given" in message


def test_word_repetition_accepts_another_correct_drawing_order():
    def shuffled_first(tokens, dup_rate, rng):
        n = len(tokens)
        order = rng.sample(range(n), n)  # positions first, then the count: a different draw, the same rule
        chosen = set(order[:min(rng.randint(0, max(2, int(dup_rate * n))), n)])
        return [t for i, token in enumerate(tokens) for t in [token] * (1 + (i in chosen))]

    verdict = exercises.check_word_repetition(shuffled_first)
    assert verdict and "draws differently" in verdict.message


def test_momentum_update_rejects_swapped_weights_a_copy_and_touching_the_encoder():
    @torch.no_grad()
    def swapped(momentum_encoder, encoder, m):
        for pm, p in zip(momentum_encoder.parameters(), encoder.parameters()):
            pm.mul_(1 - m).add_(p, alpha=m)

    @torch.no_grad()
    def copied(momentum_encoder, encoder, m):
        momentum_encoder.load_state_dict(encoder.state_dict())

    def new_model(momentum_encoder, encoder, m):
        import copy
        out = copy.deepcopy(momentum_encoder)
        with torch.no_grad():
            for pm, p in zip(out.parameters(), encoder.parameters()):
                pm.mul_(m).add_(p, alpha=1 - m)
        return out

    @torch.no_grad()
    def both(momentum_encoder, encoder, m):
        for pm, p in zip(momentum_encoder.parameters(), encoder.parameters()):
            pm.mul_(m).add_(p, alpha=1 - m)
            p.copy_(pm)

    wrong(exercises.check_momentum_update(swapped), "swapped")
    wrong(exercises.check_momentum_update(copied), "momentum 0")
    wrong(exercises.check_momentum_update(new_model), "did not change", "in place")
    wrong(exercises.check_momentum_update(both), "changed the encoder itself")


def cue_with(partners="right", repeats="b", order="right"):
    """A length_cue with one known mistake: partners drawn at random, repeats on the partner or new characters in
    b', or the two numbers swapped."""
    def length_cue(encode, texts, k, rng):
        by_length = {}
        for t in texts:
            by_length.setdefault(len(t), []).append(t)
        rows = []
        for b in texts:
            same, longer = [t for t in by_length[len(b)] if t != b], by_length.get(len(b) + k, [])
            if not same or not longer or len(b) < k:
                continue
            a1, a2 = (rng.choice(same), rng.choice(longer)) if partners == "right" else rng.sample(texts, 2)
            chosen = set(rng.sample(range(len(b)), k))
            b2 = "".join(c * (2 if i in chosen else 1) for i, c in enumerate(b)) if repeats != "new" else b + "的" * k
            if repeats == "partner":
                a1, a2, b2 = a1 + a1[:k], a2 + a2[:k], b
            rows.append((b, b2, a1, a2))
        z = encode([t for row in rows for t in row]).reshape(len(rows), 4, -1)
        b, b2, a1, a2 = z.unbind(1)
        match = float(((a2 * b2).sum(-1) - (a2 * b).sum(-1)).mean())
        mismatch = float(((a1 * b2).sum(-1) - (a1 * b).sum(-1)).mean())
        return (match, mismatch) if order == "right" else (mismatch, match)
    return length_cue


def test_length_cue_accepts_the_experiment_and_rejects_swapped_random_partners_and_new_characters():
    assert exercises.check_length_cue(cue_with())
    wrong(exercises.check_length_cue(cue_with(order="swapped")), "swapped")
    wrong(exercises.check_length_cue(cue_with(partners="random")), "a1 has b's length")
    wrong(exercises.check_length_cue(cue_with(repeats="partner")), "k=3 you got")
    wrong(exercises.check_length_cue(cue_with(repeats="new")), "changes nothing for this encoder")
    wrong(exercises.check_length_cue(lambda encode, texts, k, rng: 0.5), "return two numbers")


# ---- notebook 3 -----------------------------------------------------------------------------------

def test_rtd_labels_reject_labelling_the_selection_forgetting_minus_100_or_inverting():
    selection = lambda ids, edited, selected, maskable: selected.long().masked_fill(~maskable, -100)  # noqa: E731
    wrong(exercises.check_rtd_labels(selection), "every selected position", "put the original token back")
    wrong(exercises.check_rtd_labels(lambda ids, edited, selected, maskable: (edited != ids).long()), "-100")
    wrong(exercises.check_rtd_labels(lambda ids, edited, selected, maskable:
                                     (edited == ids).long().masked_fill(~maskable, -100)), "inverted")
    wrong(exercises.check_rtd_labels(lambda ids, edited, selected, maskable: (edited != ids)[:, 1:]), "shape (3, 8)")


def test_rtd_reference_is_diffcses_own_rule(tiny_bert_dir):
    from tests.test_models import LONG, SHORT, make_diffcse

    objective = make_diffcse(tiny_bert_dir, mask_ratio=0.5)
    batch = objective.encoder.pad(objective.encoder.body_ids([SHORT, LONG]))
    edited, labels, maskable = objective.replace_tokens(batch["input_ids"], batch["attention_mask"])
    assert torch.equal(exercises.rtd_reference(batch["input_ids"], edited, maskable), labels)


def test_conditioning_losses_reject_a_shuffle_that_keeps_a_sentence_other_edits_noise_and_a_wrong_mean():
    def answer(shuffle=lambda h: torch.roll(h, 1, dims=0), mean=lambda h: h.mean(0, keepdim=True).expand_as(h),
               edits=lambda e: e):
        return lambda detect, h, e, y, m: (detect(h, e, y, m), detect(shuffle(h), edits(e), y, m),
                                           detect(mean(h), e, y, m))

    assert exercises.check_conditioning_losses(answer())
    swap_two = lambda h: h[[1, 0, *range(2, len(h))]]  # noqa: E731 -- sentences 2.. keep their own h
    wrong(exercises.check_conditioning_losses(answer(shuffle=swap_two)), "[2, 3, 4, 5] kept their own h")
    wrong(exercises.check_conditioning_losses(answer(shuffle=torch.randn_like)), "in another order")
    wrong(exercises.check_conditioning_losses(answer(edits=lambda e: e.roll(1, dims=0))), "same edited sentences")
    wrong(exercises.check_conditioning_losses(answer(mean=torch.zeros_like)), "the batch's mean h")
    wrong(exercises.check_conditioning_losses(lambda detect, h, e, y, m: (detect(h, e, y, m),) * 3), "called 1 times")
    reordered = lambda detect, h, e, y, m: answer()(detect, h, e, y, m)[::-1]  # noqa: E731
    wrong(exercises.check_conditioning_losses(reordered), "(own, shuffled, mean)")


def test_mask_fractions_reject_shares_of_the_selected_tokens():
    wrong(exercises.check_mask_fractions((0.8, 0.1, 0.1)), "*selected* tokens")
    wrong(exercises.check_mask_fractions((0.24, 0.06, 0.0)), "how is the rest split")
    wrong(exercises.check_mask_fractions((0.3, 0.1, 0.1)), "add up to 0.500")
    wrong(exercises.check_mask_fractions(0.24), "three numbers")


# ---- notebook 4 -----------------------------------------------------------------------------------

def test_mean_pooling_rejects_averaging_the_padding_and_the_cls_vector():
    wrong(exercises.check_mean_pooling(lambda h, mask: h.mean(dim=1)), "padding", "rows [1, 2]")
    wrong(exercises.check_mean_pooling(lambda h, mask: h[:, 0]), "cls pooler")
    wrong(exercises.check_mean_pooling(lambda h, mask: h.mean(dim=2)), "shape (3, 4)")


def test_mean_pool_reference_is_the_encoders_mean_pooler(tiny_bert_dir):
    encoder = SentenceEncoder.from_pretrained(tiny_bert_dir, pooler="mean").eval()
    batch = encoder.pad(encoder.body_ids(["今天天气很好", "今天天气很好，我们一起去公园散步吧"]))
    with torch.no_grad():
        tokens = encoder.backbone(**batch).last_hidden_state
        torch.testing.assert_close(exercises.mean_pool_reference(tokens, batch["attention_mask"]), encoder(**batch))


def test_top_k_rejects_the_dot_product_and_the_wrong_order():
    wrong(exercises.check_top_k(lambda q, corpus, k: torch.topk(corpus @ q, k).indices), "dot product")
    cosines = lambda q, corpus: F.cosine_similarity(corpus, q[None], dim=1)  # noqa: E731
    wrong(exercises.check_top_k(lambda q, corpus, k: torch.topk(cosines(q, corpus), k, largest=False).indices),
          "*least* similar")
    wrong(exercises.check_top_k(lambda q, corpus, k: torch.topk(cosines(q, corpus), k).indices.flip(0)),
          "reverse order")
    wrong(exercises.check_top_k(lambda q, corpus, k: torch.topk(cosines(q, corpus), k + 1).indices), "6 indices")

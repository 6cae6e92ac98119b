"""Small analyses the notebooks share: how an encoder's cosines depend on sentence length.

- :func:`random_pair_cosines`: cosines of random (mostly unrelated) pairs against their length
  difference, the narrow cone of an untrained encoder and the length bias ESimCSE starts from;
- :func:`repetition_cosines`: a sentence against its word-repeated copy (Wu et al., 2022), against the
  number of repeated tokens.

Each returns its numbers with the rank correlation and its bootstrap interval, so a notebook can say
whether a difference is beyond the noise.

Notebook 2 tests Wu et al.'s claim (SimCSE's positives always share their length, so a model may learn
"same length, so similar") with the content held fixed, on sentences of one token per character
(:func:`one_token_per_character`), and reads the result in words:

- :func:`copy_curve`: a sentence against its copy with exactly k characters repeated, for k = 1, 2, ...
  (only the length changes);
- :func:`length_cue`: unrelated pairs whose lengths the same repeats make equal, or unequal: the
  difference of the two cosine changes is the reward for equal length alone;
- :func:`measure_length` runs both for one encoder (the same draws for every encoder, so two can be
  compared pair by pair); :func:`plot_length` (:func:`plot_copy_curves`, :func:`plot_length_cue`) draws
  them, and :func:`length_text` (:func:`copy_curve_text`, :func:`length_cue_text`,
  :func:`length_cue_difference_text`) says what they show;
- :func:`seconds_per_step`: the time of a training step from a run's log (the cost of ESimCSE's queue);
- :func:`reduplications`: copies where a repeated character makes a word of its own (人 -> 人人, everyone):
  in Chinese, repetition can change the meaning.

And notebook 2's readings in words: :func:`repeat_marks` (which tokens of a copy are repeats),
:func:`queue_fill_text` (did the loss rise while ESimCSE's queue filled), :func:`effects_text` (what each
ablation did to the score) and :func:`first_method_text` (does the sample's ranking carry over to LCQMC).
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping, Sequence

import numpy as np
from scipy.stats import spearmanr

from ..augment import word_repetition
from ..defaults import paper
from ..evaluate import bootstrap_spearman

#: Characters whose doubling is a word of its own, with its meaning: a copy that repeats one of them can
#: read differently (人 someone -> 人人 everyone). Used by :func:`reduplications`.
REDUPLICATIONS = {"人": "人人, everyone", "看": "看看, have a look", "天": "天天, every day",
                  "年": "年年, every year", "家": "家家, every household", "个": "个个, each one",
                  "试": "试试, give it a try", "想": "想想, think it over", "说": "说说, talk about it",
                  "听": "听听, have a listen", "刚": "刚刚, just now", "常": "常常, often"}


def random_pairs(n_items: int, n_pairs: int, seed: int = 0) -> list[tuple[int, int]]:
    """``n_pairs`` distinct random pairs (i, j), i != j, of indices below ``n_items`` (seeded)."""
    if n_items < 2:
        raise ValueError(f"n_items={n_items}: need at least 2 items to make a pair.")
    n_pairs = min(n_pairs, n_items * (n_items - 1) // 2)
    rng, seen = random.Random(seed), set()
    while len(seen) < n_pairs:
        i, j = rng.sample(range(n_items), 2)
        seen.add((min(i, j), max(i, j)))
    return sorted(seen)


def random_pair_cosines(encoder, texts, n_pairs: int = 2000, seed: int = 0) -> dict:
    """Cosines of random pairs of distinct ``texts`` and their length differences (in characters).

    Random pairs of questions are almost all unrelated, so a good embedding gives them low,
    spread-out cosines; and their cosine should not depend on how different their lengths are.
    Returns ``{"cosines", "length_diffs", "spearman_length", "spearman_length_ci"}``: the rank
    correlation of cosine with |len(a) - len(b)| (near 0: no length bias; negative: similar lengths
    look similar) and its 95% bootstrap interval (:func:`cse_helpers.evaluate.bootstrap_spearman`).
    """
    texts = list(dict.fromkeys(texts))
    pairs = random_pairs(len(texts), n_pairs, seed)
    used = sorted({k for pair in pairs for k in pair})  # encode only the sentences drawn (LCQMC is large)
    row = {k: r for r, k in enumerate(used)}
    z = encoder.encode([texts[k] for k in used])  # (N, H), unit rows
    i, j = ([row[k] for k in x] for x in zip(*pairs))
    cosines = (z[i] * z[j]).sum(dim=1).numpy()
    diffs = np.array([abs(len(texts[a]) - len(texts[b])) for a, b in pairs])
    return {"cosines": cosines, "length_diffs": diffs, "spearman_length": float(spearmanr(diffs, cosines)[0]),
            "spearman_length_ci": bootstrap_spearman(cosines, diffs, seed=seed)}


def repetition_cosines(encoder, texts, dup_rate: float = paper("dup_rate"), n: int = 500, seed: int = 0) -> dict:
    """Cosine between a sentence and its word-repeated copy, against the number of repeated tokens.

    The copy means the same thing, so an encoder without a length bias gives it a cosine near 1
    however many tokens were repeated. Word repetition may repeat nothing (it draws 0 to
    max(2, dup_rate * N) repeats); such a copy is the sentence itself, whose cosine in eval mode is
    exactly 1 and says nothing about length, so it is left out (counted in ``n_unchanged``).

    Returns ``{"texts", "copies", "added", "cosines", "n_unchanged", "spearman_length",
    "spearman_length_ci"}`` for the copies of the first ``n`` distinct ``texts`` that gained at least
    one token (tokens repeated with :func:`cse_helpers.augment.word_repetition`); the last two are
    the rank correlation of the cosine with the number of added tokens and its bootstrap interval.
    """
    rng = random.Random(seed)
    texts = list(dict.fromkeys(texts))[:n]
    bodies = encoder.body_ids(texts)
    repeated = [word_repetition(body, dup_rate, rng) for body in bodies]
    changed = [k for k, (r, b) in enumerate(zip(repeated, bodies)) if len(r) > len(b)]
    texts = [texts[k] for k in changed]
    copies = [encoder.tokenizer.decode(repeated[k]).replace(" ", "") for k in changed]
    added = np.array([len(repeated[k]) - len(bodies[k]) for k in changed], dtype=int)
    if not changed:
        raise ValueError(f"No copy gained a token (dup_rate={dup_rate}, {len(bodies)} sentences): nothing to measure.")
    za, zb = encoder.encode(texts), encoder.encode(copies)
    cosines = (za * zb).sum(dim=1).numpy()
    varied = np.unique(added).size > 1
    return {"texts": texts, "copies": copies, "added": added, "cosines": cosines,
            "n_unchanged": len(bodies) - len(changed),
            "spearman_length": float(spearmanr(added, cosines)[0]) if varied else float("nan"),
            "spearman_length_ci": bootstrap_spearman(cosines, added, seed=seed) if varied
            else (float("nan"), float("nan"))}


# ------------------------------------------------------------------------------------------------
# Notebook 2: the length cue with the content held fixed
# ------------------------------------------------------------------------------------------------

def one_token_per_character(encoder, texts) -> list[str]:
    """The distinct ``texts`` that ``encoder``'s tokenizer cuts into one token per character (most Chinese
    questions; not those with Latin words or numbers), so that a character repeated is a token repeated."""
    texts = list(dict.fromkeys(texts))
    return [t for t, body in zip(texts, encoder.body_ids(texts)) if len(body) == len(t)]


def repeat_exactly(text: str, k: int, rng: random.Random) -> str:
    """``text`` with ``k`` distinct characters, drawn with ``rng``, each repeated right after itself."""
    if not 0 <= k <= len(text):
        raise ValueError(f"k={k}: a text of {len(text)} characters can have 0 to {len(text)} repeated.")
    chosen = set(rng.sample(range(len(text)), k))
    return "".join(c * (2 if i in chosen else 1) for i, c in enumerate(text))


def _mean_ci(values: np.ndarray, seed: int, draws: int = 1000) -> tuple[float, float]:
    """95% percentile bootstrap interval of the mean of ``values`` (axis 0: the resampled units)."""
    rng = np.random.default_rng(seed)
    means = values[rng.integers(0, len(values), size=(draws, len(values)))].mean(axis=1)
    low, high = np.percentile(means, [2.5, 97.5], axis=0)
    return low, high


def copy_curve(encode, texts, added=(1, 2, 3, 4, 5, 6), n: int = 300, seed: int = 0) -> dict:
    """A sentence against its copy with exactly k characters repeated, for each k in ``added``.

    The copy has the same words, only k more tokens, so the content is held fixed and only the length
    changes; an encoder that ignores length keeps the cosine at 1 for every k. ``encode``: texts -> (N, H)
    unit rows (e.g. ``encoder.encode``); ``texts``: one token per character (:func:`one_token_per_character`);
    ``n`` of them with at least ``max(added)`` characters are drawn (seeded).

    Returns ``{"added": [k, ...], "mean": (K,), "ci": (K, 2) 95% bootstrap intervals over sentences,
    "cosines": (n, K), "n": n}``.
    """
    added = list(added)
    rng = random.Random(seed)
    pool = [t for t in dict.fromkeys(texts) if len(t) >= max(added)]
    if len(pool) < 2:
        raise ValueError(f"copy_curve: fewer than 2 texts have {max(added)} characters or more.")
    chosen = rng.sample(pool, min(n, len(pool)))
    copies = [[repeat_exactly(t, k, rng) for k in added] for t in chosen]
    z = encode(chosen + [c for row in copies for c in row])  # (n + n K, H)
    za, zc = z[:len(chosen)], z[len(chosen):].reshape(len(chosen), len(added), -1)
    cosines = (za[:, None, :] * zc).sum(-1).numpy()  # (n, K)
    low, high = _mean_ci(cosines, seed)
    return {"added": added, "mean": cosines.mean(axis=0), "ci": np.stack([low, high], axis=1), "cosines": cosines,
            "n": len(chosen)}


def length_cue(encode, texts, k: int = 3, n: int = 400, seed: int = 0) -> dict:
    """Does an encoder reward equal length alone? Unrelated pairs, content held fixed.

    For each of ``n`` sentences b (drawn, seeded): a partner a1 of the same length and a partner a2 that is
    ``k`` characters longer, both unrelated random sentences, and b', b with ``k`` characters repeated.
    Repeating makes b's length differ from a1's and equal to a2's, while b's words stay the same. So

    - ``match``: the mean of cos(a2, b') - cos(a2, b), the change when the repeats make the lengths equal;
    - ``mismatch``: the mean of cos(a1, b') - cos(a1, b), the change when they make them differ;
    - ``effect`` = match - mismatch (per sentence b, then averaged): what equal length alone adds to the cosine
      of unrelated sentences. Whatever repetition does to b's embedding by itself is in both terms and
      cancels. Near 0: no length cue; positive: equal lengths look more similar (Wu et al., 2022).

    Each comes with its 95% bootstrap interval over the sentences b (``*_ci``); ``n`` is how many were used.
    """
    rng = random.Random(seed)
    by_length: dict[int, list[str]] = {}
    for t in dict.fromkeys(texts):
        by_length.setdefault(len(t), []).append(t)
    pool = [t for length, group in sorted(by_length.items()) if len(group) >= 2 and length + k in by_length
            and length >= k for t in group]
    if len(pool) < 2:
        raise ValueError(f"length_cue: too few texts have a partner of the same length and one {k} characters "
                         "longer.")
    rows = []
    for b in rng.sample(pool, min(n, len(pool))):
        a1 = rng.choice([t for t in by_length[len(b)] if t != b])
        a2 = rng.choice(by_length[len(b) + k])
        rows.append((b, repeat_exactly(b, k, rng), a1, a2))
    z = encode([t for row in rows for t in row]).reshape(len(rows), 4, -1)  # b, b', a1, a2
    b, b2, a1, a2 = z.unbind(1)
    match = ((a2 * b2).sum(-1) - (a2 * b).sum(-1)).numpy()
    mismatch = ((a1 * b2).sum(-1) - (a1 * b).sum(-1)).numpy()
    out = {"k": k, "n": len(rows)}
    for name, values in (("match", match), ("mismatch", mismatch), ("effect", match - mismatch)):
        out[name], out[f"{name}_ci"], out[f"{name}_values"] = float(values.mean()), _mean_ci(values, seed), values
    return out


def _excludes_zero(interval) -> bool:
    return interval[0] > 0 or interval[1] < 0


def copy_curve_text(name: str, curve: dict) -> str:
    """What the curve of :func:`copy_curve` shows, in one sentence with its numbers."""
    first, last = curve["added"][0], curve["added"][-1]
    (m0, m1), (c0, c1) = curve["mean"][[0, -1]], curve["ci"][[0, -1]]
    if c1[1] < c0[0]:
        trend = "it falls as more characters are repeated (the two intervals do not overlap)"
    elif c1[0] > c0[1]:
        trend = "it rises as more characters are repeated (the two intervals do not overlap)"
    else:
        trend = "the two intervals overlap, so no change with the length is measured"
    return (f"{name}: a sentence vs its copy, mean cosine {m0:.3f} [{c0[0]:.3f}, {c0[1]:.3f}] with {first} "
            f"repeated and {m1:.3f} [{c1[0]:.3f}, {c1[1]:.3f}] with {last} ({curve['n']} sentences): {trend}.")


def length_cue_text(name: str, cue: dict) -> str:
    """What :func:`length_cue` found for one model, in one sentence with its numbers."""
    low, high = cue["effect_ci"]
    if not _excludes_zero(cue["effect_ci"]):
        verdict = "its interval includes 0, so no reward for equal length is measured"
    elif cue["effect"] > 0:
        verdict = "equal length alone makes unrelated sentences look more similar: a length cue"
    else:
        verdict = "unequal length looks more similar here: the opposite of the length cue"
    return (f"{name}: with {cue['k']} characters repeated, an unrelated pair's cosine changes by "
            f"{cue['match']:+.4f} when the lengths become equal and by {cue['mismatch']:+.4f} when they become "
            f"unequal; the difference {cue['effect']:+.4f} [{low:+.4f}, {high:+.4f}] ({cue['n']} sentences): "
            f"{verdict}.")


def plot_copy_curves(curves: dict, ax=None):
    """Each model's :func:`copy_curve` (name -> curve): mean cosine with its 95% band against k."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(6, 4))
    for name, curve in curves.items():
        line, = ax.plot(curve["added"], curve["mean"], marker="o", label=name)
        ax.fill_between(curve["added"], curve["ci"][:, 0], curve["ci"][:, 1], color=line.get_color(), alpha=0.2)
    ax.set_xlabel("characters repeated (content unchanged)")
    ax.set_ylabel("cos(sentence, its copy)")
    ax.set_title("only the length changes")
    ax.set_xticks(next(iter(curves.values()))["added"])
    ax.legend()
    return ax.figure


def plot_length_cue(cues: dict, ax=None):
    """Each model's :func:`length_cue` (name -> result): the two cosine changes and their difference,
    with 95% intervals, around a line at 0."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(6, 4))
    parts = (("match", "lengths become equal"), ("mismatch", "lengths become unequal"),
             ("effect", "difference: the length cue"))
    width = 0.8 / len(parts)
    for j, (key, label) in enumerate(parts):
        x = np.arange(len(cues)) + (j - 1) * width
        values = np.array([cue[key] for cue in cues.values()])
        ci = np.array([cue[f"{key}_ci"] for cue in cues.values()])
        ax.bar(x, values, width, label=label, yerr=np.abs(ci.T - values), capsize=3,
               hatch="//" if key == "effect" else None)
    ax.axhline(0, color="black", lw=0.8)
    ax.set_xticks(np.arange(len(cues)), list(cues))
    ax.set_ylabel("change of cos(a, b) when b gets k repeats")
    ax.set_title(f"unrelated pairs, k = {next(iter(cues.values()))['k']}")
    ax.legend(fontsize="small")
    return ax.figure


def reduplications(texts, dup_rate: float = paper("dup_rate"), seed: int = 0,
                   limit: int = 2) -> list[tuple[str, str, str]]:
    """Up to ``limit`` word-repetition copies in which a repeated character doubles into a word of its own.

    Runs :func:`cse_helpers.augment.word_repetition` over the characters of ``texts`` (seeded) and keeps copies
    where a character of :data:`REDUPLICATIONS` was repeated and was not already doubled in the original.
    Returns ``[(original, copy, "人人, everyone"), ...]``: positives that need not mean what the original means.
    """
    rng, found, seen = random.Random(seed), [], set()
    for text in dict.fromkeys(texts):
        out = word_repetition(list(enumerate(text)), dup_rate, rng)  # (position, character): repeats are visible
        repeated = [c for k, (i, c) in enumerate(out) if k > 0 and out[k - 1] == (i, c)]
        hits = [c for c in repeated if c in REDUPLICATIONS and c not in seen and c * 2 not in text]
        if hits:
            seen.add(hits[0])
            found.append((text, "".join(c for _, c in out), REDUPLICATIONS[hits[0]]))
            if len(found) == limit:
                break
    return found


def length_cue_difference_text(name_a: str, a: dict, name_b: str, b: dict, seed: int = 0) -> str:
    """Model ``name_a``'s :func:`length_cue` against ``name_b``'s, measured on the same pairs (same texts and
    seed, so the same sentences, partners and repeats): the difference of the two cues, with its paired
    95% bootstrap interval over the sentences. One run per model, so how much the cue varies with the
    training seed is not measured; the sentence says so."""
    if a["n"] != b["n"] or a["k"] != b["k"]:
        raise ValueError(f"{name_a} and {name_b} were measured on different pairs ({a['n']} vs {b['n']} sentences, "
                         f"k={a['k']} vs {b['k']}): use the same texts, k, n and seed.")
    values = a["effect_values"] - b["effect_values"]
    low, high = _mean_ci(values, seed)
    text = (f"{name_a}'s length cue minus {name_b}'s: {values.mean():+.4f} [{low:+.4f}, {high:+.4f}] on the same "
            "pairs")
    if not _excludes_zero((low, high)):
        return text + ": the interval includes 0, so no change in the cue is measured (one training run each)."
    more = "more" if values.mean() > 0 else "less"
    return text + (f": {name_a} rewards equal length {more} than {name_b} on these pairs (one training run each; "
                   "how much this varies with the seed is not measured).")


def measure_length(encoder, texts, k: int = 3, n_copies: int = 300, n_pairs: int = 400, seed: int = 0) -> dict:
    """Both length measurements of notebook 2 for one encoder: ``{"curve": copy_curve(...), "cue":
    length_cue(...)}``. The same ``texts``, sizes and ``seed`` draw the same sentences, partners and repeats for
    every encoder, so two encoders' results can be compared pair by pair."""
    return {"curve": copy_curve(encoder.encode, texts, n=n_copies, seed=seed),
            "cue": length_cue(encoder.encode, texts, k=k, n=n_pairs, seed=seed)}


def plot_length(results: dict):
    """:func:`measure_length` of several models (name -> result) side by side: the copy curves (left), the
    length cue (right). Returns the figure."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(13, 4))
    plot_copy_curves({name: r["curve"] for name, r in results.items()}, ax=axes[0])
    plot_length_cue({name: r["cue"] for name, r in results.items()}, ax=axes[1])
    fig.tight_layout()
    return fig


def length_text(results: dict, against: Sequence[tuple[str, str]] = (), seed: int = 0) -> str:
    """The lines under :func:`plot_length`: each model's curve and cue in words, then each (a, b) of
    ``against`` compared on the same pairs (:func:`length_cue_difference_text`)."""
    lines = [copy_curve_text(name, r["curve"]) for name, r in results.items()]
    lines += [length_cue_text(name, r["cue"]) for name, r in results.items()]
    lines += [length_cue_difference_text(a, results[a]["cue"], b, results[b]["cue"], seed=seed) for a, b in against]
    return "\n".join(f"- {line}" for line in lines)


def seconds_per_step(history: dict) -> float:
    """The median time of a training step in a run's log (``history["log"]``, windows of ``steps_per_s``),
    leaving the first window (warm-up) out when there are others."""
    speeds = [r["steps_per_s"] for r in history["log"]]
    speeds = speeds[1:] if len(speeds) > 1 else speeds
    if not speeds:
        raise ValueError("seconds_per_step: the history has no log window.")
    return 1.0 / float(np.median(speeds))


# ---- notebook 2's readings: the repeated tokens, the queue filling up, the ablations, the ranking ------------

def repeat_marks(original: Sequence, repeated: Sequence) -> list[bool]:
    """Which tokens of ``repeated``, a word-repetition copy of ``original``, are added repeats (True).

    Walks the copy: a token equal to the next token of the original is that token; any other token is the
    repeat of the token just before it. ``repeat_marks(list("abc"), list("abbc")) == [False, False, True, False]``.
    """
    marks, k = [], 0  # k: the next token of the original
    for token in repeated:
        if k < len(original) and token == original[k]:
            marks.append(False)
            k += 1
        else:
            marks.append(True)
    return marks


def queue_fill_text(log: Sequence[dict], queue_size: int, batch_size: int, logging_steps: int) -> str:
    """Whether ESimCSE's training loss rose while its queue filled, read from a run's log (``history["log"]``).

    The queue fills by one batch per step: the loss of step k has (k - 1) * B queued negatives, up to Q, so it is
    full after ceil(Q / B) steps. The highest logged loss until two logging windows after that is compared with the
    first logged loss.
    """
    full_after = math.ceil(queue_size / batch_size)  # steps until the queue is full
    first = log[0]
    peak = max((r for r in log if r["step"] <= full_after + 2 * logging_steps), key=lambda r: r["loss"])
    if peak["loss"] > first["loss"]:
        return (f"ESimCSE's loss rose from {first['loss']:.3f} (step {first['step']}) to {peak['loss']:.3f} "
                f"(step {peak['step']}) while its queue filled (Q = {queue_size}, B = {batch_size}: full after "
                f"step {full_after}); then it fell.")
    return (f"ESimCSE's loss did not rise while its queue filled (full after step {full_after}): "
            f"{first['loss']:.3f} at step {first['step']}, at most {peak['loss']:.3f} until then.")


#: What a change did to the score, by the sign of :func:`cse_helpers.evaluate.noise_verdict` (-1, 0, 1).
EFFECTS = {-1: "lowered the score beyond the noise", 0: "did not change the score beyond the noise",
           1: "raised the score beyond the noise"}


def effects_text(signs: Mapping[str, int]) -> str:
    """Each change with what it did to the score: ``{"switching the queue off": -1}`` ->
    ``"switching the queue off lowered the score beyond the noise"``, the changes joined by "; "."""
    return "; ".join(f"{change} {EFFECTS[sign]}" for change, sign in signs.items())


def first_method_text(ranking: Sequence[Mapping], names: Mapping[str, str]) -> str:
    """Which method comes first on the sample's recorded seeds and which on LCQMC, and whether the order carries
    over. ``ranking``: the rows of :func:`cse_helpers.classroom.results.method_ranking`; ``names``: method -> the
    name to print (``{"simcse": "SimCSE"}``)."""
    sample_first = max(ranking, key=lambda r: r["sample_mean"])["method"]
    lcqmc_first = max(ranking, key=lambda r: r["lcqmc_mean"])["method"]
    if sample_first == lcqmc_first:
        carries = "the sample's order carries over to LCQMC here."
    else:
        carries = ("the sample's order does not carry over to LCQMC, so no ranking of the methods can rest on this "
                   "notebook.")
    return (f"On the sample's recorded seeds {names[sample_first]} comes first; on LCQMC {names[lcqmc_first]} does: "
            f"{carries}")

"""The sample in ``data/``: what quick mode trains and scores on, rebuilt by ``data/build_sample.py``."""

from __future__ import annotations

import filecmp
import os
import re
import subprocess
import sys
from collections import Counter

import pytest
from scipy.stats import spearmanr

from cse_helpers.constants import DATA_DIR, REPO_ROOT
from cse_helpers.data import read_pairs, read_train_texts
from cse_helpers.evaluate import character_jaccard

DATA = DATA_DIR
GROUPS = {"paraphrase": 1, "low_overlap_paraphrase": 1, "near_miss": 0, "unrelated": 0}
#: The files whose text quotes the sample's sizes (sentences in train.txt, pairs in dev.tsv), e.g. "7,165 sentences".
QUOTES_SIZES = ("README.md", "notebooks/README.md", "data/README.md", "cse_helpers/course.py", "benchmarks/RESULTS.md")
#: Files that quote the sizes as a record of the past, not of today's data: the shipped encoder was pretrained on the
#: sample as it was then (its card says so), and must not change when the sample does.
RECORDS_SIZES = ("cse_helpers/default_model/README.md",)


@pytest.fixture(scope="module")
def pairs():
    return read_pairs(os.path.join(DATA, "dev.tsv"), with_groups=True)


@pytest.fixture(scope="module")
def train_texts():
    return list(read_train_texts(os.path.join(DATA, "train.txt")))


def test_dev_is_large_enough_for_a_score_with_small_noise(pairs):
    assert len(pairs) >= 1000  # the standard error of a Spearman is about 1/sqrt(n - 1): 0.03 or less
    positives = sum(label for _, _, label, _ in pairs) / len(pairs)
    assert 0.4 <= positives <= 0.6


def test_every_pair_has_a_known_group_that_agrees_with_its_label(pairs):
    counts = Counter(group for *_, group in pairs)
    assert set(counts) == set(GROUPS)
    assert min(counts.values()) >= 100
    for a, b, label, group in pairs:
        assert label == GROUPS[group], (a, b, label, group)
        assert a != b


def test_near_misses_share_characters_and_unrelated_pairs_do_not(pairs):
    def mean_overlap(group):
        scores = character_jaccard([p for p in pairs if p[3] == group])
        return sum(scores) / len(scores)

    assert mean_overlap("near_miss") > 0.4 > mean_overlap("low_overlap_paraphrase")
    assert mean_overlap("unrelated") < 0.1 < mean_overlap("low_overlap_paraphrase")


def test_character_overlap_is_a_baseline_of_lcqmc_difficulty(pairs):
    """LCQMC dev: 0.377. Much higher and an encoder has nothing to add; near 0 and nothing can be learned."""
    rho = spearmanr(character_jaccard(pairs), [p[2] for p in pairs])[0]
    assert 0.25 <= rho <= 0.50


def test_the_default_reader_ignores_the_group_column(pairs):
    plain = read_pairs(os.path.join(DATA, "dev.tsv"))
    assert plain == [p[:3] for p in pairs]


def test_train_holds_enough_questions_and_no_dev_sentence(train_texts, pairs):
    assert len(train_texts) >= 5000
    assert len(set(train_texts)) == len(train_texts)
    dev_sentences = {s for a, b, *_ in pairs for s in (a, b)}
    assert not dev_sentences & set(train_texts)
    # the tutorial's question has neighbours to find in semantic search
    assert sum("蛋黄" in t or "鸡蛋" in t for t in train_texts) >= 10


def test_the_sample_is_rebuilt_identically_by_its_command(tmp_path):
    subprocess.run([sys.executable, os.path.join(DATA, "build_sample.py"), "--seed", "0", "--out", str(tmp_path)],
                   check=True, capture_output=True)
    for name in ("train.txt", "dev.tsv"):
        assert filecmp.cmp(tmp_path / name, os.path.join(DATA, name), shallow=False), name


def sample_sizes(train_texts, pairs) -> list[str]:
    """The sizes as the text writes them: '7,165' (sentences in train.txt), '1,279' (pairs in dev.tsv)."""
    return [f"{len(train_texts):,}", f"{len(pairs):,}"]


def test_every_file_that_quotes_the_sample_sizes_quotes_the_real_ones(train_texts, pairs):
    sizes = sample_sizes(train_texts, pairs)
    for path in QUOTES_SIZES:
        with open(os.path.join(REPO_ROOT, path), encoding="utf-8") as f:
            text = f.read()
        missing = [size for size in sizes if size not in text]
        assert not missing, (f"{path} does not quote {missing}: data/train.txt holds {sizes[0]} sentences and "
                             f"data/dev.tsv {sizes[1]} pairs; write these numbers in its text")


def test_no_file_outside_the_list_quotes_the_sample_sizes(train_texts, pairs):
    """A new file that quotes the sizes joins QUOTES_SIZES, so that the test above keeps it up to date."""
    git = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard", "*.md", "*.py", "*.ipynb"],
                         cwd=REPO_ROOT, capture_output=True, text=True)  # committed and new files, not ignored ones
    if git.returncode != 0:
        pytest.skip(f"not a git checkout, no list of the project's files: {git.stderr.strip()}")
    number = "|".join(size.replace(",", ",?") for size in sample_sizes(train_texts, pairs))  # 7,165 or 7165
    quote = re.compile(rf"(?<![\d,.])({number})(?![\d,])")
    known = set(QUOTES_SIZES + RECORDS_SIZES) | {"tests/test_sample_data.py"}
    quoting = []
    for path in git.stdout.split():
        full = os.path.join(REPO_ROOT, path)
        if path in known or path.startswith("notebooks/executed/") or not os.path.isfile(full):  # outputs; deleted
            continue
        with open(full, encoding="utf-8", errors="replace") as f:
            if quote.search(f.read()):
                quoting.append(path)
    assert not quoting, (f"{quoting} quote the sample's sizes: a test reads them from data/ (as this one does), a "
                         "text joins QUOTES_SIZES in tests/test_sample_data.py")

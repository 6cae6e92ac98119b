import itertools
import random

import pytest

from cse_helpers.augment import random_deletion, random_insertion, random_replacement, word_repetition


def expand(tokens, positions):
    return [t for i, tok in enumerate(tokens) for t in ([tok, tok] if i in positions else [tok])]


@pytest.mark.parametrize("n", [1, 2, 3, 10, 31, 64])
def test_repetition_keeps_order_and_only_doubles_tokens(n):
    tokens = list(range(100, 100 + n))  # distinct ids, so every repeat is visible
    rng = random.Random(0)
    lengths = set()
    for _ in range(300):
        out = word_repetition(tokens, dup_rate=0.32, rng=rng)
        assert sorted(set(out)) == tokens  # nothing new, nothing lost
        assert out == sorted(out)  # order kept; a repeat stands right after its token
        assert all(out.count(t) in (1, 2) for t in tokens)
        lengths.add(len(out) - n)
    max_dup = min(max(2, int(0.32 * n)), n)
    assert lengths == set(range(max_dup + 1))  # dup_len is drawn from 0..max(2, int(rate*N)), capped at N


def test_repetition_on_strings_is_reproducible_with_a_seed():
    sentence = list("今天天气很好")
    a = word_repetition(sentence, rng=random.Random(7))
    b = word_repetition(sentence, rng=random.Random(7))
    assert a == b
    extra = len(a) - len(sentence)
    assert 0 <= extra <= 2  # N = 6: dup_len in 0..max(2, int(0.32 * 6)) = 0..2
    # the output is the sentence with `extra` of its positions doubled in place (天天 included)
    assert any(expand(sentence, set(combo)) == a for combo in itertools.combinations(range(6), extra))
    outputs = {"".join(word_repetition(sentence, rng=random.Random(seed))) for seed in range(50)}
    assert len(outputs) > 5 and "今天天气很好" in outputs  # varied, and dup_len 0 happens


def test_repetition_of_empty_sentence_and_bad_rate():
    assert word_repetition([], rng=random.Random(0)) == []
    with pytest.raises(ValueError, match="dup_rate=1.5"):
        word_repetition([1, 2], dup_rate=1.5)


def test_deletion_insertion_replacement_change_the_sentence():
    rng = random.Random(1)
    sentence = list("我不喜欢你")
    deleted = random_deletion(sentence, rate=0.5, rng=rng)
    assert 1 <= len(deleted) < len(sentence) and all(t in sentence for t in deleted)
    inserted = random_insertion(list("今天的饭好吃"), vocab=["不"], rate=0.1, rng=rng)
    assert len(inserted) == 7 and inserted.count("不") == 1
    replaced = random_replacement(list("一只狼"), vocab=list("狗猫狼"), rate=0.1, rng=rng)
    assert len(replaced) == 3 and sum(a != b for a, b in zip(replaced, "一只狼")) == 1
    assert random_deletion(["好"], rate=1.0, rng=rng) == ["好"]  # never an empty sentence
    with pytest.raises(ValueError, match="non-empty vocab"):
        random_insertion(sentence, vocab=[])

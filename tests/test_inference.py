import pytest
import torch

from cse_helpers.data import read_pairs, read_train_texts
from cse_helpers.encoder import SentenceEncoder
from cse_helpers.inference import main, semantic_search, similarity

from .conftest import SAMPLE_DEV, SAMPLE_TRAIN


def test_similarity_is_symmetric_and_one_for_identical_sentences(tiny_bert_dir):
    encoder = SentenceEncoder.from_pretrained(tiny_bert_dir)
    scores = similarity(encoder, [("今天天气很好", "我喜欢你"), ("我喜欢你", "今天天气很好"), ("你好", "你好", 1)])
    assert scores[0] == pytest.approx(scores[1], abs=1e-6)
    assert scores[2] == pytest.approx(1.0, abs=1e-6)
    assert similarity(encoder, []) == []
    with pytest.raises(ValueError, match="pair 1 is '你好'"):
        similarity(encoder, ["你好"])


def test_semantic_search_finds_the_sentence_itself_first(tiny_bert_dir):
    encoder = SentenceEncoder.from_pretrained(tiny_bert_dir)
    corpus = list(dict.fromkeys(read_train_texts(SAMPLE_TRAIN)))[:50]
    hits = semantic_search(encoder, corpus[7], corpus, k=3)
    assert len(hits) == 3 and hits[0][1] == corpus[7] and hits[0][0] == pytest.approx(1.0, abs=1e-5)
    assert hits[0][0] >= hits[1][0] >= hits[2][0]
    assert semantic_search(encoder, "  ", corpus) == []
    with pytest.raises(ValueError, match="rows"):
        semantic_search(encoder, "手机", corpus, corpus_embeddings=torch.zeros(3, 32))


def test_cli_scores_a_pairs_file(tiny_bert_dir, capsys):
    assert main(["--model", tiny_bert_dir, "--pairs", SAMPLE_DEV]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == len(read_pairs(SAMPLE_DEV))
    assert all(-1.0 <= float(line.split("\t")[0]) <= 1.0 for line in lines)

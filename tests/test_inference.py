import pytest

from cse_helpers.data import read_pairs
from cse_helpers.inference import main, similarity
from cse_helpers.models import SentenceEncoder

from .conftest import SAMPLE_DEV


def test_similarity_is_symmetric_and_one_for_identical_sentences(tiny_bert_dir):
    encoder = SentenceEncoder.from_pretrained(tiny_bert_dir)
    scores = similarity(encoder, [("今天天气很好", "我喜欢你"), ("我喜欢你", "今天天气很好"), ("你好", "你好", 1)])
    assert scores[0] == pytest.approx(scores[1], abs=1e-6)
    assert scores[2] == pytest.approx(1.0, abs=1e-6)
    assert similarity(encoder, []) == []
    with pytest.raises(ValueError, match="pair 1 is '你好'"):
        similarity(encoder, ["你好"])


def test_cli_scores_a_pairs_file(tiny_bert_dir, capsys):
    assert main(["--model", tiny_bert_dir, "--pairs", SAMPLE_DEV]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == len(read_pairs(SAMPLE_DEV))
    assert all(-1.0 <= float(line.split("\t")[0]) <= 1.0 for line in lines)

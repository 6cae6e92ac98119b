import math

import pytest
import torch
import torch.nn.functional as F

from cse_helpers.losses import info_nce, simcse_label_matrix, simcse_matrix_loss


def test_label_matrix_for_three_sentences():
    expected = torch.tensor([
        # a1    a2    b1    b2    c1    c2
        [-100,    1,    0,    0,    0,    0],  # a1
        [   1, -100,    0,    0,    0,    0],  # a2
        [   0,    0, -100,    1,    0,    0],  # b1
        [   0,    0,    1, -100,    0,    0],  # b2
        [   0,    0,    0,    0, -100,    1],  # c1
        [   0,    0,    0,    0,    1, -100],  # c2
    ])
    labels = simcse_label_matrix(3)
    assert labels.dtype == torch.long and torch.equal(labels, expected)


def hand_info_nce(z1, z2, temperature, margin=0.0, queue=None):
    """Row by row, with Python floats: -log softmax of the positive."""
    total = 0.0
    for i in range(len(z1)):
        candidates = list(z2) + (list(queue) if queue is not None else [])
        cosines = [float(F.cosine_similarity(z1[i], c, dim=0)) for c in candidates]
        cosines[i] -= margin
        exps = [math.exp(c / temperature) for c in cosines]
        total += -math.log(exps[i] / sum(exps))
    return total / len(z1)


@pytest.mark.parametrize("temperature, margin, with_queue", [(0.05, 0.0, False), (0.1, 0.2, False),
                                                              (0.05, 0.0, True), (0.5, 0.1, True)])
def test_info_nce_matches_softmax_written_out(temperature, margin, with_queue):
    g = torch.Generator().manual_seed(0)
    z1, z2 = torch.randn(4, 8, generator=g, dtype=torch.float64), torch.randn(4, 8, generator=g, dtype=torch.float64)
    queue = torch.randn(5, 8, generator=g, dtype=torch.float64) if with_queue else None
    got = info_nce(z1, z2, temperature=temperature, margin=margin, queue=queue)
    assert got.item() == pytest.approx(hand_info_nce(z1, z2, temperature, margin, queue), rel=1e-5)


def test_scale_is_one_over_temperature_and_margin_raises_the_loss():
    z1, z2 = torch.randn(6, 16), torch.randn(6, 16)
    assert info_nce(z1, z2, scale=20.0).item() == pytest.approx(info_nce(z1, z2, temperature=0.05).item(), rel=1e-5)
    assert info_nce(z1, z2, margin=0.3).item() > info_nce(z1, z2).item()
    queue = torch.randn(10, 16)
    assert info_nce(z1, z2, queue=queue).item() > info_nce(z1, z2).item()  # more negatives, larger loss
    with pytest.raises(ValueError, match="temperature"):
        info_nce(z1, z2, temperature=0)


def test_matrix_loss_relates_to_info_nce():
    g = torch.Generator().manual_seed(1)
    z1, z2 = torch.randn(5, 8, generator=g, dtype=torch.float64), torch.randn(5, 8, generator=g, dtype=torch.float64)
    z = torch.stack([z1, z2], dim=1).reshape(10, 8)  # interleaved a1 a2 b1 b2 ...
    # without same-view negatives, the 2B x 2B loss is the symmetric InfoNCE
    symmetric = (info_nce(z1, z2, temperature=0.05) + info_nce(z2, z1, temperature=0.05)) / 2
    assert simcse_matrix_loss(z, 0.05, same_view_negatives=False).item() == pytest.approx(symmetric.item(), rel=1e-6)
    # with them (the tutorial's matrix), row a1 also sees b1, c1 ... as negatives: InfoNCE with a queue of them
    full = simcse_matrix_loss(z, 0.05).item()
    rows = [hand_info_nce(z1[i:i + 1], torch.cat([z2[i:i + 1], z2[:i], z2[i + 1:]]), 0.05,
                          queue=torch.cat([z1[:i], z1[i + 1:]])) for i in range(5)]
    rows += [hand_info_nce(z2[i:i + 1], torch.cat([z1[i:i + 1], z1[:i], z1[i + 1:]]), 0.05,
                           queue=torch.cat([z2[:i], z2[i + 1:]])) for i in range(5)]
    assert full == pytest.approx(sum(rows) / 10, rel=1e-6)
    assert full > symmetric.item()  # more negatives


def test_info_nce_rejects_mismatched_views():
    with pytest.raises(ValueError, match=r"\(B, D\)"):
        info_nce(torch.randn(3, 4), torch.randn(2, 4))

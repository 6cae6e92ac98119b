import math

import pytest
import torch
from transformers import AutoModel, AutoModelForMaskedLM

from cse_helpers.checkpoint import trained_state
from cse_helpers.constants import METHODS
from cse_helpers.encoder import POOLERS, ProjectionMLP, SentenceEncoder, pad_sequences
from cse_helpers.losses import info_nce
from cse_helpers.objectives import (
    OBJECTIVES,
    DiffCSE,
    EmbeddingQueue,
    ESimCSE,
    MomentumEncoder,
    SimCSE,
    binary_entropy,
    load_generator,
    mask_tokens,
    objective_class,
    split_views,
)
from cse_helpers.tools.tiny import build_tiny_model

SHORT, LONG = "今天天气很好", "今天天气很好，我们一起去公园散步吧，怎么样？"


@pytest.mark.parametrize("pooler", POOLERS)
def test_padding_does_not_change_an_embedding(tiny_model_dir, pooler):
    encoder = SentenceEncoder.from_pretrained(tiny_model_dir, pooler=pooler, mlp_only_train=False).eval()
    alone = encoder.pad(encoder.body_ids([SHORT]))
    together = encoder.pad(encoder.body_ids([SHORT, LONG]))
    assert together["input_ids"].shape[1] > alone["input_ids"].shape[1]  # SHORT is padded in the batch
    with torch.no_grad():
        z_alone = encoder(**alone)[0]
        z_padded = encoder(**together)[0]
    torch.testing.assert_close(z_padded, z_alone, atol=1e-5, rtol=1e-5)


def test_batch_is_the_padded_rows_or_the_two_views(tiny_model_dir):
    from cse_helpers.batches import ViewBuilder

    encoder = SentenceEncoder.from_pretrained(tiny_model_dir, max_seq_len=8)
    one = encoder.batch([SHORT, LONG])  # (2, L): one row per text, LONG cut to max_seq_len
    assert one["input_ids"].shape == (2, 8) and one["attention_mask"].sum(1).tolist() == [len(SHORT) + 2, 8]
    assert one["input_ids"].device == encoder.device
    views = ViewBuilder(encoder, 8)
    two = encoder.batch([SHORT, LONG], views)  # (4, L): rows a1 a2 b1 b2
    assert torch.equal(two["input_ids"], one["input_ids"].repeat_interleave(2, dim=0))


def test_dropout_on_in_training_and_off_in_evaluation(tiny_model_dir):
    encoder = SentenceEncoder.from_pretrained(tiny_model_dir, dropout=0.3)
    assert encoder.backbone.config.hidden_dropout_prob == 0.3
    batch = encoder.pad(encoder.body_ids([SHORT, LONG]))
    encoder.train()
    with torch.no_grad():
        first, second = encoder(**batch), encoder(**batch)
    assert (first - second).abs().max() > 1e-3  # two passes of one batch differ: the two views of SimCSE
    encoder.eval()
    with torch.no_grad():
        torch.testing.assert_close(encoder(**batch), encoder(**batch))
    no_dropout = SentenceEncoder.from_pretrained(tiny_model_dir, dropout=0.0).train()
    with torch.no_grad():
        torch.testing.assert_close(no_dropout(**batch), no_dropout(**batch))


def test_encode_deduplicates_keeps_order_and_restores_mode(tiny_model_dir):
    encoder = SentenceEncoder.from_pretrained(tiny_model_dir, dropout=0.3).train()
    texts = [LONG, SHORT, LONG, "你好"]
    z = encoder.encode(texts, batch_size=2)
    assert z.shape == (4, encoder.hidden_size)
    torch.testing.assert_close(z[0], z[2])
    torch.testing.assert_close(z.norm(dim=1), torch.ones(4))
    assert encoder.training  # put back as it was
    single = encoder.encode([SHORT])  # eval mode inside: no dropout noise
    torch.testing.assert_close(single[0], z[1], atol=1e-5, rtol=1e-5)
    with pytest.raises(TypeError, match="list of sentences"):
        encoder.encode(SHORT)


@pytest.mark.parametrize("mlp_only_train, projector", [(True, "mlp"), (False, "mlp"), (False, "bn")])
def test_save_and_load_back(tiny_model_dir, tmp_path, mlp_only_train, projector):
    encoder = SentenceEncoder.from_pretrained(tiny_model_dir, mlp_only_train=mlp_only_train, projector=projector)
    with torch.no_grad():  # make the head non-trivial so a lost head would show
        for p in encoder.head.parameters():
            p.add_(0.5)
    encoder.train()
    encoder(**encoder.pad(encoder.body_ids([SHORT, LONG, "你好"])))  # BatchNorm running stats move
    before = encoder.encode([SHORT, LONG])
    encoder.save_pretrained(str(tmp_path))
    loaded = SentenceEncoder.from_pretrained(str(tmp_path))
    assert (loaded.pooler, loaded.mlp_only_train, loaded.projector) == ("cls", mlp_only_train, projector)
    torch.testing.assert_close(loaded.encode([SHORT, LONG]), before)
    if mlp_only_train:  # plain transformers users get the same vector: the [CLS] of the last layer
        plain = AutoModel.from_pretrained(str(tmp_path)).eval()
        batch = loaded.pad(loaded.body_ids([SHORT]))
        with torch.no_grad():
            cls = plain(**batch).last_hidden_state[:, 0]
        torch.testing.assert_close(torch.nn.functional.normalize(cls, dim=-1)[0], before[0], atol=1e-5, rtol=1e-5)


def test_bad_settings_are_refused(tiny_model_dir):
    with pytest.raises(ValueError, match="pooler='avg' is not one of cls"):
        SentenceEncoder.from_pretrained(tiny_model_dir, pooler="avg")
    with pytest.raises(ValueError, match="max_seq_len=100 is above this model's limit of 64"):
        SentenceEncoder.from_pretrained(tiny_model_dir, max_seq_len=100)
    with pytest.raises(ValueError, match="dropout=1.0"):
        SentenceEncoder.from_pretrained(tiny_model_dir, dropout=1.0)


def test_simcse_encodes_both_views_in_one_forward_pass(tiny_model_dir):
    encoder = SentenceEncoder.from_pretrained(tiny_model_dir, dropout=0.1)
    calls = []
    encoder.backbone.register_forward_hook(lambda module, args, kwargs_out: calls.append(1))
    rows = [b for body in encoder.body_ids([SHORT, LONG, "你好"]) for b in (body, body)]
    out = SimCSE(encoder).train()(encoder.pad(rows))
    assert len(calls) == 1 and out["loss"].requires_grad and out["loss"].item() > 0


def test_queue_is_first_in_first_out():
    queue = EmbeddingQueue(size=5)
    for step in range(4):
        queue.enqueue(torch.full((2, 3), float(step)))
    # 8 rows went in; the newest 5 stay, oldest first: step 1 (one row), 2, 2, 3, 3
    assert queue.embeddings[:, 0].tolist() == [1.0, 2.0, 2.0, 3.0, 3.0]
    assert len(EmbeddingQueue(size=0)) == 0


def test_momentum_update_is_an_exponential_moving_average(tiny_model_dir):
    encoder = SentenceEncoder.from_pretrained(tiny_model_dir)
    momentum = MomentumEncoder(encoder, momentum=0.9)
    old = [p.clone() for p in momentum.encoder.parameters()]
    with torch.no_grad():
        for p in encoder.parameters():
            p.add_(1.0)
    momentum.update(encoder)
    for p_m, p_old, p in zip(momentum.encoder.parameters(), old, encoder.parameters()):
        torch.testing.assert_close(p_m, 0.9 * p_old + 0.1 * p)
    momentum.train()
    assert not momentum.encoder.training and not any(p.requires_grad for p in momentum.encoder.parameters())


def test_esimcse_uses_the_previous_batches_as_extra_negatives(tiny_model_dir):
    encoder = SentenceEncoder.from_pretrained(tiny_model_dir, dropout=0.0)  # deterministic views
    objective = ESimCSE(encoder, queue_size=4, momentum=0.995).train()
    assert not objective.momentum_encoder.encoder.training
    batches = [[SHORT, LONG, "你好"], ["怎么减肥", "蛋黄可以多吃吗", "我喜欢你"]]
    padded = [encoder.pad([b for body in encoder.body_ids(t) for b in (body, body)]) for t in batches]
    first = objective(padded[0])
    assert len(objective.queue) == 3  # the first batch's sentences, enqueued after its loss
    z1, z2 = split_views(objective.embed(padded[0]))
    torch.testing.assert_close(first["loss"], info_nce(z1, z2))  # first step: no queue yet
    queue_before = objective.queue.embeddings.clone()
    second = objective(padded[1])
    z1, z2 = split_views(objective.embed(padded[1]))
    torch.testing.assert_close(second["loss"], info_nce(z1, z2, queue=queue_before))
    assert len(objective.queue) == 4  # capped at queue_size


def test_mask_tokens_follows_80_10_10():
    ids = torch.full((200, 100), 7)
    maskable = torch.ones_like(ids, dtype=torch.bool)
    maskable[:, :2] = False
    masked, selected = mask_tokens(ids, maskable, mask_token_id=4, vocab_size=1000, mask_ratio=0.3,
                                   generator=torch.Generator().manual_seed(0))
    assert not selected[:, :2].any()
    rate = selected[:, 2:].float().mean().item()
    assert 0.28 < rate < 0.32
    chosen = masked[selected]
    assert 0.77 < (chosen == 4).float().mean() < 0.83
    assert 0.08 < ((chosen != 4) & (chosen != 7)).float().mean() < 0.12  # random tokens (rarely 7 by chance)
    assert torch.equal(masked[~selected], ids[~selected])


def make_diffcse(model_dir, **kwargs):
    encoder = SentenceEncoder.from_pretrained(model_dir, dropout=0.1)
    generator = load_generator(model_dir, encoder)
    discriminator = AutoModel.from_pretrained(model_dir)
    return DiffCSE(encoder, generator, discriminator, seed=0, **kwargs).train()


def test_rtd_labels_mark_replaced_real_tokens_and_ignore_padding(tiny_model_dir):
    objective = make_diffcse(tiny_model_dir, mask_ratio=0.5)
    assert not objective.generator.training
    encoder = objective.encoder
    batch = encoder.pad(encoder.body_ids([SHORT, LONG]))
    edited, labels, maskable = objective.replace_tokens(batch["input_ids"], batch["attention_mask"])
    ids, mask = batch["input_ids"], batch["attention_mask"]
    assert (labels[mask == 0] == -100).all()  # padding
    assert (labels[:, 0] == -100).all()  # [CLS]
    sep = ids == encoder.tokenizer.sep_token_id
    assert (labels[sep] == -100).all() and torch.equal(edited[sep], ids[sep])
    real = maskable
    assert torch.equal(labels[real], (edited[real] != ids[real]).long())
    assert labels[real].sum() > 0  # a random generator replaces plenty


def test_rtd_gradient_reaches_the_sentence_encoder(tiny_model_dir):
    objective = make_diffcse(tiny_model_dir)
    encoder = objective.encoder
    rows = [b for body in encoder.body_ids([SHORT, LONG, "你好"]) for b in (body, body)]
    batch = encoder.pad(rows)
    z1, _ = split_views(objective.embed(batch))
    rtd = objective.rtd_loss(z1, batch["input_ids"][::2], batch["attention_mask"][::2])
    rtd.backward()
    grad = encoder.backbone.embeddings.word_embeddings.weight.grad
    assert grad is not None and grad.abs().sum() > 0
    out = objective(batch)
    torch.testing.assert_close(out["loss"], out["contrastive"] + 0.005 * out["rtd"])


def test_generator_with_another_vocabulary_is_refused(tiny_model_dir, tmp_path):
    other = build_tiny_model(str(tmp_path / "other"), ["完全不同的词表"], hidden_size=32, num_hidden_layers=1,
                             num_attention_heads=2, max_position_embeddings=64)
    encoder = SentenceEncoder.from_pretrained(tiny_model_dir)
    with pytest.raises(ValueError, match="does not share the encoder's vocabulary"):
        load_generator(other, encoder)
    with pytest.raises(ValueError, match="must share the tokenizer"):
        DiffCSE(encoder, AutoModelForMaskedLM.from_pretrained(other), AutoModel.from_pretrained(tiny_model_dir))


def test_a_padded_vocabulary_keeps_the_characters_and_sizes_the_model(tmp_path, sample_texts):
    from transformers import AutoConfig, AutoTokenizer

    from cse_helpers.tools.tiny import build_char_vocab, build_tiny_model

    chars = build_char_vocab(sample_texts[:50])
    out = build_tiny_model(str(tmp_path / "m"), sample_texts[:50], model_type="ernie", vocab_size=len(chars) + 7,
                           hidden_size=32, num_hidden_layers=1, num_attention_heads=2)
    tokenizer = AutoTokenizer.from_pretrained(out)
    assert len(tokenizer) == len(chars) + 7 == AutoConfig.from_pretrained(out).vocab_size
    assert tokenizer.convert_ids_to_tokens([len(chars), len(chars) + 6]) == ["[unused0]", "[unused6]"]
    assert tokenizer.tokenize(sample_texts[0]) == [ch for ch in sample_texts[0].lower() if not ch.isspace()]
    with pytest.raises(ValueError, match="below the"):
        build_tiny_model(str(tmp_path / "n"), sample_texts[:50], vocab_size=10)


def test_pad_sequences_pads_to_the_longest_row():
    ids, mask = pad_sequences([[5, 6, 7], [8]], pad_id=0)
    assert ids.tolist() == [[5, 6, 7], [8, 0, 0]] and mask.tolist() == [[1, 1, 1], [1, 0, 0]]
    assert ids.dtype == mask.dtype == torch.long


def test_mask_tokens_variants_for_pretraining():
    ids = torch.full((50, 40), 7)
    everywhere = torch.ones_like(ids, dtype=torch.bool)
    chosen = torch.zeros_like(everywhere)
    chosen[:, :10] = True
    masked, selected = mask_tokens(ids, everywhere, 4, 30, 0.5, torch.Generator().manual_seed(0), selected=chosen,
                                   first_random_id=20)
    assert torch.equal(selected, chosen) and torch.equal(masked[:, 10:], ids[:, 10:])  # only the given positions
    randoms = masked[chosen][(masked[chosen] != 4) & (masked[chosen] != 7)]
    assert len(randoms) > 0 and randoms.min() >= 20  # random tokens from [first_random_id, vocab_size)
    masked, selected = mask_tokens(ids, everywhere, 4, 30, 0.5, torch.Generator().manual_seed(0), replace_all=True)
    assert selected.any() and (masked[selected] == 4).all() and torch.equal(masked[~selected], ids[~selected])


def test_the_registry_names_every_method_once():
    assert tuple(OBJECTIVES) == METHODS
    assert [objective_class(m).repeats_words for m in METHODS] == [False, True, False]  # only ESimCSE's views differ
    with pytest.raises(ValueError, match="method='moco' is not one of simcse, esimcse, diffcse"):
        objective_class("moco")


def test_esimcse_queue_is_saved_and_restored_as_extra_state(tiny_model_dir):
    encoder = SentenceEncoder.from_pretrained(tiny_model_dir)
    objective = ESimCSE(encoder, queue_size=4)
    assert objective.extra_state() == {}  # nothing queued yet: nothing to save
    objective.queue.enqueue(torch.randn(3, encoder.hidden_size))
    saved = {"encoder.head.dense.bias": torch.zeros(1), **objective.extra_state()}
    restored = ESimCSE(encoder, queue_size=4)
    restored.load_extra_state(saved)
    torch.testing.assert_close(restored.queue.embeddings, objective.queue.embeddings)
    assert list(saved) == ["encoder.head.dense.bias"]  # its own entry was taken out; the weights stay


def test_diffcse_leaves_its_frozen_generator_out_and_restores_its_masks(tiny_model_dir):
    objective = make_diffcse(tiny_model_dir)
    assert not any(name.startswith("generator.") for name in trained_state(objective))
    assert any(name.startswith("discriminator.") for name in trained_state(objective))
    batch = objective.encoder.pad(objective.encoder.body_ids([SHORT, LONG]))
    state = objective.rng_state()
    first = objective.replace_tokens(batch["input_ids"], batch["attention_mask"])[0]
    objective.set_rng_state(state)
    again = objective.replace_tokens(batch["input_ids"], batch["attention_mask"])[0]
    assert torch.equal(first, again)  # the same masks after a restore
    assert not torch.equal(objective.replace_tokens(batch["input_ids"], batch["attention_mask"])[0], again)


@pytest.mark.parametrize("pooler", ["mean", "cls"])
def test_the_batchnorm_projector_works_on_any_pooler_in_training_only_and_is_saved(tiny_bert_dir, tmp_path, pooler):
    encoder = SentenceEncoder.from_pretrained(tiny_bert_dir, pooler=pooler, projector="bn")
    assert isinstance(encoder.head, ProjectionMLP)
    batch = encoder.pad(encoder.body_ids([SHORT, LONG, "你好", "手机充不进电怎么办"]))
    encoder.train()
    z = encoder(**batch)  # (4, H): the last BatchNorm standardises each dimension over the batch
    torch.testing.assert_close(z.mean(0), torch.zeros(z.size(1)), atol=1e-5, rtol=0)
    torch.testing.assert_close(z.var(0, unbiased=False), torch.ones(z.size(1)), atol=1e-2, rtol=0)  # BN's eps
    encoder.eval()
    torch.testing.assert_close(encoder(**batch), encoder(**batch, apply_head=False))  # evaluation: no projector
    encoder.save_pretrained(str(tmp_path))
    loaded = SentenceEncoder.from_pretrained(str(tmp_path)).eval()
    assert (loaded.pooler, loaded.projector) == (pooler, "bn")
    for a, b in zip(loaded.head.state_dict().values(), encoder.head.state_dict().values()):
        assert torch.equal(a, b)
    # SimCSE's MLP head stays a cls-pooler head: no head on the mean pooler
    assert SentenceEncoder.from_pretrained(tiny_bert_dir, pooler="mean", projector="mlp").head is None


def test_binary_entropy_is_the_loss_of_a_predictor_that_knows_only_the_rate():
    assert binary_entropy(0.5) == pytest.approx(math.log(2))
    assert binary_entropy(0.15) == pytest.approx(0.4227, abs=1e-4)
    assert binary_entropy(0.15) == pytest.approx(binary_entropy(0.85))
    assert binary_entropy(0.0) == binary_entropy(1.0) == 0.0
    labels = torch.tensor([1, 0, 0, 0, 0, 0, 0, 1, 0, 0])  # p = 0.2: the constant guess p has exactly H(p)
    guess = torch.full((10, 2), 0.0)
    guess[:, 1] = math.log(0.2 / 0.8)
    assert float(torch.nn.functional.cross_entropy(guess, labels)) == pytest.approx(binary_entropy(0.2))
    with pytest.raises(ValueError, match="must be in"):
        binary_entropy(1.5)


def test_diffcse_logs_the_replaced_share_and_splits_the_rtd_loss_into_edits_and_detection(tiny_bert_dir):
    objective = make_diffcse(tiny_bert_dir)
    encoder = objective.encoder
    rows = [b for body in encoder.body_ids([SHORT, LONG, "你好"]) for b in (body, body)]
    batch = encoder.pad(rows)
    state = objective.rng_state()
    out = objective(batch)
    objective.set_rng_state(state)  # the same masks again
    edited, labels, maskable = objective.replace_tokens(batch["input_ids"][::2], batch["attention_mask"][::2])
    assert float(out["replaced"]) == pytest.approx(float((labels == 1).sum() / maskable.sum()))
    assert 0 < float(out["replaced"]) < objective.mask_ratio + 0.2
    objective.eval()  # no dropout: the same discriminator pass twice
    z1 = torch.randn(3, encoder.hidden_size)
    objective.set_rng_state(state)
    by_parts = objective.detection_loss(z1, *objective.replace_tokens(batch["input_ids"][::2],
                                                                      batch["attention_mask"][::2])[:2],
                                        batch["attention_mask"][::2])
    objective.set_rng_state(state)
    assert float(by_parts) == pytest.approx(float(objective.rtd_loss(z1, batch["input_ids"][::2],
                                                                     batch["attention_mask"][::2])))


def test_the_conditioning_probe_compares_own_and_shuffled_h_on_the_same_edits(tiny_bert_dir, monkeypatch):
    objective = make_diffcse(tiny_bert_dir)
    texts = [SHORT, LONG, "你好", "手机充不进电怎么办", "怎么减肥最快", "北京有什么好玩的", "哪里可以学英语"]
    state = objective.rng_state()
    rows = objective.conditioning_probe(texts, batch_size=3, seed=1)
    assert len(rows) == 2  # full batches only
    assert objective.training and torch.equal(objective.rng_state()["mask"], state["mask"])  # left as it was
    for row in rows:
        assert row["base_rate"] == pytest.approx(binary_entropy(row["replaced"]))
        assert row["own"] > 0 and row["shuffled"] > 0
    assert objective.conditioning_probe(texts, batch_size=3, seed=1) == rows  # repeatable
    seen = []
    original = DiffCSE.detection_loss

    def spy(self, z1, edited, labels, attention_mask, terms=None):
        seen.append((z1.clone(), edited.clone(), labels.clone()))
        return original(self, z1, edited, labels, attention_mask, terms)

    monkeypatch.setattr(DiffCSE, "detection_loss", spy)
    objective.conditioning_probe(texts[:3], batch_size=3, seed=1)
    (own_h, own_edits, own_labels), (shuffled_h, shuffled_edits, shuffled_labels) = seen
    assert torch.equal(own_edits, shuffled_edits) and torch.equal(own_labels, shuffled_labels)
    assert torch.equal(shuffled_h, own_h[[2, 0, 1]])  # each sentence gets another sentence's h


def test_diffcse_prepare_keeps_the_generator_in_eval_mode(tiny_model_dir):
    objective = make_diffcse(tiny_model_dir).eval()
    objective.prepare(torch.device("cpu"), "fp32")
    assert objective.training and objective.discriminator.training and not objective.generator.training
    assert next(objective.generator.parameters()).dtype == torch.float32  # half precision only on a GPU

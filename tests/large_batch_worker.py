"""What each process of the multi-process tests runs (importable, so torch.multiprocessing can start it)."""

import os

import torch

DETERMINISTIC = "deterministic_masks"
FAIL_ON_RANK = "fail_on_rank"


def fixed_masks(input_ids, maskable, mask_token_id, vocab_size, mask_ratio=0.3, generator=None, **_):
    """DiffCSE's masking without randomness: every third real token becomes [MASK]. With it, the runs
    that cut the batch differently draw the same edits, so their losses can be compared exactly."""
    positions = torch.arange(input_ids.size(1), device=input_ids.device)
    selected = maskable & (positions % 3 == 1)
    return torch.where(selected, torch.full_like(input_ids, mask_token_id), input_ids), selected


def use_fixed_masks(monkeypatch_or_none=None) -> None:
    from cse_helpers.objectives import diffcse

    if monkeypatch_or_none is not None:
        monkeypatch_or_none.setattr(diffcse, "mask_tokens", fixed_masks)
    else:
        diffcse.mask_tokens = fixed_masks


def run_rank(rank: int, world_size: int, port: int, kwargs: dict, options: dict) -> None:
    """Rank ``rank`` of ``world_size`` gloo processes: the environment torchrun would set, then train()."""
    os.environ.update(RANK=str(rank), WORLD_SIZE=str(world_size), LOCAL_RANK=str(rank), MASTER_ADDR="127.0.0.1",
                      MASTER_PORT=str(port))
    torch.set_num_threads(1)
    if options.get(DETERMINISTIC):
        use_fixed_masks()
    if options.get(FAIL_ON_RANK) == rank:
        from cse_helpers.objectives import Objective

        calls = {"n": 0}

        def failing_after_loss(self, batch, gather=lambda z: z):
            calls["n"] += 1
            if calls["n"] == 2:
                raise RuntimeError(f"rank {rank} broke at step 2")

        Objective.after_loss = failing_after_loss
    from cse_helpers.train import train

    train(**kwargs)


TEXTS = ["今天天气很好", "怎么减肥最快", "蛋黄可以多吃吗", "北京有什么好玩的", "手机充不进电怎么办", "哪里可以学英语",
         "苹果手机怎么截图"]


def one_step_gradients(model_dir: str, method: str, mini_batch_size: int = 0, ranks=None) -> dict:
    """The summed gradient of one step on :data:`TEXTS` (the global batch), by parameter name."""
    from cse_helpers.arguments import TrainingArguments
    from cse_helpers.batches import ViewBuilder
    from cse_helpers.encoder import SentenceEncoder
    from cse_helpers.scale.distributed import Ranks
    from cse_helpers.scale.grad_cache import forward_backward
    from cse_helpers.train import build_objective

    ranks = ranks or Ranks()
    torch.manual_seed(0)
    encoder = SentenceEncoder.from_pretrained(model_dir, pooler="mean", dropout=0.0)
    objective = build_objective(TrainingArguments(model=model_dir, method=method, train_path="x", queue_size=4),
                                encoder).prepare(torch.device("cpu"), "fp32")
    ranks.broadcast_module(objective)
    views = ViewBuilder(encoder, 32, objective.repeats_words, seed=0)
    rows = views.rows(encoder.body_ids(TEXTS))
    share = ranks.shard(len(TEXTS))
    for _ in range(2):  # the second step has a queue (ESimCSE): the gathered embeddings of the first
        objective.zero_grad()
        batch = encoder.pad(rows[2 * share.start: 2 * share.stop], 32)
        forward_backward(objective, batch, mini_batch_size=mini_batch_size, ranks=ranks)
        ranks.sum_gradients([p for p in objective.parameters() if p.requires_grad])
    return {name: p.grad.clone() for name, p in objective.named_parameters() if p.grad is not None}


def gradients_rank(rank: int, world_size: int, port: int, model_dir: str, method: str, mini_batch_sizes: list,
                   out_path: str) -> None:
    """Rank ``rank`` of :func:`one_step_gradients` over ``world_size`` processes, once per mini-batch size,
    in one process group; rank 0 saves ``{mini_batch_size: gradients}``."""
    import torch.distributed as dist

    from cse_helpers.scale.distributed import Ranks

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    use_fixed_masks()
    dist.init_process_group("gloo", rank=rank, world_size=world_size)
    ranks = Ranks(rank, world_size)
    grads = {size: one_step_gradients(model_dir, method, size, ranks) for size in mini_batch_sizes}
    if rank == 0:
        torch.save(grads, out_path)
    ranks.close()  # as train() ends: a barrier, then leave the process group (after an error: just exit)

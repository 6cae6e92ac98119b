"""Training past one forward pass: gradient caching (``grad_cache``: a batch larger than memory holds), several
processes (``distributed``: torchrun) and memory (``memory``: peak memory, the batch that fits). The one-process
loop of :mod:`cse_helpers.train` does not need them; they enter :meth:`cse_helpers.train.Trainer.step` through one
seam, ``step.ScaledStep``, only when a run asks for them."""

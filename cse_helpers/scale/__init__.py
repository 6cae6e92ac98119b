"""Training past one forward pass: gradient caching (``grad_cache``: a batch larger than memory holds), several
processes (``distributed``: torchrun) and peak-memory measurement (``memory``). The one-process loop of
:mod:`cse_helpers.train` does not need them; they enter through :meth:`cse_helpers.train.Trainer.step`'s one seam."""

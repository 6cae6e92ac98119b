"""What the notebooks show and ask, apart from the training code: figures (``plots``, ``fonts``), HTML tables
(``tables``), the interactive pieces (``widgets``), the exercises and their checkers (``exercises``), the
length-bias measurements (``analysis``), notebook 1's batch-size study (``batch_study``), the measured results
the notebooks quote (``results``) and installing on Colab (``colab``). The setup cell itself is
:mod:`cse_helpers.course`."""

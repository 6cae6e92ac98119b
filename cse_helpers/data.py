"""Reading the course's data files, and fetching LCQMC.

Two plain-text formats, the ones of the tutorial this course is based on:

- ``train.txt``: one sentence per line (unlabelled; unsupervised SimCSE needs nothing else).
- ``dev.tsv``: ``sentence_a<TAB>sentence_b<TAB>label[<TAB>group]``, the label 0/1 (LCQMC: same
  question or not) or a float similarity score (STS-style data); the optional 4th column names the
  kind of pair (``near_miss``, ``low_overlap_paraphrase``, ...) for per-group scores.

Bad input raises :class:`DataFormatError` (a ``ValueError``) whose message names the file, the line
and what is wrong. Nothing is dropped silently: blank lines are the only lines skipped, and they
are counted (``texts.blank_lines``).
"""

from __future__ import annotations

import io
import logging
import math
import os
import re
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
    """A ``list[str]`` that also remembers where it came from, the line of each sentence
    (``line_numbers``, for messages) and how many blank lines were skipped."""

    def __init__(self, texts=(), path: str | None = None, blank_lines: int = 0,
                 line_numbers: list[int] | None = None):
        super().__init__(texts)
        self.path = path
        self.blank_lines = blank_lines
        self.line_numbers = line_numbers


def _numbered_lines(path) -> Iterator[tuple[int, str]]:
    """Yield ``(line_number, text)`` for each line of a UTF-8 file, without its line end.

    Line ends are those of Python's text mode (``open(path, encoding="utf-8")``, how the tutorial reads
    its files): LF, CRLF and a lone CR (old Mac files); a lone CR inside a line starts a new line, as an
    editor shows it. The other characters that ``str.splitlines`` breaks at (``\\v``, ``\\f``,
    ``\\x1c``-``\\x1e``, ``\\x85``, U+2028, U+2029) are not line ends: they stay in the line (they are
    white space, so ``str.strip`` removes them at its ends). Every U+FEFF is removed: the BOM at the
    start of the file, the BOMs of concatenated files, a stray zero-width no-break space.

    Decoding is done line by line, so a byte sequence that is not UTF-8 is reported with its line, and
    so is a NUL byte (a UTF-16 or binary file decodes as UTF-8 into NULs). A file that starts with a
    UTF-16 or UTF-32 byte order mark is refused at once, with the ``iconv`` command that converts it.
    """
    path = os.fspath(path)
    check_is_file(path)
    number = 0
    with open(path, "rb") as f:
        encoding = _utf16_or_32(f.read(4))
        if encoding:
            raise DataFormatError(path, 1, f"the file is {encoding} (it starts with a {encoding} byte order mark), "
                                  "not UTF-8.", f"Save it as UTF-8 (e.g. `iconv -f {encoding} -t UTF-8 in.txt > "
                                  "out.txt`, or 'Save as... UTF-8' in an editor).")
        f.seek(0)
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


def check_is_file(path) -> None:
    """Raise FileNotFoundError for a missing path and DataFormatError for a directory, saying what to do."""
    if os.path.isdir(path):
        inside = sorted(n for n in os.listdir(path) if n.endswith((".txt", ".tsv")))[:4]
        raise DataFormatError(path, None, "is a directory, not a file.",
                              f"Pass one of the files inside it: {', '.join(os.path.join(path, n) for n in inside)}."
                              if inside else
                              "Pass the data file itself (train.txt, or dev.tsv).")
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path}: no such file. Check the path (relative paths start at {os.getcwd()}).")


def _utf16_or_32(start: bytes) -> str | None:
    """"UTF-16"/"UTF-32" when ``start`` (a file's first 4 bytes) begins with that byte order mark."""
    if start.startswith((b"\xff\xfe\x00\x00", b"\x00\x00\xfe\xff")):
        return "UTF-32"
    if start.startswith((b"\xff\xfe", b"\xfe\xff")):
        return "UTF-16"
    return None


def read_train_texts(path) -> SentenceList:
    """Read ``train.txt``: one sentence per line, stripped; blank lines are skipped and counted.

    Returns a :class:`SentenceList` (a list of str with ``.blank_lines``). Duplicated sentences are
    kept (training removes identical sentences inside one batch, where they would be false negatives).
    A line with a tab looks like a pairs file given as training text and is refused.
    """
    texts, numbers, blank = [], [], 0
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
        numbers.append(number)
    if not texts:
        raise DataFormatError(path, None, "the file is empty (no sentence in it).",
                              "train.txt needs one sentence per line.")
    if blank:
        logger.info("%s: skipped %d blank line(s)", path, blank)
    return SentenceList(texts, path=os.fspath(path), blank_lines=blank, line_numbers=numbers)


def parse_label(text: str) -> int | float:
    """'0'/'1' -> int (LCQMC), any other finite number -> float (STS score). Raises ValueError."""
    text = text.strip()
    if text in ("0", "1"):
        return int(text)
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{text!r} is not a finite number")
    return value


def read_pairs(path, with_groups: bool = False) -> list[tuple]:
    """Read ``dev.tsv``: ``a<TAB>b<TAB>label`` or ``a<TAB>b<TAB>label<TAB>group`` per line.

    Returns ``[(a, b, label), ...]``, or with ``with_groups=True`` ``[(a, b, label, group), ...]``
    (``group`` is None on a line with three columns). Lines may mix three and four columns.

    - ``label``: an int for ``0``/``1`` (LCQMC) and a float for any other finite number (STS scores).
      A file whose labels are mostly ``0``/``1`` (more than half of its lines) is a 0/1 file: another
      label in it (``2``, ``-1``, ``0.5``) is an error naming its line, not a switch to score mode.
    - ``group`` (optional): the kind of pair, a word such as ``near_miss`` or
      ``low_overlap_paraphrase`` (letters, digits and ``_``, not starting with a digit).

    Blank lines are skipped and counted in the log; every other line must have two non-empty
    sentences and a numeric label, or the error names the file and the line.
    """
    rows, lines, blank = [], [], 0
    for number, line in _numbered_lines(path):
        if not line.strip():
            blank += 1
            continue
        columns = [c.strip() for c in line.split("\t")]
        if len(columns) not in (3, 4):
            raise DataFormatError(path, number, f"expected 3 tab-separated columns (a, b, label) or 4 (a, b, label, "
                                  f"group), found {len(columns)}.",
                                  "Each line is sentence_a<TAB>sentence_b<TAB>label, optionally <TAB>group.")
        a, b, label_text = columns[:3]
        if not a or not b:
            raise DataFormatError(path, number, f"sentence {'a' if not a else 'b'} is empty.")
        try:
            label = parse_label(label_text)
        except ValueError:
            hint = "Remove the header line." if number == 1 else "Use 0/1 or a similarity score."
            raise DataFormatError(path, number, f"the label {label_text!r} is not a number.", hint) from None
        group = columns[3] if len(columns) == 4 else None
        if group is not None and not is_group_name(group):
            problem = "is empty" if not group else f"{group!r} is not a word like near_miss"
            raise DataFormatError(path, number, f"the group (4th column) {problem}.",
                                  "Use letters, digits and _ (not starting with a digit), or drop the 4th column.")
        rows.append((a, b, label, group))
        lines.append(number)
    if not rows:
        raise DataFormatError(path, None, "the file is empty (no a<TAB>b<TAB>label line in it).")
    _check_label_kinds(path, [row[2] for row in rows], lines)
    if blank:
        logger.info("%s: skipped %d blank line(s)", path, blank)
    return rows if with_groups else [row[:3] for row in rows]


_GROUP_NAME = re.compile(r"[^\W\d]\w*")


def is_group_name(text: str) -> bool:
    """A dev.tsv group: a word of letters, digits and ``_`` that does not start with a digit."""
    return _GROUP_NAME.fullmatch(text) is not None


def _check_label_kinds(path, labels: list, lines: list[int]) -> None:
    """Refuse a 0/1 file (more than half of its labels ``0``/``1``) with another label in it.

    Such a label is a typo or a third class (``2`` of an NLI file, ``-1`` for 'unknown'); read as a
    score it would silently turn the whole set into score mode (no accuracy, no F1).
    """
    binary = sum(type(label) is int for label in labels)
    if binary == len(labels) or 2 * binary <= len(labels):
        return  # all 0/1, or a file of scores
    number, label = next((n, label) for n, label in zip(lines, labels) if type(label) is not int)
    raise DataFormatError(path, number, f"the label {label:g} in a file of 0/1 labels ({binary} of {len(labels)} "
                          "lines are 0 or 1).", "Fix or remove this line: 1 = same meaning, 0 = different. (A file "
                          "of similarity scores has mostly labels other than 0 and 1.)")


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

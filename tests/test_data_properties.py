"""Property-based tests of the data readers (``read_train_texts``, ``read_pairs``) with hypothesis.

Every input either parses into exactly what a careful human reads in the file, or raises
``DataFormatError`` naming the file and, when a line is at fault, ``line N`` with the right N. Never
another exception, never a non-blank line dropped without a word.

What a careful human reads, decided here (and in ``cse_helpers.data._numbered_lines``):

- Line ends are LF, CRLF and a lone CR, as in an editor and in Python's text mode (how the tutorial
  reads its files). A final line end does not start another line. Lines are numbered 1, 2, ... in
  that reading, so ``line N`` is the line an editor shows as N.
- The other characters ``str.splitlines`` breaks at (``\\v``, ``\\f``, ``\\x1c``-``\\x1e``, ``\\x85``,
  U+2028, U+2029) are NOT line ends: binary file iteration and ``wc -l`` do not break there either.
  They are white space, so they go at the ends of a sentence (``str.strip``) and stay inside it.
- A line that is only white space (any ``str.isspace`` character: tabs, U+3000, ...) is blank:
  skipped and counted (``.blank_lines``).
- U+FEFF is never text: the BOM at the start of the file is dropped, and so is one at the start of
  a line (files concatenated with ``cat``) or inside one (a zero-width no-break space: ``str.strip``
  would keep it, and a line holding only a BOM would become an invisible "sentence").
- train.txt: a tab inside a sentence is an error naming the line (a pairs file given as train.txt);
  a tab at an end of the line is white space, stripped like any other.
- dev.tsv: three or four tab-separated columns, each stripped; a and b non-empty; the label 0/1
  (int) or another finite number (float); the optional 4th column (the group) a word of letters,
  digits and ``_`` not starting with a digit. A file whose labels are more than half 0/1 but not
  all is refused at its first other label (a typo or a third class, not a file of scores).
- Bytes that are not UTF-8, and NUL bytes (UTF-16 text decodes as UTF-8 into NULs), are errors
  naming the line; a file that starts with a UTF-16 or UTF-32 byte order mark is refused at line 1.
"""

import math
import os
import pathlib
import re

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from cse_helpers.data import DataFormatError, read_pairs, read_train_texts

SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                              HealthCheck.too_slow])
BOM = "\ufeff".encode()
NOT_LINE_ENDS = "\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"  # str.splitlines breaks here; a text file does not


# ---- the oracle: what a careful human reads -------------------------------------------------------

class Err:
    """The error a careful human expects: at ``line`` (None: the whole file), with ``words`` in it."""

    def __init__(self, line, words):
        self.line, self.words = line, words

    def __repr__(self):
        return f"Err(line={self.line}, words={self.words!r})"


def human_lines(data: bytes) -> list[bytes]:
    """Split at LF, CRLF or a lone CR, on the bytes; a final line end does not start another line."""
    lines = re.split(rb"\r\n|\r|\n", data)
    if lines[-1] == b"":
        lines.pop()
    return lines


def human_text(raw: bytes):
    """One line's text, stripped and without U+FEFF; or an Err(None, words) for undecodable bytes."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return Err(None, "not UTF-8")
    if "\0" in text:
        return Err(None, "NUL")
    return "".join(ch for ch in text if ch != "\ufeff").strip()


def byte_order_mark(data: bytes):
    """The Err for a file that starts with a UTF-16 or UTF-32 byte order mark, else None."""
    if data.startswith((b"\xff\xfe\x00\x00", b"\x00\x00\xfe\xff")):
        return Err(1, "UTF-32")
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return Err(1, "UTF-16")
    return None


def expected_lines(data: bytes, parse, numbers: list | None = None):
    """``(items, blank_lines)`` or an Err: each non-blank line's ``parse(text, raw)``, an item or an Err.

    ``numbers``, when given, receives the line number of each item."""
    if byte_order_mark(data):
        return byte_order_mark(data)
    items, blank = [], 0
    for number, raw in enumerate(human_lines(data), start=1):
        text = human_text(raw)
        if isinstance(text, Err):
            return Err(number, text.words)
        if text == "":
            blank += 1
            continue
        item = parse(text, raw)
        if isinstance(item, Err):
            return Err(number, item.words)
        items.append(item)
        if numbers is not None:
            numbers.append(number)
    return (items, blank) if items else Err(None, "empty")


def expected_train(data: bytes):
    """``(sentences, blank_lines)`` or an Err."""
    return expected_lines(data, lambda text, raw: Err(None, "tab") if "\t" in text else text)


def human_label(text: str):
    text = text.strip()
    if text in ("0", "1"):
        return int(text)
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def human_group(text: str) -> bool:
    """A group is a word: letters, digits, _ (str.isalnum characters), not starting with a digit."""
    return bool(text) and all(ch == "_" or ch.isalnum() for ch in text) and not text[0].isdecimal()


def human_pair(text: str, raw: bytes):
    """``(a, b, label, group)`` of one non-blank dev.tsv line (group None for 3 columns), or an Err."""
    columns = [c.strip() for c in "".join(ch for ch in raw.decode() if ch != "\ufeff").split("\t")]
    if len(columns) not in (3, 4):
        return Err(None, f"found {len(columns)}")
    if not columns[0] or not columns[1]:
        return Err(None, "is empty")
    label = human_label(columns[2])
    if label is None:
        return Err(None, "not a number")
    group = columns[3] if len(columns) == 4 else None
    if group is not None and not human_group(group):
        return Err(None, "group (4th column)")
    return columns[0], columns[1], label, group


def mixed_labels(labels: list, numbers: list[int]):
    """The Err of a file whose labels are more than half 0/1 but not all (at its first other label), or None."""
    binary = [number for number, label in zip(numbers, labels) if type(label) is int]
    if len(labels) / 2 < len(binary) < len(labels):
        return Err(next(n for n in numbers if n not in binary), "in a file of 0/1 labels")
    return None


def expected_pairs(data: bytes):
    """``(pairs, blank_lines)`` or an Err; pairs are ``(a, b, label, group)``."""
    numbers = []
    expected = expected_lines(data, human_pair, numbers)
    if isinstance(expected, Err):
        return expected
    return mixed_labels([pair[2] for pair in expected[0]], numbers) or expected


# ---- checking the readers against the oracle ------------------------------------------------------

@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    return tmp_path_factory.mktemp("data-properties")


def write(directory, name: str, data: bytes) -> str:
    path = os.path.join(str(directory), name)
    with open(path, "wb") as f:
        f.write(data)
    return path


def check_error(reader, path, expected: Err):
    with pytest.raises(DataFormatError) as err:  # any other exception fails the test
        reader(path)
    message = str(err.value)
    assert isinstance(err.value, ValueError)
    assert message.startswith(path), message
    assert err.value.line == expected.line, (message, expected)
    if expected.line is not None:
        assert message.startswith(f"{path}, line {expected.line}: "), message
    assert expected.words in message, (message, expected)


def check_train(directory, data: bytes, expected=None):
    expected = expected_train(data) if expected is None else expected
    path = write(directory, "train.txt", data)
    if isinstance(expected, Err):
        check_error(read_train_texts, path, expected)
        return
    texts = read_train_texts(path)
    assert (list(texts), texts.blank_lines) == expected
    assert len(texts) + texts.blank_lines == len(human_lines(data))  # every line is a sentence or a blank
    assert texts.path == path


def check_pairs(directory, data: bytes, expected=None):
    expected = expected_pairs(data) if expected is None else expected
    path = write(directory, "dev.tsv", data)
    if isinstance(expected, Err):
        check_error(read_pairs, path, expected)
        return
    pairs = read_pairs(path)
    assert pairs == [pair[:3] for pair in expected[0]]  # without with_groups: (a, b, label), as always
    assert [type(label) for _, _, label in pairs] == [type(p[2]) for p in expected[0]]  # 0/1 are ints
    assert read_pairs(path, with_groups=True) == expected[0]
    assert len(pairs) + expected[1] == len(human_lines(data))


# ---- strategies -----------------------------------------------------------------------------------

# Pieces that matter to a reader: line ends, tabs, BOMs, NULs, bytes that are not UTF-8 (0xff, a
# truncated character, a lone continuation byte, an encoded surrogate, an overlong '/'), white
# space of every kind, the splitlines-only breaks, Chinese, labels.
PIECES = [b"\n", b"\r", b"\r\n", b"\n\r", b"\t", b" ", b"\0", BOM, b"\xff", "你".encode()[:2], b"\x80",
          b"\xed\xa0\x80", b"\xc0\xaf", "\u3000".encode(), "你好".encode(), "怎么减肥".encode(), b"a", b"0", b"1",
          b"2.5", b"nan", b"-1e3", b"label"] + [ch.encode() for ch in NOT_LINE_ENDS]
mixed_bytes = st.lists(st.one_of(st.sampled_from(PIECES), st.binary(max_size=6), st.text(max_size=6).map(str.encode)),
                       max_size=40).map(b"".join)

line_end = st.sampled_from(["\n", "\r\n", "\r"])
spaces = st.sampled_from(["", " ", "\t", "\u3000", "\x0b\x0c", "\x1c\x85", "\u2028\u2029", "\ufeff", " \ufeff\t",
                         "\t\u3000 "])  # the white space a line may carry
sentence_chars = st.characters(blacklist_categories=("Cs",), blacklist_characters="\r\n\0")
interesting = st.sampled_from(["你", "好", "吗", "?", "a", " ", "\t", "\ufeff", "\u3000"] + list(NOT_LINE_ENDS))
sentence = st.text(alphabet=st.one_of(sentence_chars, interesting), max_size=10)
no_tab = sentence.map(lambda s: s.replace("\t", " "))
pad = spaces.map(lambda s: s.replace("\t", " "))


@st.composite
def documents(draw, line):
    """``(data, metas)``: generated ``(text, meta)`` lines joined with mixed line ends, maybe a BOM at the
    start, maybe no line end after the last line."""
    lines = draw(st.lists(line, max_size=8))
    ends = [draw(line_end) for _ in lines]
    if lines and lines[-1][0] and not draw(st.booleans()):
        ends[-1] = ""  # (an empty last line without a line end is no line at all)
    for i in reversed(range(len(lines) - 1)):  # a CR, then an empty line ended by LF, would read as CRLF
        if ends[i] == "\r" and lines[i + 1][0] == "" and ends[i + 1].startswith("\n"):
            ends[i] = "\n"
    text = "".join(f"{body}{end}" for (body, _), end in zip(lines, ends))
    bom = "\ufeff" if draw(st.booleans()) else ""
    return (bom + text).encode("utf-8"), [meta for _, meta in lines]


GROUPS = ["near_miss", "low_overlap_paraphrase", "paraphrase", "unrelated", "组_2", "_x"]


@st.composite
def pair_line(draw):
    """A dev.tsv line with white space around its columns (maybe a 4th, the group), or a blank line
    (None in the tuple). Labels are 0/1 on most rows, so most documents are 0/1 files."""
    if draw(st.integers(0, 5)) == 0:
        return draw(spaces), None
    a, b = draw(no_tab), draw(no_tab)
    label = draw(st.one_of(st.sampled_from(["0", "1"]), st.sampled_from(["0.0", "1.", "3", "-2", "1e-3", "4.75"]),
                           st.floats(allow_nan=False, allow_infinity=False).map(repr),
                           st.integers(-10**6, 10**6).map(str)))
    p = [draw(pad) for _ in range(8)]
    text = f"{p[0]}{a}{p[1]}\t{p[2]}{b}{p[3]}\t{p[4]}{label}{p[5]}"
    group = draw(st.one_of(st.none(), st.sampled_from(GROUPS), st.sampled_from(["", "2x", "a-b", "a b"])))
    if group is not None:
        text += f"\t{p[6]}{group}{p[7]}"
    return text, (a, b, label, group)


def clean(text: str) -> str:
    return text.replace("\ufeff", "").strip()


# ---- properties -----------------------------------------------------------------------------------

@SETTINGS
@given(doc=documents(sentence.map(lambda s: (s, s))))
@example(doc=("a\x0bb\u2028c\x1cd\x85e\n".encode(), ["a\x0bb\u2028c\x1cd\x85e"]))
@example(doc=("\ufeff\ufeff\n \ufeff \r\n你好\ufeff吗\r".encode(), ["\ufeff", " \ufeff ", "你好\ufeff吗"]))
def test_train_text_reads_back_the_generated_sentences(workdir, doc):
    """Valid UTF-8 built from generated lines: the sentences, stripped, in order; blanks counted."""
    data, lines = doc
    first_bad = next((n for n, body in enumerate(lines, 1) if clean(body) and "\t" in clean(body)), None)
    if first_bad is not None:
        expected = Err(first_bad, "tab")
    elif not any(clean(body) for body in lines):
        expected = Err(None, "empty")
    else:
        expected = ([clean(b) for b in lines if clean(b)], sum(1 for b in lines if not clean(b)))
    check_train(workdir, data, expected)
    assert repr(expected_train(data)) == repr(expected)  # the byte-level oracle agrees with the generator


@SETTINGS
@given(doc=documents(pair_line()))
def test_pairs_read_back_the_generated_rows(workdir, doc):
    data, rows = doc
    if all(row is None for row in rows):
        expected = Err(None, "empty")
    else:
        expected = None
        for number, row in enumerate(rows, 1):
            if row is not None and not (clean(row[0]) and clean(row[1])):
                expected = Err(number, "is empty")
            elif row is not None and row[3] is not None and row[3] not in GROUPS:
                expected = Err(number, "group (4th column)")
            if expected:
                break
        if expected is None:
            numbers = [n for n, row in enumerate(rows, 1) if row is not None]
            pairs = [(clean(a), clean(b), int(label) if label in ("0", "1") else float(label), group)
                     for a, b, label, group in (row for row in rows if row is not None)]
            expected = mixed_labels([p[2] for p in pairs], numbers) or (pairs, rows.count(None))
    check_pairs(workdir, data, expected)
    assert repr(expected_pairs(data)) == repr(expected)  # the byte-level oracle agrees with the generator


@SETTINGS
@given(data=mixed_bytes)
@example(data=b"a\rb\n")  # a lone CR ends a line (the whole file was one sentence before)
@example(data=b"a\rb\tc\n")  # ... and the tab is on line 2
@example(data=b"x\r\xff\n")  # not UTF-8 on line 2, counting the CR
@example(data="a\x0bb\n\x1c\u2028\n".encode())  # not line ends; a line of them is blank
@example(data="a\n\ufeff\n\ufeffb".encode())  # BOMs of concatenated files
@example(data="ab\n".encode("utf-16-le"))  # UTF-16 without a BOM: NULs
@example(data="ab\n".encode("utf-16"))  # UTF-16 with a BOM: said so, at line 1
@example(data="ab\n".encode("utf-32"))
@example(data=b"")
def test_train_text_on_any_bytes(workdir, data):
    check_train(workdir, data)


@SETTINGS
@given(data=mixed_bytes)
@example(data=b"a\tb\t1\rc\td\t0")  # old Mac line ends
@example(data=b"a\tb\t1\r\n\r\nc\td\t0\n")
@example(data="\ufeffa\tb\t1\n\ufeff\n".encode())
@example(data=b"a\tb\t1\n\0\n")
@example(data="a\u2028\tb\x0b\t1\x1c\n".encode())
@example(data=b"a\tb\t1\tnear_miss\nc\td\t0\n\ne\tf\t2\tx\n")  # 4 columns or 3; a label 2 among 0/1
@example(data=b"a\tb\t1\t\n")  # an empty group
@example(data=b"a\tb\t0\nc\td\t2.5\n")  # half 0/1: scores
def test_pairs_on_any_bytes(workdir, data):
    check_pairs(workdir, data)


@SETTINGS
@given(data=mixed_bytes, lines=st.lists(pair_line(), min_size=1, max_size=5), at=st.integers(0, 5))
def test_pairs_on_valid_rows_mixed_with_any_bytes(workdir, data, lines, at):
    """Good rows around one line of arbitrary bytes: parsed up to it, then that line's fate decides."""
    good = [text.encode() for text, _ in lines]
    good.insert(min(at, len(good)), data)
    check_pairs(workdir, b"\n".join(good) + b"\n")


# ---- decisions, spelled out -------------------------------------------------------------------------

@pytest.mark.parametrize("data, texts, blank", [
    (b"a\rb", ["a", "b"], 0),  # lone CR: a line end
    (b"a\r\r\nb\r\n", ["a", "b"], 1),  # CR, then CRLF: one blank line between
    (b"a\n\rb", ["a", "b"], 1),  # LF, then CR
    ("\ufeffa\r\n".encode(), ["a"], 0),  # BOM at the start of the file: dropped
    ("a\n\ufeffb\n\ufeff\n".encode(), ["a", "b"], 1),  # BOMs of concatenated files; a BOM alone is blank
    ("\u3000a\ufeffb\u3000".encode(), ["ab"], 0),  # a stray U+FEFF is not text
    ("a\x0bb\x0cc\x1cd\x1de\x1ef\x85g\u2028h\u2029i".encode(), ["a\x0bb\x0cc\x1cd\x1de\x1ef\x85g\u2028h\u2029i"], 0),
    ("\x0b\x1c\u2028 \n\x85\u2029\u3000\t\nx".encode(), ["x"], 2),  # white space only: blank
    (b"a\t\n\tb", ["a", "b"], 0),  # a tab at an end is white space
])
def test_train_edge_cases(workdir, data, texts, blank):
    check_train(workdir, data, (texts, blank))


@pytest.mark.parametrize("data, line, words", [
    (b"a\rb\tc", 2, "tab"),
    (b"a\n\n\rb\r\n\xe4\xbd", 5, "not UTF-8"),
    (b"ok\nA\0B\n", 2, "NUL"),
    ("ab\r\ncd".encode("utf-16-le"), 1, "NUL"),
    ("ab".encode("utf-16"), 1, "iconv -f UTF-16 -t UTF-8"),
    ("ab".encode("utf-16-be"), 1, "NUL"),  # no byte order mark: found by its NULs
    ("\ufeff\r\n \u3000\ufeff\r".encode(), None, "empty"),
])
def test_train_edge_case_errors(workdir, data, line, words):
    check_train(workdir, data, Err(line, words))


def test_huge_lines(workdir):
    """1 MB lines are read whole; an error at their very end is found, on the right line."""
    huge = "你" * ((1 << 20) // 3) + "好"  # 1 MB of UTF-8
    check_train(workdir, f"a\r\n{huge}\n\nb".encode(), (["a", huge, "b"], 1))
    check_train(workdir, f"a\n{huge}\r{huge}\tx\n".encode(), Err(3, "tab"))
    check_train(workdir, f"a\n\n{huge}".encode() + b"\xff", Err(3, "not UTF-8"))
    check_pairs(workdir, f"{huge}\t{huge}\t1\r\n{huge}\t{huge}".encode(), Err(2, "found 2"))
    check_pairs(workdir, f"{huge}\t{huge}\t0.5\r\n".encode(), ([(huge, huge, 0.5, None)], 0))


def test_a_path_object_is_named_too(workdir):
    path = pathlib.Path(write(workdir, "p.txt", b"a\n\xff\n"))
    with pytest.raises(DataFormatError, match=re.escape(f"{path}, line 2: ")):
        read_train_texts(path)

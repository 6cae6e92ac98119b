import io
import os
import shutil
import subprocess
import tarfile
import zipfile

import pytest

from cse_helpers.data import DataFormatError, DatasetUnavailableError, load_lcqmc, read_pairs, read_train_texts


def write(tmp_path, name, content: bytes):
    path = tmp_path / name
    path.write_bytes(content)
    return str(path)


def test_train_texts_are_stripped_and_blank_lines_counted(tmp_path):
    path = write(tmp_path, "train.txt", "\ufeff 今天天气很好 \r\n\r\n怎么减肥\n   \n我喜欢你".encode())
    texts = read_train_texts(path)
    assert texts == ["今天天气很好", "怎么减肥", "我喜欢你"]
    assert texts.blank_lines == 2


def test_train_texts_keep_duplicates(tmp_path):
    assert read_train_texts(write(tmp_path, "t.txt", "好\n好\n".encode())) == ["好", "好"]


@pytest.mark.parametrize("content, line, words", [
    (b"", None, "empty"),
    (b"\n  \n", None, "empty"),
    ("第一句\n第二句\n".encode() + "第三".encode("gbk") + b"\n", 3, "not UTF-8"),
    ("一句\na\tb\t1\n".encode(), 2, "tab"),
])
def test_bad_train_files_name_file_and_line(tmp_path, content, line, words):
    path = write(tmp_path, "train.txt", content)
    with pytest.raises(DataFormatError) as err:
        read_train_texts(path)
    message = str(err.value)
    assert path in message and words in message
    assert err.value.line == line
    assert isinstance(err.value, ValueError)
    if line is not None:
        assert f"line {line}" in message


def test_missing_file_says_so(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such file"):
        read_train_texts(str(tmp_path / "nope.txt"))


def test_a_directory_given_as_a_file_says_it_is_a_directory(tmp_path):
    write(tmp_path, "train.txt", "一句\n".encode())
    for reader in (read_train_texts, read_pairs):
        with pytest.raises(DataFormatError, match=r"is a directory, not a file\. Pass one of the files inside it: "
                                                  r".*train\.txt"):
            reader(str(tmp_path))


@pytest.mark.skipif(shutil.which("iconv") is None, reason="iconv is not installed")
def test_utf16_file_gets_a_hint_that_works(tmp_path):
    path = write(tmp_path, "train.txt", "今天天气很好\n怎么减肥\n".encode("utf-16"))
    with pytest.raises(DataFormatError, match=r"line 1: the file is UTF-16 .*iconv -f UTF-16 -t UTF-8") as err:
        read_train_texts(path)
    converted = subprocess.run(["iconv", "-f", "UTF-16", "-t", "UTF-8", path], capture_output=True, check=True).stdout
    assert read_train_texts(write(tmp_path, "fixed.txt", converted)) == ["今天天气很好", "怎么减肥"]
    assert "GBK" not in str(err.value)


def test_pairs_parse_binary_and_float_labels(tmp_path):
    path = write(tmp_path, "dev.tsv", "我喜欢你\t我不喜欢你\t0\n怎么减肥\t如何瘦身\t1\r\n\n".encode())
    pairs = read_pairs(path)
    assert pairs == [("我喜欢你", "我不喜欢你", 0), ("怎么减肥", "如何瘦身", 1)]
    assert all(isinstance(label, int) for _, _, label in pairs)
    scores = write(tmp_path, "sts.tsv", "猫\t狗\t2.5\n猫\t猫咪\t5\n猫\t汽车\t0\n猫\t老虎\t3.8\n".encode())
    assert read_pairs(scores) == [("猫", "狗", 2.5), ("猫", "猫咪", 5.0), ("猫", "汽车", 0), ("猫", "老虎", 3.8)]


def test_pairs_group_column_is_optional(tmp_path):
    path = write(tmp_path, "dev.tsv", b"a\tb\t1\tparaphrase\nc\td\t0\ne\tf\t0\t near_miss \n")
    assert read_pairs(path) == [("a", "b", 1), ("c", "d", 0), ("e", "f", 0)]  # the group is ignored by default
    assert read_pairs(path, with_groups=True) == [("a", "b", 1, "paraphrase"), ("c", "d", 0, None),
                                                   ("e", "f", 0, "near_miss")]


def test_one_odd_label_among_0_1_labels_is_refused(tmp_path):
    path = write(tmp_path, "dev.tsv", b"a\tb\t1\nc\td\t0\ne\tf\t2\ng\th\t1\n")
    with pytest.raises(DataFormatError, match=r"line 3: the label 2 in a file of 0/1 labels \(3 of 4"):
        read_pairs(path)
    path = write(tmp_path, "dev.tsv", b"a\tb\t-1\nc\td\t0\ne\tf\t1\n")
    with pytest.raises(DataFormatError, match="line 1: the label -1"):
        read_pairs(path)


@pytest.mark.parametrize("content, line, words", [
    (b"a\tb\t1\na\tb\n", 2, "3 tab-separated columns (a, b, label) or 4 (a, b, label, group), found 2"),
    (b"a\tb\t1\tx\ty\n", 1, "found 5"),
    (b"a\tb\t1\tx\na\tb\t0\t\n", 2, "group (4th column) is empty"),
    (b"a\tb\t1\tnear miss\n", 1, "'near miss' is not a word"),
    ("a\tb\t1\n".encode("utf-16"), 1, "iconv -f UTF-16 -t UTF-8"),
    (b"text_a\ttext_b\tlabel\na\tb\t1\n", 1, "Remove the header"),
    (b"a\tb\t1\na\tb\tyes\n", 2, "not a number"),
    (b"a\tb\tnan\n", 1, "not a number"),
    (b"a\t \t1\n", 1, "sentence b is empty"),
    (b"a\tb\t1\n\xff\xfe\tb\t0\n", 2, "not UTF-8"),
    (b"\n\n", None, "empty"),
])
def test_bad_pair_files_name_file_and_line(tmp_path, content, line, words):
    path = write(tmp_path, "dev.tsv", content)
    with pytest.raises(DataFormatError) as err:
        read_pairs(path)
    assert path in str(err.value) and words in str(err.value)
    assert err.value.line == line


# ---- LCQMC download, against local archives (never the network) ----

# made-up lines in LCQMC's layout (header, a, b, label)
LCQMC_TRAIN = "text_a\ttext_b\tlabel\n周末去哪里爬山好\t周末适合去哪座山\t1\n" \
              "电脑开机很慢怎么办\t电脑启动太慢如何解决\t1\n周末去哪里爬山好\t周末去哪里爬山好\t0\n"
LCQMC_DEV = "text_a\ttext_b\tlabel\n护照过期了怎么换\t护照到期怎么更换\t1\n猫为什么怕水\t狗为什么爱咬鞋\t0\n"
LCQMC_TEST = "text_a\ttext_b\tlabel\n米饭怎么煮才香\t怎样煮出好吃的米饭\t1\n"


def make_archive(tmp_path, kind: str, test_labelled=True) -> str:
    files = {"lcqmc/train.tsv": LCQMC_TRAIN, "lcqmc/dev.tsv": LCQMC_DEV,
             "lcqmc/test.tsv": LCQMC_TEST if test_labelled else "米饭怎么煮才香\t怎样煮出好吃的米饭\n"}
    if kind == "zip":
        path = tmp_path / "lcqmc.zip"
        with zipfile.ZipFile(path, "w") as z:
            for name, text in files.items():
                z.writestr(name, text)
    else:
        path = tmp_path / "lcqmc.tar.gz"
        with tarfile.open(path, "w:gz") as t:
            for name, text in files.items():
                data = text.encode()
                info = tarfile.TarInfo(name)
                info.size = len(data)
                t.addfile(info, io.BytesIO(data))
    return path.as_uri()


@pytest.mark.parametrize("kind", ["tar.gz", "zip"])
def test_load_lcqmc_downloads_converts_and_caches(tmp_path, kind):
    cache = tmp_path / "cache"
    paths = load_lcqmc(str(cache), sources=[make_archive(tmp_path, kind)])
    assert set(paths) == {"train", "dev", "test"}
    train = read_train_texts(paths["train"])
    # distinct sentences of the train split, in order of first appearance, labels dropped
    assert train == ["周末去哪里爬山好", "周末适合去哪座山", "电脑开机很慢怎么办", "电脑启动太慢如何解决"]
    assert read_pairs(paths["dev"]) == [("护照过期了怎么换", "护照到期怎么更换", 1),
                                        ("猫为什么怕水", "狗为什么爱咬鞋", 0)]
    # a second call uses the cache: the (now unreachable) source is not asked again
    again = load_lcqmc(str(cache), sources=["http://127.0.0.1:9/unreachable"], as_lists=True)
    assert again["train"] == train and len(again["test"]) == 1


def test_load_lcqmc_falls_back_to_next_source_and_skips_unlabelled_test(tmp_path):
    paths = load_lcqmc(str(tmp_path / "c"), sources=["http://127.0.0.1:9/x", make_archive(tmp_path, "zip", False)])
    assert set(paths) == {"train", "dev"}


def test_load_lcqmc_offline_says_what_to_do(tmp_path):
    with pytest.raises(DatasetUnavailableError, match="Pass local files instead") as err:
        load_lcqmc(str(tmp_path / "c"), sources=["http://127.0.0.1:9/lcqmc.tar.gz"], timeout=5)
    assert "127.0.0.1:9" in str(err.value)
    assert not os.path.exists(tmp_path / "c" / "train.txt")

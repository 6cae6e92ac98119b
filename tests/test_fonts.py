"""Chinese in figures: the course's CJK font is registered, and every character of a figure has a glyph."""

import io
import warnings

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
from matplotlib import font_manager  # noqa: E402
from matplotlib.ft2font import FT2Font  # noqa: E402

from cse_helpers.classroom import fonts, plots  # noqa: E402
from cse_helpers.losses import simcse_label_matrix  # noqa: E402

SENTENCES = ["蛋黄吃多了有什么坏处", "吃鸡蛋白过多有什么坏处", "怎样才知道是生男孩还是女孩",
             "这种图片制作是用什么软件呢?"]


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


@pytest.fixture
def saved_rc():
    saved = dict(matplotlib.rcParams)
    yield
    matplotlib.rcParams.update(saved)


def glyphs_of(path) -> set[str]:
    return {chr(code) for code in FT2Font(str(path)).get_charmap()}


def test_the_label_matrix_draws_every_chinese_character_with_a_glyph():
    n = len(SENTENCES)
    ticks = [f"{chr(97 + k // 2)}{k % 2 + 1} {SENTENCES[k // 2]}" for k in range(2 * n)]
    fig = plots.plot_label_matrix(simcse_label_matrix(n), ticks, title="标签矩阵 (2B x 2B)")
    ax = fig.axes[0]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a "Glyph ... missing from font(s)" warning fails the test
        fig.savefig(io.BytesIO(), format="png")
    texts = [*ax.get_xticklabels(), *ax.get_yticklabels(), ax.title]
    assert {t.get_text() for t in ax.get_yticklabels()} == set(ticks)
    for text in texts:
        path = font_manager.findfont(text.get_fontproperties())  # the file matplotlib draws this text with
        chinese = {ch for ch in text.get_text() if "\u4e00" <= ch <= "\u9fff"}
        assert chinese, text.get_text()
        assert chinese <= glyphs_of(path), f"{path} has no glyph for {sorted(chinese - glyphs_of(path))}"
        assert fonts.missing_glyphs(text.get_text(), text.get_fontproperties()) == []


def test_the_packaged_noto_sans_sc_comes_first_whatever_the_system_has():
    files = fonts.packaged_font_files()
    assert files and files[0].endswith("NotoSansSC-Regular.otf")  # a requirement of the course
    assert plots.CJK_FONT == "Noto Sans SC" == fonts.use_cjk_font()
    assert matplotlib.rcParams["font.sans-serif"][0] == "Noto Sans SC"
    assert fonts.font_file("Noto Sans SC") == files[0]
    assert set(fonts.PROBE_TEXT) <= glyphs_of(files[0])


def test_no_warnings_filter_hides_missing_glyphs(saved_rc):
    hidden = [f for f in warnings.filters if f[1] is not None and "missing" in f[1].pattern]
    assert not hidden, f"a warnings filter hides matplotlib's missing-glyph warning: {hidden}"
    matplotlib.rcParams["font.sans-serif"] = ["DejaVu Sans"]  # a font without Chinese: the warning must show
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fig = plots.plot_length_histogram(SENTENCES, title="句子长度")
        fig.savefig(io.BytesIO(), format="png")
    assert any("missing from font" in str(w.message) for w in caught)
    assert fonts.missing_glyphs("长度 ab", fig.axes[0].title.get_fontproperties()) == ["度", "长"]


def test_without_the_package_a_system_cjk_font_is_used(monkeypatch, saved_rc):
    monkeypatch.setattr(fonts, "PACKAGED_FONTS", (("no_such_font_package", "x.otf"),))
    assert fonts.packaged_font_files() == []

    class Entry:
        def __init__(self, name):
            self.name, self.fname = name, f"/fonts/{name}.ttf"

    monkeypatch.setattr(font_manager.fontManager, "ttflist", [Entry("DejaVu Sans"), Entry("SimHei"),
                                                              Entry("WenQuanYi Micro Hei")])
    assert fonts.find_cjk_font() == "WenQuanYi Micro Hei"  # earlier in CJK_FONTS than SimHei


def test_without_any_cjk_font_a_warning_says_how_to_get_one(monkeypatch, saved_rc):
    monkeypatch.setattr(fonts, "PACKAGED_FONTS", ())
    monkeypatch.setattr(fonts, "_register_system_cjk_files", lambda: None)
    monkeypatch.setattr(font_manager.fontManager, "ttflist", [])
    monkeypatch.setattr(fonts, "_warned", False)
    with pytest.warns(UserWarning, match="pylopdf-fonts-zh-cn.*fonts-noto-cjk"):
        assert fonts.use_cjk_font() is None
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert fonts.use_cjk_font() is None  # said once, not at every figure

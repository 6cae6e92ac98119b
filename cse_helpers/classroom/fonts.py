"""Chinese text in figures: one CJK font, registered with matplotlib in one place.

matplotlib ships no font with Chinese glyphs; without one, every Chinese character of a tick label
or a title is drawn as an empty box. :func:`use_cjk_font` (called when :mod:`cse_helpers.classroom.plots` is
imported) registers a CJK font and puts it first in matplotlib's sans-serif list. Where the font
comes from, the first one found wins:

1. **Noto Sans SC**, shipped on PyPI by ``pylopdf-fonts-zh-cn`` (SIL Open Font License 1.1), a
   requirement of the course: the same font on a laptop, in CI, in the executed notebooks and on
   Colab, whatever the operating system has;
2. a CJK font the system already has (Debian's ``fonts-noto-cjk``, SimHei or Microsoft YaHei on
   Windows, PingFang on macOS, ...: :data:`CJK_FONTS`).

When neither is there, :func:`use_cjk_font` warns once and says how to fix it; matplotlib's own
"Glyph ... missing from font(s)" warnings are left on, so a figure with boxes never goes unnoticed.
:func:`missing_glyphs` tells which characters of a text the font matplotlib picks cannot draw.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import warnings

import matplotlib
from matplotlib import font_manager

#: (Python package, font file in it) of the fonts the course installs from PyPI, most wanted first.
PACKAGED_FONTS = (("pylopdf_fonts_zh_cn", "NotoSansSC-Regular.otf"),)

#: Font families with Chinese glyphs that a system may have, most wanted first (Linux, macOS, Windows).
CJK_FONTS = ("Noto Sans SC", "Noto Sans CJK SC", "Source Han Sans SC", "Source Han Sans CN", "Noto Sans CJK JP",
             "Noto Sans CJK TC", "WenQuanYi Micro Hei", "WenQuanYi Zen Hei", "SimHei", "Microsoft YaHei",
             "PingFang SC", "Hiragino Sans GB", "Heiti SC", "STHeiti", "Songti SC", "AR PL UMing CN",
             "AR PL UKai CN", "Droid Sans Fallback", "Arial Unicode MS")
# Parts of font file names that mark a CJK font (to register files installed after matplotlib's cache was built).
_FONT_FILE_HINTS = ("cjk", "wqy", "wenquanyi", "simhei", "msyh", "pingfang", "sourcehan", "droidsansfallback",
                    "uming", "ukai", "hiragino", "heiti", "songti", "notosanssc")

#: Characters a chosen font must draw: the course's own examples (common simplified characters).
PROBE_TEXT = "蛋黄吃多了有什么坏处怎样才知道是生男孩还是女孩这种图片制作用软件呢今天气很好"

_registered: set[str] = set()
_warned = False


def packaged_font_files() -> list[str]:
    """The font files of :data:`PACKAGED_FONTS` that are installed (paths)."""
    importlib.invalidate_caches()  # a package pip-installed into this running process is found too
    found = []
    for package, filename in PACKAGED_FONTS:
        spec = importlib.util.find_spec(package)
        if spec is None or not spec.submodule_search_locations:
            continue
        for folder in spec.submodule_search_locations:
            path = os.path.join(folder, filename)
            if os.path.isfile(path):
                found.append(path)
                break
    return found


def register_font_file(path: str) -> str:
    """Add a font file to matplotlib's font list (once) and return its family name."""
    if path not in _registered:
        font_manager.fontManager.addfont(path)
        _registered.add(path)
    return font_manager.FontProperties(fname=path).get_name()


def _register_system_cjk_files() -> None:
    """Register the system's CJK font files that matplotlib's cached font list does not know yet."""
    known = {entry.fname for entry in font_manager.fontManager.ttflist}
    for path in font_manager.findSystemFonts():
        name = os.path.basename(path).lower().replace("-", "").replace("_", "")
        if path not in known and any(hint in name for hint in _FONT_FILE_HINTS):
            try:
                register_font_file(path)
            except (OSError, RuntimeError, ValueError):
                continue


def find_cjk_font(refresh: bool = False) -> str | None:
    """The family name of a font with Chinese glyphs that matplotlib can use, or None.

    The course's packaged font first (registered here); then a system font that matplotlib's font
    list knows. ``refresh`` also scans the system's font folders for CJK font files installed
    since matplotlib built its cache (e.g. by ``apt-get install fonts-noto-cjk`` in a running notebook).
    """
    for path in packaged_font_files():
        try:
            return register_font_file(path)
        except (OSError, RuntimeError, ValueError):
            continue
    if refresh:
        _register_system_cjk_files()
    available = {entry.name for entry in font_manager.fontManager.ttflist}
    return next((name for name in CJK_FONTS if name in available), None)


def font_file(family: str) -> str:
    """The file matplotlib draws ``family`` from (its own lookup, :func:`matplotlib.font_manager.findfont`)."""
    return str(font_manager.findfont(font_manager.FontProperties(family=[family]), fallback_to_default=False))


def charmap(path: str) -> set[int]:
    """The code points a font file has glyphs for (FreeType's character map, through matplotlib)."""
    from matplotlib.ft2font import FT2Font

    return set(FT2Font(str(path)).get_charmap())


def missing_glyphs(text: str, fontproperties=None) -> list[str]:
    """The characters of ``text`` (spaces aside) that the font matplotlib picks for ``fontproperties`` cannot draw.

    ``fontproperties`` is what a text artist uses (``label.get_fontproperties()``); None means the
    current default font. matplotlib's lookup (``findfont``) gives the file, its character map the glyphs.
    """
    properties = fontproperties if fontproperties is not None else font_manager.FontProperties()
    codes = charmap(font_manager.findfont(properties))
    return sorted({ch for ch in text if not ch.isspace() and ord(ch) not in codes})


def use_cjk_font(refresh: bool = False, warn: bool = True) -> str | None:
    """Make a CJK font matplotlib's first sans-serif font; return its family name (None: there is none).

    Checks that the font really draws :data:`PROBE_TEXT`. The minus sign is drawn as U+2212 only
    when the font has that glyph. Without a CJK font, with ``warn``, a warning says so (once) and how
    to get one (``cse_helpers.course.setup`` calls it after installing on Colab).
    """
    global _warned
    name = find_cjk_font(refresh) or (None if refresh else find_cjk_font(refresh=True))
    if name is not None and not set(PROBE_TEXT) <= {chr(c) for c in charmap(font_file(name))}:
        name = None  # a font named like a CJK one that lacks common characters is no use
    if name is None:
        if warn and not _warned:
            warnings.warn("No font with Chinese glyphs was found, so Chinese text in figures is drawn as boxes. "
                          "Install the course's requirements (pip install -r requirements.txt installs "
                          "pylopdf-fonts-zh-cn, the Noto Sans SC font) or a system CJK font "
                          "(Debian/Ubuntu: apt-get install fonts-noto-cjk), then restart the kernel.",
                          UserWarning, stacklevel=2)
            _warned = True
        return None
    rest = [family for family in matplotlib.rcParams["font.sans-serif"] if family != name]
    matplotlib.rcParams["font.sans-serif"] = [name] + rest  # the others stay as fallbacks for other glyphs
    matplotlib.rcParams["font.family"] = "sans-serif"
    matplotlib.rcParams["axes.unicode_minus"] = 0x2212 in charmap(font_file(name))
    return name

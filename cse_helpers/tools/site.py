"""The rendered course: a static HTML site of the executed notebooks, to read without running anything.

    python -m cse_helpers.tools.site [--executed notebooks/executed] [--out build/site]

``make course`` executes the notebooks (in quick mode) into ``notebooks/executed/``; this turns each
executed copy into a page with nbconvert, the Jupyter tool for it (its "lab" template: JupyterLab's
look; figures embedded as PNG, tables as HTML), renders the Markdown files of ``notebooks/`` (the
glossary) the same way, and writes ``index.html``, the syllabus: every notebook with the idea its own
title cell states. Links between notebooks (``02_esimcse.ipynb``) become links between pages.

A widget needs a running kernel, so on a page each widget shows what it showed when the notebook
ran: its texts, the values of its sliders and its last figure, with a note on how to use it live.
A loss playground also leaves its figure at the default knobs as a plain picture beside the widget
(marked :data:`STATIC_COPY`, see ``cse_helpers.classroom.widgets``): the page keeps it where the frozen widget
shows no figure of its own, and drops it as a duplicate where it does.
"""

from __future__ import annotations

import argparse
import base64
import glob
import html
import os
import re
import sys

from ..constants import REPO_ROOT

WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
WIDGET_STATE = "application/vnd.jupyter.widget-state+json"
LIVE_NOTE = ("An interactive widget: this is what it showed when the notebook ran. Run the notebook in "
             "JupyterLab (<code>make lab</code>) or on Colab to move its sliders.")
NOTEBOOK_DIR = os.path.join(REPO_ROOT, "notebooks")
#: The output metadata key of a widget's static picture (``cse_helpers.classroom.widgets.STATIC_COPY``).
STATIC_COPY = "cse_static_copy"
MATHJAX = "https://cdnjs.cloudflare.com/ajax/libs/mathjax/2.7.7/latest.js?config=TeX-AMS_CHTML-full,Safe"  # nbconvert's


# ------------------------------------------------------------------------------------------------
# Widgets: what they showed, as static HTML
# ------------------------------------------------------------------------------------------------

def _output_html(output: dict) -> str:
    """One output of an ``Output`` widget as HTML (figures as embedded PNG)."""
    data = output.get("data", {})
    if "image/png" in data:
        return f'<img alt="figure" src="data:image/png;base64,{"".join(data["image/png"]).strip()}">'
    if "image/svg+xml" in data:
        svg = base64.b64encode("".join(data["image/svg+xml"]).encode()).decode()
        return f'<img alt="figure" src="data:image/svg+xml;base64,{svg}">'
    if "text/html" in data:
        return "".join(data["text/html"])
    text = output.get("text") or "".join(data.get("text/plain", "")) or "\n".join(output.get("traceback", []))
    return f"<pre>{html.escape(''.join(text))}</pre>" if text else ""


def widget_html(model_id: str, state: dict) -> str:
    """The widget ``model_id`` as it was last shown, from the notebook's saved widget ``state``.

    Boxes show their children, HTML and labels their text, sliders and text boxes their value,
    buttons their label (disabled), ``Output`` widgets their outputs; other models show nothing.
    """
    model = state.get(model_id, {}).get("state", {})
    name = model.get("_model_name", "")
    children = [c.removeprefix("IPY_MODEL_") for c in model.get("children", [])]
    description = html.escape(model.get("description", ""))
    if name in ("VBoxModel", "BoxModel", "GridBoxModel"):
        return '<div class="cse-box">' + "".join(widget_html(c, state) for c in children) + "</div>"
    if name == "HBoxModel":
        return '<div class="cse-hbox">' + " ".join(widget_html(c, state) for c in children) + "</div>"
    if name in ("HTMLModel", "HTMLMathModel"):
        return f"<div>{model.get('value', '')}</div>"
    if name == "LabelModel":
        return f"<div>{html.escape(str(model.get('value', '')))}</div>"
    if name.endswith("SliderModel") or name in ("TextModel", "DropdownModel", "CheckboxModel"):
        value = model.get("value", "")
        if name == "FloatLogSliderModel":
            value = f"{value:.4g}"
        return f'<div class="cse-knob">{description}: <b>{html.escape(str(value))}</b></div>'
    if name == "ButtonModel":
        return f"<button disabled>{description}</button>"
    if name == "OutputModel":
        return "".join(_output_html(o) for o in model.get("outputs", []))
    return ""


def freeze_widgets(notebook) -> int:
    """Replace every widget output of ``notebook`` by a static copy (:func:`widget_html`); returns how many.

    A widget's static picture (an output marked :data:`STATIC_COPY`) stays where the frozen widgets of
    its cell show no figure, and is dropped where they show one (the same figure twice). The saved widget
    state is dropped afterwards, so the page loads no widget JavaScript.
    """
    import nbformat

    state = notebook.metadata.get("widgets", {}).get(WIDGET_STATE, {}).get("state", {})
    count = 0
    for cell in notebook.cells:
        shows_a_figure = False
        for i, output in enumerate(cell.get("outputs", [])):
            view = output.get("data", {}).get(WIDGET_VIEW)
            if view is None:
                continue
            body = widget_html(view["model_id"], state) if view["model_id"] in state else ""
            shows_a_figure = shows_a_figure or '<img alt="figure"' in body
            body = body or "<p>(the widget's state was not saved with the notebook)</p>"
            cell.outputs[i] = nbformat.v4.new_output(
                "display_data", data={"text/html": f'<div class="cse-widget"><p class="cse-note">{LIVE_NOTE}</p>'
                                                   f"{body}</div>"})
            count += 1
        if shows_a_figure:
            cell.outputs = [o for o in cell.get("outputs", []) if STATIC_COPY not in o.get("metadata", {})]
    notebook.metadata.pop("widgets", None)
    return count


# ------------------------------------------------------------------------------------------------
# Pages
# ------------------------------------------------------------------------------------------------

STYLE = """<style>
.cse-widget { border: 1px solid #ccc; border-radius: 4px; padding: 8px; margin: 4px 0; }
.cse-note { color: #666; font-style: italic; margin: 0 0 6px; }
.cse-hbox { display: flex; gap: 8px; align-items: center; }
.cse-site-nav { font-family: sans-serif; padding: 8px 16px; background: #f5f5f5; border-bottom: 1px solid #ddd; }
.cse-widget img { max-width: 100%; }
</style>"""


def page_name(source: str) -> str:
    """``02_esimcse.ipynb`` or ``GLOSSARY.md`` -> ``02_esimcse.html``, ``GLOSSARY.html``."""
    return os.path.splitext(os.path.basename(source))[0] + ".html"


def link_pages(page: str, sources: list[str]) -> str:
    """Point links to the course's notebooks and Markdown files (``href="GLOSSARY.md#x"``) at their pages."""
    names = {os.path.basename(s) for s in sources}

    def relink(match):
        target, anchor = match.group(2), match.group(3) or ""
        return f'{match.group(1)}{page_name(target)}{anchor}"' if target in names else match.group(0)

    return re.sub(r'(href=")([^"#/:]+\.(?:ipynb|md))(#[^"]*)?"', relink, page)


def nav_bar(title: str) -> str:
    return (f'<nav class="cse-site-nav"><a href="index.html">The course</a> &rsaquo; {html.escape(title)}</nav>')


def with_nav(page: str, title: str) -> str:
    """``page`` with the site's style in its head and a bar linking back to the index above its body."""
    page = page.replace("</head>", STYLE + "\n</head>", 1)
    return re.sub(r"(<body[^>]*>)", lambda m: m.group(1) + nav_bar(title), page, count=1)


def title_and_idea(notebook) -> tuple[str, str]:
    """The title (``# 1. SimCSE: ...``) and the idea: its "**The idea of this notebook:**" paragraph, else the first."""
    first = notebook.cells[0].source if notebook.cells and notebook.cells[0].cell_type == "markdown" else ""
    title = next((line[2:].strip() for line in first.splitlines() if line.startswith("# ")), "")
    idea = re.search(r"\*\*The idea of this notebook:\*\*(.*?)(?:\n\s*\n|$)", first, re.S)
    if idea:
        return title, " ".join(idea.group(1).split())
    paragraphs = [p for p in re.split(r"\n\s*\n", first) if p.strip() and not p.lstrip().startswith(("#", "[!["))]
    return title, " ".join(paragraphs[0].split()) if paragraphs else ""  # else its first paragraph of text


def failed_cell(notebook) -> str | None:
    """``"cell 8 (KeyboardInterrupt)"``: the first cell whose run ended in an error, or None."""
    for number, cell in enumerate(notebook.cells, 1):
        for output in cell.get("outputs", []):
            if output.get("output_type") == "error":
                return f"cell {number} ({output.get('ename', 'error')})"
    return None


def render_notebook(path: str, sources: list[str]) -> tuple[str, str, str, int]:
    """``(page HTML, title, idea, widgets frozen)`` of an executed notebook; a ValueError if one of its cells failed."""
    import nbformat
    from nbconvert import HTMLExporter

    notebook = nbformat.read(path, as_version=4)
    failed = failed_cell(notebook)
    if failed:
        raise ValueError(f"{path}: {failed} failed when the notebook ran, so its page would show the error; "
                         "run `make course` again (and fix what failed) first.")
    title, idea = title_and_idea(notebook)
    frozen = freeze_widgets(notebook)
    page, _ = HTMLExporter(template_name="lab").from_notebook_node(notebook, resources={"metadata": {"name": title}})
    return with_nav(link_pages(page, sources), title), title, idea, frozen


def render_markdown(path: str, sources: list[str]) -> tuple[str, str]:
    """``(page HTML, title)`` of a Markdown file, rendered as a one-cell notebook."""
    import nbformat
    from nbconvert import HTMLExporter

    with open(path, encoding="utf-8") as f:
        text = f.read()
    title = next((line[2:].strip() for line in text.splitlines() if line.startswith("# ")), os.path.basename(path))
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell(text)])
    page, _ = HTMLExporter(template_name="lab", exclude_input_prompt=True).from_notebook_node(
        notebook, resources={"metadata": {"name": title}})
    return with_nav(link_pages(page, sources), title), title


def index_page(entries: list[tuple[str, str, str]], extras: list[tuple[str, str]]) -> str:
    """The syllabus: ``entries`` (page, title, idea) in order, then ``extras`` (page, title)."""
    from nbconvert.filters import markdown2html

    rows = "\n".join(f'<tr><td><a href="{p}">{html.escape(t)}</a></td><td>{markdown2html(i)}</td></tr>'
                     for p, t, i in entries)
    more = "".join(f'<li><a href="{p}">{html.escape(t)}</a></li>' for p, t in extras)
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Contrastive sentence embeddings, hands on</title>
<style>body {{ font-family: sans-serif; max-width: 60em; margin: 2em auto; line-height: 1.5; }}
td {{ vertical-align: top; padding: 6px 12px; border-bottom: 1px solid #ddd; }}
td:first-child {{ width: 16em; }} td p {{ margin: 0; }}</style>
<script type="text/x-mathjax-config">
MathJax.Hub.Config({{tex2jax: {{inlineMath: [["$", "$"], ["\\\\(", "\\\\)"]], processEscapes: true}}}});
</script>
<script src="{MATHJAX}"></script>
</head><body>
<h1>Contrastive sentence embeddings, hands on: SimCSE, ESimCSE, DiffCSE</h1>
<p>A course in numbered notebooks on unsupervised contrastive learning of sentence embeddings, on Chinese
question matching. These pages are the notebooks as they ran in quick mode (a small model, the sample
data, a few training steps: numbers that show the code works, not results). Read them in order; to run
them yourself and move the sliders, open them in JupyterLab (<code>make lab</code>) or on Colab.</p>
<h2>Syllabus</h2>
<table>
{rows}
</table>
{f"<h2>Also</h2><ul>{more}</ul>" if more else ""}
</body></html>
"""


def build_site(out_dir: str, executed_dir: str, notebook_dir: str = NOTEBOOK_DIR) -> list[str]:
    """Write the site into ``out_dir``; returns the pages written (index first).

    Every notebook of ``notebook_dir`` must have an executed copy in ``executed_dir``, else a
    FileNotFoundError says which and how to make it; a copy in which a cell failed is a ValueError; a
    copy older than its notebook is built with a warning.
    """
    notebooks = sorted(glob.glob(os.path.join(notebook_dir, "*.ipynb")))
    markdown = [p for p in sorted(glob.glob(os.path.join(notebook_dir, "*.md")))
                if os.path.basename(p) != "README.md"]  # the README's syllabus is the index
    if not notebooks:
        raise FileNotFoundError(f"{notebook_dir}: no notebooks to render.")
    missing = [n for n in notebooks if not os.path.isfile(os.path.join(executed_dir, os.path.basename(n)))]
    if missing:
        raise FileNotFoundError(f"{executed_dir}: no executed copy of {', '.join(map(os.path.basename, missing))}; "
                                "run `make course` (it executes the notebooks into notebooks/executed/) first.")
    os.makedirs(out_dir, exist_ok=True)
    sources = notebooks + markdown
    entries, written = [], []
    for source in notebooks:
        executed = os.path.join(executed_dir, os.path.basename(source))
        if os.path.getmtime(executed) < os.path.getmtime(source):
            print(f"warning: {executed} is older than {source}: its page may not match the notebook "
                  "(run `make course` again)", file=sys.stderr)
        page, title, idea, frozen = render_notebook(executed, sources)
        written.append(_write(out_dir, page_name(source), page))
        entries.append((page_name(source), title, idea))
        print(f"{page_name(source)}: {title} ({frozen} widget(s) shown as they were)")
    extras = []
    for source in markdown:
        page, title = render_markdown(source, sources)
        written.append(_write(out_dir, page_name(source), page))
        extras.append((page_name(source), title))
        print(f"{page_name(source)}: {title}")
    written.insert(0, _write(out_dir, "index.html", index_page(entries, extras)))
    return written


def _write(out_dir: str, name: str, text: str) -> str:
    path = os.path.join(out_dir, name)
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m cse_helpers.tools.site", description=__doc__.split("\n")[0])
    parser.add_argument("--executed", default=os.path.join(NOTEBOOK_DIR, "executed"),
                        help="the executed notebooks (default: notebooks/executed, written by `make course`)")
    parser.add_argument("--out", default=os.path.join(REPO_ROOT, "build", "site"), help="the site's folder")
    args = parser.parse_args(argv)
    try:
        pages = build_site(args.out, args.executed)
    except (FileNotFoundError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(f"{len(pages)} pages in {args.out}; open {os.path.join(args.out, 'index.html')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

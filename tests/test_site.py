"""cse_helpers.tools.site: the rendered course (pages from executed notebooks, widgets frozen, links between pages).

The site itself is opened in a browser by tests/test_browser.py (``make test-browser``); these tests
check how it is built, on small notebooks made here.
"""

import base64
import os

import nbformat
import pytest

from cse_helpers.tools import site

PNG = base64.b64encode(bytes.fromhex(  # a 1x1 PNG
    "89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c4890000000d49444154789c6360f8cf"
    "c0f01f0005000201e2273a9b0000000049454e44ae426082")).decode()


def widget_notebook() -> nbformat.NotebookNode:
    """A notebook with one displayed widget: a box with a title, a slider, a button and an output with a figure."""
    state = {
        "box": {"state": {"_model_name": "VBoxModel", "children": [
            "IPY_MODEL_title", "IPY_MODEL_knob", "IPY_MODEL_button", "IPY_MODEL_out"]}},
        "title": {"state": {"_model_name": "HTMLModel", "value": "<b>Loss playground</b>"}},
        "knob": {"state": {"_model_name": "FloatLogSliderModel", "description": "temperature τ", "value": 0.05}},
        "button": {"state": {"_model_name": "ButtonModel", "description": "train and overlay"}},
        "out": {"state": {"_model_name": "OutputModel", "outputs": [
            {"output_type": "display_data", "data": {"image/png": PNG, "text/plain": "<Figure>"}, "metadata": {}}]}},
    }
    view = nbformat.v4.new_output("display_data", data={
        site.WIDGET_VIEW: {"model_id": "box", "version_major": 2, "version_minor": 0}, "text/plain": "VBox(...)"})
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("playground", outputs=[view])])
    notebook.metadata["widgets"] = {site.WIDGET_STATE: {"state": state, "version_major": 2, "version_minor": 0}}
    return notebook


def test_a_widget_is_shown_as_it_was_when_the_notebook_ran():
    notebook = widget_notebook()
    assert site.freeze_widgets(notebook) == 1
    output = notebook.cells[0].outputs[0]
    assert set(output["data"]) == {"text/html"} and "widgets" not in notebook.metadata
    shown = output["data"]["text/html"]
    for part in (site.LIVE_NOTE, "<b>Loss playground</b>", "temperature τ: <b>0.05</b>",
                 "<button disabled>train and overlay</button>",
                 f'<img alt="figure" src="data:image/png;base64,{PNG}">'):
        assert part in shown


def test_a_widget_without_saved_state_says_so():
    notebook = widget_notebook()
    notebook.metadata.pop("widgets")
    site.freeze_widgets(notebook)
    assert "the widget's state was not saved" in notebook.cells[0].outputs[0]["data"]["text/html"]


STATIC_PNG = base64.b64encode(bytes.fromhex(  # another 1x1 PNG: the playground's static picture
    "89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c4890000000d49444154789c63f8cfc0f01f00050001ff"
    "89993d1d0000000049454e44ae426082")).decode()


def with_static_picture(notebook):
    """``notebook`` whose widget cell also holds the playground's static picture (as widgets.LossPlayground leaves)."""
    notebook.cells[0].outputs.append(nbformat.v4.new_output(
        "display_data", data={"image/png": STATIC_PNG, "text/plain": "<the figure>"},
        metadata={site.STATIC_COPY: "LossPlayground"}))
    return notebook


def test_the_static_picture_marker_is_the_one_the_playground_writes():
    from cse_helpers.classroom import widgets

    assert site.STATIC_COPY == widgets.STATIC_COPY


def test_a_playgrounds_static_picture_is_not_shown_twice_beside_its_frozen_figure():
    notebook = with_static_picture(widget_notebook())
    site.freeze_widgets(notebook)
    outputs = notebook.cells[0].outputs
    assert len(outputs) == 1 and f"base64,{PNG}" in outputs[0]["data"]["text/html"]  # the widget's own figure


def test_a_playgrounds_static_picture_is_the_page_figure_when_the_widget_state_is_lost():
    from nbconvert import HTMLExporter

    notebook = with_static_picture(widget_notebook())
    notebook.metadata.pop("widgets")
    site.freeze_widgets(notebook)
    assert [set(o["data"]) for o in notebook.cells[0].outputs] == [{"text/html"}, {"image/png", "text/plain"}]
    page, _ = HTMLExporter(template_name="lab").from_notebook_node(notebook)
    assert f"data:image/png;base64,{STATIC_PNG}" in page and "the widget's state was not saved" in page


def test_links_to_the_course_notebooks_and_markdown_lead_to_their_pages():
    sources = ["notebooks/02_esimcse.ipynb", "notebooks/GLOSSARY.md"]
    page = ('<a href="02_esimcse.ipynb">next</a> <a href="GLOSSARY.md#InfoNCE">term</a> '
            '<a href="../data/README.md">data</a> <a href="https://example.org/x.ipynb">other</a> '
            '<a href="07_missing.ipynb">missing</a>')
    assert site.link_pages(page, sources) == (
        '<a href="02_esimcse.html">next</a> <a href="GLOSSARY.html#InfoNCE">term</a> '
        '<a href="../data/README.md">data</a> <a href="https://example.org/x.ipynb">other</a> '
        '<a href="07_missing.ipynb">missing</a>')


def make_course(folder, executed=True):
    """Two small notebooks (and their executed copies) and a glossary, like notebooks/."""
    os.makedirs(folder / "executed")
    for number, (title, idea) in enumerate([("The task", "text *matching*, with a cosine."),
                                            ("SimCSE", "dropout is the augmentation.")]):
        name = f"0{number}_{title.split()[-1].lower()}.ipynb"
        notebook = nbformat.v4.new_notebook(cells=[
            nbformat.v4.new_markdown_cell(f"# {number}. {title}\n\n**The idea of this notebook:** {idea}\n\n"
                                          "See the [glossary](GLOSSARY.md)."),
            nbformat.v4.new_code_cell("figure")])
        nbformat.write(notebook, folder / name)
        notebook.cells[1].outputs = [nbformat.v4.new_output("display_data", data={"image/png": PNG})]
        if executed:
            nbformat.write(notebook, folder / "executed" / name)
    (folder / "GLOSSARY.md").write_text("# Glossary\n\n## InfoNCE\n\nThe loss.\n", encoding="utf-8")
    (folder / "README.md").write_text("# The notebooks\n", encoding="utf-8")


def test_build_site_writes_an_index_with_the_syllabus_and_one_page_per_notebook(tmp_path):
    make_course(tmp_path / "notebooks")
    pages = site.build_site(str(tmp_path / "site"), str(tmp_path / "notebooks" / "executed"),
                            str(tmp_path / "notebooks"))
    assert [os.path.basename(p) for p in pages] == ["index.html", "00_task.html", "01_simcse.html", "GLOSSARY.html"]
    index = (tmp_path / "site" / "index.html").read_text(encoding="utf-8")
    assert index.index('href="00_task.html">0. The task<') < index.index('href="01_simcse.html">1. SimCSE<')
    assert "text <em>matching</em>, with a cosine." in index and 'href="GLOSSARY.html">Glossary<' in index
    page = (tmp_path / "site" / "01_simcse.html").read_text(encoding="utf-8")
    assert 'href="GLOSSARY.html"' in page and 'href="index.html"' in page and f"data:image/png;base64,{PNG}" in page


def test_build_site_says_which_executed_copy_is_missing(tmp_path):
    make_course(tmp_path / "notebooks", executed=False)
    with pytest.raises(FileNotFoundError,
                       match=r"no executed copy of 00_task.ipynb, 01_simcse.ipynb; run `make course`"):
        site.build_site(str(tmp_path / "site"), str(tmp_path / "notebooks" / "executed"), str(tmp_path / "notebooks"))
    assert not (tmp_path / "site").exists()


def test_build_site_refuses_a_notebook_whose_run_failed(tmp_path):
    make_course(tmp_path / "notebooks")
    executed = tmp_path / "notebooks" / "executed" / "01_simcse.ipynb"
    notebook = nbformat.read(executed, as_version=4)
    notebook.cells[1].outputs = [nbformat.v4.new_output("error", ename="KeyboardInterrupt", evalue="",
                                                        traceback=["KeyboardInterrupt"])]
    nbformat.write(notebook, executed)
    with pytest.raises(ValueError, match=r"01_simcse.ipynb: cell 2 \(KeyboardInterrupt\) failed when the notebook ran"):
        site.build_site(str(tmp_path / "site"), str(tmp_path / "notebooks" / "executed"), str(tmp_path / "notebooks"))

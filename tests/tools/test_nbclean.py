"""dcnn_helpers.tools.nbclean: volatile metadata and stateless widget outputs are removed, nothing else."""

import json

from dcnn_helpers.tools import nbclean


def _widget(text):
    return {"output_type": "display_data", "metadata": {},
            "data": {nbclean.WIDGET_VIEW: {"model_id": "abc", "version_major": 2, "version_minor": 0},
                     "text/plain": text}}


def _notebook():
    printed = {"output_type": "stream", "name": "stdout", "text": "42\n"}
    return {
        "nbformat": 4, "nbformat_minor": 5,
        "metadata": {"kernelspec": {"name": "python3"}, "widgets": {"state": {}}},
        "cells": [
            {"cell_type": "markdown", "id": "a", "metadata": {"collapsed": False}, "source": "# Title"},
            {"cell_type": "code", "id": "b", "execution_count": 1, "source": "train()",
             "metadata": {"execution": {"iopub.execute_input": "2026-11-23T20:00:00Z"}, "tags": ["keep"]},
             "outputs": [_widget("epochs:   0%|          | 0/3 [00:00<?, ?it/s]"), printed]},
            {"cell_type": "code", "id": "c", "execution_count": 2, "metadata": {"scrolled": True}, "source": "x",
             "outputs": [_widget("interactive(children=(IntSlider(value=3, description='k'),))")]},
        ],
    }


def test_clean_removes_volatile_metadata_and_widget_outputs_only(tmp_path):
    path = tmp_path / "nb.ipynb"
    path.write_text(json.dumps(_notebook()))
    assert len(nbclean.volatile_metadata(_notebook())) == 6
    assert nbclean.clean(path)
    nb = json.loads(path.read_text())
    assert nbclean.volatile_metadata(nb) == []
    assert nb["metadata"] == {"kernelspec": {"name": "python3"}}
    markdown, train, explorer = nb["cells"]
    assert markdown["metadata"] == {} and markdown["source"] == "# Title"
    assert train["metadata"] == {"tags": ["keep"]} and train["execution_count"] == 1
    assert train["outputs"] == [{"output_type": "stream", "name": "stdout", "text": "42\n"}], "the bar goes"
    assert explorer["outputs"][0]["data"] == {"text/plain": nbclean.WIDGET_NOTE}
    assert not nbclean.clean(path), "a clean notebook is left untouched"


def test_command_line_needs_a_notebook(capsys):
    assert nbclean.main([]) == 2
    assert "usage" in capsys.readouterr().err

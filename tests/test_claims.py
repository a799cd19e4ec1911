"""The claims ledger: every notebook's claims table follows the ledger format, and CLAIMS.md is up to date."""

import json
from pathlib import Path

import pytest

from dcnn_helpers.tools import claims

NOTEBOOKS = sorted(claims.NOTEBOOK_DIR.glob("[0-9][0-9]_*.ipynb"))
HEADER = "| claim | source | paper states | measured here | status |\n| --- | --- | --- | --- | --- |\n"


def _notebook(tmp_path: Path, *cells: dict, name: str = "09_test.ipynb") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps({"cells": list(cells), "metadata": {}, "nbformat": 4, "nbformat_minor": 5}))
    return path


def _markdown(text: str) -> dict:
    return {"cell_type": "markdown", "metadata": {}, "source": text}


def _code_showing(markdown: str) -> dict:
    return {"cell_type": "code", "metadata": {}, "source": "Markdown(table)", "execution_count": 1,
            "outputs": [{"output_type": "execute_result", "execution_count": 1, "metadata": {},
                         "data": {"text/markdown": markdown, "text/plain": "<Markdown>"}}]}


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_every_notebook_has_a_claims_table_in_the_ledger_format(path):
    found = claims.notebook_claims(path)  # raises LedgerError naming the notebook and what is wrong
    assert found and all(c.notebook == path.name for c in found)


def test_claims_md_is_up_to_date():
    collected, problems = claims.collect()
    assert claims.LEDGER.is_file(), "CLAIMS.md is missing: run python -m dcnn_helpers.tools.claims"
    assert claims.LEDGER.read_text(encoding="utf-8") == claims.render(collected, problems=problems), (
        "CLAIMS.md is out of date: run python -m dcnn_helpers.tools.claims")


def test_table_from_a_code_output_or_a_markdown_cell(tmp_path):
    row = "| A claim | Someone 2020, Thm 1 | 3 | 3 | reproduced |\n"
    from_code = _notebook(tmp_path, _markdown(f"# 09 · Test\n\n{claims.HEADING}"), _code_showing(HEADER + row),
                          _markdown("## Exercises\n| not | a claims table |\n| --- | --- |\n"))
    from_markdown = _notebook(tmp_path, _markdown(f"{claims.HEADING}\nThe table:\n\n{HEADER}{row}"),
                              name="10_test.ipynb")
    for path in (from_code, from_markdown):
        (claim,) = claims.notebook_claims(path)
        assert (claim.claim, claim.source, claim.paper, claim.measured, claim.status) == (
            "A claim", "Someone 2020, Thm 1", "3", "3", "reproduced")
    text = claims.render(claims.collect([from_code])[0], [from_code])
    assert "## [09 · Test](notebooks/09_test.ipynb)" in text and "1 claims: 1 reproduced, 0 measured" in text


def test_escaped_bars_stay_inside_a_cell(tmp_path):
    row = "| norm $\\|x\\|$ | computed here | 1 | 1 | stated only |\n"
    (claim,) = claims.notebook_claims(_notebook(tmp_path, _markdown(claims.HEADING), _code_showing(HEADER + row)))
    assert claim.claim == "norm $\\|x\\|$" and claim.status == "stated only"


@pytest.mark.parametrize("cells, message", [
    ([_markdown("## Something else")], "no heading"),
    ([_markdown(claims.HEADING)], "expected one markdown table"),
    ([_markdown(claims.HEADING),
      _code_showing("| claim | source | measured here |\n| --- | --- | --- |\n| a | b | c |\n")], "has columns"),
    ([_markdown(claims.HEADING), _code_showing(HEADER + "| a | b | c | d | proven |\n")], "status 'proven'"),
    ([_markdown(claims.HEADING), _code_showing(HEADER + "| a | b | c | d |\n")], "row 1 of the claims table has 4"),
    ([_markdown(claims.HEADING), _code_showing(HEADER)], "at least one row"),
])
def test_malformed_tables_are_refused_naming_the_notebook(tmp_path, cells, message):
    with pytest.raises(claims.LedgerError, match=message) as error:
        claims.notebook_claims(_notebook(tmp_path, *cells))
    assert str(error.value).startswith("09_test.ipynb: ")


def test_problems_are_reported_in_the_ledger_and_by_the_exit_status(tmp_path, monkeypatch, capsys):
    good = _notebook(tmp_path, _markdown(claims.HEADING), _code_showing(HEADER + "| a | b | c | d | stated only |\n"))
    bad = _notebook(tmp_path, _markdown("# 10 · Bad"), name="10_bad.ipynb")
    collected, problems = claims.collect([good, bad])
    assert len(collected) == 1 and problems == [f"10_bad.ipynb: no heading {claims.HEADING!r}; every notebook ends "
                                                "with its claims table"]
    assert "Not in the ledger format yet: no heading" in claims.render(collected, [good, bad], problems)
    monkeypatch.setattr(claims, "NOTEBOOK_DIR", tmp_path)
    monkeypatch.setattr(claims, "LEDGER", tmp_path / "CLAIMS.md")
    assert claims.main([]) == 1  # written, but a notebook is not in the format
    assert "10_bad.ipynb" in capsys.readouterr().err and (tmp_path / "CLAIMS.md").is_file()
    bad.unlink()
    assert claims.main(["--check"]) == 1  # the file still lists the removed notebook
    assert claims.main([]) == 0 and claims.main(["--check"]) == 0

"""Release metadata: one version in pyproject.toml and CITATION.cff, a changelog entry for it, named licences."""

import re

from packaging.version import Version

from dcnn_helpers import config

ROOT = config.REPO_ROOT


def _pyproject_version() -> str:
    match = re.search(r'^version = "([^"]+)"$', (ROOT / "pyproject.toml").read_text(encoding="utf-8"), re.M)
    assert match, "pyproject.toml has no static version"
    return match.group(1)


def test_version_is_semantic_and_citation_agrees():
    version = _pyproject_version()
    assert re.fullmatch(r"\d+\.\d+\.\d+", version) and str(Version(version)) == version
    citation = (ROOT / "CITATION.cff").read_text(encoding="utf-8")
    assert re.search(r"^cff-version: 1\.2\.0$", citation, re.M)
    assert re.findall(r"^version: (\S+)$", citation, re.M) == [version], "set the same version in CITATION.cff"


def test_changelog_has_a_section_for_the_version():
    changelog = (ROOT / "CHANGELOG.md").read_text(encoding="utf-8")
    assert re.search(rf"^## \[{re.escape(_pyproject_version())}\]", changelog, re.M)


def test_code_and_content_licences_are_named():
    assert (ROOT / "LICENSE").read_text(encoding="utf-8").startswith("MIT License")
    content = (ROOT / "LICENSE-CONTENT").read_text(encoding="utf-8")
    assert "Creative Commons Attribution 4.0 International" in content and "CC BY 4.0" in content
    citation = (ROOT / "CITATION.cff").read_text(encoding="utf-8")
    assert "  - MIT\n" in citation and "  - CC-BY-4.0\n" in citation
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "LICENSE-CONTENT" in readme and "CC BY 4.0" in readme


def test_bug_report_template_asks_for_envcheck_output():
    template = (ROOT / ".github" / "ISSUE_TEMPLATE" / "bug_report.yml").read_text(encoding="utf-8")
    assert "make envcheck" in template and re.search(r"id: envcheck\n(.*\n)*?\s+required: true", template)


def test_readme_binder_badge_follows_the_repository():
    """The badge names pyproject.toml's [project.urls] Repository, or OWNER/REPO while that is not set."""
    match = re.search(r'^Repository = "https://github\.com/([^/"]+/[^/"]+?)(?:\.git)?/?"$',
                      (ROOT / "pyproject.toml").read_text(encoding="utf-8"), re.M)
    expected = match.group(1) if match else "OWNER/REPO"
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    badges = re.findall(r"\(https://mybinder\.org/v2/gh/([^/]+/[^/]+)/HEAD\?urlpath=lab/tree/notebooks/", readme)
    assert badges == [expected]

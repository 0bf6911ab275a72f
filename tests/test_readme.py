"""The README's commands are the ones CI and users run."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def readme_commands() -> list[str]:
    quick_start = (ROOT / "README.md").read_text().split("## Quick start", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```bash\n(.+?)\n```", quick_start)


def test_quick_start_has_the_demos_and_the_test_command():
    run, segmentation, classification, strategies, test = readme_commands()
    assert run.endswith("snakemake --cores 2 --resources gpu=1")
    assert segmentation == "snakemake --configfile config/segmentation.yaml --cores 2 --resources gpu=1"
    assert classification == "snakemake --configfile config/classification.yaml --cores 2 --resources gpu=1"
    assert strategies == "snakemake --configfile config/strategies.yaml --cores 2 --resources gpu=1"
    assert "pytest" in test


def test_ci_runs_the_readme_test_command():
    *_, test = readme_commands()
    ci_lines = [line for line in (ROOT / ".ci" / "run").read_text().splitlines() if line and not line.startswith("#")]
    assert test in ci_lines


def test_the_readme_is_a_manual_of_at_most_400_lines():
    """A user's manual (issue 24): details, measurements and history live in docs/."""
    assert len((ROOT / "README.md").read_text().splitlines()) <= 400


def test_every_link_into_docs_reaches_its_file_and_heading():
    text = (ROOT / "README.md").read_text() + (ROOT / "config" / "README.md").read_text()
    links = re.findall(r"\]\(((?:docs/)[^)#\s]+)(?:#([^)\s]+))?\)", text)
    assert len(links) >= 10
    for path, anchor in links:
        assert (ROOT / path).is_file(), path
        if anchor:
            headings = re.findall(r"(?m)^#+ (.+)$", (ROOT / path).read_text())
            slugs = {re.sub(r"[^a-z0-9 -]", "", h.lower()).replace(" ", "-") for h in headings}
            assert anchor in slugs, f"{path}#{anchor}"

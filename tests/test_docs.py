"""The README and docs/ stay true to the tree: the README stays a short user's guide, every
relative link (and its #anchor) resolves, every `python -m X` names an importable module and
every repository path written in backticks exists. Reads files only; runs no command."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
PAGES = sorted([README, *(ROOT / "docs").glob("*.md")], key=lambda p: p.name)
README_MAX_LINES = 320

FENCE = re.compile(r"^```.*?^```", re.MULTILINE | re.DOTALL)
INDENTED_CODE = re.compile(r"^(?: {4}|\t).*$", re.MULTILINE)
INLINE_CODE = re.compile(r"`[^`\n]*`")
LINK = re.compile(r"!?\[[^\]\n]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
MODULE = re.compile(r"\bpython3? -m ([A-Za-z_][\w.]*)")
REPO_PATH = re.compile(
    r"`((?:engine|bridge|ui|benchmarks|tests|presets|docs|\.ci)/[\w./*-]*)[^`]*`"
)
HEADING = re.compile(r"^#{1,6}\s+(.+?)\s*#*\s*$", re.MULTILINE)


def _ids(pages: list[Path]) -> list[str]:
    return [str(p.relative_to(ROOT)) for p in pages]


def prose(text: str) -> str:
    """The Markdown with code blocks and inline code removed (links there are not links)."""
    return INLINE_CODE.sub("", INDENTED_CODE.sub("", FENCE.sub("", text)))


def anchors(page: Path) -> set[str]:
    """GitHub's heading ids: lower case, punctuation dropped, spaces to '-', repeats get -1 …"""
    seen: dict[str, int] = {}
    out = set()
    for heading in HEADING.findall(FENCE.sub("", page.read_text(encoding="utf-8"))):
        slug = re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        out.add(slug if count == 0 else f"{slug}-{count}")
    return out


def test_the_readme_is_a_short_guide() -> None:
    lines = README.read_text(encoding="utf-8").count("\n")
    assert lines <= README_MAX_LINES, f"README.md has {lines} lines; move depth into docs/"


def test_the_slug_rule_matches_github() -> None:
    page = ROOT / "docs" / "algorithms.md"
    assert "22-selection-fitness-transition-viterbi" in anchors(page)
    assert "4-our-additions-to-the-search" in anchors(page)


@pytest.mark.parametrize("page", PAGES, ids=_ids(PAGES))
def test_every_relative_link_resolves(page: Path) -> None:
    broken = []
    for target in LINK.findall(prose(page.read_text(encoding="utf-8"))):
        if re.match(r"[a-z][a-z0-9+.-]*:", target):  # http:, https:, mailto: …
            continue
        path_part, _, anchor = target.partition("#")
        linked = (page.parent / path_part).resolve() if path_part else page
        if not linked.exists():
            broken.append(f"{target}: no such file")
        elif anchor and linked.suffix == ".md" and anchor not in anchors(linked):
            broken.append(f"{target}: no heading #{anchor} in {linked.name}")
    assert not broken, f"{page.name}: " + "; ".join(broken)


@pytest.mark.parametrize("page", PAGES, ids=_ids(PAGES))
def test_every_python_m_module_exists(page: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(ROOT))  # `python -m tests.x` runs from the checkout
    missing = []
    for name in sorted(set(MODULE.findall(page.read_text(encoding="utf-8")))):
        name = name.rstrip(".")
        try:
            found = importlib.util.find_spec(name) is not None
        except ModuleNotFoundError:  # a parent package is missing
            found = False
        if not found:
            missing.append(name)
    assert not missing, f"{page.name} names modules that do not exist: {missing}"


@pytest.mark.parametrize("page", PAGES, ids=_ids(PAGES))
def test_every_repository_path_exists(page: Path) -> None:
    missing = []
    for written in sorted(set(REPO_PATH.findall(page.read_text(encoding="utf-8")))):
        path = written.rstrip(".")
        if not (any(ROOT.glob(path)) if "*" in path else (ROOT / path).exists()):
            missing.append(path)
    assert not missing, f"{page.name} names paths that do not exist: {missing}"

"""The README and the results log link to files and sections that exist: the results moved
between them once, and a link that points nowhere is a claim a reader cannot check."""

import re
import sys
from functools import lru_cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ("README.md", "results/README.md")
LINK = re.compile(r"\]\(([^)\s]+)\)")


def slug(heading):
    """GitHub's anchor of a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


@lru_cache(maxsize=None)
def anchors(path):
    """The headings' anchors of a markdown file, read once however many links point into it."""
    in_code, found = False, set()
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("```"):
            in_code = not in_code
        elif not in_code and line.startswith("#"):
            found.add(slug(line.lstrip("#")))
    return found


def links(doc):
    for number, line in enumerate((ROOT / doc).read_text(encoding="utf-8").splitlines(), 1):
        for target in LINK.findall(line):
            if not re.match(r"[a-z]+:", target):  # http(s), mailto: not checked here
                yield number, target


def test_slug_follows_github():
    assert slug(" Cold start (amazon-sports-cold: 1,836 items never in training)") == \
        "cold-start-amazon-sports-cold-1836-items-never-in-training"
    assert slug("Scaling out with Ray: `run_hyper.py`") == "scaling-out-with-ray-run_hyperpy"


@pytest.mark.parametrize("doc", DOCS)
def test_relative_links_resolve(doc):
    broken = []
    for number, target in links(doc):
        name, _, anchor = target.partition("#")
        path = (ROOT / doc).parent / name if name else ROOT / doc
        if not path.exists():
            broken.append(f"{doc}:{number}: {target} (no such file)")
        elif anchor and path.suffix == ".md" and anchor not in anchors(path):
            broken.append(f"{doc}:{number}: {target} (no such heading in {name or doc})")
    assert not broken, "\n".join(broken)


def test_a_broken_link_is_found(tmp_path, monkeypatch):
    (tmp_path / "results").mkdir()
    (tmp_path / "README.md").write_text("# Top\n[ok](#top) [gone](results/none.png) "
                                        "[lost](results/README.md#nowhere)\n", encoding="utf-8")
    (tmp_path / "results" / "README.md").write_text("# Log\n[up](../README.md#top)\n",
                                                    encoding="utf-8")
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)
    with pytest.raises(AssertionError) as failure:
        test_relative_links_resolve("README.md")
    assert "none.png (no such file)" in str(failure.value)
    assert "README.md#nowhere (no such heading" in str(failure.value)
    assert "#top" not in str(failure.value)
    test_relative_links_resolve("results/README.md")

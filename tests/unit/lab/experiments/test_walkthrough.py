"""docs/demos/ is made from the case table: the checked-in pages are exactly what
`make docs-demos` writes, every case and group has its page, and what the pages name exists."""

import re

from lab.experiments import cases, walkthrough
from lab.host.paths import REPO_ROOT

DOCS = walkthrough.DOCS
# A repo path in the docs; not a GitHub reference such as istio/istio#13705.
REPO_PATH = re.compile(r"(?<![\w./-])((?:charts|istio|loadtests|scripts|chaos|services|lab|tests|docs)/[\w./-]*[\w/])"
                       r"(?![\w./#-])")


def test_the_checked_in_pages_are_the_generated_ones():
    stale = [str(path.relative_to(REPO_ROOT)) for path in walkthrough.stale()]
    assert not stale, f"run `make docs-demos`: {stale}"


def test_every_case_and_group_has_a_page_and_the_index_links_them():
    index = (DOCS / "README.md").read_text()
    for name in [*cases.table().names, *cases.table().groups]:
        assert (DOCS / f"{name}.md").is_file(), name
        assert f"]({name}.md)" in index, name


def test_a_page_shows_the_cases_data_and_facts():
    page = walkthrough.case_page(cases.by_name("chaos-redis-2-retries"), cases.table())
    assert "istio/scenarios/retries.yaml" in page and "make demo-chaos-redis-2-retries" in page
    assert "make demo DEMO_CASES=chaos-redis-2-retries" in page
    assert "- under chaos, 2 replicas with retries and Redis: zero failed requests: `failed_requests == 0`" in page
    assert "availability (non-5xx responses at the entry point) >= 0.99" in page


def test_what_the_demo_pages_name_exists():
    makefile = (REPO_ROOT / "Makefile").read_text()
    targets = set(re.findall(r"^([a-zA-Z0-9_-]+):", makefile, flags=re.MULTILINE))
    stems = set(cases.table().names) | set(cases.table().groups) | {"all"}
    for doc in sorted(DOCS.glob("*.md")):
        text = doc.read_text()
        for target in re.findall(r"\bmake ([a-z][a-zA-Z0-9-]*)", text):
            if target.endswith("-") or target != target.lower():
                continue  # a placeholder such as demo-CASE
            stem = target.removeprefix("demo-").removesuffix("-clean")
            assert target in targets or (target.startswith("demo-") and stem in stems), f"{doc.name}: make {target}"
        for path in REPO_PATH.findall(text):
            assert (REPO_ROOT / path).exists(), f"{doc.name}: {path} does not exist"
        for link in re.findall(r"\]\(([^)#:]+)\)", text):
            assert (doc.parent / link).exists(), f"{doc.name}: broken link {link}"


def test_a_page_left_by_an_earlier_table_is_stale(tmp_path, monkeypatch):
    monkeypatch.setattr(walkthrough, "DOCS", tmp_path)
    assert {p.name for p in walkthrough.write()} >= {"README.md", "redis-2.md", "istio.md"}
    (tmp_path / "gone-case.md").write_text(f"# gone\n\n{walkthrough.STAMP}\n")
    (tmp_path / "by-hand.md").write_text("# written by a person\n")
    assert [p.name for p in walkthrough.stale()] == ["gone-case.md"]
    walkthrough.write()
    assert not (tmp_path / "gone-case.md").exists() and (tmp_path / "by-hand.md").exists()

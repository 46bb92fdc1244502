"""The scorer digest: a hash of what judges a task's items, so a study finds verdicts of an older scorer."""

from __future__ import annotations

import pytest

from langmix import tasks
from langmix.tasks import base


@pytest.fixture(autouse=True)
def fresh_digest():
    """Each test computes digests anew, and leaves none computed from its patched sources behind."""
    base.scorer_digest.cache_clear()
    yield
    base.scorer_digest.cache_clear()


def _patch_source(monkeypatch, changed: str) -> None:
    real = base._module_source
    monkeypatch.setattr(base, "_module_source", lambda m: real(m) + (b"\n# changed\n" if m == changed else b""))


def test_the_digest_is_stable_and_names_what_went_into_it():
    first = tasks.scorer_digest("math")
    base.scorer_digest.cache_clear()
    again = tasks.scorer_digest("math")
    assert first == again and len(first.digest) == 16 and int(first.digest, 16) >= 0
    modules = [p.split()[0] for p in first.parts if " sha256:" in p]
    assert modules == sorted({*tasks.SCORER_MODULES, "langmix.tasks.math"})
    assert any(p.startswith("lingua-language-detector==") for p in first.parts)
    assert first.record() == {"task": "math", "digest": first.digest, "parts": list(first.parts)}
    assert tasks.scorer_digest("api").digest != first.digest  # another task's scorer


@pytest.mark.parametrize("module", [*base.SCORER_MODULES, "langmix.tasks.math"])
def test_a_change_to_any_scoring_module_changes_the_digest(monkeypatch, module):
    before = tasks.scorer_digest("math").digest
    base.scorer_digest.cache_clear()
    _patch_source(monkeypatch, module)
    after = tasks.scorer_digest("math")
    assert after.digest != before
    assert tasks.scorer_digest("api").digest != after.digest


def test_a_module_the_task_does_not_use_leaves_it_alone(monkeypatch):
    before = tasks.scorer_digest("api").digest
    base.scorer_digest.cache_clear()
    _patch_source(monkeypatch, "langmix.tasks.math")  # math's own module: not api's scorer
    assert tasks.scorer_digest("api").digest == before
    assert tasks.scorer_digest("math").digest != before


def test_a_scoring_library_version_changes_the_digest(monkeypatch):
    before = tasks.scorer_digest("math")
    base.scorer_digest.cache_clear()
    real = base._library_version
    monkeypatch.setattr(base, "_library_version", lambda lib: "0.0-other" if lib.startswith("lingua") else real(lib))
    after = tasks.scorer_digest("math")
    assert after.digest != before.digest and "lingua-language-detector==0.0-other" in after.parts


def test_a_task_may_declare_the_modules_its_scorer_depends_on(monkeypatch):
    class Declared(base.Task):
        name, headline_metric = "declared", "accuracy"
        scorer_modules = ("langmix.evaluate.math",)
        scorer_libraries = ()

    monkeypatch.setitem(base._REGISTRY, "declared", Declared())
    digest = tasks.scorer_digest("declared")
    assert [p.split()[0] for p in digest.parts[:-1]] == ["langmix.evaluate.math", __name__]  # and its own module
    assert len(digest.parts) == 3 and digest.parts[-1].startswith("unicodedata==")
    base.scorer_digest.cache_clear()
    _patch_source(monkeypatch, "langmix.evaluate.ast_check")  # not declared: not this task's scorer
    assert tasks.scorer_digest("declared") == digest
    base.scorer_digest.cache_clear()
    _patch_source(monkeypatch, "langmix.evaluate.math")
    assert tasks.scorer_digest("declared").digest != digest.digest


def test_the_sources_are_read_once_per_process(monkeypatch):
    reads = []
    real = base._module_source
    monkeypatch.setattr(base, "_module_source", lambda m: reads.append(m) or real(m))
    tasks.scorer_digest("math")
    n = len(reads)
    assert n == len({*base.SCORER_MODULES, "langmix.tasks.math"})
    tasks.scorer_digest("math")
    assert len(reads) == n

"""The scorer digest: a hash of what judges a task's items, so a study finds verdicts of an older scorer."""

from __future__ import annotations

import importlib
import sys

import pytest

from langmix import imported_source, tasks
from langmix.tasks import base

MATH_MODULES = ["langmix.evaluate.langid", "langmix.evaluate.math", "langmix.evaluate.number_reading",
                "langmix.evaluate.run", "langmix.languages", "langmix.tasks.base", "langmix.tasks.math"]
API_MODULES = ["langmix.evaluate.ast_check", "langmix.evaluate.call_compare", "langmix.evaluate.call_parse",
               "langmix.evaluate.langid", "langmix.evaluate.leniencies", "langmix.evaluate.run",
               "langmix.evaluate.schema", "langmix.languages", "langmix.records", "langmix.tasks.api",
               "langmix.tasks.base"]
# the AST checker's modules: an output's verdict, one call against one expected call, the rule sets and leniencies
CHECKER_MODULES = ["langmix.evaluate.ast_check", "langmix.evaluate.call_compare", "langmix.evaluate.leniencies"]


@pytest.fixture(autouse=True)
def fresh_digest():
    """Each test computes digests anew, and leaves none computed from its patched sources behind."""
    base.scorer_digest.cache_clear()
    yield
    base.scorer_digest.cache_clear()


def _patch_source(monkeypatch, changed: str) -> None:
    """What a process that imported an edited `changed` holds."""
    tasks.scorer_digest("math"), tasks.scorer_digest("api")  # every module kept as imported
    base.scorer_digest.cache_clear()
    monkeypatch.setitem(imported_source._HASHES, changed, imported_source.source_hash(b"# changed\n"))


def test_the_digest_is_stable_and_names_what_went_into_it():
    first = tasks.scorer_digest("math")
    base.scorer_digest.cache_clear()
    again = tasks.scorer_digest("math")
    assert first == again and len(first.digest) == 16 and int(first.digest, 16) >= 0
    modules = [p.split()[0] for p in first.parts if " sha256:" in p]
    assert modules == MATH_MODULES
    assert [p.split()[0] for p in tasks.scorer_digest("api").parts if " sha256:" in p] == API_MODULES
    assert any(p.startswith("lingua-language-detector==") for p in first.parts)
    assert first.record() == {"task": "math", "digest": first.digest, "parts": list(first.parts)}
    assert tasks.scorer_digest("api").digest != first.digest  # another task's scorer


@pytest.mark.parametrize("module", sorted({*MATH_MODULES, *API_MODULES}))
def test_a_change_to_a_scoring_module_changes_the_digest_of_the_tasks_it_judges_alone(monkeypatch, module):
    before = {t: tasks.scorer_digest(t).digest for t in ("math", "api")}
    _patch_source(monkeypatch, module)
    after = {t: tasks.scorer_digest(t).digest for t in ("math", "api")}
    assert (after["math"] != before["math"]) == (module in MATH_MODULES)
    assert (after["api"] != before["api"]) == (module in API_MODULES)
    if module == "langmix.evaluate.math":  # the math extractor: not api's scorer (it re-scored every api eval)
        assert after["api"] == before["api"] and after["math"] != before["math"]
    if module == "langmix.evaluate.ast_check":
        assert after["math"] == before["math"] and after["api"] != before["api"]


@pytest.mark.parametrize("module", CHECKER_MODULES)
def test_each_module_of_the_call_checker_is_part_of_the_api_digest_and_not_the_math_one(monkeypatch, module):
    """The checker is split over several modules; an edit to any one of them re-scores api evaluations (a module
    left out of `ApiTask.scorer_modules` would leave verdicts of the old checker labelled as the new one's)."""
    api, math = tasks.scorer_digest("api"), tasks.scorer_digest("math")
    assert module in [p.split()[0] for p in api.parts] and module not in [p.split()[0] for p in math.parts]
    _patch_source(monkeypatch, module)
    assert tasks.scorer_digest("api").digest != api.digest and tasks.scorer_digest("math").digest == math.digest


def test_the_default_scorer_modules_hold_every_scoring_module_a_task_of_langmix_lists():
    """`SCORER_MODULES` judges for a task that names no modules: every scorer of langmix's own tasks is in it."""
    listed = {m for n in tasks.names() for m in base._scorer_modules(tasks.get(n)) if m.startswith("langmix.evaluate.")}
    assert set(CHECKER_MODULES) <= listed <= set(base.SCORER_MODULES)


def test_an_edit_after_the_import_leaves_the_digest_of_the_imported_scorer(monkeypatch):
    """A study imports the scorer, trains for hours, then evaluates: the digest is the imported code's, not that of
    the file on disk by then (which would label the old scorer's verdicts as the new one's, never re-scored)."""
    before = tasks.scorer_digest("math")
    base.scorer_digest.cache_clear()
    real = base._module_source
    monkeypatch.setattr(base, "_module_source", lambda m: real(m) + b"\n# edited after the import\n")
    assert tasks.scorer_digest("math") == before


def test_a_scoring_module_outside_langmix_is_hashed_as_imported(monkeypatch, tmp_path):
    monkeypatch.setattr(imported_source, "_HASHES", dict(imported_source._HASHES))  # none left behind
    monkeypatch.setattr(imported_source, "_WATCHED", set(imported_source._WATCHED))
    (tmp_path / "my_scorer_mod.py").write_text("def judge(output):\n    return output == '1'\n")
    monkeypatch.syspath_prepend(str(tmp_path))

    class Outside(base.Task):
        name, headline_metric = "outside", "accuracy"
        scorer_modules = ("my_scorer_mod",)
        scorer_libraries = ()

    monkeypatch.setitem(base._REGISTRY, "outside", Outside())
    base._keep_imported(base._REGISTRY["outside"])  # registered before its scorer module is imported: watched
    monkeypatch.delitem(sys.modules, "my_scorer_mod", raising=False)
    importlib.import_module("my_scorer_mod")
    monkeypatch.delitem(sys.modules, "my_scorer_mod")
    (tmp_path / "my_scorer_mod.py").write_text("def judge(output):\n    return True\n")  # edited while it ran
    digest = tasks.scorer_digest("outside")
    imported = imported_source.source_hash(b"def judge(output):\n    return output == '1'\n")
    assert f"my_scorer_mod {imported}" in digest.parts


def test_a_scoring_library_version_changes_the_digest(monkeypatch):
    before = tasks.scorer_digest("math")
    base.scorer_digest.cache_clear()
    monkeypatch.setitem(base._LIBRARY_VERSIONS, "lingua-language-detector", "0.0-other")  # imported, registered
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
    _patch_source(monkeypatch, "langmix.evaluate.ast_check")  # not declared: not this task's scorer
    assert tasks.scorer_digest("declared") == digest
    _patch_source(monkeypatch, "langmix.evaluate.math")
    assert tasks.scorer_digest("declared").digest != digest.digest


def test_no_source_is_read_when_the_digest_is_asked(monkeypatch):
    reads = []
    real = base._module_source
    monkeypatch.setattr(base, "_module_source", lambda m: reads.append(m) or real(m))
    tasks.scorer_digest("math"), tasks.scorer_digest("api")
    assert reads == []  # every module was kept at its import

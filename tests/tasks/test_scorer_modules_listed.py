"""A task's scorer digest covers only the modules it lists (`Task.scorer_modules`), so a scoring helper moved into a
new module must be listed, or an edit to it would not re-score finished evaluations. These tests read the imports
of the listed modules (statically) and fail where a scoring module imports a langmix module its task does not
list, or where an `evaluate` module judges nothing and is listed by no task without being named here."""

from __future__ import annotations

import ast
import importlib.util
from pathlib import Path

from langmix import tasks

# modules that judge nothing: generation, the vLLM engine, and `langmix score` (it reuses the scorers); the packages
# themselves; what `evaluate.run` needs to generate (config, model loading, chat prompts); the error base class and
# the import record the digest itself reads
NOT_SCORING = {"langmix.evaluate.generate", "langmix.evaluate.vllm_engine", "langmix.evaluate.rescore",
               "langmix", "langmix.evaluate", "langmix.tasks", "langmix.config", "langmix.models",
               "langmix.tokenization", "langmix.errors", "langmix.imported_source"}
# (task, module, the module it imports) that the task's verdicts never reach, each with why
NOT_REACHED = {
    # langid imports the checker's leniencies only inside wrong_language_argument, which the api checker calls, never
    # math
    ("math", "langmix.evaluate.langid", "langmix.evaluate.leniencies"),
    # math reads an example's reference as a plain mapping; records' types (Example, ItemRow) judge nothing there
    ("math", "langmix.evaluate.run", "langmix.records"), ("math", "langmix.tasks.base", "langmix.records"),
    ("math", "langmix.tasks.math", "langmix.records"),
}


def _langmix_imports(module: str) -> set[str]:
    """The langmix modules `module`'s source imports (at any depth of its code, lazily imported ones included)."""
    origin = importlib.util.find_spec(module).origin
    found = set()
    for node in ast.walk(ast.parse(Path(origin).read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("langmix"):
            found.add(node.module)
            for alias in node.names:  # `from langmix.evaluate import langid` imports a module
                if importlib.util.find_spec(f"{node.module}.{alias.name}") if _is_package(node.module) else False:
                    found.add(f"{node.module}.{alias.name}")
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("langmix"))
    return found


def _is_package(module: str) -> bool:
    spec = importlib.util.find_spec(module)
    return spec is not None and spec.submodule_search_locations is not None


def _listed(task) -> set[str]:
    from langmix.tasks.base import _scorer_modules

    return set(_scorer_modules(task))


def test_a_listed_scoring_module_imports_only_listed_evaluate_modules():
    for name in tasks.names():
        task = tasks.get(name)
        listed = _listed(task)
        for module in sorted(listed):
            unlisted = {m for m in _langmix_imports(module) if m not in NOT_SCORING and m not in listed and (name, module, m) not in NOT_REACHED}
            assert not unlisted, f"task {name}: {module} imports {sorted(unlisted)}, which its scorer_modules omit"


def test_every_evaluate_module_is_listed_by_a_task_or_named_as_not_scoring():
    package = Path(importlib.util.find_spec("langmix.evaluate").submodule_search_locations[0])
    modules = {f"langmix.evaluate.{p.stem}" for p in package.glob("*.py") if p.stem != "__init__"}
    listed = set().union(*(_listed(tasks.get(n)) for n in tasks.names()))
    assert modules - listed - NOT_SCORING == set()


def test_the_check_sees_a_lazy_import():
    """The import scan reads imports inside functions too (the checker's leniencies import langid lazily)."""
    assert "langmix.evaluate.langid" in _langmix_imports("langmix.evaluate.leniencies")

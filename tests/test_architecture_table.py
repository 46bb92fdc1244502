"""The README's Architecture table names every module of the package (`dir/{a,b}.py`, `dir/*.py` or `name.py`):
the translate row listed 8 of its 11 modules, and seven modules elsewhere were in no row."""

import re
from pathlib import Path

import langmix

ROOT = Path(langmix.__file__).parent


def _named_in_table() -> set[str]:
    readme = (ROOT.parent.parent / "README.md").read_text(encoding="utf-8")
    section = readme.split("\n## Architecture", 1)[1].split("\n## ", 1)[0]
    table = "\n".join(line for line in section.splitlines() if line.startswith("|"))
    named: set[str] = set()
    for cell in re.findall(r"`([^`]+\.py)`", table):
        if m := re.fullmatch(r"(\w+)/\{([\w,]+)\}\.py", cell):
            named.update(f"{m.group(1)}/{name}.py" for name in m.group(2).split(","))
        elif m := re.fullmatch(r"(\w+)/\*\.py", cell):
            named.update(str(p.relative_to(ROOT)) for p in (ROOT / m.group(1)).glob("*.py"))
        else:
            named.add(cell)
    return {name for name in named if not name.endswith("__init__.py")}


def test_the_architecture_table_names_every_module():
    modules = {str(p.relative_to(ROOT)) for p in ROOT.rglob("*.py") if p.name != "__init__.py"}
    named = _named_in_table()
    assert sorted(modules - named) == [] and sorted(named - modules) == []

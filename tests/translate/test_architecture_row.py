"""The README's Architecture table names each module of the translate stage."""

import re
from pathlib import Path

import langmix

ROOT = Path(langmix.__file__).parent


def test_the_translate_row_names_every_translate_module():
    """The row listed 8 of the 11 modules: requesting.py, number_words.py and testing.py were missing."""
    readme = (ROOT.parent.parent / "README.md").read_text(encoding="utf-8")
    row = next(line for line in readme.splitlines() if line.startswith("| translate |"))
    listed = re.search(r"`translate/\{([^}]*)\}\.py`", row).group(1).split(",")
    modules = sorted(p.stem for p in (ROOT / "translate").glob("*.py") if p.name != "__init__.py")
    assert sorted(listed) == modules and len(modules) == 11

"""What a translation run does before and around its requests: the source checked before any budget is spent, the
cache keyed by what answers (the server, the weights), the translation memory checked against the source text, the
key never echoed, retries visible."""

import json

import pytest
from typer.testing import CliRunner

from langmix.cli import app
from langmix.records import Example
from langmix.translate.cache import TranslationCache
from langmix.translate.pipeline import translate_examples
from langmix.translate.testing import FakeServer

QUESTION = "Tom has 3 apples and Mary has 5 apples. Tom gives Mary 2 apples. How many apples does Mary have now?"
SPANISH = "Tom tiene 3 manzanas y María tiene 5 manzanas. Tom le da a María 2 manzanas. ¿Cuántas manzanas tiene " \
          "María ahora?"


def _math(source_id: str, text: str = QUESTION, answer: float = 7, id: str | None = None) -> Example:
    return Example(id=id or f"{source_id}-en", source_id=source_id, task="math", language="en", reference={"answer": answer},
                   messages=[{"role": "user", "content": text}])


def _write(path, examples) -> str:
    path.write_text("".join(ex.model_dump_json() + "\n" for ex in examples), encoding="utf-8")
    return str(path)


@pytest.fixture
def fake():
    servers = []

    def start(memory=None):
        srv = FakeServer(memory if memory is not None else {(QUESTION, "Spanish"): SPANISH}).start()
        servers.append(srv)
        return srv

    yield start
    for srv in servers:
        srv.stop()


def _translate(tmp_path, src: str, url: str, *extra: str, out: str = "out", cache: str = "c.sqlite"):
    return CliRunner().invoke(app, ["translate", src, "--to", "es", "--base-url", url, "--model", "m",
                                    "--out", str(tmp_path / out), "--cache", str(tmp_path / cache), *extra])


def test_a_source_id_given_twice_is_refused_before_any_request(tmp_path, fake):
    """Two examples sharing source id `dup` were both translated (the budget spent), and data.jsonl got `dup-es`
    twice, which `load_example_file` then refused."""
    srv = fake()
    src = _write(tmp_path / "s.jsonl", [_math("dup", id="x-en"), _math("dup", QUESTION.replace("Tom", "Ann"), id="y-en")])
    result = _translate(tmp_path, src, srv.url)
    assert result.exit_code == 2, result.output
    assert "source 'dup' repeats in 'en'" in " ".join(result.output.split()) and "Traceback" not in result.output
    assert srv.requests == 0 and not (tmp_path / "out").exists()
    with pytest.raises(ValueError, match="source 'dup' repeats"):
        translate_examples([_math("dup", id="x"), _math("dup", id="y")], ["es"], object(), TranslationCache(tmp_path / "d.sqlite"),
                           ["en", "es"])

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


SECRET = "sk-live-REALSECRET123"


def _no_secret(result, caplog, capsys) -> None:
    seen = result.output + caplog.text + "".join(capsys.readouterr())
    assert "REALSECRET" not in seen and "Traceback" not in result.output


def test_a_key_given_as_the_variable_name_is_refused_without_echoing_it(tmp_path, canned, caplog, capsys,
                                                                         monkeypatch):
    """`--api-key-env sk-live-REALSECRET123` (the key itself, by mistake) printed it in the 401 message ("check ...
    the key in $sk-live-REALSECRET123")."""
    monkeypatch.delenv(SECRET, raising=False)
    server, url = canned(401, b'{"error": "bad key"}')
    src = _write(tmp_path / "s.jsonl", [_math("a")])
    result = _translate(tmp_path, src, url, "--api-key-env", SECRET)
    assert result.exit_code == 2 and server.requests == 0
    text = " ".join(result.output.split())
    assert "--api-key-env takes the name of an environment variable" in text and "'sk-' (21 characters)" in text
    _no_secret(result, caplog, capsys)


def test_the_key_is_sent_and_never_shown_when_the_server_refuses_it(tmp_path, canned, caplog, capsys, monkeypatch):
    monkeypatch.setenv("MY_TRANSLATE_KEY", SECRET)
    server, url = canned(401, b'{"error": "bad key"}')
    from langmix.translate.backends import BackendRefused, OpenAIBackend, Request

    backend = OpenAIBackend(url, "m", api_key_env="MY_TRANSLATE_KEY", max_retries=0)
    with caplog.at_level("DEBUG"), pytest.raises(BackendRefused) as refused:  # before a command resets logging
        backend.translate([Request("Hello", "en", "es", "x#0")])
    assert "HTTP 401" in caplog.text + str(refused.value)
    assert "REALSECRET" not in str(refused.value) + repr(backend) + caplog.text
    src = _write(tmp_path / "s.jsonl", [_math("a")])
    result = _translate(tmp_path, src, url, "--api-key-env", "MY_TRANSLATE_KEY")
    assert result.exit_code == 2 and server.auth == [f"Bearer {SECRET}"] * 2
    assert "HTTP 401" in result.output and "$MY_TRANSLATE_KEY" in " ".join(result.output.split())
    _no_secret(result, caplog, capsys)


def test_an_unset_key_variable_is_an_error_unless_no_key_is_asked_for(tmp_path, canned, caplog, monkeypatch):
    """An unset variable sent every request without a key, with no warning."""
    from langmix.translate.backends import OpenAIBackend

    monkeypatch.delenv("NOT_SET_KEY", raising=False)
    server, url = canned(200, json.dumps({"choices": [{"message": {"content": SPANISH}}]}).encode())
    with caplog.at_level("WARNING"):  # before a command resets logging
        OpenAIBackend(url, "m", api_key_env="NOT_SET_KEY")
    assert "$NOT_SET_KEY is not set: requests to the local server" in caplog.text
    src = _write(tmp_path / "s.jsonl", [_math("a")])
    remote = _translate(tmp_path, src, "https://translate.example.com/v1", "--api-key-env", "NOT_SET_KEY")
    assert remote.exit_code == 2 and not (tmp_path / "out").exists()
    assert "$NOT_SET_KEY is not set" in " ".join(remote.output.split()) and "--no-api-key" in remote.output
    with pytest.raises(ValueError, match=r"\$NOT_SET_KEY is not set"):
        OpenAIBackend("https://translate.example.com/v1", "m", api_key_env="NOT_SET_KEY")
    # a local server usually needs none: a warning naming the variable, and the requests go without a key
    local = _translate(tmp_path, src, url, "--api-key-env", "NOT_SET_KEY", out="o2")
    assert local.exit_code == 0, local.output
    assert "$NOT_SET_KEY is not set" in " ".join(local.output.split()) and server.auth == [None]
    quiet = _translate(tmp_path, src, url, "--no-api-key", "--api-key-env", "NOT_SET_KEY", out="o3",
                       cache="c3.sqlite")
    assert quiet.exit_code == 0 and "NOT_SET_KEY" not in quiet.output and server.auth == [None, None]

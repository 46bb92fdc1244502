"""Bad inputs of a translation run refused with a clear line: a key given where its variable's name goes (never
echoed), a translation memory row in an unknown language (named by file and line)."""

import json

import pytest

from langmix.translate.identity import key_variable_problem

KEYS = ["D41D8CD98F00B204E9800998ECF8427E", "mysecretkey2024", "d41d8cd98f00b204e9800998ecf8427e",
        "QWxhZGRpbjpvcGVuIHNlc2FtZQ", "AbCdEfGhIjKlMnOp", "sk-live-REALSECRET123", "hf_AbCdEf123456",
        "ABCDEFGHJKLMNPQRSTUVWXYZ", "secret2024_key", "x9f8e7d6c5"]
NAMES = ["OPENAI_API_KEY", "HF_TOKEN", "MY_TRANSLATE_KEY", "openai_api_key", "S3_KEY", "GPT4_API_KEY",
         "AZURE_OPENAI_API_KEY_2", "DEEPSEEK_KEY"]


@pytest.mark.parametrize("value", KEYS)
def test_a_value_not_shaped_like_a_variable_name_is_never_echoed(value, monkeypatch):
    """`--api-key-env D41D8CD98F00B204E9800998ECF8427E` (no lowercase letter) and `mysecretkey2024` (under 24
    characters) passed as variable names, and the run printed `$D41D8... is not set`."""
    monkeypatch.delenv(value, raising=False)
    problem = key_variable_problem(value)
    assert problem is not None and value[3:] not in problem
    assert f"starting {value[:3]!r} ({len(value)} characters)" in problem


@pytest.mark.parametrize("value", NAMES)
def test_a_conventional_variable_name_is_accepted(value, monkeypatch):
    monkeypatch.delenv(value, raising=False)
    assert key_variable_problem(value) is None


def test_a_set_variable_is_accepted_whatever_its_name(monkeypatch):
    monkeypatch.setenv("MyKey2024", "x")
    assert key_variable_problem("MyKey2024") is None


def test_the_command_line_never_echoes_a_key_given_as_the_variable(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from langmix.cli import app

    key = "D41D8CD98F00B204E9800998ECF8427E"
    monkeypatch.delenv(key, raising=False)
    src = tmp_path / "s.jsonl"
    src.write_text(json.dumps({"id": "a-en", "source_id": "a", "task": "math", "language": "en",
                               "reference": {"answer": 2}, "messages": [{"role": "user", "content": "1 + 1?"}]})
                   + "\n")
    result = CliRunner().invoke(app, ["translate", str(src), "--to", "es", "--base-url", "https://x.example.com/v1",
                                      "--model", "m", "--api-key-env", key, "--out", str(tmp_path / "out"),
                                      "--cache", str(tmp_path / "c.sqlite")])
    assert result.exit_code == 2 and key[3:] not in result.output
    assert "'D41' (32 characters), which is not shown" in " ".join(result.output.split())


@pytest.mark.parametrize("suffix", ["tsv", "jsonl"])
def test_an_unknown_language_in_a_translation_memory_names_its_file_and_line(tmp_path, suffix):
    """A row in language 'xx' gave only "unknown language 'xx' (known: ...)", not where it was."""
    from langmix.data.files import DataFormatError
    from langmix.translate.memory import MemoryBackend

    rows = [("Hello", "es", "Hola"), ("Hello", "xx", "Hallo")]
    path = tmp_path / f"tm.{suffix}"
    path.write_text("".join("\t".join(r) + "\n" if suffix == "tsv" else
                            json.dumps({"source": r[0], "language": r[1], "text": r[2]}) + "\n" for r in rows),
                    encoding="utf-8")
    with pytest.raises(DataFormatError, match=rf"tm\.{suffix}:2: unknown language 'xx'") as refused:
        MemoryBackend(str(path))
    assert refused.value.line == 2 and refused.value.path == str(path)

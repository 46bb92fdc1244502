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
    return Example(id=id or f"{source_id}-en", source_id=source_id, task="math", language="en",
                   reference={"answer": answer}, messages=[{"role": "user", "content": text}])


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
    src = _write(tmp_path / "s.jsonl", [_math("dup", id="x-en"),
                                        _math("dup", QUESTION.replace("Tom", "Ann"), id="y-en")])
    result = _translate(tmp_path, src, srv.url)
    assert result.exit_code == 2, result.output
    assert "source 'dup' repeats in 'en'" in " ".join(result.output.split()) and "Traceback" not in result.output
    assert srv.requests == 0 and not (tmp_path / "out").exists()
    with pytest.raises(ValueError, match="source 'dup' repeats"):
        translate_examples([_math("dup", id="x"), _math("dup", id="y")], ["es"], object(),
                           TranslationCache(tmp_path / "d.sqlite"), ["en", "es"])


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


def test_the_cache_is_keyed_by_the_server_and_says_what_it_answered(tmp_path, fake):
    """The key was backend + model name: re-running `--model m` against another server (another --base-url) sent
    0 requests and wrote the first server's translations."""
    other = SPANISH.replace("Tom le da", "Luego Tom le da")
    first, second = fake(), fake({(QUESTION, "Spanish"): other})
    src = _write(tmp_path / "s.jsonl", [_math("a")])
    assert _translate(tmp_path, src, first.url, "--no-api-key").exit_code == 0
    assert first.requests == 1
    rerun = _translate(tmp_path, src, first.url, "--no-api-key", out="o2")
    assert first.requests == 1 and "the cache answered 1 of 1 segments (es 1)" in " ".join(rerun.output.split())
    manifest = json.loads((tmp_path / "o2" / "manifest.json").read_text())
    assert manifest["segments_from_cache"] == {"es": 1} and manifest["segments"] == {"es": 1}
    assert "| es | 1 | 1 | 0 | 0 | 0 | 0 | 1 of 1 |" in (tmp_path / "o2" / "qa.md").read_text()
    moved = _translate(tmp_path, src, second.url, "--no-api-key", out="o3")
    assert moved.exit_code == 0 and second.requests == 1
    rows = [json.loads(line) for line in (tmp_path / "o3" / "data.jsonl").read_text().splitlines()]
    assert [r["messages"][0]["content"] for r in rows if r["language"] == "es"] == [other]
    assert json.loads((tmp_path / "o3" / "manifest.json").read_text())["segments_from_cache"] == {"es": 0}


def test_credentials_in_the_url_stay_out_of_the_cache_key():
    from langmix.translate.backends import OpenAIBackend, public_url

    assert public_url("https://user:pa55@host.example:8443/v1/?key=abc#x") == "https://host.example:8443/v1"
    backend = OpenAIBackend("http://u:s3cret@127.0.0.1:8000/v1/?api_key=s3cret", "m1", api_key_env=None)
    assert backend.model_id == "m1@http://127.0.0.1:8000/v1"


def test_local_weights_retrained_at_the_same_path_are_not_answered_from_the_cache(tmp_path, tiny_model_cfg,
                                                                                   tiny_model_path):
    """Seq2SeqBackend's cache identity was its path string, CausalBackend's the config's model name: retrained
    weights at the same path were answered with the old model's translations."""
    import torch
    from transformers import MarianConfig, MarianMTModel

    from langmix.models import load_tokenizer
    from langmix.translate.backends import Seq2SeqBackend

    tok = load_tokenizer(tiny_model_cfg, tiny_model_path)
    config = MarianConfig(vocab_size=len(tok), d_model=16, encoder_layers=1, decoder_layers=1,
                          encoder_attention_heads=2, decoder_attention_heads=2, encoder_ffn_dim=32,
                          decoder_ffn_dim=32, max_position_embeddings=64, pad_token_id=tok.pad_token_id,
                          eos_token_id=tok.eos_token_id, decoder_start_token_id=tok.pad_token_id)
    ids = []
    for seed in (0, 1):
        torch.manual_seed(seed)
        MarianMTModel(config).save_pretrained(tmp_path / "marian")
        tok.save_pretrained(tmp_path / "marian")
        ids.append(Seq2SeqBackend(str(tmp_path / "marian"), family="marian").model_id)
    assert ids[0] != ids[1] and all(i.startswith("marian@") for i in ids)
    assert Seq2SeqBackend(str(tmp_path / "marian"), family="marian").model_id == ids[1]  # same weights, same key


def test_a_causal_translators_identity_is_its_weights_not_its_name(tmp_path, tiny_model_path):
    import shutil

    from safetensors.torch import load_file, save_file

    from langmix.config import ModelConfig
    from langmix.translate.backends import CausalBackend

    shutil.copytree(tiny_model_path, tmp_path / "mt")
    cfg = ModelConfig(name="mt", source="hf", path=str(tmp_path / "mt"))
    before = CausalBackend(cfg).model_id
    weights = next((tmp_path / "mt").glob("*.safetensors"))
    tensors = load_file(weights)
    name = next(iter(tensors))
    tensors[name] = tensors[name] + 1  # retrained in place
    save_file(tensors, weights, metadata={"format": "pt"})
    after = CausalBackend(cfg).model_id
    assert before != after and before.startswith("mt:mt@") and after.startswith("mt:mt@")


def _memory(tmp_path, rows) -> str:
    path = tmp_path / "tm.jsonl"
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return str(path)


def test_an_id_hit_of_the_memory_is_used_only_for_the_same_source_text(tmp_path):
    """The id lookup won over the text: "apples" edited to "pears" in the source still got "manzanas"; gsm8k ids
    are positions, so a row inserted before shifted every id onto another question's translation."""
    from langmix.translate.backends import MemoryBackend

    pears = QUESTION.replace("apples", "pears")
    other = "Ann has 4 cats and buys 2 more. How many cats does she have?"
    memory = MemoryBackend(_memory(tmp_path, [
        {"source_id": "q-0", "source": QUESTION, "language": "es", "text": SPANISH},
        {"source_id": "q-1", "source": other, "language": "es", "text": "Ana tiene 4 gatos y compra 2 más. ¿Cuántos "
                                                                         "gatos tiene?"}]))
    out, qa = translate_examples([_math("q-0", pears)], ["es"], memory, TranslationCache(tmp_path / "a.sqlite"),
                                 ["en", "es"])
    assert out == [] and qa["es"].backend_misses == 1 and memory.stats["stale_ids"] == 1
    # a row inserted before: q-0 is now the cats question, q-1 the apples one; each is found by its text
    shifted = [_math("q-0", other, answer=6), _math("q-1", QUESTION)]
    out, qa = translate_examples(shifted, ["es"], memory, TranslationCache(tmp_path / "b.sqlite"), ["en", "es"])
    assert [ex.messages[0]["content"] for ex in out] == ["Ana tiene 4 gatos y compra 2 más. ¿Cuántos gatos tiene?",
                                                         SPANISH]
    assert memory.stats["stale_ids"] == 3 and memory.stats["text_hits"] == 2
    # on the command line: the manifest counts them
    src = _write(tmp_path / "s.jsonl", [_math("q-0", pears)])
    result = CliRunner().invoke(app, ["translate", src, "--to", "es", "--backend", "memory", "--memory",
                                      memory.path, "--out", str(tmp_path / "out"), "--cache", str(tmp_path / "c")])
    assert result.exit_code == 2 and "matched by id have another source text" in " ".join(result.output.split())
    assert json.loads((tmp_path / "out" / "manifest.json").read_text())["backend_stats"] == \
        {"id_hits": 0, "text_hits": 0, "stale_ids": 1, "misses": 1}


def test_a_memory_row_with_an_id_and_no_source_text_is_refused(tmp_path):
    from langmix.data.files import DataFormatError
    from langmix.translate.backends import MemoryBackend

    path = _memory(tmp_path, [{"source_id": "q-0", "source": QUESTION, "language": "es", "text": SPANISH},
                              {"source_id": "q-1", "language": "es", "text": "María tiene ahora 7 manzanas."}])
    with pytest.raises(DataFormatError, match=r"tm.jsonl:2: .*'source_id' but no 'source'"):
        MemoryBackend(path)


def test_retries_are_visible_in_the_progress(tmp_path, canned):
    """The bar counted first attempts only: 1,227 of 3,027 requests of one run were retries, and the bar stalled."""
    from langmix.translate.backends import OpenAIBackend, Request

    server, url = canned(503, b'{"error": "busy"}')
    seen: list[int] = []
    backend = OpenAIBackend(url, "m", api_key_env=None, max_retries=2, backoff=0.0, concurrency=1,
                            on_retry=lambda: seen.append(1))
    assert backend.translate([Request("Hello", "en", "es", "x#0")]) == [None]
    assert server.requests == 3 and len(seen) == 2 == backend.stats["retries"]

    class Rejecting:  # a bad answer first (rejected: a number changed), then the right one
        name, model_id, prompt_version, protects_numbers = "openai", "r", "v1", False
        calls = 0

        def translate(self, requests):
            self.calls += 1
            return [SPANISH.replace("3", "4") if self.calls == 1 else SPANISH for _ in requests]

    rounds: list[int] = []
    out, qa = translate_examples([_math("a")], ["es"], Rejecting(), TranslationCache(tmp_path / "r.sqlite"),
                                 ["en", "es"], retries=1, retrying=rounds.append)
    assert rounds == [1] and qa["es"].passed_after_retry == 1  # one segment asked again

    src = _write(tmp_path / "s.jsonl", [_math("a")])
    result = _translate(tmp_path, src, url, "--no-api-key", "--retries", "2")
    text = " ".join(result.output.split())
    assert "retries: 2 requests, 0 rejected segments" in text, text

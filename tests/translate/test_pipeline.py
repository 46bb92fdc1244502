import json

import pytest

from typer.testing import CliRunner

from langmix.cli import app
from langmix.data.api_data import load_apibank, load_apibank_schemas
from langmix.records import Example
from langmix.translate.backends import MemoryBackend, OpenAIBackend, Request
from langmix.translate.cache import TranslationCache
from langmix.translate.pipeline import translate_examples
from tests.shared_data import shared

LANGS = ["en", "es", "sw", "ja"]


def test_openai_backend_survives_faults_and_caches(server, gsm_questions, tmp_path):
    srv = server(rate_429=0.1, rate_500=0.1, rate_timeout=0.03, timeout_sleep=1.5)
    backend = OpenAIBackend(srv.url, "fake", concurrency=8, timeout=1.0, backoff=0.01, max_retries=6)
    cache = TranslationCache(tmp_path / "c.sqlite")
    out, qa = translate_examples(gsm_questions[:40], ["es", "sw"], backend, cache, LANGS)
    assert backend.stats["retries"] > 0 and backend.stats["failures"] == 0
    assert qa["es"].n == 40 and qa["es"].passed + qa["es"].excluded == 40 and qa["es"].passed >= 36
    sw = {ex.source_id: ex for ex in out if ex.language == "sw"}
    assert "mayai 16" in sw["gsm8k-test-0"].messages[0]["content"]  # the MGSM Swahili text came back
    before = srv.requests
    again, qa2 = translate_examples(gsm_questions[:40], ["es", "sw"], backend, cache, LANGS)
    assert srv.requests == before  # everything cached: no request
    assert [e.messages for e in again] == [e.messages for e in out]


def test_corrupted_answers_are_retried_then_excluded_and_counted(server, gsm_questions, tmp_path):
    srv = server(rate_corrupt=0.3)
    backend = OpenAIBackend(srv.url, "fake", concurrency=4, backoff=0.01)
    out, qa = translate_examples(gsm_questions[:30], ["es"], backend, TranslationCache(tmp_path / "c.sqlite"), LANGS)
    q = qa["es"]
    assert q.passed_after_retry > 0  # a corrupted answer, retried with the reason in the prompt, came back clean
    assert q.passed + q.excluded == 30 and len(out) == q.passed
    assert q.reasons["numbers_changed"] + q.reasons["placeholder_lost"] >= q.excluded


def test_flag_policy_keeps_and_marks(server, gsm_questions, tmp_path):
    srv = server()
    backend = OpenAIBackend(srv.url, "fake", concurrency=4)
    unknown = [ex.model_copy(update={"messages": [{"role": "user", "content": "Ben has 3 cats and 2 dogs."}]})
               for ex in gsm_questions[:2]]
    out, qa = translate_examples(unknown, ["es"], backend, TranslationCache(tmp_path / "c.sqlite"), LANGS,
                                 policy="flag")
    assert qa["es"].flagged == 2 and all("copied_source" in ex.reference["translation_flags"] for ex in out)


class _Fixed:
    name, model_id, prompt_version, protects_numbers = "openai", "fixed", "v1", True

    def __init__(self, answer: str):
        self.answer = answer

    def translate(self, requests):
        return [self.answer for _ in requests]


@pytest.mark.parametrize("policy", ["exclude", "flag"])
@pytest.mark.parametrize("answer", ["", "  \n"])
def test_an_empty_translation_is_excluded_under_every_policy(tmp_path, policy, answer):
    """`--policy flag` kept an empty translation ("" is not None: only backend misses were excluded), and the mix
    stage then refused the example ("has no question")."""
    ex = Example(id="q-en", source_id="q", task="math", language="en", reference={"answer": 7},
                 messages=[{"role": "user", "content": "Tom has 12 apples and gives 5 away. How many are left?"}])
    out, qa = translate_examples([ex], ["es"], _Fixed(answer), TranslationCache(tmp_path / "c.sqlite"), LANGS,
                                 policy=policy)
    assert out == [] and (qa["es"].excluded, qa["es"].flagged, dict(qa["es"].reasons)) == (1, 0, {"empty": 1})


def test_memory_backend_reports_misses(tmp_path, gsm_questions):
    mem = tmp_path / "mem.jsonl"
    mem.write_text(json.dumps({"source_id": "gsm8k-test-0", "language": "sw",
                               "source": gsm_questions[0].messages[0]["content"],
                               "text": "Bata wa Janet hutaga mayai 16 kila siku. Hula matatu na huoka mafini kwa "
                                       "manne. Huuza yaliyobaki kwa $2 kwa kila yai. Anapata dola ngapi?"}) + "\n")
    backend = MemoryBackend(str(mem))
    out, qa = translate_examples(gsm_questions[:3], ["sw"], backend, TranslationCache(tmp_path / "c.sqlite"), LANGS)
    assert [e.source_id for e in out] == ["gsm8k-test-0"]
    assert qa["sw"].backend_misses == 2 and qa["sw"].excluded == 2 and qa["sw"].reasons["backend_miss"] == 2


def test_api_translation_keeps_structure(tmp_path):
    schemas = load_apibank_schemas(shared("api-bank", "all_apis.csv"))
    examples = load_apibank(shared("api-bank", "lv1-lv2-samples", "level-1-given-desc"), schemas, limit=6)

    class Upper:  # a stand-in translator that visibly changes text and keeps names verbatim
        name, model_id, prompt_version, protects_numbers = "upper", "upper", "v1", True

        def translate(self, requests: list[Request]):
            return [f"[{r.tgt}] " + r.text for r in requests]

    out, qa = translate_examples(examples, ["sw"], Upper(), TranslationCache(tmp_path / "c.sqlite"), ["en", "sw"],
                                 policy="flag")
    assert len(out) == 6
    tool_results = 0
    for src, tgt in zip(examples, out):
        for a, b in zip(src.messages, tgt.messages):
            if a["role"] == "user" and not a["content"].startswith("API result: "):
                assert b["content"] == "[sw] " + a["content"]
            else:  # system prompt with schemas, assistant turns, the JSON call and tool results are untouched
                assert b == a
                tool_results += a["content"].startswith("API result: ")
        assert tgt.reference["calls"] == src.reference["calls"] and tgt.tools == src.tools
        assert "verbatim_arguments" in tgt.reference
    assert tool_results > 0  # API-Bank writes a tool's output as a user turn: data, never translated


def test_cli_translate_with_server(server, gsm_questions, tmp_path):
    srv = server()  # it knows MGSM's human translations of the questions (GSM8K's solutions have none)
    src = tmp_path / "questions.jsonl"
    src.write_text("".join(ex.model_dump_json() + "\n" for ex in gsm_questions[:5]))
    result = CliRunner().invoke(app, ["translate", str(src), "--format", "examples", "--to", "sw,es",
                                      "--backend", "openai", "--base-url", srv.url, "--model", "fake",
                                      "--out", str(tmp_path / "out"), "--cache", str(tmp_path / "c.sqlite")])
    assert result.exit_code == 0, result.output
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert manifest["n_source"] == 5 and set(manifest["kept_per_language"]) == {"sw", "es"}
    rows = [json.loads(x) for x in (tmp_path / "out" / "data.jsonl").read_text().splitlines()]
    assert {r["language"] for r in rows} == {"en", "sw", "es"}
    sw = [r for r in rows if r["language"] == "sw"]
    assert len(sw) >= 4 and all(r["reference"]["answer_phrase"] == "Jibu ni" for r in sw)
    assert "| sw |" in (tmp_path / "out" / "qa.md").read_text()


def test_cli_translate_with_an_unreachable_server_exits_2(gsm_questions, tmp_path):
    src = tmp_path / "questions.jsonl"
    src.write_text("".join(ex.model_dump_json() + "\n" for ex in gsm_questions[:2]))
    result = CliRunner().invoke(app, ["translate", str(src), "--format", "examples", "--to", "sw",
                                      "--backend", "openai", "--base-url", "http://127.0.0.1:9/v1", "--model", "x",
                                      "--out", str(tmp_path / "out"), "--cache", str(tmp_path / "c.sqlite"),
                                      "--retries", "0"])  # no backoff: the outcome is the same, 15 s sooner
    assert result.exit_code == 2, result.output
    assert "nothing was translated into sw: every example was excluded" in result.output
    assert "backend_miss" in (tmp_path / "out" / "qa.md").read_text()


def test_solutions_are_translated_with_numbers_protected(tmp_path):
    from langmix.data.math_data import load_gsm8k

    examples = load_gsm8k(shared("gsm8k", "test.jsonl"), limit=3)

    class Tagger:  # keeps placeholders, as an LLM translator is asked to
        name, model_id, prompt_version, protects_numbers = "tagger", "tagger", "v1", True

        def translate(self, requests):
            return [f"(sw) {r.text}" for r in requests]

    out, qa = translate_examples(examples, ["sw"], Tagger(), TranslationCache(tmp_path / "c.sqlite"), ["en", "sw"],
                                 policy="flag")
    for src, ex in zip(examples, out):
        solution = ex.messages[-1]["content"]
        assert solution.endswith(f"Jibu ni {int(src.reference['answer'])}.")
        assert "The answer is" not in solution and "⟦" not in solution
        assert ex.reference["answer_phrase"] == "Jibu ni"


def test_repeated_dialogue_turns_are_translated_once(tmp_path):
    schemas = load_apibank_schemas(shared("api-bank", "all_apis.csv"))
    examples = load_apibank(shared("api-bank", "lv1-lv2-samples", "level-1-given-desc"), schemas, limit=8)
    seen: list[str] = []

    class Counting:
        name, model_id, prompt_version, protects_numbers = "count", "count", "v1", True

        def translate(self, requests):
            seen.extend(r.text for r in requests)
            return [f"[sw] {r.text}" for r in requests]

    translate_examples(examples, ["sw"], Counting(), TranslationCache(tmp_path / "c.sqlite"), ["en", "sw"],
                       policy="flag")
    user_turns = sum(1 for ex in examples for m in ex.messages if m["role"] == "user")
    assert len(seen) == len(set(seen)) < user_turns


@pytest.mark.parametrize("concurrency", [1, 4])
def test_an_interrupted_batch_keeps_the_translations_that_finished(gsm_questions, tmp_path, concurrency):
    """The cache was written once per batch (64 requests): Ctrl-C lost every translation the batch had finished."""
    import time

    asked: list[str] = []

    def one(request, stop):
        asked.append(request.text)
        if len(asked) == 4:  # the 4th request is in flight when the user presses Ctrl-C
            time.sleep(0.3)
            raise KeyboardInterrupt
        return "Traducción: " + request.text

    backend = OpenAIBackend("http://127.0.0.1:9", "fake", concurrency=concurrency)
    backend._one = one
    cache = TranslationCache(tmp_path / "c.sqlite")
    with pytest.raises(KeyboardInterrupt):
        translate_examples(gsm_questions[:6], ["es"], backend, cache, LANGS)
    assert len(cache) == (3 if concurrency == 1 else 5)  # all but the interrupted one (and, serially, those after)

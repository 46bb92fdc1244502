"""What a translation run does with bad server answers, bad command lines and data that is not language: a backend
miss or a one-line error, never bad data written and never a traceback."""

import json

import pytest
from typer.testing import CliRunner

from langmix.cli import app
from langmix.records import Example
from langmix.translate.backends import BackendRefused, MemoryBackend, OpenAIBackend, Request
from langmix.translate.cache import TranslationCache
from langmix.translate.pipeline import qa_table, translate_examples
from langmix.translate.validate import validate


def _reply(content, finish_reason="stop") -> bytes:
    return json.dumps({"choices": [{"message": {"role": "assistant", "content": content},
                                    "finish_reason": finish_reason}]}).encode()


@pytest.mark.parametrize("status,body,want,requests", [
    (200, _reply("<think>The user wants Spanish.</think>\nHola"), "Hola", 1),  # a reasoning model's thinking
    (200, _reply("The user wants Spanish.</think>\nHola"), "Hola", 1),  # its opening tag was in the prompt
    # unclosed: which part is the translation cannot be told; validation refuses it (reasoning_left)
    (200, _reply("<think>The user wants Spanish. Hola"), "<think>The user wants Spanish. Hola", 1),
    (200, _reply("Hola, ¿cuánt", finish_reason="length"), None, 1),  # cut at the token limit: no retry helps
    (200, b"<html>Bad gateway</html>", None, 2),  # not JSON: retried, then a miss
    (200, _reply([{"type": "text", "text": "Hola"}]), None, 2),  # content that is not a string
    (400, b'{"error": "context length exceeded"}', None, 1),  # this request alone: a miss, no retry
])
def test_bad_answers_are_backend_misses_not_crashes(canned, status, body, want, requests):
    server, url = canned(status, body)
    backend = OpenAIBackend(url, "m", max_retries=1, backoff=0.0, concurrency=1)
    assert backend.translate([Request("Hello", "en", "es", "x#0")]) == [want]
    assert server.requests == requests


@pytest.mark.parametrize("status", [401, 403, 404])
def test_a_server_refusing_every_request_is_one_line(canned, status, tmp_path):
    _, url = canned(status, b'{"error": "no"}')
    with pytest.raises(BackendRefused, match=f"HTTP {status}"):
        OpenAIBackend(url, "m", max_retries=3, backoff=0.0).translate([Request("Hello", "en", "es", "x#0")])
    src = tmp_path / "q.jsonl"
    src.write_text(Example(id="q-en", source_id="q", task="math", language="en", reference={"answer": 3},
                           messages=[{"role": "user", "content": "Tom has 3 apples. How many?"}]).model_dump_json())
    result = CliRunner().invoke(app, ["translate", str(src), "--to", "es", "--base-url", url, "--model", "m",
                                      "--out", str(tmp_path / "out"), "--cache", str(tmp_path / "c.sqlite")])
    assert result.exit_code == 2 and f"HTTP {status}" in result.output and "Traceback" not in result.output


@pytest.mark.parametrize("args,message", [
    (["--to", "en"], "English is the source language"),
    (["--to", ""], "names no language"),
    (["--to", "es", "--policy", "drop"], "--policy must be exclude or flag"),
    (["--to", "es", "--base-url", "notaurl"], "must start with http"),
    (["--to", "es", "--out", "FILE"], "is a file"),
    (["--to", "es", "--cache", "DIR"], "not a usable SQLite file"),
    (["--to", "es", "ANSWER=3/4"], "reference.answer must be a number, got '3/4'"),
    (["--to", "es", "--limit", "0"], "--limit: Input should be greater than or equal to 1"),
    (["--to", "es", "--format", "csv"], "--format: Input should be 'gsm8k'"),
])
def test_bad_command_lines_are_one_line_errors_before_any_work(tmp_path, args, message):
    src = tmp_path / "q.jsonl"
    answer = "3/4" if "ANSWER=3/4" in args else 3
    args = [a for a in args if a != "ANSWER=3/4"]
    src.write_text(Example(id="q-en", source_id="q", task="math", language="en", reference={"answer": answer},
                           messages=[{"role": "user", "content": "Tom has 3 apples."}]).model_dump_json())
    (tmp_path / "FILE").write_text("x")
    (tmp_path / "DIR").mkdir()
    args = [str(tmp_path / a) if a in ("FILE", "DIR") else a for a in args]
    base = {"--out": str(tmp_path / "out"), "--cache": str(tmp_path / "c.sqlite"),
            "--base-url": "http://127.0.0.1:9/v1"}
    for flag, value in base.items():
        if flag not in args:
            args += [flag, value]
    result = CliRunner().invoke(app, ["translate", str(src), "--model", "m", *args])
    assert result.exit_code == 2, result.output
    assert message in " ".join(result.output.split()) and "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()


def test_math_dialogue_turns_are_each_translated_from_their_own_text(tmp_path):
    """Only the last assistant turn is the solution whose answer line is rebuilt; an earlier one was translated
    from the last one's text."""
    ex = Example(id="d-en", source_id="d", task="math", language="en", reference={"answer": 6}, messages=[
        {"role": "user", "content": "Tom has 3 apples and buys 2. How many?"},
        {"role": "assistant", "content": "Tom has 3 + 2 = 5 apples."},
        {"role": "user", "content": "Ann has 10 pears and gives 4 away. How many?"},
        {"role": "assistant", "content": "Ann has 10 - 4 = 6 pears.\nThe answer is 6."}])

    class Tag:
        name, model_id, prompt_version, protects_numbers = "tag", "tag", "v1", False

        def translate(self, requests):
            return [f"(sw) {r.text}" for r in requests]

    out, _ = translate_examples([ex], ["sw"], Tag(), TranslationCache(tmp_path / "c.sqlite"), ["en", "sw"],
                                policy="flag")
    turns = [m["content"] for m in out[0].messages]
    assert turns[1] == "(sw) Tom has 3 + 2 = 5 apples."
    assert turns[3].startswith("(sw) Ann has 10 - 4 = 6 pears.") and "The answer is" not in turns[3]


@pytest.mark.parametrize("target,text", [
    ("ja", "汤姆有三个苹果，又买了两个。他现在有几个苹果？"),  # Chinese
    ("bn", "टॉम के पास तीन सेब हैं और उसने दो और खरीदे। अब उसके पास कितने सेब हैं?"),  # Hindi
    ("sw", "Tom punya tiga apel dan membeli dua lagi. Berapa apel yang dia punya sekarang?"),  # Indonesian
])
def test_a_related_language_in_place_of_the_target_is_wrong_language(target, text):
    source = "Tom has three apples and buys two more. How many apples does he have now?"
    assert "wrong_language" in validate(source, text, target, ["en", target])


def test_memory_backend_answers_change_with_the_file_content(tmp_path, gsm_questions):
    memory = tmp_path / "tm.tsv"
    question = gsm_questions[0].messages[-1]["content"]
    memory.write_text(f"{question}\tsw\tjibu la kwanza\n\n")  # a trailing blank line is allowed
    first = MemoryBackend(str(memory))
    memory.write_text(f"{question}\tsw\tjibu lililosahihishwa\n")
    second = MemoryBackend(str(memory))
    assert first.model_id != second.model_id  # the cache key: an edited memory is not answered from the cache
    assert second.translate([Request(question, "en", "sw", "x")]) == ["jibu lililosahihishwa"]


def test_rejected_cached_translations_are_asked_again_only_when_told(tmp_path):
    """A server gave bad answers, which were cached and rejected; once it is fixed, a re-run is answered from the
    cache (the same rejections) unless `retranslate_rejected`, which asks again and replaces the cache entries."""
    ex = Example(id="q-en", source_id="q", task="math", language="en", reference={"answer": 7},
                 messages=[{"role": "user", "content": "Tom has 3 apples and buys 4 more. How many apples now?"}])

    class Server:
        name, model_id, prompt_version, protects_numbers = "srv", "srv", "v1", False
        fixed, asked = False, 0

        def translate(self, requests):
            self.asked += len(requests)
            good = "Tom tiene 3 manzanas y compra 4 más. ¿Cuántas manzanas tiene ahora?"
            return [good if self.fixed else good.replace("4", "5") for _ in requests]

    server, cache = Server(), TranslationCache(tmp_path / "c.sqlite")
    _, qa = translate_examples([ex], ["es"], server, cache, ["en", "es"], retries=0)
    assert qa["es"].excluded == 1 and server.asked == 1
    server.fixed = True
    _, qa = translate_examples([ex], ["es"], server, cache, ["en", "es"], retries=0)
    assert qa["es"].excluded == 1 and server.asked == 1  # the cache answered
    assert qa["es"].cached_rejections == 1  # which the command line says, naming --retranslate-rejected
    out, qa = translate_examples([ex], ["es"], server, cache, ["en", "es"], retries=0, retranslate_rejected=True)
    assert qa["es"].passed == 1 and server.asked == 2 and "4 más" in out[0].messages[0]["content"]
    _, qa = translate_examples([ex], ["es"], server, cache, ["en", "es"], retries=0)
    assert qa["es"].passed == 1 and server.asked == 2  # the good answer replaced the bad one in the cache


def test_an_identifier_argument_changed_by_the_translation_is_caught(tmp_path):
    """The call expects `JaneSmith` and `quarterly_report.txt`; a translation that renames them would teach a
    dialogue asking for one value and a call using another. Plain words (`sunflower`) may be translated."""
    user = "Send quarterly_report.txt to JaneSmith and order sunflower seeds."
    ex = Example(id="a-en", source_id="a", task="api", language="en", messages=[
        {"role": "user", "content": user}, {"role": "assistant", "content": '{"name": "send"}'}],
        reference={"calls": [{"send": {"file": ["quarterly_report.txt"], "to": ["JaneSmith"],
                                       "item": ["sunflower"]}}]})

    def translator(text):
        class T:
            name, model_id, prompt_version, protects_numbers = "t", text, "v1", False

            def translate(self, requests):
                return [text for _ in requests]
        return T()

    keeps = "Envía quarterly_report.txt a JaneSmith y pide semillas de girasol."
    renames = "Envía informe_trimestral.txt a JuanaHerrero y pide semillas de girasol."
    out, qa = translate_examples([ex], ["es"], translator(keeps), TranslationCache(tmp_path / "a.sqlite"),
                                 ["en", "es"], retries=0)
    assert qa["es"].passed == 1 and out[0].messages[0]["content"] == keeps
    out, qa = translate_examples([ex], ["es"], translator(renames), TranslationCache(tmp_path / "b.sqlite"),
                                 ["en", "es"], retries=0)
    assert not out and qa["es"].excluded == 1 and qa["es"].reasons == {"argument_changed": 1}


def test_retries_and_timeout_are_set_from_the_command_line(canned, tmp_path):
    """The backend's retries, timeout and rate had no flags: a flaky server could only be waited out with the
    defaults (5 retries with backoff per segment)."""
    server, url = canned(503, b'{"error": "busy"}')
    src = tmp_path / "q.jsonl"
    src.write_text(Example(id="q-en", source_id="q", task="math", language="en", reference={"answer": 3},
                           messages=[{"role": "user", "content": "Tom has 3 apples. How many?"}]).model_dump_json())
    result = CliRunner().invoke(app, ["translate", str(src), "--to", "es", "--base-url", url, "--model", "m",
                                      "--retries", "0", "--timeout", "5", "--rate", "50", "--out",
                                      str(tmp_path / "out"), "--cache", str(tmp_path / "c.sqlite")])
    assert server.requests == 1  # no retry: one request for the one segment
    text = " ".join(result.output.split())
    assert result.exit_code == 2 and "failed after 1 attempts: HTTP 503" in text, result.output
    assert "nothing was translated into es" in text
    bad = CliRunner().invoke(app, ["translate", str(src), "--to", "es", "--base-url", url, "--model", "m",
                                   "--retries", "-1", "--out", str(tmp_path / "o2")])
    assert bad.exit_code == 2 and "--retries" in bad.output


def test_memory_backend_reads_a_tsv_saved_with_a_byte_order_mark(tmp_path, gsm_questions):
    """The BOM became part of the first source text, so that entry never matched (a silent miss)."""
    memory = tmp_path / "tm.tsv"
    question = gsm_questions[0].messages[-1]["content"]
    memory.write_bytes(b"\xef\xbb\xbf" + f"{question}\tsw\tjibu\r\nOther text\tsw\tnyingine\r\n".encode())
    backend = MemoryBackend(str(memory))
    assert backend.translate([Request(question, "en", "sw", "x"), Request("Other text", "en", "sw", "y")]) == \
        ["jibu", "nyingine"]


def _fixed(text, protects_numbers=False):
    """A backend answering every request with `text`."""
    class T:
        name, model_id, prompt_version = "t", text, "v1"

        def translate(self, requests):
            return [text for _ in requests]
    T.protects_numbers = protects_numbers
    return T()


@pytest.mark.parametrize("translation, protects, reasons", [
    ("Calcula el área de un triángulo con una base de 10 unidades y una altura de 5 unidades.", False, {}),
    # both numbers before the same word ("units"): the segment check names it first
    ("Calcula el área de un triángulo con una base de 5 unidades y una altura de 10 unidades.", False,
     {"numbers_swapped": 1}),
    ("Calcula el área de un triángulo con una base de ⟦1⟧ unidades y una altura de ⟦0⟧ unidades.", True,
     {"numbers_swapped": 1}),  # swapped placeholders
    # numbers before different words: a swap the segment check cannot tell from word order, the call's arguments can
    ("Calcula el área de un triángulo con una base de 5 y una altura de 10 unidades.", False,
     {"argument_order_changed": 1}),
])
def test_swapped_numeric_arguments_are_caught(tmp_path, translation, protects, reasons):
    """"base 10, height 5" -> "base 5, height 10" kept the numbers and passed, while the call says base=10: the
    label taught the wrong argument. Numeric argument values of the calls must keep their order in a turn."""
    source = "Find the area of a triangle with a base of 10 units and height of 5 units."
    if "base de 5 y" in translation:
        source = "Find the area of a triangle with a base of 10 and a height of 5 units."
    ex = Example(id="b-en", source_id="b", task="api", language="en", messages=[
        {"role": "user", "content": source}],
        reference={"calls": [{"calculate_triangle_area": {"base": [10], "height": [5], "unit": ["units", ""]}}]})
    out, qa = translate_examples([ex], ["es"], _fixed(translation, protects), TranslationCache(tmp_path / "c.sqlite"),
                                 ["en", "es"], retries=0, policy="flag")
    assert qa["es"].reasons == reasons and len(out) == 1
    assert out[0].reference.get("translation_flags", []) == sorted(reasons)


def test_an_identifier_of_a_call_in_the_history_is_checked(tmp_path):
    """Only the final reference call was checked: an example whose reference is a later call passed although the
    translated user turn had lost `JaneSmith`, the argument of the `GetUserToken` call in its history. Its
    plain-language assistant turn stays in English, and qa.md says so."""
    ex = Example(id="h-en", source_id="h", task="api", language="en", messages=[
        {"role": "user", "content": "Add a meeting. My username is JaneSmith and my password is secret."},
        {"role": "assistant", "content": '{"name": "GetUserToken", "arguments": {"username": "JaneSmith", '
                                         '"password": "secret"}}'},
        {"role": "user", "content": 'API result: {"token": "a1b2c3"}'},
        {"role": "assistant", "content": "I have your token. Now I will add the meeting."}],
        reference={"calls": [{"AddAgenda": {"token": ["a1b2c3"], "content": ["meeting"]}}]})
    keeps = "Añade una reunión. Mi usuario es JaneSmith y mi contraseña es secret."
    drops = "Añade una reunión. Mi usuario es Juana y mi contraseña es secreta."
    out, qa = translate_examples([ex], ["es"], _fixed(keeps), TranslationCache(tmp_path / "a.sqlite"), ["en", "es"],
                                 retries=0)
    assert qa["es"].passed == 1 and qa["es"].assistant_english_turns == 1
    assert "es 1 turns in 1 of 1 kept examples" in qa_table(qa)
    _, qa = translate_examples([ex], ["es"], _fixed(drops), TranslationCache(tmp_path / "b.sqlite"), ["en", "es"],
                               retries=0)
    assert qa["es"].excluded == 1 and qa["es"].reasons == {"argument_changed": 1}


def test_a_multilingual_source_translates_its_english_rows(tmp_path):
    """A parallel file (English and Spanish rows) ended in `ValueError: translation sources must be English`, a
    traceback with exit 1."""
    src = tmp_path / "p.jsonl"
    src.write_text('{"id": 1, "language": "en", "question": "Tom has 3 apples and buys 4 more. How many?", '
                   '"answer": 7}\n{"id": 1, "language": "es", "question": "Tom tiene 3 manzanas y compra 4 más. '
                   '¿Cuántas?", "answer": 7}\n', encoding="utf-8")
    memory = tmp_path / "m.tsv"
    memory.write_text("Tom has 3 apples and buys 4 more. How many?\tfr\tTom a 3 pommes et en achète 4 de plus. "
                      "Combien ?\n", encoding="utf-8")
    args = ["translate", str(src), "--format", "parallel", "--to", "fr", "--backend", "memory", "--memory",
            str(memory), "--cache", str(tmp_path / "c.sqlite")]
    result = CliRunner().invoke(app, [*args, "--out", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    assert "skipped 1 rows in other languages (es 1)" in " ".join(result.output.split())
    rows = [json.loads(line) for line in (tmp_path / "out" / "data.jsonl").read_text().splitlines()]
    assert sorted(r["language"] for r in rows) == ["en", "fr"]
    src.write_text(src.read_text().splitlines()[1] + "\n", encoding="utf-8")
    only_es = CliRunner().invoke(app, [*args, "--out", str(tmp_path / "o2")])
    assert only_es.exit_code == 2 and "no English rows" in only_es.output and "Traceback" not in only_es.output

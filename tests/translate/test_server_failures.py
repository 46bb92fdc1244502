"""What the OpenAI-compatible backend does when the server misbehaves or is gone: a malformed Retry-After, an
unreachable server, a Ctrl-C while requests hang."""

import threading

import pytest

from langmix.translate.backends import OpenAIBackend, Request


@pytest.mark.parametrize("header", ["1.2.3", "²", "-1", "nan", "soon", ""])
def test_a_malformed_retry_after_falls_back_to_the_backoff(canned, header):
    """`Retry-After: 1.2.3` passed the `.replace('.', '').isdigit()` guard and float() raised ValueError out of the
    worker (a traceback, exit 1); `²` is a digit to isdigit() but not to float(); `-1` and `nan` made time.sleep
    raise."""
    server, url = canned(429, headers={"Retry-After": header})
    backend = OpenAIBackend(url, "m", api_key_env=None, max_retries=2, backoff=0.0, concurrency=2)
    assert backend.translate([Request("Hello 3?", "en", "es", "x#0")]) == [None]
    assert server.requests == 3 and backend.stats == {"requests": 3, "retries": 2, "failures": 1}


def test_retry_after_in_seconds_or_as_a_date():
    from langmix.translate.requesting import retry_after_seconds

    assert retry_after_seconds("0") == 0.0 and retry_after_seconds(" 2.5 ") == 2.5
    assert retry_after_seconds("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0  # a date in the past: no wait
    assert [retry_after_seconds(v) for v in (None, "", "1.2.3", "²", "-1", "nan", "inf", "soon")] == [None] * 8


def test_ctrl_c_sends_no_request_or_retry_after_it(canned):
    """With a hanging server, `--timeout 5 --retries 3`, the process kept retrying for 20 s after SIGINT: the pool's
    running requests went on through their retries, and the interpreter waited for them at exit."""
    import os
    import signal

    server, url = canned(200, hang=True)
    backend = OpenAIBackend(url, "m", api_key_env=None, timeout=1.0, max_retries=3, backoff=0.0, concurrency=2)
    before = set(threading.enumerate())

    def interrupt_when_both_are_in_flight():
        while server.requests < 2:
            server.stopped.wait(0.01)
        os.kill(os.getpid(), signal.SIGINT)  # the user's Ctrl-C, delivered to the main thread

    threading.Thread(target=interrupt_when_both_are_in_flight, daemon=True).start()
    with pytest.raises(KeyboardInterrupt):
        backend.translate([Request(f"Hello {i}?", "en", "es", f"x{i}#0") for i in range(6)])
    workers = [t for t in threading.enumerate()
               if t not in before and t.name.startswith(("translate", "ThreadPoolExecutor"))]
    for thread in workers:  # each ends when its request in flight times out (1 s), instead of retrying
        thread.join(timeout=20)
    assert not any(t.is_alive() for t in workers)
    assert server.requests == 2 and backend.stats["retries"] == 0 and backend.stats["requests"] == 2


QUESTIONS = [f"{name} has 3 apples and buys 2 more. How many apples does {name} have now?"
             for name in ("Tom", "Ann", "Raj", "Eva", "Kim")]


def _source(tmp_path) -> str:
    import json

    path = tmp_path / "s.jsonl"
    path.write_text("".join(json.dumps({"id": f"q{i}-en", "source_id": f"q{i}", "task": "math", "language": "en",
                                        "reference": {"answer": 5}, "messages": [{"role": "user", "content": q}]})
                            + "\n" for i, q in enumerate(QUESTIONS)), encoding="utf-8")
    return str(path)


def test_an_interrupted_run_exits_130_with_one_line_and_keeps_what_it_received(tmp_path, monkeypatch):
    """Ctrl-C ended the command with click's 'Aborted!' and exit 1 (after the retries of the requests in flight)."""
    from typer.testing import CliRunner

    from langmix.cli import app
    from langmix.translate.cache import TranslationCache
    from langmix.translate.testing import FakeServer

    server = FakeServer({(q, "Spanish"): q.replace(" has ", " tiene ") for q in QUESTIONS}).start()
    real_one, asked = OpenAIBackend._one, []

    def one(self, request, stop):
        asked.append(request)
        if len(asked) == 3:  # the user presses Ctrl-C during the 3rd request
            raise KeyboardInterrupt
        return real_one(self, request, stop)

    monkeypatch.setattr(OpenAIBackend, "_one", one)
    try:
        result = CliRunner().invoke(app, ["translate", _source(tmp_path), "--to", "es", "--base-url", server.url,
                                          "--model", "m", "--no-api-key", "--concurrency", "1", "--out",
                                          str(tmp_path / "out"), "--cache", str(tmp_path / "c.sqlite")])
    finally:
        server.stop()
    assert result.exit_code == 130, result.output
    lines = [line for line in result.output.splitlines() if "interrupted" in line]
    assert len(lines) == 1 and "Traceback" not in result.output and "Aborted" not in result.output
    assert "a re-run resumes from them" in " ".join(result.output.split())
    assert server.requests == 2 and len(TranslationCache(tmp_path / "c.sqlite")) == 2
    assert not (tmp_path / "out").exists()


def _closed_port_url() -> str:
    import socket

    with socket.socket() as sock:  # a port that was free a moment ago: nothing listens there
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1"


def test_an_unreachable_server_ends_the_run_after_a_few_requests(tmp_path):
    """A closed port was retried for every segment: 64 segments took 73 s before "nothing was translated" (hours
    for a real data set)."""
    from langmix.translate.backends import ServerUnreachable

    backend = OpenAIBackend(_closed_port_url(), "m", api_key_env=None, max_retries=1, backoff=0.0, concurrency=1)
    with pytest.raises(ServerUnreachable, match=r"cannot be reached: 3 requests in a row failed to connect .*"
                                                r"Connection refused.*2 attempts each"):
        backend.translate([Request(f"Hello {i}?", "en", "es", f"x{i}#0") for i in range(10)])
    assert backend.stats == {"requests": 6, "retries": 3, "failures": 3}


def test_connection_failures_count_only_in_a_row_and_not_a_busy_servers_errors(canned):
    import urllib.error

    from langmix.translate.backends import TransientError

    outcomes = ["refused", "refused", "ok", "refused", "refused", "ok", "refused", "refused"]

    def post(payload):  # as OpenAIBackend._post reports a refused connection
        if outcomes.pop(0) == "refused":
            try:
                raise urllib.error.URLError(ConnectionRefusedError(111, "Connection refused"))
            except urllib.error.URLError:
                raise TransientError("URLError (Connection refused)", None) from None
        return "Hola"

    backend = OpenAIBackend("http://127.0.0.1:9/v1", "m", api_key_env=None, max_retries=0, concurrency=1)
    backend._post = post
    assert backend.translate([Request(f"Hi {i}", "en", "es", f"x{i}#0") for i in range(8)]) == [
        None, None, "Hola", None, None, "Hola", None, None]
    server, url = canned(503, b'{"error": "busy"}')  # a busy server answers: not unreachable
    busy = OpenAIBackend(url, "m", api_key_env=None, max_retries=0, concurrency=2)
    assert busy.translate([Request(f"Hi {i}", "en", "es", f"x{i}#0") for i in range(6)]) == [None] * 6
    assert server.requests == 6


def test_a_timeout_is_not_a_connection_failure(canned):
    server, url = canned(200, hang=True)
    backend = OpenAIBackend(url, "m", api_key_env=None, timeout=1.0, max_retries=0, concurrency=4)
    assert backend.translate([Request(f"Hi {i}", "en", "es", f"x{i}#0") for i in range(4)]) == [None] * 4
    assert server.requests == 4


def test_the_command_line_says_in_one_line_that_the_server_cannot_be_reached(tmp_path):
    from typer.testing import CliRunner

    from langmix.cli import app

    url = _closed_port_url()
    result = CliRunner().invoke(app, ["translate", _source(tmp_path), "--to", "es", "--base-url", url, "--model",
                                      "m", "--no-api-key", "--retries", "0", "--out", str(tmp_path / "out"),
                                      "--cache", str(tmp_path / "c.sqlite")])
    assert result.exit_code == 2, result.output
    text = " ".join(result.output.split())
    assert f"the translation server at {url} cannot be reached: 3 requests in a row failed to connect" in text
    assert "a re-run resumes from them" in text and "Traceback" not in result.output
    assert not (tmp_path / "out").exists()


def test_a_failed_batchs_workers_send_nothing_when_the_next_batch_starts():
    """A batch that ended on an error left its daemon workers alive (one with a request in flight); the next
    translate() cleared the shared stop event and that worker went on with the dead batch's queue: after a
    BackendRefused, the next call sent all 5 leftover requests."""
    from langmix.translate.backends import BackendRefused

    sent, release = [], threading.Event()

    def post(payload):
        text = payload["messages"][-1]["content"]
        sent.append(text)
        if "slow" in text:
            release.wait(30)  # a request still in flight when the batch fails
        if "FAIL" in text:
            raise BackendRefused("refused")
        return "ok"

    backend = OpenAIBackend("http://127.0.0.1:9/v1", "m", api_key_env=None, concurrency=2)
    backend._post = post
    before = set(threading.enumerate())
    first = [Request("slow A", "en", "es", "s#0"), Request("FAIL", "en", "es", "f#0")] + [
        Request(f"old {i}", "en", "es", f"o{i}#0") for i in range(5)]
    with pytest.raises(BackendRefused):
        backend.translate(first)
    ghosts = [t for t in threading.enumerate() if t not in before and t.name.startswith("translate")]
    assert backend.translate([Request("new 0", "en", "es", "n#0")]) == ["ok"]
    release.set()
    for thread in ghosts:
        thread.join(timeout=20)
    assert not any(t.is_alive() for t in ghosts)
    assert [t for t in sent if t.startswith("old")] == [] and sorted(sent) == ["FAIL", "new 0", "slow A"]

"""What the OpenAI-compatible backend does when the server misbehaves or is gone: a malformed Retry-After, an
unreachable server, a Ctrl-C while requests hang."""

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from langmix.translate.backends import OpenAIBackend, Request


@pytest.fixture
def throttling():
    """A local server answering every POST with 429 and the given Retry-After header; counts the requests."""
    servers = []

    def start(retry_after: str):
        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                server.requests += 1
                self.send_response(429)
                self.send_header("Retry-After", retry_after)
                self.send_header("Content-Length", "0")
                self.end_headers()

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        server.requests = 0
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return server, f"http://127.0.0.1:{server.server_address[1]}/v1"

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize("header", ["1.2.3", "²", "-1", "nan", "soon", ""])
def test_a_malformed_retry_after_falls_back_to_the_backoff(throttling, header):
    """`Retry-After: 1.2.3` passed the `.replace('.', '').isdigit()` guard and float() raised ValueError out of the
    worker (a traceback, exit 1); `²` is a digit to isdigit() but not to float(); `-1` and `nan` made time.sleep
    raise."""
    server, url = throttling(header)
    backend = OpenAIBackend(url, "m", api_key_env=None, max_retries=2, backoff=0.0, concurrency=2)
    assert backend.translate([Request("Hello 3?", "en", "es", "x#0")]) == [None]
    assert server.requests == 3 and backend.stats == {"requests": 3, "retries": 2, "failures": 1}


def test_retry_after_in_seconds_or_as_a_date():
    from langmix.translate.backends import retry_after_seconds

    assert retry_after_seconds("0") == 0.0 and retry_after_seconds(" 2.5 ") == 2.5
    assert retry_after_seconds("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0  # a date in the past: no wait
    assert [retry_after_seconds(v) for v in (None, "", "1.2.3", "²", "-1", "nan", "inf", "soon")] == [None] * 8

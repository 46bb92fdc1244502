"""A local OpenAI-compatible chat-completions server for tests and benchmarks (127.0.0.1 only).

It answers from a translation memory {(english text, language name): translation}, can add latency, and can
inject 429s, 500s, timeouts and corrupted outputs. When the request masks numbers with ⟦n⟧ placeholders, the
answer masks the same numbers, as a careful LLM translator would.
"""

from __future__ import annotations

import json
import random
import re
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from langmix.translate.structure import PLACEHOLDER, protect

_TARGET = re.compile(r"into ([A-Z][a-z]+)\.")


@dataclass
class Faults:
    rate_429: float = 0.0
    rate_500: float = 0.0
    rate_timeout: float = 0.0  # sleeps past the client's timeout
    rate_corrupt: float = 0.0  # drops the first number of the answer
    latency: float = 0.0
    timeout_sleep: float = 2.0
    seed: int = 0


@dataclass
class FakeServer:
    memory: dict[tuple[str, str], str]
    faults: Faults = field(default_factory=Faults)
    requests: int = 0
    port: int = 0

    def start(self) -> "FakeServer":
        rng = random.Random(self.faults.seed)
        lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep test output clean
                pass

            def do_POST(self):
                length = int(self.headers.get("Content-Length", 0))
                payload = json.loads(self.rfile.read(length))
                with lock:
                    server.requests += 1
                    roll = rng.random()
                f = server.faults
                if f.latency:
                    time.sleep(f.latency)
                if roll < f.rate_429:
                    return self._send(429, {"error": "rate limited"}, {"Retry-After": "0"})
                if roll < f.rate_429 + f.rate_500:
                    return self._send(500, {"error": "boom"})
                if roll < f.rate_429 + f.rate_500 + f.rate_timeout:
                    time.sleep(f.timeout_sleep)
                    return self._send(500, {"error": "too late"})
                text = server.answer(payload)
                if roll > 1 - f.rate_corrupt:
                    text = re.sub(r"⟦\d+⟧|\d+", "", text, count=1)
                self._send(200, {"choices": [{"message": {"role": "assistant", "content": text}}]})

            def _send(self, code, body, headers=None):
                data = json.dumps(body, ensure_ascii=False).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                try:
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass

        class Server(ThreadingHTTPServer):
            request_queue_size = 128  # the default backlog of 5 stalls concurrent clients

        self._httpd = Server(("127.0.0.1", self.port), Handler)
        self._httpd.daemon_threads = True
        self.port = self._httpd.server_address[1]
        threading.Thread(target=self._httpd.serve_forever, daemon=True).start()
        self._masked = {}
        for (english, lang), _ in self.memory.items():
            masked, spans = protect(english)
            self._masked[(masked, lang)] = (english, spans)
        return self

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def answer(self, payload: dict) -> str:
        system, user = payload["messages"][0]["content"], payload["messages"][-1]["content"]
        match = _TARGET.search(system)
        lang = match.group(1) if match else "?"
        if (user, lang) in self.memory:
            return self.memory[(user, lang)]
        if (user, lang) in self._masked:
            english, spans = self._masked[(user, lang)]
            return _mask_like(self.memory[(english, lang)], spans)
        return user  # unknown text: echo it back (the copy-through validator must catch this)

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()


def _mask_like(translation: str, spans: list[str]) -> str:
    """Replace numbers in `translation` by the placeholder of the same source span, where one matches."""
    index: dict[str, int] = {}
    for i, span in enumerate(spans):
        index.setdefault(span, i)
    masked, found = protect(translation)

    def sub(match: re.Match) -> str:
        text = found[int(match.group(1))]
        return f"⟦{index[text]}⟧" if text in index else text

    return PLACEHOLDER.sub(sub, masked)

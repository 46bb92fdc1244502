import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from langmix import languages as langs
from langmix.data.math_data import load_gsm8k, load_mgsm
from langmix.translate.testing import FakeServer, Faults
from tests.shared_data import shared

TARGETS = ["es", "fr", "de", "ru", "zh", "ja", "th", "sw", "bn", "te"]


@pytest.fixture(scope="session")
def gsm_questions():
    """The first 250 GSM8K test questions (= MGSM's English items), as question-only examples."""
    return [ex.model_copy(update={"messages": ex.messages[:1]})
            for ex in load_gsm8k(shared("gsm8k", "test.jsonl"), limit=250)]


@pytest.fixture(scope="session")
def mgsm_memory(gsm_questions):
    """{(English question, language name): MGSM human translation}."""
    english = {ex.source_id: ex.messages[0]["content"] for ex in gsm_questions}
    return {(english[ex.source_id], langs.get(ex.language).name): ex.messages[-1]["content"]
            for ex in load_mgsm(shared("mgsm"), TARGETS)}


@pytest.fixture(scope="session")
def mgsm_pairs():
    """(English question, its MGSM human translation, language): 2,500 good translations, for measuring how often
    a check rejects one."""
    mgsm = load_mgsm(shared("mgsm"))
    english = {ex.source_id: ex.messages[-1]["content"] for ex in mgsm if ex.language == "en"}
    return [(english[ex.source_id], ex.messages[-1]["content"], ex.language) for ex in mgsm if ex.language != "en"]


@pytest.fixture
def server(mgsm_memory):
    servers = []

    def start(**faults):
        srv = FakeServer(mgsm_memory, Faults(**faults)).start()
        servers.append(srv)
        return srv

    yield start
    for srv in servers:
        srv.stop()


@pytest.fixture
def canned():
    """A local server answering every POST with one canned (status, body) and any extra `headers`; counts the
    requests and keeps their Authorization headers (`server.auth`). With `hang`, it never answers in time: each
    POST waits (up to 30 s) until the test ends."""
    servers = []

    def start(status: int, body: bytes = b"", headers: dict[str, str] | None = None, hang: bool = False):
        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with server.lock:
                    server.requests += 1
                    server.auth.append(self.headers.get("Authorization"))
                if hang:
                    server.stopped.wait(30)
                    return
                self.send_response(status)
                for name, value in {"Content-Type": "application/json", **(headers or {})}.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        server.daemon_threads = True
        server.requests, server.auth, server.lock, server.stopped = 0, [], threading.Lock(), threading.Event()
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return server, f"http://127.0.0.1:{server.server_address[1]}/v1"

    yield start
    for server in servers:
        server.stopped.set()
        server.shutdown()
        server.server_close()

"""Translation backends, one interface: `translate(requests) -> list[str | None]` (None = not available).

- openai: any OpenAI-compatible chat-completions server; bounded concurrency, timeouts, retries with exponential
  backoff on 429/5xx (honouring Retry-After), an optional request-rate limit; a server that cannot be reached ends
  the run (`ServerUnreachable`), and Ctrl-C stops it at once. The key is read from an environment variable and
  never logged.
- seq2seq: a Hugging Face translation model (M2M100, NLLB, MADLAD, Marian), batched.
- causal: a local causal LM prompted to translate, batched greedy generation.
- memory: a translation memory of existing translations; a miss is None, never an invention (`memory.py`).
"""

from __future__ import annotations

import http.client
import json
import logging
import os
import re
import random
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field

from langmix import languages as langs
from langmix.errors import UserInputError
from langmix.translate.identity import is_local_url, key_variable_problem, public_url, weights_identity
from langmix.translate.memory import MemoryBackend  # noqa: F401  (one interface: every backend is here)
from langmix.translate.requesting import could_not_connect, retry_after_seconds, run_each

log = logging.getLogger(__name__)

PROMPT_VERSION = "v1"
SYSTEM_PROMPT = ("You are a professional translator. Translate the user's text from {src} into {tgt}. Keep every "
                 "placeholder like ⟦0⟧ exactly as it is, keep names, numbers and formulas unchanged, and reply with "
                 "the translation only.")


@dataclass
class Request:
    text: str
    src: str
    tgt: str
    source_id: str = ""
    hint: str | None = None  # why the previous attempt was rejected (LLM backends put it in the prompt)


def _names(req: Request) -> tuple[str, str]:
    return langs.get(req.src).name, langs.get(req.tgt).name


def chat_prompt(req: Request) -> list[dict[str, str]]:
    src, tgt = _names(req)
    system = SYSTEM_PROMPT.format(src=src, tgt=tgt)
    if req.hint:
        system += f" A previous translation was rejected ({req.hint}); avoid that."
    return [{"role": "system", "content": system}, {"role": "user", "content": req.text}]


class TransientError(RuntimeError):
    """A failure worth retrying (429, 5xx, timeout, connection reset, a malformed or cut-off response body)."""


class SegmentRefused(RuntimeError):
    """A failure of this request alone that a retry would repeat (HTTP 400/413/422, e.g. a context length
    exceeded; output cut at the token limit): the segment is a backend miss, and the run goes on."""


class BackendRefused(UserInputError):
    """The server refuses every request (HTTP 401/403/404: the key, the URL or the model name)."""


class ServerUnreachable(UserInputError):
    """Several requests in a row could not connect to the server, each after all its retries (connection refused,
    no such host, network unreachable): the URL is wrong or the server is down, and every other request would
    fail the same way."""


_THINK = re.compile(r"<think>.*?</think>\s*", re.S)
# Thinking whose opening tag was in the prompt (chat templates that open the block themselves): up to `</think>`.
_THOUGHT_BEFORE = re.compile(r"^(?:(?!<think>).)*</think>\s*", re.S)



@dataclass
class OpenAIBackend:
    """`api_key_env` names the environment variable holding the key; None sends no key (a server that needs none).
    A name that looks like a key is refused without echoing it. An unset variable is an error for a remote server
    and a warning naming it for a local one (localhost, 127.x), whose requests then go without a key."""

    base_url: str
    model: str
    api_key_env: str | None = "OPENAI_API_KEY"
    concurrency: int = 16
    timeout: float = 30.0
    max_retries: int = 5
    backoff: float = 0.5
    requests_per_second: float | None = None
    unreachable_after: int = 3  # requests in a row that cannot connect, after their retries, end the run
    temperature: float = 0.0
    name: str = "openai"
    protects_numbers: bool = True
    reports_each: bool = True  # translate(requests, done=...) reports each request as it completes
    stats: dict[str, int] = field(default_factory=lambda: {"requests": 0, "retries": 0, "failures": 0})
    on_retry: Callable[[], None] | None = field(default=None, repr=False)  # each retry of a request (any thread)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _next_slot: float = 0.0
    _unconnected: int = 0  # requests in a row that could not connect
    _key: str | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if self.api_key_env is None:
            return
        problem = key_variable_problem(self.api_key_env)
        if problem:
            raise UserInputError(problem)
        self._key = os.environ.get(self.api_key_env) or None
        if self._key:
            return
        if not is_local_url(self.base_url):
            raise UserInputError(f"${self.api_key_env} is not set: the key for {public_url(self.base_url)} is read "
                                 f"from it (export it, name another variable with --api-key-env, or pass "
                                 f"--no-api-key for a server that needs none)")
        log.warning("$%s is not set: requests to the local server %s go without a key (--no-api-key says that "
                    "none is needed)", self.api_key_env, public_url(self.base_url))

    @property
    def prompt_version(self) -> str:
        return PROMPT_VERSION

    @property
    def model_id(self) -> str:
        """The cache's identity of the translator: the model name at this server (another --base-url may serve
        other weights under the same name); the URL without credentials."""
        return f"{self.model}@{public_url(self.base_url)}"

    def _wait_for_rate_limit(self, stop: threading.Event) -> None:
        if not self.requests_per_second:
            return
        with self._lock:
            now = time.monotonic()
            slot = max(now, self._next_slot)
            self._next_slot = slot + 1.0 / self.requests_per_second
        stop.wait(max(0.0, slot - now))

    def _post(self, payload: dict) -> str:
        headers = {"Content-Type": "application/json"}
        if self._key:
            headers["Authorization"] = f"Bearer {self._key}"
        request = urllib.request.Request(self.base_url.rstrip("/") + "/chat/completions",
                                         data=json.dumps(payload).encode(), headers=headers, method="POST")
        with self._lock:
            self.stats["requests"] += 1
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                body = json.loads(response.read())
        except urllib.error.HTTPError as exc:
            if exc.code == 429 or exc.code >= 500:
                raise TransientError(f"HTTP {exc.code}", exc.headers.get("Retry-After")) from None
            if exc.code in (401, 403, 404):
                key = f"the key in ${self.api_key_env}" if self._key else "that it needs no key (none was sent)"
                raise BackendRefused(f"the translation server refused the request: HTTP {exc.code} (check "
                                     f"--base-url, --model and {key})") from None
            raise SegmentRefused(f"HTTP {exc.code}") from None
        except (urllib.error.URLError, TimeoutError, ConnectionError, OSError) as exc:
            reason = getattr(exc, "reason", None)
            raise TransientError(f"{type(exc).__name__}{f' ({reason})' if reason else ''}", None) from None
        except (ValueError, http.client.HTTPException) as exc:  # not JSON (an HTML page), or a cut-off body
            raise TransientError(f"malformed response ({type(exc).__name__})", None) from None
        try:
            choice = body["choices"][0]
            content = choice["message"]["content"]
        except (KeyError, IndexError, TypeError):
            raise TransientError("malformed response", None) from None
        if not isinstance(content, str):
            raise TransientError(f"malformed response (content is {type(content).__name__})", None)
        if choice.get("finish_reason") == "length":
            raise SegmentRefused("the output was cut at the server's token limit")
        # A reasoning model's thinking is not the translation. An unclosed `<think>` cannot be told from the
        # translation after it: it is left in, and validation refuses it (`reasoning_left`, retried with that).
        return _THOUGHT_BEFORE.sub("", _THINK.sub("", content))

    def _one(self, req: Request, stop: threading.Event) -> str | None:
        """One request with its retries; none is sent, and no retry, once `stop` (its batch's) is set."""
        payload = {"model": self.model, "messages": chat_prompt(req), "temperature": self.temperature}
        for attempt in range(self.max_retries + 1):
            self._wait_for_rate_limit(stop)
            if stop.is_set():  # the batch was interrupted or failed: nothing more is sent
                return None
            try:
                text = self._post(payload)
                self._connected()
                return text
            except SegmentRefused as exc:
                self._connected()
                with self._lock:
                    self.stats["failures"] += 1
                log.warning("translation request for %s refused: %s", req.source_id, exc.args[0])
                return None
            except TransientError as exc:
                if stop.is_set():
                    return None
                unconnected = could_not_connect(exc)
                if not unconnected:
                    self._connected()
                if attempt == self.max_retries:
                    with self._lock:
                        self.stats["failures"] += 1
                    log.warning("translation request for %s failed after %d attempts: %s", req.source_id, attempt + 1,
                                exc.args[0])
                    if unconnected:
                        self._not_connected(exc.args[0])
                    return None
                delay = retry_after_seconds(exc.args[1] if len(exc.args) > 1 else None)
                if delay is None:  # none given, or not a number of seconds or a date: the usual backoff
                    delay = self.backoff * 2 ** attempt * (0.5 + random.random())
                with self._lock:
                    self.stats["retries"] += 1
                if self.on_retry:
                    self.on_retry()
                stop.wait(min(delay, 30.0))
        return None

    def _connected(self) -> None:
        with self._lock:
            self._unconnected = 0

    def _not_connected(self, reason: str) -> None:
        with self._lock:
            self._unconnected += 1
            n = self._unconnected
        if n >= self.unreachable_after:
            raise ServerUnreachable(f"the translation server at {public_url(self.base_url)} cannot be reached: {n} "
                                    f"requests in a row failed to connect ({reason}; {self.max_retries + 1} "
                                    f"attempt{'' if self.max_retries == 0 else 's'} each): check --base-url and "
                                    f"that the server is running")

    def translate(self, requests: list[Request], done: Callable[[int, str | None], None] | None = None
                  ) -> list[str | None]:
        """Translations in request order. `done(i, text)` is called in this thread as each request completes, so a
        caller can keep finished work when the batch is interrupted (Ctrl-C) or fails part-way; on an error or an
        interrupt no request or retry is sent after it, and the requests in flight are abandoned (`run_each`)."""
        results: list[str | None] = [None] * len(requests)

        def finished(i: int, text: str | None) -> None:
            results[i] = text
            if done:
                done(i, text)

        # A new event for each batch: the workers of an earlier batch that ended on an error (daemon threads, one
        # may still have a request in flight) keep theirs set and send nothing more of their dead batch's queue.
        stop = threading.Event()
        if self.concurrency <= 1:  # in this thread: Ctrl-C interrupts the request itself
            for i, r in enumerate(requests):
                finished(i, self._one(r, stop))
            return results
        run_each(requests, lambda r: self._one(r, stop), self.concurrency, stop, finished)
        return results


# Language-code conventions of the common translation model families.
def model_language_code(code: str, family: str) -> str:
    lang = langs.get(code)
    if family == "nllb":
        return f"{lang.uriel if lang.code != 'zh' else 'zho'}_{'Hans' if lang.code == 'zh' else lang.script}"
    if family == "madlad":
        return f"<2{lang.code}>"
    return lang.code  # m2m100 and marian use ISO 639-1


@dataclass
class Seq2SeqBackend:
    """A transformers encoder-decoder translation model (local path or hub id), batched greedy decoding."""

    model_path: str
    family: str = "m2m100"  # m2m100 | nllb | madlad | marian
    batch_size: int = 16
    max_new_tokens: int = 256
    name: str = "seq2seq"
    protects_numbers: bool = False  # translation models mangle placeholders: translate raw text, verify after
    prompt_version: str = PROMPT_VERSION

    def __post_init__(self) -> None:
        from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

        self.tokenizer = AutoTokenizer.from_pretrained(self.model_path)
        self.model = AutoModelForSeq2SeqLM.from_pretrained(self.model_path).eval()
        self.model_name = weights_identity(str(self.model_path), self.model)

    @property
    def model_id(self) -> str:
        return self.model_name

    def translate(self, requests: list[Request]) -> list[str | None]:
        import torch

        out: list[str | None] = []
        for start in range(0, len(requests), self.batch_size):
            batch = requests[start:start + self.batch_size]
            src, tgt = batch[0].src, batch[0].tgt
            texts = [r.text for r in batch]
            kwargs = {}
            if self.family in ("m2m100", "nllb"):
                self.tokenizer.src_lang = model_language_code(src, self.family)
                kwargs["forced_bos_token_id"] = self.tokenizer.convert_tokens_to_ids(
                    self.tokenizer.lang_code_to_token[model_language_code(tgt, self.family)]
                    if hasattr(self.tokenizer, "lang_code_to_token") else model_language_code(tgt, self.family))
            elif self.family == "madlad":
                texts = [f"{model_language_code(tgt, 'madlad')} {t}" for t in texts]
            enc = self.tokenizer(texts, return_tensors="pt", padding=True, truncation=True)
            with torch.inference_mode():
                ids = self.model.generate(**enc, max_new_tokens=self.max_new_tokens, do_sample=False, **kwargs)
            out += self.tokenizer.batch_decode(ids, skip_special_tokens=True)
        return out


def completion_prompt(req: Request) -> str:
    """A few-shot 'English: ... / Swahili: ...' prompt for base models, with demonstrations drawn from the
    synthetic world's parallel everyday sentences."""
    from langmix.data.synth import load_templates, template_languages

    src, tgt = _names(req)
    lines = []
    if req.tgt in template_languages() and req.src in template_languages():
        for a, b in list(zip(load_templates(req.src)["pretrain"], load_templates(req.tgt)["pretrain"]))[:3]:
            lines += [f"{src}: {a}", f"{tgt}: {b}", ""]
    return "\n".join(lines + [f"{src}: {req.text}", f"{tgt}:"])


@dataclass
class CausalBackend:
    """A local causal LM (any langmix model config) prompted to translate: `chat` (instruction in the chat
    template, for instruction-tuned models) or `completion` (few-shot continuation, for base models)."""

    model_cfg: object
    batch_size: int = 16
    max_new_tokens: int = 256
    style: str = "chat"
    name: str = "causal"
    protects_numbers: bool = True

    @property
    def prompt_version(self) -> str:
        return f"{PROMPT_VERSION}-{self.style}"

    def __post_init__(self) -> None:
        from langmix.models import load_model, load_tokenizer, resolve_model_path

        path = resolve_model_path(self.model_cfg)
        self.tokenizer, self.model = load_tokenizer(self.model_cfg, path), load_model(self.model_cfg, path)
        self.model.eval()
        self.model_id = f"{self.model_cfg.name}:{weights_identity(path, self.model)}"

    def translate(self, requests: list[Request]) -> list[str | None]:
        from langmix.evaluate.generate import generate
        from langmix.records import Example

        if self.style == "completion":
            return self._complete([completion_prompt(r) for r in requests])
        examples = [Example(id=str(i), source_id=str(i), task="translate", language=r.tgt, messages=chat_prompt(r))
                    for i, r in enumerate(requests)]
        outputs = generate(self.model, self.tokenizer, examples, self.max_new_tokens, self.batch_size)
        return [o.strip().split("\n\n")[0].strip() for o in outputs]

    def _complete(self, prompts: list[str]) -> list[str]:
        import torch

        from langmix.timing import compute

        out: list[str] = []
        self.tokenizer.padding_side = "left"
        for start in range(0, len(prompts), self.batch_size):
            batch = self.tokenizer(prompts[start:start + self.batch_size], return_tensors="pt", padding=True)
            newline = self.tokenizer.convert_tokens_to_ids(self.tokenizer.tokenize("\n"))[-1:]
            with torch.inference_mode(), compute("generate"):
                ids = self.model.generate(**batch, max_new_tokens=self.max_new_tokens, do_sample=False,
                                          eos_token_id=[self.tokenizer.eos_token_id, *newline],
                                          pad_token_id=self.tokenizer.pad_token_id)
            texts = self.tokenizer.batch_decode(ids[:, batch["input_ids"].shape[1]:], skip_special_tokens=True)
            out += [t.strip().split("\n")[0].strip() for t in texts]
        return out

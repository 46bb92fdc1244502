"""What a re-run says about its cache: which cached answers failed validation, how many segments it answered."""

from langmix.records import Example
from langmix.translate.cache import TranslationCache
from langmix.translate.pipeline import translate_examples

EXAMPLE = Example(id="q-en", source_id="q", task="math", language="en", reference={"answer": 7},
                  messages=[{"role": "user", "content": "Tom has 12 apples and gives 5 away. How many are left?"}])
GOOD = "Tom tiene ⟦0⟧ manzanas y da ⟦1⟧. ¿Cuántas le quedan?"
BAD = "Tom tiene manzanas y da ⟦1⟧. ¿Cuántas le quedan?"  # a number dropped: rejected


class Stub:
    """An LLM server whose first answer drops a number; asked again with the rejection reason (`fixes`), right."""
    name, model_id, prompt_version, protects_numbers = "openai", "stub", "v1", True

    def __init__(self, fixes: bool = True) -> None:
        self.fixes, self.calls = fixes, 0

    def translate(self, requests):
        self.calls += len(requests)
        return [GOOD if r.hint and self.fixes else BAD for r in requests]


def _run(cache, fixes: bool = True, retranslate: bool = False):
    stub = Stub(fixes)
    out, qa = translate_examples([EXAMPLE], ["es"], stub, cache, ["en", "es"], retranslate_rejected=retranslate)
    q = qa["es"]
    return q.passed, q.cached_rejections, q.segments_from_cache, stub.calls


def test_a_rejection_whose_retry_is_cached_is_not_reported_as_a_cached_rejection(tmp_path):
    """A re-run warned that the cache answered with rejected translations (and named --retranslate-rejected) for a
    segment whose retry had passed and was cached; the flag then sent a request for it and still reported it
    answered from the cache."""
    cache = TranslationCache(tmp_path / "c.sqlite")
    assert _run(cache) == (1, 0, 0, 2)  # first answer rejected, the retry passes: 2 requests
    assert _run(cache) == (1, 0, 1, 0)  # both answers from the cache; the final one passes: nothing to warn about
    assert _run(cache, retranslate=True) == (1, 0, 0, 1)  # a request was sent: not answered from the cache


def test_a_cached_final_answer_that_is_rejected_is_reported(tmp_path):
    cache = TranslationCache(tmp_path / "c.sqlite")
    assert _run(cache, fixes=False) == (0, 0, 0, 2)
    assert _run(cache, fixes=False) == (0, 1, 1, 0)  # the retry's cached answer is rejected too: warned
    assert _run(cache, fixes=True, retranslate=True) == (1, 0, 0, 2)  # asked again: first answer, then the retry

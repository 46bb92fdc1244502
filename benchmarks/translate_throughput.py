"""Translation throughput against a local OpenAI-compatible server with simulated latency.

2,000 segments, 50 ms per request: concurrency 16 vs sequential (goal >= 10x), then a second run over the
same cache (goal: 0 requests). Prints ratios measured side by side in this run.

    .venv/bin/python benchmarks/translate_throughput.py [--segments 2000] [--latency 0.05]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from langmix.records import Example
from langmix.translate.backends import OpenAIBackend
from langmix.translate.cache import TranslationCache
from langmix.translate.pipeline import translate_examples
from langmix.translate.testing import FakeServer, Faults


def make_segments(n: int) -> tuple[list[Example], dict]:
    examples, memory = [], {}
    for i in range(n):
        text = f"Item {i}: a farmer sells {i % 97 + 2} eggs every morning at the market near the river."
        examples.append(Example(id=f"s{i}-en", source_id=f"s{i}", task="math", language="en",
                                messages=[{"role": "user", "content": text}], reference={"answer": 0}))
        memory[(text, "Spanish")] = (f"Artículo {i}: un granjero vende {i % 97 + 2} huevos cada mañana en el "
                                     f"mercado cerca del río.")
    return examples, memory


def run(examples, server, concurrency: int, cache_path: Path) -> tuple[float, int]:
    backend = OpenAIBackend(server.url, "bench", concurrency=concurrency)
    before = server.requests
    start = time.perf_counter()
    out, qa = translate_examples(examples, ["es"], backend, TranslationCache(cache_path), ["en", "es"])
    assert qa["es"].passed == len(examples), qa["es"]
    return time.perf_counter() - start, server.requests - before


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--segments", type=int, default=2000)
    parser.add_argument("--latency", type=float, default=0.05)
    parser.add_argument("--sequential-sample", type=int, default=200,
                        help="segments timed sequentially (the per-segment time is extrapolated to all)")
    args = parser.parse_args()
    examples, memory = make_segments(args.segments)
    server = FakeServer(memory, Faults(latency=args.latency)).start()
    tmp = Path(tempfile.mkdtemp(prefix="langmix-translate-bench-"))
    try:
        seq_time, seq_requests = run(examples[: args.sequential_sample], server, 1, tmp / "seq.sqlite")
        seq_per_segment = seq_time / args.sequential_sample
        conc_time, conc_requests = run(examples, server, 16, tmp / "conc.sqlite")
        cached_time, cached_requests = run(examples, server, 16, tmp / "conc.sqlite")
    finally:
        server.stop()
    conc_per_segment = conc_time / args.segments
    print(f"segments: {args.segments}, simulated latency {args.latency * 1000:.0f} ms")
    print(f"sequential:      {seq_per_segment * 1000:7.2f} ms/segment ({args.sequential_sample} timed, "
          f"{seq_requests} requests)")
    print(f"concurrency 16:  {conc_per_segment * 1000:7.2f} ms/segment ({conc_requests} requests, "
          f"{conc_time:.1f}s total)")
    print(f"speed-up: {seq_per_segment / conc_per_segment:.1f}x (goal >= 10x)")
    print(f"second run over the cache: {cached_requests} requests (goal 0), {cached_time:.2f}s")


if __name__ == "__main__":
    main()

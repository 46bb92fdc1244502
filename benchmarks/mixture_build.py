"""Mixture building at scale: a 1M-example synthetic mixture built streaming (`build_mixture_streaming`, what
`build_mixture` runs).

"plain" is the in-memory way a script would do it with langmix's own pieces: render every example into a list,
`check_lineage` over the whole list, `build_manifest`, `write_mixture`. First checks on a small mixture that the
streaming builder writes exactly what the plain path writes (data.jsonl byte for byte, the same manifest) and
compares their speed and peak memory there, side by side. Then builds the 1M-example mixture (11 languages,
fixed_total, shared sources allowed) in a child process and reports its time and peak RSS against the goals
(<= 30 s, <= 1 GB). Ends with `langmix vs plain: N.NNx` (streaming vs plain on the small mixture, examples/s).

    .venv/bin/python benchmarks/mixture_build.py
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

LANGS = ["en", "es", "fr", "de", "ru", "zh", "ja", "th", "sw", "bn", "te"]
N_BIG = 1_000_000
N_SMALL = 20_000


def _setup(n: int):
    from langmix.config import BudgetConfig, DataConfig
    from langmix.data.sources import SynthSource
    from langmix.mixtures import MixtureSpec

    pool = -(-n // len(LANGS))
    source = SynthSource(DataConfig(train_pool=pool, eval_items=40))
    spec = MixtureSpec("all11", "fixed", tuple(LANGS))
    budget = BudgetConfig(mode="fixed_total", total=n, allow_shared_sources=True)
    return source, spec, budget, source.eval_examples("math", LANGS)


def child(n: int, out: str, mode: str) -> None:
    """Build one mixture in this process and print a JSON line with its timings and peak RSS."""
    from langmix.lineage import check_lineage, lineage_record
    from langmix.mixtures import build_manifest, build_mixture_streaming, sample_mixture, write_mixture

    t0 = time.perf_counter()
    source, spec, budget, evaluation = _setup(n)
    t1 = time.perf_counter()
    if mode == "streaming":
        workers = os.cpu_count() or 1
        manifest = build_mixture_streaming(source, spec, "math", budget, 0, evaluation, Path(out), workers=workers)
    else:
        workers = 1
        pool_size, render = source.pool("math", list(spec.languages))
        examples = sample_mixture(spec, pool_size, render, budget, 0, tag="math")
        report = check_lineage(examples, evaluation)
        manifest = build_manifest(spec, "math", budget, 0, examples)
        manifest["lineage_checked"] = lineage_record(evaluation)
        if report.near_duplicates:
            manifest["near_duplicates_of_eval"] = [list(d) for d in report.near_duplicates]
        write_mixture(Path(out), examples, manifest)
    t2 = time.perf_counter()
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    print(json.dumps({"setup_s": t1 - t0, "build_s": t2 - t1, "n": manifest["n_examples"], "workers": workers,
                      "peak_rss_mb": max(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, children) / 1024}))


def run_child(n: int, out: Path, mode: str) -> dict:
    res = subprocess.run([sys.executable, __file__, "--child", str(n), str(out), mode], capture_output=True,
                         text=True, check=True)
    return json.loads(res.stdout.strip().splitlines()[-1])


def main() -> None:
    tmp = Path(tempfile.mkdtemp(prefix="langmix-mixture-bench-"))
    small = {mode: run_child(N_SMALL, tmp / mode, mode) for mode in ("plain", "streaming")}
    same_data = (tmp / "plain" / "data.jsonl").read_bytes() == (tmp / "streaming" / "data.jsonl").read_bytes()
    same_manifest = json.loads((tmp / "plain" / "manifest.json").read_text()) == \
        json.loads((tmp / "streaming" / "manifest.json").read_text())
    for mode, r in small.items():
        print(f"{N_SMALL} examples, {mode:<9}: {r['build_s']:6.1f}s build (+{r['setup_s']:.1f}s pool) "
              f"{r['n'] / r['build_s']:8.0f} examples/s, peak RSS {r['peak_rss_mb']:.0f} MB, workers {r['workers']}")
    print(f"streaming output identical to build_mixture: data.jsonl {same_data}, manifest {same_manifest}")
    big = run_child(N_BIG, tmp / "big", "streaming")
    total = big["setup_s"] + big["build_s"]
    size = (tmp / "big" / "data.jsonl").stat().st_size
    print(f"{N_BIG} examples streaming: {total:.1f}s ({big['setup_s']:.1f}s pool + {big['build_s']:.1f}s build, "
          f"{big['n'] / big['build_s']:.0f} examples/s, {big['workers']} workers) (goal <= 30 s); "
          f"peak RSS {big['peak_rss_mb']:.0f} MB (goal <= 1024 MB); data.jsonl {size / 1e9:.2f} GB")
    ratio = (small["streaming"]["n"] / small["streaming"]["build_s"]) / (small["plain"]["n"] / small["plain"]["build_s"])
    print(f"peak RSS streaming / plain at {N_SMALL}: "
          f"{small['streaming']['peak_rss_mb'] / small['plain']['peak_rss_mb']:.2f}x")
    print(f"langmix vs plain: {ratio:.2f}x")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child(int(sys.argv[2]), sys.argv[3], sys.argv[4])
    else:
        main()

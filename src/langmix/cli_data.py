"""The data-side commands: `translate` (source data into other languages) and `score` (re-score stored
predictions). Registered on the app of `langmix.cli`."""

from __future__ import annotations

import sqlite3
from collections import Counter
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.table import Table

from langmix.cli import _config, _progress, _setup, app, check_output, console, error, share_with_interval
from langmix.errors import check_new_file, check_not_input


@app.command("translate")
def translate_cmd(
    source: Path = typer.Argument(..., help="English task data"),
    fmt: str = typer.Option("examples", "--format", help="gsm8k | mgsm | parallel | examples | apibank | bfcl"),
    to: str = typer.Option(..., help="comma-separated target languages"),
    backend: str = typer.Option("openai", help="openai | seq2seq | causal | memory"),
    out: Path = typer.Option(..., help="output directory (data.jsonl, qa.md, qa.json, manifest.json)"),
    base_url: Optional[str] = typer.Option(None, help="openai: server base URL, e.g. http://localhost:8000/v1"),
    model: Optional[str] = typer.Option(None, help="openai: model name; seq2seq: model path or hub id"),
    api_key_env: str = typer.Option("OPENAI_API_KEY", help="openai: the name of the environment variable holding "
                                    "the key (not the key); unset is an error, or a warning for a local server"),
    no_api_key: bool = typer.Option(False, "--no-api-key", help="openai: send no key (a server that needs none)"),
    concurrency: int = typer.Option(16, min=1, help="openai: parallel requests"),
    timeout: float = typer.Option(30.0, min=1.0, help="openai: seconds to wait for one response"),
    retries: int = typer.Option(5, min=0, help="openai: retries of a request that failed (429, 5xx, timeout, a "
                                "malformed body), with exponential backoff"),
    rate: Optional[float] = typer.Option(None, min=0.01, help="openai: most requests per second (default: no "
                                         "limit beyond --concurrency)"),
    memory: Optional[Path] = typer.Option(None, help="memory: JSONL/TSV of existing translations"),
    family: str = typer.Option("m2m100", help="seq2seq: m2m100 | nllb | madlad | marian"),
    config: Optional[Path] = typer.Option(None, help="causal: a study config whose first model translates"),
    prompt_style: str = typer.Option("chat", help="causal: chat (instruction models) | completion (base models)"),
    schemas: Optional[Path] = typer.Option(None, help="apibank: all_apis.csv"),
    category: Optional[str] = typer.Option(None, help="bfcl: category"),
    limit: Optional[int] = typer.Option(None, help="translate only the first N examples"),
    policy: str = typer.Option("exclude", help="what happens to an example that fails validation: exclude | flag"),
    cache: Path = typer.Option(Path("runs/translation-cache.sqlite"), help="SQLite segment cache"),
    retranslate_rejected: bool = typer.Option(False, help="ask again for cached translations that fail "
                                              "validation (e.g. after fixing the server); else the cache answers"),
) -> None:
    """Translate English task data into parallel data in other languages, validated, cached, with a QA report."""
    _setup()
    from pydantic import ValidationError

    from langmix import languages as langs
    from langmix import tasks
    from langmix.config import FileSource, validation_problems
    from langmix.data.sources import check_task_examples, load_examples
    from langmix.mixtures import write_mixture
    from langmix.translate import backends as tb
    from langmix.translate.cache import TranslationCache
    from langmix.translate.pipeline import count_segments, qa_json, qa_table, translate_examples

    try:
        targets = langs.resolve_all([c for c in to.split(",") if c])
        if not targets:
            raise ValueError("--to names no language to translate into")
        if "en" in targets:
            raise ValueError("English is the source language: --to takes the languages to translate into "
                             "(the English examples are written alongside)")
        if policy not in ("exclude", "flag"):
            raise ValueError(f"--policy must be exclude or flag, got {policy!r}")
        check_output(out, "--out")
        check_not_input([out / name for name in ("data.jsonl", "manifest.json", "qa.md", "qa.json")], "--out",
                        [(source, "the SOURCE file"), *([(memory, "the --memory file")] if memory else [])])
        if base_url and not base_url.startswith(("http://", "https://")):
            raise ValueError(f"--base-url must start with http:// or https://, got {base_url!r}")
        examples = load_examples(FileSource(format=fmt, path=str(source), limit=limit, category=category,
                                            schemas=str(schemas) if schemas else None))
        others = Counter(ex.language for ex in examples if ex.language != "en")
        examples = [ex for ex in examples if ex.language == "en"]  # a multilingual source: its English rows
        other_counts = ", ".join(f"{k} {v}" for k, v in sorted(others.items()))
        if not examples:
            raise ValueError(f"{source} has no English rows to translate (languages: {other_counts})")
        if others:
            console.print(f"translating the {len(examples)} English rows; skipped {sum(others.values())} rows in "
                          f"other languages ({other_counts})")
        for name in sorted({ex.task for ex in examples}):  # a translated answer line is built from the reference
            group = [ex for ex in examples if ex.task == name]
            # before any request: a source id given twice would be translated twice and written as one id twice
            check_task_examples(group, name, str(source), "source", label=f"the {name} examples to translate")
            tasks.check_references(tasks.get(name), group)
        store = TranslationCache(cache)  # before a backend, which may load a model
        if backend == "openai":
            if not (base_url and model):
                raise ValueError("the openai backend needs --base-url and --model")
            engine = tb.OpenAIBackend(base_url, model, api_key_env=None if no_api_key else api_key_env,
                                      concurrency=concurrency,
                                      timeout=timeout, max_retries=retries, requests_per_second=rate)
        elif backend == "seq2seq":
            engine = tb.Seq2SeqBackend(model or "", family=family)
        elif backend == "causal":
            if not config:
                raise ValueError("the causal backend needs --config (its first model translates)")
            engine = tb.CausalBackend(_config(config, []).models[0], style=prompt_style)
        elif backend == "memory":
            if not memory:
                raise ValueError("the memory backend needs --memory")
            engine = tb.MemoryBackend(str(memory))
        else:
            raise ValueError(f"unknown backend {backend!r}")
    except (ValueError, OSError, sqlite3.Error) as exc:
        if isinstance(exc, sqlite3.Error):
            error(f"--cache {cache}: not a usable SQLite file ({exc})")
        elif isinstance(exc, ValidationError):  # the source options (--format, --limit, ...), one line
            error("; ".join(f"--{key or 'source'}: {msg}" for key, msg in validation_problems(exc)))
        else:
            error(f"{exc}")
        raise typer.Exit(2) from None
    segments = count_segments(examples) * len(targets)
    try:
        with _progress() as progress:
            bar = progress.add_task(f"translating {len(examples)} examples into {', '.join(targets)}",
                                    total=segments)
            retried = {"requests": 0, "segments": 0}  # the first bar counts first answers; retries are extra work
            retry_bar = progress.add_task("", total=None, visible=False)

            def retry(kind: str, k: int = 1) -> None:
                retried[kind] += k
                progress.update(retry_bar, advance=k, visible=True, description=(  # server errors; rejections
                    f"retries: {retried['requests']} requests, {retried['segments']} rejected segments"))

            if isinstance(engine, tb.OpenAIBackend):
                engine.on_retry = lambda: retry("requests")
            translated, qa = translate_examples(examples, targets, engine, store, ["en", *targets], policy=policy,
                                                progress=lambda k: progress.advance(bar, k),
                                                retranslate_rejected=retranslate_rejected,
                                                retrying=lambda k: retry("segments", k))
    except tb.BackendRefused as exc:  # finished batches are in the cache: a re-run resumes from them
        error(f"{exc}")
        raise typer.Exit(2) from None
    except tb.ServerUnreachable as exc:
        error(f"{exc}; any translations received are kept in {cache}: a re-run resumes from them")
        raise typer.Exit(2) from None
    except KeyboardInterrupt:  # no request or retry was sent after it (the backend's stop)
        error(f"interrupted: any translations received are kept in {cache}; a re-run resumes from them")
        raise typer.Exit(130) from None
    manifest = {"source": str(source), "format": fmt, "backend": backend, "model": engine.model_id,
                "targets": targets, "policy": policy, "n_source": len(examples),
                "skipped_non_english": dict(sorted(others.items())),
                "kept_per_language": {lang: q.passed + q.flagged for lang, q in qa.items()},
                "excluded_per_language": {lang: q.excluded for lang, q in qa.items()},
                "segments": {lang: q.segments for lang, q in qa.items()},
                "segments_from_cache": {lang: q.segments_from_cache for lang, q in qa.items()},
                "backend_stats": dict(getattr(engine, "stats", {}))}  # requests and retries; memory id/text hits
    write_mixture(out, examples + translated, manifest)
    (out / "qa.md").write_text(qa_table(qa) + "\n", encoding="utf-8")
    (out / "qa.json").write_text(qa_json(qa), encoding="utf-8")
    Console().print(qa_table(qa))
    cached = {lang: q.cached_rejections for lang, q in qa.items() if q.cached_rejections}
    if cached:
        console.print(f"the cache answered with translations that failed validation ("
                      f"{', '.join(f'{k} {v} segment' + ('' if v == 1 else 's') for k, v in cached.items())}); "
                      f"--retranslate-rejected asks for them again")
    empty = [lang for lang in targets if qa[lang].passed + qa[lang].flagged == 0]
    if empty:  # e.g. an unreachable server: every segment a backend miss
        error(f"nothing was translated into {', '.join(empty)}: every example was excluded (reasons in "
              f"{out / 'qa.md'}); {out / 'data.jsonl'} lacks those languages")
        raise typer.Exit(2)
    console.print(f"wrote {out / 'data.jsonl'} (use it as a training source with format: examples)")


@app.command("score")
def score_cmd(predictions: Path, task: str = typer.Option(..., help="math or api"),
              out: Optional[Path] = typer.Option(None, help="verdicts JSONL, one per line scored or refused "
                                                  "with its reason (default: beside PREDICTIONS, its suffix "
                                                  "replaced: run/predictions.jsonl -> "
                                                  "run/predictions.<task>.verdicts.jsonl; rewritten there); a file "
                                                  "named here must be new, or --force given"),
              force: bool = typer.Option(False, "--force", help="replace the --out file where it exists")) -> None:
    """Re-score stored outputs (any harness or API) with langmix's extractor / AST checker; no model needed.
    Accuracy per language comes with its 95% Wilson interval."""
    from langmix import tasks
    from langmix.evaluate.rescore import rescore

    try:
        task = tasks.get(task).name
    except ValueError as exc:
        error(f"{exc}")
        raise typer.Exit(2) from None
    if out is not None:  # a file the user named: never the predictions (rescore refuses them too); existing: --force
        check_new_file(out, "--out", force, [(predictions, "the predictions file")])  # (check_output included)
    else:  # the command's own output beside the predictions, rewritten (scoring as another task writes elsewhere)
        out = predictions.with_suffix(f".{task}.verdicts.jsonl")
        check_output(out, "--out", directory=False)
    try:
        totals = rescore(task, predictions, out)
    except (ValueError, OSError) as exc:
        error(f"{exc}")
        raise typer.Exit(2) from None
    def accuracy(correct: int, n: int) -> str:
        return share_with_interval(correct, n) if n else "n/a"

    flexible = ("flexible accuracy [95% CI]",) if task == "math" else ()
    table = Table("language", "n scored", "correct", "accuracy [95% CI]" if not flexible
                  else "strict accuracy [95% CI]", *flexible, "bad input (not scored)")
    for lang, t in sorted(totals.items()):
        extra = (accuracy(t["correct_flexible"], t["n"]),) if flexible else ()
        table.add_row(lang, str(t["n"]), str(t["correct"]), accuracy(t["correct"], t["n"]), *extra,
                      str(t["bad_input"]))
    Console().print(table)
    if task == "api":
        console.print("checker mode: multilingual (BFCL's rules plus named leniencies; see the verdicts' `mode`)")
    console.print(f"verdicts: {out}")
    if not any(t["n"] for t in totals.values()):
        bad = sum(t["bad_input"] for t in totals.values())
        error(f"no line could be scored ({bad} bad input{'s' if bad != 1 else ''}; the reasons are in the verdicts)")
        raise typer.Exit(2)

"""The `langmix` command line: one command per stage, plus `study` and `report`. Thin: it parses, renders
progress with rich, and calls the stage functions."""

from __future__ import annotations

import functools
import json
import logging
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Optional

import typer
from rich.console import Console
from rich.logging import RichHandler
from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn,
                           TimeRemainingColumn)
from rich.table import Table
from rich.text import Text

from langmix.config import ConfigError, StudyConfig, dump_resolved
from langmix.config_loading import load_config
from langmix.errors import UserInputError, check_new_file, check_not_input, check_output


def error(message: str) -> None:
    """One red line on stderr, printed as text (brackets in paths or overrides are not rich markup) and not wrapped
    (paths and ids stay whole)."""
    console.print(Text(str(message), style="red"), soft_wrap=True)


class _App(typer.Typer):
    """Any command: a bad input the user can fix (`UserInputError`: a malformed file, an unknown language, a
    contaminated mixture, a model package not installed, ...) is printed as one red line and exits 2; anything else
    keeps its traceback. Each command is wrapped where it is registered, so the rule holds however the command is
    invoked (the console script, or click's test runner, which does not go through `__call__`)."""

    def command(self, *args, **kwargs):
        register = super().command(*args, **kwargs)

        def decorator(function):
            @functools.wraps(function)  # typer reads the signature through __wrapped__
            def one_line_on_bad_input(*a, **k):
                try:
                    return function(*a, **k)
                except UserInputError as exc:
                    error(str(exc))
                    raise typer.Exit(2) from None

            register(one_line_on_bad_input)
            return function

        return decorator

    def __call__(self, *args, **kwargs):
        try:
            return super().__call__(*args, **kwargs)
        except UserInputError as exc:
            error(str(exc))
            raise SystemExit(2) from None


app = _App(help="Controlled studies of multilinguality in LLM post-training.", no_args_is_help=True,
                  pretty_exceptions_enable=False)
data_app = _App(help="Source data.", no_args_is_help=True)
study_app = _App(help="Run and inspect a study (the grid models x mixtures x tasks x seeds).",
                 no_args_is_help=True)
app.add_typer(data_app, name="data")
app.add_typer(study_app, name="study")
console = Console(stderr=True)
log = logging.getLogger("langmix")

OVERRIDES = typer.Option(None, "--set", "-s", help="dotted override, e.g. -s training.learning_rate=1e-3 (repeat)")


def _setup(verbose: bool = False) -> None:
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO, format="%(message)s",
                        handlers=[RichHandler(console=console, show_path=False)], force=True)
    for noisy in ("httpx", "urllib3", "datasets", "transformers", "filelock"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    import torch

    torch.set_num_threads(max(1, torch.get_num_threads()))


def _config(path: Path, overrides: list[str] | None) -> StudyConfig:
    try:
        return load_config(path, overrides or [])
    except ConfigError as exc:
        error(f"{exc}")
        raise typer.Exit(2) from None


def _progress() -> Progress:
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                    TimeRemainingColumn(), console=console, transient=False)


@contextmanager
def _model_progress(progress: Progress) -> Iterator:
    task_id = None

    def update(step: int, total: int, loss: float) -> None:
        nonlocal task_id
        if task_id is None:
            task_id = progress.add_task("pretraining tiny base model", total=total)
        progress.update(task_id, completed=step, description=f"pretraining tiny base model (loss {loss:.2f})")

    yield update


@data_app.command("synth")
def data_synth(task: str = typer.Option("math", help="math or api"),
               languages: str = typer.Option("en", help="comma-separated language codes"),
               split: str = typer.Option("train", help="train or eval (disjoint source ids and questions)"),
               n: int = typer.Option(10, min=1, help="items per language"), seed: int = 0,
               held_out: int = typer.Option(
                   1000, min=0, help="train: leave out the questions of the first N eval items of the same seed "
                   "(an eval file of up to N items shares no question with it); eval: --n may not exceed it"),
               out: Optional[Path] = typer.Option(None, help="JSONL file (a new one: an existing file only with "
                                                  "--force); stdout if omitted"),
               force: bool = typer.Option(False, "--force", help="replace the --out file where it exists")) -> None:
    """Render synthetic parallel examples as JSONL of OpenAI-style messages."""
    from langmix import languages as langs
    from langmix.data.synth import content_key, make_items, to_example

    if split not in ("train", "eval"):
        error(f"--split must be train or eval, got {split!r}")
        raise typer.Exit(2)
    if out:
        check_new_file(out, "--out", force)
    try:
        codes = langs.resolve_all([c.strip() for c in languages.split(",") if c.strip()])
        if not codes:
            raise ValueError("--languages names no language (e.g. --languages en,sw)")
        if split == "eval" and n > held_out:
            raise ValueError(f"--n {n} eval items exceeds --held-out {held_out}: a train file made with the same "
                             f"--held-out could share questions with items past it; raise --held-out for both")
        exclude = {content_key(i) for i in make_items(task, "eval", held_out, seed)} if split == "train" else None
        items = make_items(task, split, n, seed, exclude=exclude)
    except ValueError as exc:
        error(f"{exc}")
        raise typer.Exit(2) from None
    lines = [to_example(item, lang).model_dump_json() for lang in codes for item in items]
    if out:
        try:
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text("\n".join(lines) + "\n", encoding="utf-8")
        except OSError as exc:
            error(f"cannot write {out}: {exc.strerror or exc}")
            raise typer.Exit(2) from None
        console.print(f"wrote {len(lines)} examples to {out}")
    else:
        sys.stdout.write("\n".join(lines) + "\n")


@app.command("mix")
def mix(config: Path, out: Path = typer.Option(Path("mixtures"), help="output directory"),
        overrides: Optional[list[str]] = OVERRIDES) -> None:
    """Write every mixture of a study config (designs x tasks x seeds) as data.jsonl + manifest.json, after the
    same contamination check a study applies (training items that overlap the evaluation set are refused)."""
    _setup()
    from langmix.data.files import DataFormatError
    from langmix.data.sources import open_source
    from langmix.mixtures import MixtureError, build_mixture, check_budgets, expand_designs, mixture_slug

    cfg = _config(config, overrides)
    check_output(out, "--out")
    source = open_source(cfg.data)
    try:
        specs = expand_designs(cfg.mixtures, cfg.languages)
        if not specs:
            raise MixtureError(f"{config}: `mixtures` lists no design, so there is no mixture to write")
        check_budgets(source, [(task, spec) for task in cfg.tasks for spec in specs], cfg.budget)
        check_not_input([out / f"{mixture_slug(spec.name)}-{task}-s{seed}" / name for task in cfg.tasks
                         for spec in specs for seed in cfg.seeds for name in ("data.jsonl", "manifest.json",
                                                                              "config.yaml")],
                        "--out", [(config, "the config file")])
        written: set[str] = set()
        for task in cfg.tasks:
            evaluation = source.eval_examples(task, cfg.languages)
            for spec in specs:
                for seed in cfg.seeds:
                    target = out / f"{mixture_slug(spec.name)}-{task}-s{seed}"
                    written.add(target.name)
                    examples, _ = build_mixture(source, spec, task, cfg.budget, seed, evaluation, target)
                    dump_resolved(cfg, target / "config.yaml")
                    console.print(f"{target}: {len(examples)} examples, languages {', '.join(spec.languages)}")
    except (MixtureError, DataFormatError, OSError) as exc:
        error(f"{exc}")
        raise typer.Exit(2) from None
    others = sorted(p.name for p in out.iterdir() if (p / "manifest.json").exists() and p.name not in written)
    if others:  # an earlier config's mixtures, beside this one's: say so rather than leave a silent mix
        log.warning("%s also holds %d mixture(s) this config does not write (an earlier config's?): %s", out,
                    len(others), ", ".join(others[:5]) + (" ..." if len(others) > 5 else ""))


@app.command("train")
def train_cmd(config: Path, mixture: Path = typer.Option(..., help="a mixture's data.jsonl"),
              out: Path = typer.Option(..., help="output directory (checkpoints/, final/)"),
              model: Optional[str] = typer.Option(None, help="model name from the config (default: the first)"),
              seed: int = typer.Option(0, min=0), overrides: Optional[list[str]] = OVERRIDES) -> None:
    """Fine-tune a model of the config on one mixture; resumes from the newest checkpoint in OUT when OUT holds
    this same training (config, seed and data); another run's checkpoints are refused. A mixture of a task the
    config does not study, or one holding items of its evaluation set, is refused."""
    _setup()
    from langmix.data.sources import open_source
    from langmix.lineage import check_lineage
    from langmix.mixtures import MixtureError, item_rows, read_mixture
    from langmix.models import resolve_model_path
    from langmix.train import IdentityError, LabelMaskError, finished, train, training_identity

    cfg = _config(config, overrides)
    check_output(out, "--out")
    check_not_input([out / "config.yaml"], "--out", [(config, "the config file")])
    model_cfg = next((m for m in cfg.models if model in (None, m.name)), None)
    if model_cfg is None:
        error(f"no model named {model!r} in {config}")
        raise typer.Exit(2)
    try:
        examples = read_mixture(mixture)
        if not examples:
            raise MixtureError(f"{mixture}: no examples to train on")
        other = sorted({ex.task for ex in examples} - set(cfg.tasks))
        if other:
            raise MixtureError(f"{mixture} holds {', '.join(other)} examples, but the config's tasks are "
                               f"{', '.join(cfg.tasks)}")
        source = open_source(cfg.data)  # the same contamination check as `mix` and a study, against its eval set
        for name in sorted({ex.task for ex in examples}):
            rows, related = [ex for ex in examples if ex.task == name], item_rows(source, name)
            check_lineage(rows, source.eval_examples(name, cfg.languages),
                          [related(ex) for ex in rows] if related else None)
    except OSError as exc:
        error(f"--mixture {mixture}: {exc.strerror or exc}")
        raise typer.Exit(2) from None
    except (MixtureError, ValueError) as exc:
        error(f"{exc}")
        raise typer.Exit(2) from None
    identity = training_identity(model_cfg, cfg.training, seed, examples)  # hashes every example: once
    if finished(out, identity):
        console.print(f"{out} already holds this training, finished ({out / 'final'}); nothing to do")
        return
    with _progress() as progress, _model_progress(progress) as update:
        path = resolve_model_path(model_cfg, update)
    try:
        train(model_cfg, path, examples, cfg.training, seed, out, show_progress=True, identity=identity)
    except (IdentityError, LabelMaskError) as exc:
        error(f"{exc}")
        raise typer.Exit(2) from None
    dump_resolved(cfg, out / "config.yaml")
    console.print(f"saved {out / 'final'}")


@app.command("eval")
def eval_cmd(config: Path, out: Optional[Path] = typer.Option(None, help="output directory (single model)"),
             model_dir: Optional[str] = typer.Option(None, "--model",
                                                     help="a trained model directory (e.g. OUT/final: full "
                                                          "weights, or a LoRA adapter over the config's first "
                                                          "model); default: the config's first model, untrained"),
             task: Optional[str] = typer.Option(None, help="the task to evaluate (default: the config's first)"),
             base: Optional[str] = typer.Option(None, "--base", help="the config model to evaluate, or (with "
                                                "--model) the one it was fine-tuned from; default: the first"),
             study: bool = typer.Option(False, "--study", help="evaluate every finished model of the study "
                                        "CONFIG (or its output directory) with its current evaluation settings "
                                        "(no training)"),
             overrides: Optional[list[str]] = OVERRIDES) -> None:
    """Evaluate a model on the config's languages and evaluation data; writes predictions.jsonl, metrics.json and
    the resolved config.yaml.
    With --study, (re-)evaluate the study's trained models and base models; training never runs."""
    _setup()
    import time

    from langmix.data.sources import open_source
    from langmix.evaluate.run import evaluate, load_for_evaluation
    from langmix.models import resolve_model_path
    from langmix.results import write_predictions

    if study:  # the study's config file or, as `study run|status` take it, its output directory
        from langmix.cli_study import _study_config

        cfg = _study_config(config, overrides)
    else:
        cfg = _config(config, overrides)
    if study and (out is not None or model_dir is not None):
        error("--study evaluates the study's own runs in their folders: --out and --model do not apply")
        raise typer.Exit(2)
    if study:
        from langmix.study.runner import evaluate_study, study_dir

        check_output(study_dir(cfg), "output_dir")
        outcome = evaluate_study(cfg)
        console.print(", ".join(f"{k} {len(v)}" for k, v in outcome.items()))
        raise typer.Exit(1 if outcome.get("failed") else 0)
    if out is None:
        error("--out is required (or --study)")
        raise typer.Exit(2)
    check_output(out, "--out")
    check_not_input([out / name for name in ("config.yaml", "predictions.jsonl", "metrics.json")], "--out",
                    [(config, "the config file")])
    from langmix import tasks

    task = task or cfg.tasks[0]
    if task not in tasks.names():
        error(f"unknown task {task!r} (registered: {', '.join(tasks.names())})")
        raise typer.Exit(2)
    if model_dir and not (Path(model_dir) / "config.json").exists() \
            and not (Path(model_dir) / "adapter_config.json").exists():
        error(f"{model_dir} is not a trained model directory (no config.json or adapter_config.json)")
        raise typer.Exit(2)
    start = time.time()
    model_cfg = next((m for m in cfg.models if base in (None, m.name)), None)
    if model_cfg is None:
        error(f"--base {base}: no model of that name in {config} ({', '.join(m.name for m in cfg.models)})")
        raise typer.Exit(2)
    with _progress() as progress, _model_progress(progress) as update:
        path = resolve_model_path(model_cfg, update)
    adapter = Path(model_dir or "") / "adapter_config.json"
    if model_dir and adapter.exists():  # PEFT records the base it was trained on
        recorded = json.loads(adapter.read_text()).get("base_model_name_or_path")
        if recorded and recorded != str(path) and Path(recorded).resolve() != Path(path).resolve():
            log.warning("the adapter in %s was trained on %s, not on %s (%s); --base names the config model it "
                        "was trained from", model_dir, recorded, model_cfg.name, path)
    examples = open_source(cfg.data).eval_examples(task, cfg.languages)
    # full weights, or the base model (resolved above) plus the LoRA adapter (checked above)
    tokenizer, model = load_for_evaluation(model_cfg, path, Path(model_dir) if model_dir else None, cfg.evaluation)
    with _progress() as progress:
        bar = progress.add_task(f"evaluating {task}", total=len(examples))
        predictions, metrics = evaluate(model, tokenizer, examples, cfg.evaluation, cfg.languages,
                                        lambda k: progress.advance(bar, k))
    out.mkdir(parents=True, exist_ok=True)
    write_predictions(predictions, out / "predictions.jsonl")
    dump_resolved(cfg, out / "config.yaml")  # what was evaluated: overrides applied, paths resolved
    (out / "metrics.json").write_text(json.dumps([dict(zip(("task", "language", "metric", "value", "n"), m))
                                                  for m in metrics], indent=2))
    table = Table("language", "metric", "value [95% CI]", "n")
    for _, lang, metric, value, n in metrics:
        table.add_row(lang, metric, rate_with_interval(value, n), str(n))
    Console().print(table)
    console.print(f"{len(examples)} items in {time.time() - start:.0f}s; predictions in {out}")


def share_with_interval(hits: int, n: int) -> str:
    """`hits` of `n` items (n > 0) as a share with its 95% Wilson interval."""
    from statsmodels.stats.proportion import proportion_confint

    low, high = proportion_confint(hits, n, method="wilson")
    return f"{hits / n:.3f} [{low:.3f}, {high:.3f}]"


def rate_with_interval(value: float, n: int) -> str:
    """A rate over `n` items with its 95% Wilson interval, where it is a share of items (value x n a whole
    number); any other metric is shown without one."""
    hits = value * n
    if n <= 0 or abs(hits - round(hits)) > 1e-6 * max(1, n) or not 0 <= value <= 1:
        return f"{value:.3f}"
    return share_with_interval(round(hits), n)


from langmix import cli_data as _cli_data  # noqa: E402,F401  (registers translate and score)
from langmix import cli_study as _cli_study  # noqa: E402,F401  (registers the study commands)
from langmix import cli_results as _cli_results  # noqa: E402,F401  (registers report, query and plan)

if __name__ == "__main__":
    from langmix.cli import app as _app  # the module copy the study commands registered on

    _app()

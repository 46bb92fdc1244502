"""Before anything is submitted: `study plan` counts runs and GPU-hours, `--dry-run` shows the SLURM arrays and the
multi-GPU commands. Neither needs a model or a cluster."""

from __future__ import annotations

import json
from pathlib import Path

import yaml
from typer.testing import CliRunner

from langmix.cli import app
from langmix.config import StudyConfig
from langmix.config_loading import load_config
from langmix.study.estimate import estimate, gpus_for, resources
from langmix.study.grid import expand
from langmix.study.runner import run_study
from langmix.study.state import run_state
from tests.conftest import small_study_dict

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
runner = CliRunner()


def test_paper_replication_plan_has_220_runs():
    result = runner.invoke(app, ["study", "plan", str(EXAMPLES / "paper-replication.yaml")])
    assert result.exit_code == 0, result.output
    assert "fine-tuning runs: 220 (220 per seed x 1 seeds)" in result.output
    assert "GPU-hours: training" in result.output and "assumed MFU 35%" in result.output


def test_tiny_model_runs_are_planned_on_cpu_with_no_gpu_hours():
    """The tiny model trains on CPUs (its SLURM arrays ask for no GPU): the plan says so and counts no GPU-hours."""
    cfg = load_config(EXAMPLES / "quickstart.yaml")
    rows = estimate(cfg, expand(cfg))
    assert rows and all(r.gpus == 0 and r.gpu_hours == 0.0 for r in rows)
    assert all(resources(job, cfg).gpus == 0 for job in expand(cfg))
    result = runner.invoke(app, ["study", "plan", str(EXAMPLES / "quickstart.yaml")])
    assert result.exit_code == 0, result.output
    assert "0 (CPU)" in result.output and "total 0.0" in result.output


def test_gpu_hours_follow_6_params_tokens():
    cfg = load_config(EXAMPLES / "paper-replication.yaml")
    jobs = expand(cfg)
    rows = {r.slug: r for r in estimate(cfg, jobs)}
    job = next(j for j in jobs if j.train is not None and j.train.model.name == "qwen3-8b")
    r = rows[job.train.slug]
    tokens = sum([cfg.budget.total]) * cfg.launcher.tokens_per_example * cfg.training.epochs
    assert r.tokens == tokens and r.params == 8e9
    assert r.gpu_hours == 6 * 8e9 * tokens / (989e12 * 0.35) / 3600
    # full fine-tuning of 8B needs several 80 GB GPUs; LoRA and evaluation one
    assert gpus_for(job.train, cfg) == 4 and gpus_for(job.evals[0], cfg) == 1
    lora = cfg.model_copy(update={"training": cfg.training.model_copy(update={"method": "lora"})})
    assert gpus_for(expand(lora)[1].train, lora) == 1
    assert resources(job, cfg).gpus == 4 and resources(job, cfg).cpus == 32


# The replication's data are translated files it does not ship: a dry run checks the data a real run would read
# (`study.preflight`), so these dry runs of its launcher settings read a small synthetic set instead.
SYNTH_DATA = {"data": {"source": "synth", "train_pool": 200, "eval_items": 5}, "budget": {"total": 100}}


def test_dry_run_prints_arrays_and_the_fsdp_launch(tmp_path):
    tree = yaml.safe_load((EXAMPLES / "paper-replication.yaml").read_text())
    tree.update(models=[tree["models"][2]], tasks=["math"], mixtures=[{"design": "english_only"}],
                output_dir=str(tmp_path), **SYNTH_DATA)
    tree["launcher"]["partition"] = "gpu"
    config = tmp_path / "study.yaml"
    config.write_text(yaml.safe_dump(tree))
    result = runner.invoke(app, ["study", "run", str(config), "--dry-run"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    arrays = [json.loads(line.split(": ", 1)[1]) for line in lines if line.startswith("job array of")]
    assert sorted(a["gpus_per_node"] for a in arrays) == [1, 4]  # base evaluation; full fine-tuning
    assert all(a["slurm_partition"] == "gpu" and a["slurm_array_parallelism"] == 32 for a in arrays)
    launch = next(line for line in lines if "accelerate.commands.launch" in line)
    assert "--num_processes 4" in launch and "langmix.study.distributed" in launch
    fsdp = json.loads(next(line for line in lines if "fsdp.yaml:" in line).split("fsdp.yaml: ", 1)[1])
    assert fsdp["distributed_type"] == "FSDP" and fsdp["num_processes"] == 4
    assert not (tmp_path / "paper-replication").exists() or not any((tmp_path / "paper-replication").rglob("DONE"))


def test_local_workers_run_jobs_in_parallel_processes(tmp_path, tiny_model_path):
    """Two worker processes run the study; each one's stages (training steps of max_steps with their losses,
    evaluated items) reach the driver's hooks as a lane of its own."""
    from langmix.study.runner import Hooks

    lanes: dict[int, list] = {}

    def lane(i: int) -> Hooks:
        calls = lanes.setdefault(i, [])
        return Hooks(stage=lambda name, total: calls.append(("stage", name, total)),
                     advance=lambda k: calls.append(("advance", k)), note=lambda text: calls.append(("note", text)))

    cfg = StudyConfig.model_validate(small_study_dict(tmp_path / "out"))
    outcome = run_study(cfg, Hooks(worker=lane), workers=2)
    assert len(outcome["done"]) == 5 and not outcome["failed"]
    assert 1 <= len(lanes) <= 2
    stages = []  # (name, total, advanced) of every stage each worker started
    for calls in lanes.values():
        for i, call in enumerate(calls):
            if call[0] == "stage":
                end = next((j for j in range(i + 1, len(calls)) if calls[j][0] == "stage"), len(calls))
                stages.append((call[1], call[2], sum(c[1] for c in calls[i:end] if c[0] == "advance")))
    trained = [s for s in stages if s[0].startswith("train ") and s[1]]
    assert len(trained) == 2 and all(total == advanced == 3 for _, total, advanced in trained)
    evaluated = [s for s in stages if s[0].startswith("evaluate ")]
    assert len(evaluated) == 3 and all(total == advanced > 0 for _, total, advanced in evaluated)
    assert any(c[0] == "note" and c[1].startswith("loss ") for calls in lanes.values() for c in calls)
    assert all(run_state(p) == "done" for p in (tmp_path / "out" / "t").glob("*/*") if p.is_dir())
    from langmix.study import slurm

    plan = slurm.dry_run(cfg, expand(cfg))  # a finished study: nothing would be submitted, and it says so
    assert plan.splitlines()[0] == f"{len(expand(cfg))} of {len(expand(cfg))} jobs are finished and would not be " \
                                   f"submitted" and "job array" not in plan


def test_run_keys_are_cached_but_never_carried_by_a_copy():
    """Keys are hashed once per spec; a copy with another seed (or anything else) gets its own key."""
    from langmix.config import config_hash

    train = next(job.train for job in expand(load_config(EXAMPLES / "quickstart.yaml")) if job.train is not None)
    first = train.key
    assert train.key is first  # cached
    reseeded = train.model_copy(update={"seed": train.seed + 7})
    assert reseeded.key != first
    assert reseeded.key == type(train).model_validate(reseeded.model_dump()).key
    ev = expand(load_config(EXAMPLES / "quickstart.yaml"))[0].evals[0]
    reseeded = ev.model_copy(update={"seed": 9})
    assert reseeded.key != ev.key and reseeded.key == type(ev).model_validate(reseeded.model_dump()).key
    # evaluation fields left out of the key (continuous_batching, vllm_engine_args; engine while it is the default
    # "hf") are left out of its hash: the quickstart's base evaluation keeps the key it had before those fields
    # existed (finished studies are not re-evaluated on upgrade)
    tree = ev.model_dump(mode="json")
    for field in ("continuous_batching", "vllm_engine_args", "engine"):
        del tree["evaluation"][field]
    assert tree.pop("model_files") is None  # a model without local files: its key has no content digest
    assert ev.key == config_hash(tree) == "90c35486af78"
    evaluation = ev.evaluation
    on_vllm = ev.model_copy(update={"evaluation": evaluation.model_copy(update={"engine": "vllm"})})
    assert on_vllm.key != ev.key  # another engine: other kernels, possibly other greedy outputs
    tuned = on_vllm.model_copy(update={"evaluation": on_vllm.evaluation.model_copy(
        update={"vllm_engine_args": {"gpu_memory_utilization": 0.5}})})
    assert tuned.key == on_vllm.key
    # but max_model_len: answers are cut to fit the engine's context (`context_exceeded`), so it is in the key
    shorter = on_vllm.model_copy(update={"evaluation": on_vllm.evaluation.model_copy(
        update={"vllm_engine_args": {"gpu_memory_utilization": 0.5, "max_model_len": 256}})})
    assert shorter.key != on_vllm.key


def test_dry_run_with_a_model_of_unknown_size_is_one_line(tmp_path):
    """An hf model whose size neither its path nor `params` gives made `--launcher slurm --dry-run` end in a
    ValueError traceback (`study plan` said it in one line)."""
    tree = yaml.safe_load((EXAMPLES / "paper-replication.yaml").read_text())
    tree.update(models=[{"name": "mystery", "source": "hf", "path": "org/mystery-model"}], tasks=["math"],
                mixtures=[{"design": "english_only"}], output_dir=str(tmp_path), **SYNTH_DATA)
    config = tmp_path / "study.yaml"
    config.write_text(yaml.safe_dump(tree))
    result = runner.invoke(app, ["study", "run", str(config), "--launcher", "slurm", "--dry-run"])
    assert result.exit_code == 2 and "parameter count unknown; set `params`" in result.output, result.output
    assert "Traceback" not in result.output


def test_status_tells_a_requeued_run_and_an_earlier_failed_job_apart(tmp_path, monkeypatch):
    """SLURM shows a requeued job as PENDING (reason BeginTime): a run with checkpoints in the queue is
    'requeued', not 'queued'; a run finished after its job failed no longer reads as that job's failure."""
    from langmix.study import runner as study_runner
    from langmix.study import slurm
    from tests.conftest import small_study_dict

    tree = small_study_dict(tmp_path / "out", include_base=False)
    config = tmp_path / "study.yaml"
    config.write_text(yaml.safe_dump(tree))
    cfg = StudyConfig.model_validate(tree)
    jobs = [j for j in expand(cfg) if j.train is not None]
    fake = [("train", jobs[0].train, "interrupted", tmp_path), ("train", jobs[1].train, "done", tmp_path)]
    monkeypatch.setattr(study_runner, "study_status", lambda cfg, jobs=None: fake)
    monkeypatch.setattr(slurm, "read_job_ids", lambda cfg: {jobs[0].train.slug: "7_0", jobs[1].train.slug: "7_1"})
    monkeypatch.setattr(slurm, "queue_states", lambda ids: {"7_0": "PENDING", "7_1": "FAILED"})
    result = runner.invoke(app, ["study", "status", str(config)])
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert "requeued" in text and "queued" not in text.replace("requeued", "")
    assert "earlier" in text and "FAILED" in text  # the cell wraps in a narrow table


def test_status_names_jobs_submitted_for_runs_the_study_no_longer_has(tmp_path, monkeypatch):
    """A data file changed after submitting: the job fails (its run's key changed), and `study status`, which
    lists the runs of the current keys, names that job and its state rather than showing only pending runs."""
    from langmix.study import slurm

    tree = small_study_dict(tmp_path / "out", include_base=False)
    config = tmp_path / "study.yaml"
    config.write_text(yaml.safe_dump(tree))
    cfg = StudyConfig.model_validate(tree)
    current = next(j for j in expand(cfg) if j.train is not None).slug
    old = current.rsplit("-", 1)[0] + "-0123456789ab"  # the same run under the key it had before the change
    monkeypatch.setattr(slurm, "read_job_ids", lambda cfg: {current: "8_0", old: "7_0"})
    monkeypatch.setattr(slurm, "queue_states", lambda ids: {"7_0": "FAILED", "8_0": "PENDING"})
    result = runner.invoke(app, ["study", "status", str(config)])
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert "1 recorded SLURM job is for runs no longer in this study" in text
    assert f"{old} job 7_0 FAILED" in text and f"{current} job" not in text


def test_status_expands_the_grid_once(tmp_path, monkeypatch):
    """`study status` expanded the grid twice (each expansion hashes the data files' content for the run keys)."""
    from langmix.study import grid
    from langmix.study import runner as study_runner
    from tests.conftest import small_study_dict

    tree = small_study_dict(tmp_path / "out", include_base=False)
    config = tmp_path / "study.yaml"
    config.write_text(yaml.safe_dump(tree))
    calls = []
    real = grid.expand
    counted = lambda cfg: (calls.append(1), real(cfg))[1]  # noqa: E731
    monkeypatch.setattr(grid, "expand", counted)
    monkeypatch.setattr(study_runner, "expand", counted)
    result = runner.invoke(app, ["study", "status", str(config)])
    assert result.exit_code == 0, result.output
    assert "pending: " in result.output and len(calls) == 1

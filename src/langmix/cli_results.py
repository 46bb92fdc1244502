"""The commands that read a study's finished runs: `report`, `query` and `plan` (registered on the app of
`langmix.cli`). Each takes the study's config file or its output directory (and `-s` overrides), and names the
runs its tables leave out: planned ones not finished, and finished evaluations this config's grid does not name
(made under other overrides, e.g. `eval --study -s evaluation.X=...`, which records none)."""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Optional

import typer

from langmix.cli import OVERRIDES, _setup, app, check_output, console, error
from langmix.errors import check_new_file
from langmix import cli_study  # as a module: importing langmix.cli_study first imports this one half-way through it


@app.command("report")
def report_cmd(config: Path = typer.Argument(..., help="the study's config file or its output directory"),
               overrides: Optional[list[str]] = OVERRIDES) -> None:
    """(Re)build the study report from its finished runs."""
    _setup()
    from langmix.study.runner import study_dir

    cfg = cli_study._study_config(config, overrides)
    check_output(study_dir(cfg) / "report", "output_dir")
    path, caveats = cli_study._report(cfg)
    if path is None:
        _no_finished_runs(cfg, config, overrides, caveats)
    print(path)


def _no_finished_runs(cfg, config: Path, overrides: Optional[list[str]], caveats: cli_study.TableCaveats) -> None:
    """Exit 2 with one line where no evaluation of this config's grid has finished: where the study holds finished
    evaluations made under other settings (`caveats.other`, printed above it), the line says so and how to read
    them, not "run the study first" (which would redo them)."""
    from langmix.study.runner import study_dir

    again = "`" + shlex.join(["langmix", "study", "run", str(config),
                              *(a for o in overrides or [] for a in ("-s", o))]) + "`"
    if caveats.n_other:
        error(f"no finished evaluation runs in this config's grid, but {study_dir(cfg) / 'eval'} holds "
              f"{caveats.n_other} made under other settings (named above; each run's config.yaml holds its settings): "
              f"pass the overrides they were made under to read them, or {again} to run this grid")
    else:
        error(f"no finished evaluation runs in {study_dir(cfg)}: run {again} first")
    raise typer.Exit(2)


@app.command("query")
def query_cmd(config: Path = typer.Argument(..., help="the study's config file or its output directory"),
              sql: str = typer.Argument(..., help="one SELECT (or EXPLAIN) statement"),
              overrides: Optional[list[str]] = OVERRIDES) -> None:
    """Run SQL (DuckDB) over the study's finished runs: views `results` (per language and metric) and `items`
    (per item). Only one SELECT (or EXPLAIN) statement runs, on a connection that can read those views and nothing
    else, and write nowhere (`results.seal`): the SQL never changes the study. Finished runs
    judged by another scorer are re-scored from their stored outputs first, as for every table (their files are
    rewritten; no model)."""
    import duckdb

    from langmix.results import refused, seal

    if not sql.strip():
        error("the SQL query is empty; e.g. \"SELECT mixture, language, avg(correct::INT) FROM items GROUP BY ALL\"")
        raise typer.Exit(2)
    try:
        statements = duckdb.extract_statements(sql)
    except duckdb.Error as exc:
        error(f"{exc}")
        raise typer.Exit(2) from None
    kinds = [st.type.name for st in statements]
    if len(kinds) != 1 or kinds[0] not in ("SELECT", "EXPLAIN"):
        # DuckDB answers DDL with a one-column "Success" table: name what was asked instead. (What keeps a query
        # from writing anything, an EXPLAIN ANALYZE included, is the sealed connection below, not this check.)
        error(f"the query returned no table: {' ; '.join(kinds) or 'no statement'} is not one query; use one SELECT "
              "over the views `results` and `items`")
        raise typer.Exit(2)
    cfg = cli_study._study_config(config, overrides)
    finished, con, caveats = cli_study._finished_tables(cfg, shown=5)
    for line in (caveats.left_out, caveats.other) if finished else (caveats.other,):
        if line:
            cli_study.warn(f"not in these views: {line}")
    if not finished:  # empty views would answer any query with nothing, like a study whose runs found nothing
        _no_finished_runs(cfg, config, overrides, caveats)
    if caveats.unfitted:
        cli_study.warn(caveats.unfitted)
    try:
        result = seal(con).execute(sql)
        if result.description is None:  # a statement without rows
            error("the query returned no table; use a SELECT over the views `results` and `items`")
            raise typer.Exit(2)
        print(result.df().to_string(index=False))
    except duckdb.Error as exc:
        if refused(exc):  # DuckDB's own message, its first line: the file, extension or setting it refused
            error(f"the query may read only the views `results` and `items` (no files, databases, extensions or "
                  f"settings): {str(exc).splitlines()[0]}")
        else:
            error(f"{exc}")
        raise typer.Exit(2) from None


@app.command("plan")
def plan_cmd(targets: str = typer.Option(..., help="comma-separated languages to do well on, e.g. sw,bn,te"),
             budget: int = typer.Option(..., help="training examples in the recommended mixture"),
             max_languages: int = typer.Option(4, min=2, help="most languages in the mixture, English included"),
             study: Path = typer.Option(..., "--from", help="a study (its finished runs; the others are named): "
                                        "its config file or its output directory (holding study.yaml)"),
             write: Optional[Path] = typer.Option(None, help="write the recommendation as a study config here (a new "
                                                  "file: an existing one only with --force)"),
             force: bool = typer.Option(False, "--force", help="replace the --write file where it exists (never "
                                        "the --from study's config)"),
             overrides: Optional[list[str]] = OVERRIDES) -> None:
    """Recommend the languages (and examples per language) for your SFT data from a study's results, with the
    predicted gain on the targets and its uncertainty, the runner-up sets, and a leave-one-mixture-out check."""
    _setup()
    import yaml

    from langmix import languages as langs
    from langmix.analysis.core import AnalysisError
    from langmix.plan import cell_bootstrap, recommend, recommendation_lines, to_study_config, validate_loo

    cfg = cli_study._study_config(study, overrides)
    if write:  # before any work; the study's own config is never replaced, another file only with --force
        from langmix.study.runner import study_dir

        check_new_file(write, "--write", force, [(study / "study.yaml" if study.is_dir() else study,
                                                  "the --from study's config"),
                                                 (study_dir(cfg) / "study.yaml", "the study's record of its config")])
    try:
        codes = langs.resolve_all([c.strip() for c in targets.split(",") if c.strip()])
    except ValueError as exc:
        error(f"{exc}")
        raise typer.Exit(2) from None
    if not codes:
        error("--targets names no language (e.g. --targets sw,bn,te)")
        raise typer.Exit(2)
    _, tables, caveats = cli_study._finished_tables(cfg, shown=5)
    items = tables.execute("SELECT * FROM items").df()
    if items.empty:
        if caveats.other:
            cli_study.warn(f"not in this plan: {caveats.other}")
        _no_finished_runs(cfg, study, overrides, caveats)
    left_out, other, unfitted = caveats.left_out, caveats.other, caveats.unfitted
    cells = cell_bootstrap(items, n_boot=400)
    try:
        rec = recommend(items, codes, budget, max_languages, candidates=cfg.languages, cells=cells)
    except AnalysisError as exc:
        error(f"cannot recommend from {cfg.name}: {exc}")
        for line in (left_out, other):
            if line:
                cli_study.warn(f"not in this plan: {line}")
        if unfitted:
            cli_study.warn(unfitted)
        raise typer.Exit(2) from None
    try:
        loo = validate_loo(items, cells=cells)
    except AnalysisError as exc:  # the recommendation stands; its check cannot be made on this study
        loo_line = f"leave-one-mixture-out ranking: not checked ({exc})"
    else:
        loo_line = (f"leave-one-mixture-out ranking: Spearman rho {loo.attrs.get('rho', float('nan')):.2f} "
                    f"[{loo.attrs.get('rho_ci_low', float('nan')):.2f}, "
                    f"{loo.attrs.get('rho_ci_high', float('nan')):.2f}] over {loo.attrs.get('n_mixtures', 0)} "
                    f"mixtures" + (f" ({loo.attrs['n_unpredictable']} more not predictable from the others)"
                                   if loo.attrs.get("n_unpredictable") else ""))
    lines = recommendation_lines(rec) + [loo_line]
    # what the recommendation does not rest on: runs left out, targets the fit extrapolates to
    warnings = [f"warning: not in this plan: {left_out}"] if left_out else []
    warnings += [f"warning: not in this plan: {other}"] if other else []
    warnings += [f"warning: {unfitted}"] if unfitted else []
    warnings += [f"warning: {w}" for w in rec.warnings]
    lines += warnings
    if rec.note:
        lines.append(rec.note)
    print("\n".join(lines))
    if write:
        header = "".join(f"# {line}\n" for line in [f"langmix plan --from {study} --targets {','.join(codes)} "
                                                     f"--budget {budget} --max-languages {max_languages}"
                                                     + "".join(f" -s {o}" for o in overrides or []),
                                                     *lines[:1 + bool(rec.measured)], *warnings])
        try:
            write.parent.mkdir(parents=True, exist_ok=True)
            write.write_text(header + yaml.safe_dump(to_study_config(rec, cfg.model_dump(mode="json")),
                                                     sort_keys=False))
        except OSError as exc:
            error(f"cannot write the study config to {write}: {exc.strerror or exc}")
            raise typer.Exit(2) from None
        console.print(f"study config: {write}")

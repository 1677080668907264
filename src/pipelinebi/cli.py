"""The ``pipelinebi`` command.

Every subcommand turns a :class:`~pipelinebi.errors.PipelineBIError` into a message on
stderr and a non-zero exit code (2), never a traceback; Ctrl-C exits 130.
Heavy modules are imported inside the subcommand so ``--help`` stays instant.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Callable, Sequence

from .errors import PipelineBIError

Handler = Callable[[argparse.Namespace], int]


def _settings(args: argparse.Namespace):
    from .settings import get_settings

    return get_settings(
        database=getattr(args, "database", None),
        semantic_dir=getattr(args, "semantic", None),
        engine=getattr(args, "engine", None),
    )


def _open(args: argparse.Namespace):
    """A read-only session on the engine of ``--engine`` / ``PIPELINEBI_ENGINE`` (default: the DuckDB
    file, built from the seeds first when it does not exist: the embedded demo)."""
    from .demo import ensure_database
    from .engines import engine_url, open_engine

    settings = _settings(args)
    url = engine_url(settings)
    if url.kind == "duckdb":
        ensure_database(settings.model_copy(update={"database": url.path}))
    return open_engine(settings)


# --------------------------------------------------------------------- data
def cmd_generate(args: argparse.Namespace) -> int:
    from .generate import generate
    from .progress import ConsoleProgress

    counts = generate(
        Path(args.out), deals=args.deals, seed=args.seed, fmt=args.format,
        as_of=args.as_of, progress=ConsoleProgress(), effects=args.forecast_effects,
    )
    for table, n in counts.items():
        print(f"{table:14} {n:>12,} rows")
    print(f"wrote {args.format} files to {args.out}")
    return 0


def cmd_ingest(args: argparse.Namespace) -> int:
    from .errors import IngestError, Problem
    from .forecast.after_ingest import finisher
    from .ingest import ingest
    from .ingest.storage import check_output_file
    from .progress import ConsoleProgress

    from .engines import engine_url

    settings = _settings(args)
    if args.report:
        check_output_file(Path(args.report))  # a folder: refused before the load, not after it
    url = engine_url(settings)
    mapping = Path(args.mapping) if args.mapping else None
    if url.kind in ("postgres", "spark"):
        from .forecast.after_ingest import engine_finisher

        if url.kind == "postgres":
            from .engines.postgres_build import ingest_postgres as ingest_into
        else:
            from .engines.spark_build import ingest_spark as ingest_into
        report = ingest_into(Path(args.path), url, mapping=mapping, dry_run=args.dry_run,
                             progress=ConsoleProgress(), semantic_dir=settings.semantic_dir,
                             finish=engine_finisher(settings))  # the stored win model scores the new deals
    else:
        report = ingest(Path(args.path), settings.database, mapping=mapping, dry_run=args.dry_run,
                        progress=ConsoleProgress(), semantic_dir=settings.semantic_dir,
                        finish=finisher(Path(settings.database)))  # the stored win model scores the new deals
    print(report.render(show=args.show, report_file=args.report))
    if args.report:
        try:
            n = report.write_csv(args.report)
        except OSError as e:  # read-only folder, full disk: the load itself is already done
            raise IngestError(Problem(f"cannot write the report: {e.strerror or e}", file=args.report,
                                      hint="the ingest finished as shown above; choose another --report path")) from e
        print(f"wrote {n:,} problem rows to {args.report}")
    return 0 if report.ok else 2


def cmd_derive(args: argparse.Namespace) -> int:
    from .engines import engine_url
    from .progress import ConsoleProgress

    settings = _settings(args)
    url = engine_url(settings)
    notes: list[str] = []
    if url.kind == "duckdb":
        from .errors import ConfigError, Problem

        raise ConfigError(Problem(f"derive builds the derived tables inside a warehouse; {url.redacted} is the "
                                  "embedded DuckDB file, which `pipelinebi ingest` builds whole",
                                  hint="pass --engine postgresql://user@host/db?schema=crm, or --engine spark-local"))
    from .forecast.after_ingest import engine_finisher

    finish = engine_finisher(settings)  # the stored model re-scores the open deals in the build
    if url.kind == "spark":
        from .engines.spark_build import derive_spark

        counts = derive_spark(url, semantic_dir=settings.semantic_dir, sources=settings.spark_sources,
                              progress=ConsoleProgress(), finish=finish, notes=notes)
    else:
        from .engines.postgres_build import derive_postgres

        counts = derive_postgres(url, semantic_dir=settings.semantic_dir, progress=ConsoleProgress(),
                                 finish=finish, notes=notes)
    for table, n in counts.items():
        print(f"{table:22} {n:>12,} rows")
    print(f"built {len(counts)} derived tables in {url.redacted}")
    for note in notes:
        print(f"note: {note}")
    return 0


def cmd_info(args: argparse.Namespace) -> int:
    from .demo import ensure_database
    from .engines import engine_url
    from .warehouse import describe, describe_engine

    settings = _settings(args)
    if engine_url(settings).kind == "duckdb":
        ensure_database(settings)
        print(describe(settings))
    else:
        with _open(args) as engine:
            print(describe_engine(engine, settings))
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    from .serve import serve

    return serve(_settings(args), port=args.port, headless=not args.open_browser, host=args.host)


# ----------------------------------------------------------------- semantic
def cmd_validate(args: argparse.Namespace) -> int:
    from .semantic import load_semantic_layer

    from .dashboards import load_dashboards

    settings = _settings(args)
    layer = load_semantic_layer(settings.semantic_dir)
    # Dashboards are checked against the layer: unknown metrics, unreachable dimensions.
    pages = load_dashboards(settings.semantic_dir, layer)
    from .access import load_access

    policy, from_file = load_access(settings.semantic_dir, layer)  # row rules against the layer's dimensions
    access = f"access.yml: {len(policy.roles)} roles, {len(policy.users)} users" if from_file else "no access.yml (open access)"
    from .rules.build import compile_all

    # Scorecards (semantic/rules/*.yml): every rule compiled against the layer's dimensions.
    scorecards = compile_all(layer.registry, settings.semantic_dir)
    rules = sum(len(c.definition.all_rules) for c in scorecards)
    from .rules.routing import compile_routing, load_routing

    routing = load_routing(settings.semantic_dir)
    if routing is not None:
        compile_routing(layer.registry, routing)
    routed = f", routing ({len(routing.definition.rules)} rules)" if routing is not None else ""
    from .rules.triggers import compile_triggers
    from .semantic.triggers import load_triggers

    triggers = load_triggers(settings.semantic_dir)
    if triggers is not None:  # every condition, time and {placeholder} against the layer's dimensions
        compile_triggers(layer.registry, triggers)
    routed += f", {len(triggers.definition.rules)} triggers" if triggers is not None else ""
    print(f"ok: {layer.summary()}; {len(pages)} dashboards; {access}; {len(scorecards)} scorecards ({rules} rules){routed}")
    return 0


def cmd_route(args: argparse.Namespace) -> int:
    import json

    from .errors import ConfigError, Problem
    from .export import safe_csv_text
    from .rules.routing import compile_routing, load_routing, route
    from .semantic import load_semantic_layer

    settings = _settings(args)
    routing = load_routing(settings.semantic_dir)
    if routing is None:
        raise ConfigError(Problem("no routing rules: add a 'routing:' section to a file in semantic/rules/",
                                  file=str(settings.semantic_dir / "rules")))
    compiled = compile_routing(load_semantic_layer(settings.semantic_dir).registry, routing)
    if args.analysis:
        from dataclasses import asdict

        from .rules.routing_analysis import analyse

        with _open(args) as con:
            found = analyse(con, compiled)
        text = (json.dumps(asdict(found), indent=2, default=str) if args.format == "json" else found.render()) + "\n"
        if args.out:
            Path(args.out).write_text(text, encoding="utf-8")
        else:
            sys.stdout.write(text)
        return 0
    with _open(args) as con:  # routing reads; it never changes the data
        rows = [a.__dict__ for a in route(con, compiled)]
    if args.format == "json":
        text = json.dumps(rows, indent=2, default=str) + "\n"
    else:
        import pandas as pd

        text = safe_csv_text(pd.DataFrame(rows, columns=["lead_id", "rep_id", "rep", "rule", "reason"]))
    if args.out:
        Path(args.out).write_text(text, encoding="utf-8")
        print(f"{sum(1 for r in rows if r['rep_id'])} of {len(rows)} unassigned leads routed; wrote {args.out}")
    else:
        sys.stdout.write(text)
    return 0


def cmd_notify(args: argparse.Namespace) -> int:
    from .demo import ensure_database
    from .notify.run import notify
    from .semantic import load_semantic_layer
    from .warehouse import open_readonly

    settings = _settings(args)
    layer = load_semantic_layer(settings.semantic_dir)
    ensure_database(settings)
    with open_readonly(settings.database) as con:  # reads the actions; the ledger is its own file
        report = notify(settings, layer, con, dry_run=args.dry_run)
    print(report.render())
    return 1 if report.failed else 0


def cmd_schema(args: argparse.Namespace) -> int:
    import json

    from .importers.mapping_file import mapping_json_schema
    from .semantic.json_schema import write_json_schemas

    settings = _settings(args)
    out = Path(args.out) if args.out else settings.semantic_dir
    for path in write_json_schemas(out):
        print(f"wrote {path}")
    # Mapping files (semantic/mappings/*.yml) point at it with
    # "# yaml-language-server: $schema=../mapping.schema.json".
    path = out / "mapping.schema.json"
    path.write_text(json.dumps(mapping_json_schema(), indent=2) + "\n", encoding="utf-8")
    print(f"wrote {path}")
    return 0


def cmd_dimensions(args: argparse.Namespace) -> int:
    from .dimension_values import dimension_examples, render_dimensions
    from .semantic import load_semantic_layer

    settings = _settings(args)
    layer = load_semantic_layer(settings.semantic_dir)
    with _open(args) as con:
        rows = dimension_examples(layer, con, examples=args.examples)
    print(render_dimensions(rows, args.format))
    return 0


def _query_from_args(args: argparse.Namespace, layer=None):
    from .compiler.query import Query

    query = Query.from_cli(
        metrics=args.metrics, by=args.by, filters=args.filter or [], grain=args.grain,
        start=args.start, end=args.end, order=args.order, limit=args.limit, top=args.top,
    )
    if getattr(args, "as_user", None):
        query = query.model_copy(update={"scope": _scope_as(args, layer)})
    return query


def _scope_as(args: argparse.Namespace, layer):
    """``--as EMAIL``: the rows that person would see, per semantic/access.yml."""
    from .access import Identity, load_access, scope_of
    from .errors import AccessError, Problem

    policy, from_file = load_access(_settings(args).semantic_dir, layer)
    if not from_file:
        raise AccessError(Problem("--as needs semantic/access.yml: without it everyone sees every row"))
    if not policy.allow_cli_as:
        raise AccessError(Problem("--as is turned off by semantic/access.yml (allow_cli_as: false)"))
    return scope_of(policy, Identity(args.as_user.strip().lower(), source="cli"))


def cmd_compile(args: argparse.Namespace) -> int:
    from .semantic import load_semantic_layer

    layer = load_semantic_layer(_settings(args).semantic_dir)
    print(layer.compile(_query_from_args(args, layer), dialect=args.dialect))
    return 0


def cmd_query(args: argparse.Namespace) -> int:
    from .output import render_frame
    from .semantic import load_semantic_layer

    settings = _settings(args)
    layer = load_semantic_layer(settings.semantic_dir)
    with _open(args) as con:
        result = layer.query(_query_from_args(args, layer), con)
        print(render_frame(result.df(), args.format, layer.formats_for(result.columns)))
    return 0


def cmd_catalog(args: argparse.Namespace) -> int:
    from .catalog import catalog_markdown
    from .semantic import load_semantic_layer

    print(catalog_markdown(load_semantic_layer(_settings(args).semantic_dir)))
    return 0


# ---------------------------------------------------------------- forecast (#16)
def _forecast_target(args: argparse.Namespace):
    """Where the forecast commands run: the DuckDB file (built from the seeds on first use), or
    the warehouse engine ``--engine`` / ``PIPELINEBI_ENGINE`` names (:mod:`pipelinebi.forecast.target`)."""
    from .engines import engine_url
    from .forecast.target import EngineTarget, FileTarget

    settings = _settings(args)
    if engine_url(settings).kind == "duckdb":
        from .demo import ensure_database

        # the command's semantic folder says which rollups read a stored table (retired with it)
        return FileTarget(ensure_database(settings), settings.semantic_dir)
    return EngineTarget(settings)


def cmd_model(args: argparse.Namespace) -> int:
    from .forecast import commands

    where = _forecast_target(args)
    print(commands.train(where) if args.action == "train" else commands.score(where, args.limit))
    return 0


def cmd_backtest(args: argparse.Namespace) -> int:
    from .forecast import commands
    from .progress import ConsoleProgress

    where = _forecast_target(args)
    print(commands.backtest(where, args.start, args.end, args.every, not args.no_model, args.out,
                            save=not args.no_store, progress=ConsoleProgress(interval=5)))
    return 0


# ---------------------------------------------------------------- the parser
def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="pipelinebi",
        description="Sales pipeline analytics: YAML semantic layer on DuckDB, Streamlit dashboards.",
    )
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name: str, handler: Handler, help_: str, *, db: bool = True, sem: bool = False):
        sp = sub.add_parser(name, help=help_, description=help_)
        sp.set_defaults(handler=handler)
        if db:
            sp.add_argument("--database", metavar="FILE", help="DuckDB file (env PIPELINEBI_DATABASE)")
            sp.add_argument("--engine", metavar="URL",
                            help="where the data lives (env PIPELINEBI_ENGINE): duckdb:///path.duckdb (default: "
                                 "--database), postgresql://user@host/db?schema=crm (password from PGPASSWORD or ~/.pgpass), "
                                 "spark-local[?warehouse=DIR&database=NAME] or spark://host:15002?database=NAME")
        if sem:
            sp.add_argument("--semantic", metavar="DIR", help="semantic folder (env PIPELINEBI_SEMANTIC_DIR)")
        return sp

    g = add("generate", cmd_generate, "Write deterministic synthetic CRM data (one file per canonical table).", db=False)
    g.add_argument("--deals", type=int, required=True, metavar="N", help="number of deals (2000 … 10000000)")
    g.add_argument("--seed", type=int, default=42, help="random seed (default 42)")
    g.add_argument("--out", required=True, metavar="DIR", help="output folder")
    g.add_argument("--format", choices=["csv", "parquet"], default="csv")
    g.add_argument("--forecast-effects", action="store_true",
                   help="plant known answers for the forecast backtest: an optimistic team (NA Enterprise) and a "
                        "sandbagging one (APAC), two stage probabilities set too high, engagement that predicts winning")
    g.add_argument("--as-of", metavar="YYYY-MM-DD", default=None,
                   help="the data's 'today' (default: the fixed demo date, so output is reproducible)")

    i = add("ingest", cmd_ingest, "Validate and load a folder of CRM files into the DuckDB file (or --engine postgresql://…, spark-local), atomically.", sem=True)
    i.add_argument("path", metavar="PATH", help="folder of canonical table files, or a CRM export (see --mapping)")
    i.add_argument("--mapping", metavar="FILE", help="mapping YAML for a CRM export (salesforce, hubspot, pipedrive or your own)")
    i.add_argument("--dry-run", action="store_true", help="check and count only; the database is not touched")
    i.add_argument("--report", metavar="FILE",
                   help="write every problem to FILE as CSV (file, line, column, value, problem, severity)")
    i.add_argument("--show", type=int, default=50, metavar="N",
                   help="problems printed per kind (default 50; all are counted, and all go to --report)")

    add("derive", cmd_derive, "Rebuild only the derived tables (semantic/derived/*.sql) inside the warehouse, over the "
        "canonical tables already there (e.g. landed by a CRM sync tool), in one transaction.", sem=True)

    add("info", cmd_info, "Show the database, its tables and row counts, and the semantic folder.", sem=True)

    s = add("serve", cmd_serve, "Run the dashboards (builds the demo database on first run).", sem=True)
    s.add_argument("--port", type=int, default=8501)
    s.add_argument("--host", default="127.0.0.1", metavar="ADDRESS",
                   help="address to listen on (default 127.0.0.1: this machine only; with PIPELINEBI_AUTH=none the "
                        "app has no sign-in, so --host 0.0.0.0 exposes it to the network deliberately)")
    s.add_argument("--open-browser", action="store_true",
                   help="open a browser tab (default: just print the address; no prompts, fine on servers)")

    ro = add("route", cmd_route, "Assign the unassigned leads by the routing rules (semantic/rules/*.yml): lead -> rep, "
             "with the rule that decided; the database is not changed.", sem=True)
    ro.add_argument("--format", choices=["csv", "json"], default="csv")
    ro.add_argument("--out", metavar="FILE", help="write the assignments to FILE (default: print them)")
    ro.add_argument("--analysis", action="store_true",
                    help="instead: today's assignments against the rules (agreement, first-touch time and conversion "
                         "by rule, reps over capacity, an estimated what-if conversion)")

    nt = add("notify", cmd_notify, "Send the open actions (semantic/rules/triggers.yml) to the webhook and/or e-mail "
             "digest configured in the settings; each once, failures retried at the next run.", sem=True)
    nt.add_argument("--dry-run", action="store_true", help="say what would be sent, send nothing")

    add("validate", cmd_validate, "Check the semantic YAML; print every problem with file:line.", db=False, sem=True)
    sc = add("schema", cmd_schema, "Write JSON Schemas of the YAML files (for editor completion).", db=False, sem=True)
    sc.add_argument("--out", metavar="DIR", help="folder for the schema files (default: the semantic folder)")
    add("catalog", cmd_catalog, "Print every metric as markdown: label, formula, format, owner, choices.", db=False, sem=True)
    dm = add("dimensions", cmd_dimensions,
             "List every dimension with its model, type and a few example values from the database.", sem=True)
    dm.add_argument("--examples", type=int, default=3, metavar="N", help="example values per dimension (default 3)")
    dm.add_argument("--format", choices=["table", "csv", "json"], default="table")

    mo = add("model", cmd_model, "Train the per-deal win-probability model (stored beside the DuckDB file, or in "
             "PIPELINEBI_FORECAST_MODEL_DIR for an --engine), or score the open deals with it.")
    mo.add_argument("action", choices=["train", "score"])
    mo.add_argument("--limit", type=int, default=20, metavar="N", help="score: the N largest open deals (default 20)")
    bt = add("backtest", cmd_backtest, "Replay every forecast method on past snapshot dates, using only what was "
             "known then, and compare with what closed.")
    bt.add_argument("--from", dest="start", required=True, metavar="YYYY-MM-DD", help="first snapshot date")
    bt.add_argument("--to", dest="end", metavar="YYYY-MM-DD", help="last snapshot date (default: the data's as-of date)")
    bt.add_argument("--every", default="week", metavar="week|month", help="snapshot spacing (default week)")
    bt.add_argument("--no-model", action="store_true", help="leave out the learned model (faster)")
    bt.add_argument("--out", metavar="FILE.csv", help="write every backtest row to FILE.csv")
    bt.add_argument("--no-store", action="store_true",
                    help="do not store the rows in the database (by default they replace table forecast_backtest, "
                         "which the Forecast accuracy page and the forecast_* metrics read)")

    for name, handler, help_ in (
        ("compile", cmd_compile, "Print the SQL for a query."),
        ("query", cmd_query, "Run a query and print the result."),
    ):
        q = add(name, handler, help_, db=(name == "query"), sem=True)
        q.add_argument("-m", "--metrics", required=True, help="comma-separated metric names")
        q.add_argument("-b", "--by", default="", help="comma-separated dimension names")
        q.add_argument("-f", "--filter", action="append", metavar="EXPR",
                       help="filter over dimensions, e.g. \"team = 'EMEA Enterprise'\" (repeatable)")
        q.add_argument("--grain", choices=["day", "week", "month", "quarter", "year"])
        q.add_argument("--start", metavar="YYYY-MM-DD", help="time range start (inclusive)")
        q.add_argument("--end", metavar="YYYY-MM-DD", help="time range end (exclusive)")
        q.add_argument("--order", default="", help="comma-separated fields, prefix - for descending")
        q.add_argument("--limit", type=int)
        q.add_argument("--top", metavar="DIM:N:METRIC",
                       help="only the N values of DIM with the most METRIC, e.g. rep:20:stage_entries")
        q.add_argument("--as", dest="as_user", metavar="EMAIL",
                       help="the rows this person may see under semantic/access.yml (to check the policy)")
        if name == "compile":
            q.add_argument("--dialect", default="duckdb",
                           choices=["duckdb", "postgres", "spark", "snowflake", "bigquery"])
        else:
            q.add_argument("--format", choices=["table", "csv", "json"], default="table")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.handler(args)
    except PipelineBIError as e:
        from .output import terminal_safe  # a message may quote user input: no escape sequences

        print(f"error: {terminal_safe(str(e)).replace(chr(92) + 'x0a', chr(10))}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted: nothing was changed", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `pipelinebi query … | head`
        return 0
    except Exception as e:  # noqa: BLE001 — the last line: a bug of ours is still a message, not a traceback
        if os.environ.get("PIPELINEBI_DEBUG"):
            raise
        print(f"internal error: {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}\n"
              "this is a bug in PipelineBI: please report it with the command you ran "
              "(PIPELINEBI_DEBUG=1 shows the traceback)", file=sys.stderr)
        return 70  # EX_SOFTWARE


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

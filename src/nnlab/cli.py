"""The ``nnlab`` command: list, run, show, check and clean the experiments behind the book."""
from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
import traceback

from nnlab import cache, execute, experiments
from nnlab.config import ConfigError


def _planned(name: str, profile: str) -> cache.Planned:
    return cache.plan(name, profile)


def cmd_list(args) -> int:
    rows = [("experiment", "chapter", *cache.PROFILES, "last run")]
    for name in experiments.available():
        module = experiments.get(name)
        states, last = [], ""
        for profile in cache.PROFILES:
            p = _planned(name, profile)
            states.append(cache.status(p))
            if states[-1] == "fresh" and profile == "full":
                meta = p.cache.meta(name, p.key)
                last = f"{meta.get('created', '?')} ({meta.get('seconds', 0):.1f} s)"
        rows.append((name, getattr(module, "CHAPTER", ""), *states, last))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip())
    return 0


def cmd_run(args) -> int:
    if args.device:
        os.environ["NNLAB_DEVICE"] = args.device
    names = list(experiments.available()) if args.all else args.names
    if not names:
        print("nnlab run: name at least one experiment, or --all", file=sys.stderr)
        return 2
    overrides = dict(_split_assignment(s) for s in args.set)
    plans = [cache.plan(name, args.profile, overrides) for name in names]  # validate all first
    failed = []
    for p in plans:
        start = time.perf_counter()
        try:
            res = cache.compute(p, force=args.force)
        except Exception:  # one failure must not lose the others' results
            traceback.print_exc()
            failed.append(p.name)
            print(f"{p.name}: FAILED ({time.perf_counter() - start:.1f} s)")
            continue
        took = res.meta.get("seconds", 0.0)
        print(f"{p.name} [{p.profile}] {p.key}: {len(res['summary'])} summary rows, "
              f"computed in {took:.1f} s, ready in {time.perf_counter() - start:.1f} s")
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


def cmd_run_in_session(args) -> int:
    """:func:`cmd_run` with the experiments' units on the Dask executor (:func:`nnlab.execute.session`)."""
    with execute.session(scheduler=args.scheduler, workers=args.workers):
        return cmd_run(args)


def _split_assignment(text: str) -> tuple[str, str]:
    if "=" not in text:
        raise ConfigError(f"--set takes field=value, got {text!r}")
    key, value = text.split("=", 1)
    return key.strip(), value


def cmd_show(args) -> int:
    res = cache.load(args.name, args.profile)
    table = res["summary"]
    if args.format == "csv":
        table.to_csv(sys.stdout, index=False)
    elif args.format == "markdown":
        print(_markdown(table))
    else:
        import pandas as pd
        with pd.option_context("display.max_rows", None, "display.max_columns", None, "display.width", 200):
            print(table.to_string(index=False))
    return 0


def _markdown(table) -> str:
    cells = [[str(c) for c in table.columns]] + [["" if v != v else str(v) for v in row]
                                                 for row in table.itertuples(index=False)]
    lines = ["| " + " | ".join(row) + " |" for row in cells]
    lines.insert(1, "|" + "|".join("---" for _ in table.columns) + "|")
    return "\n".join(lines)


def cmd_check(args) -> int:
    problems = []
    for name in experiments.available():
        p = _planned(name, "full")
        state = cache.status(p)
        if state != "fresh":
            reason = p.cache.verify(name, p.key) if state == "corrupt" else ""
            problems.append(f"{name}: {state} {reason}".rstrip() + f" (run: nnlab run {name} --profile full)")
    for line in problems:
        print(line)
    print(f"nnlab check: {len(problems)} problem(s) in {len(experiments.available())} experiments")
    return 1 if problems else 0


def cmd_clean(args) -> int:
    removed = 0
    for profile in cache.PROFILES:
        root = cache.profile_dir(profile)
        if not root.is_dir():
            continue
        current = {name: _planned(name, profile).key for name in experiments.available()}
        for folder in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
            for entry in sorted(e for e in folder.iterdir() if e.is_dir()):
                if current.get(folder.name) != entry.name:
                    print(f"{'would remove' if args.dry_run else 'removing'} {entry}")
                    if not args.dry_run:
                        shutil.rmtree(entry)
                    removed += 1
            if not args.dry_run and folder.is_dir() and not any(folder.iterdir()):
                folder.rmdir()
        if not args.dry_run:
            shutil.rmtree(root / ".tmp", ignore_errors=True)
    done = "would be removed (dry run)" if args.dry_run else "removed"
    print(f"nnlab clean: {removed} entr{'y' if removed == 1 else 'ies'} {done}")
    return 0


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="nnlab", description=__doc__)
    sub = ap.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="experiments, their chapters and cache state").set_defaults(func=cmd_list)
    run = sub.add_parser("run", help="compute experiments into the cache")
    run.add_argument("names", nargs="*")
    run.add_argument("--all", action="store_true")
    run.add_argument("--profile", choices=cache.PROFILES, default="full")
    run.add_argument("--force", action="store_true", help="recompute even if cached")
    run.add_argument("--device", choices=("cpu", "cuda"), help="where the batched engine trains")
    run.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE",
                     help="override a config field (JSON value)")
    run.add_argument("--scheduler", metavar="tcp://HOST:PORT",
                     help="run the units on this Dask scheduler (default: $NNLAB_SCHEDULER, else a local cluster)")
    run.add_argument("--workers", type=int, metavar="N",
                     help="worker processes of the local cluster (default: $NNLAB_WORKERS, else one per core)")
    run.set_defaults(func=cmd_run_in_session)
    show = sub.add_parser("show", help="print an experiment's summary table")
    show.add_argument("name")
    show.add_argument("--profile", choices=cache.PROFILES, default=None)
    show.add_argument("--format", choices=("text", "csv", "markdown"), default="text")
    show.set_defaults(func=cmd_show)
    sub.add_parser("check", help="exit 1 if a full-profile entry is missing, stale or corrupt") \
        .set_defaults(func=cmd_check)
    clean = sub.add_parser("clean", help="delete entries no current code produces")
    clean.add_argument("--dry-run", action="store_true")
    clean.set_defaults(func=cmd_clean)
    return ap


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return args.func(args)
    except experiments.UnknownExperiment as err:
        print(f"nnlab: {err}", file=sys.stderr)
        return 2
    except ConfigError as err:
        print(f"nnlab: invalid config: {err}", file=sys.stderr)
        return 2
    except cache.CacheMiss as err:
        print(f"nnlab: {err}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())

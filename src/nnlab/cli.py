"""The nnlab command: list, run, show, check and clean the experiments behind the book, and
describe their configs."""
from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
import traceback

from nnlab import cache, execute, experiments, progress
from nnlab.config import ConfigError, describe

ENVIRONMENT = {
    "NNLAB_PROFILE": "profile used when --profile is not given: full (default) or smoke",
    "NNLAB_CACHE": "cache folder (default: cache/ in the book's root)",
    "NNLAB_NO_COMPUTE": "1: never compute, fail naming the command to run (as the book's render does)",
    "NNLAB_DEVICE": "cpu (default) or cuda: where the batched engine trains",
    "NNLAB_THREADS": "torch CPU threads of a training call (default 1)",
    "NNLAB_SCHEDULER": "tcp://HOST:PORT of a Dask scheduler for `nnlab run` (default: a local cluster)",
    "NNLAB_WORKERS": "worker processes of the local Dask cluster (default: one per core)",
    "NNLAB_QUIET": "1: no progress output at all",
    "NNLAB_PROGRESS": "log: progress as periodic lines (set by `nnlab run` when stderr is not a terminal)",
    "NNLAB_PROGRESS_INTERVAL": "seconds between two progress lines in a log (default 30)",
}


def _table(rows) -> None:
    widths = [max(len(str(r[i])) for r in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(str(cell).ljust(w) for cell, w in zip(row, widths)).rstrip())


def _last_run(meta: dict) -> str:
    return f"{meta.get('created', '?')} ({meta.get('seconds', 0) or 0:.1f} s)"


def cmd_list(args) -> int:
    profile, _ = cache.current_profile(args.profile), cache.base_dir()
    rows = [("experiment", "chapter", f"{profile} profile", "key", "last run")]
    for name in experiments.available():
        try:
            p = cache.resolve(name, profile)
            state, _ = cache.diagnose(p)
            last = _last_run(p.cache.meta(name, p.key)) if state == "fresh" else ""
            rows.append((name, p.chapter, state, p.key, last))
        except Exception as err:  # one broken experiment must not hide the others
            rows.append((name, "", f"error: {type(err).__name__}: {err}", "", ""))
    _table(rows)
    return 0


def cmd_run(args) -> int:
    if args.device:
        os.environ["NNLAB_DEVICE"] = args.device
    if not sys.stderr.isatty():
        os.environ.setdefault("NNLAB_PROGRESS", "log")   # CI logs get a line every 30 s
    names = list(experiments.available()) if args.all else args.names
    if not names:
        print("nnlab run: name at least one experiment, or --all", file=sys.stderr)
        return 2
    overrides = [_split_assignment(s) for s in args.set]
    repeated = sorted({k for k, _ in overrides if [k2 for k2, _ in overrides].count(k) > 1})
    if repeated:
        raise ConfigError(f"--set {', '.join(repeated)} given more than once; set each field once")
    plans = [cache.plan(name, args.profile, dict(overrides)) for name in names]  # validate all first
    failed = []
    for p in progress.bar(plans, desc="experiments", unit="experiment", leave=True, position=0):
        start = time.perf_counter()
        try:
            res = cache.compute(p, force=args.force)
        except Exception:  # one failure must not lose the others' results
            traceback.print_exc()
            failed.append(p.name)
            progress.write(f"{p.name}: FAILED ({time.perf_counter() - start:.1f} s)")
            continue
        took = res.meta.get("seconds", 0.0)
        if res.computed:
            done = f"computed in {took:.1f} s"
        else:
            done = f"already in the cache (computed on {res.meta.get('created', '?')} in {took:.1f} s)"
        progress.write(f"{p.name} [{p.profile}] {p.key}: {len(res['summary'])} summary rows, {done}")
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
    p = cache.resolve(args.name, args.profile)
    res = p.cache.get(p.name, p.key, p.expect)
    if res is None:       # show never trains: computing is `nnlab run`'s job, with its progress bars
        raise cache.CacheMiss(cache.miss_message(p, "`nnlab show` does not compute"))
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
    profile, _ = cache.current_profile(args.profile), cache.base_dir()
    problems = []
    for name in experiments.available():
        try:
            p = cache.resolve(name, profile)
            state, detail = cache.diagnose(p)
        except Exception as err:  # one broken experiment or entry must not stop the check of the others
            state, detail = "error", f"{type(err).__name__}: {err}"
        if state != "fresh":
            detail = f" ({detail})" if detail else ""
            problems.append(f"{name}: {state}{detail}; run: nnlab run {name} --profile {profile}")
    for line in problems:
        print(line)
    print(f"nnlab check: {len(problems)} problem(s) in {len(experiments.available())} experiments "
          f"(profile {profile})")
    return 1 if problems else 0


def _entries(root, current: dict[str, str]):
    """(experiment, key, why) of each removable entry under ``root``, and what is left alone.

    An entry is a real folder (no symlink) with a key-shaped name holding a meta.json that names that
    experiment and key; nothing else is ever removed."""
    removable, left = [], []
    for folder in sorted(root.iterdir()):
        if folder.name.startswith(".") or folder.is_symlink() or not folder.is_dir():
            continue
        for entry in sorted(folder.iterdir()):
            if entry.name.startswith(".") and entry.name.endswith(".replaced"):
                continue
            if entry.is_symlink() or not entry.is_dir() or not cache.KEY.fullmatch(entry.name):
                left.append(f"{entry} (not a cache entry)")
                continue
            try:
                meta = cache.read_meta(entry)        # an entry names itself; its checksum may be old
            except (cache.CorruptEntry, OSError) as err:
                left.append(f"{entry} (not a readable cache entry: {err})")
                continue
            if (meta.get("name"), meta.get("key")) != (folder.name, entry.name):
                left.append(f"{entry} (its meta.json names {meta.get('name')}/{meta.get('key')})")
            elif current.get(folder.name) != entry.name:
                removable.append((folder.name, entry.name))
    return removable, left


def _stale_temporaries(root) -> list:
    """Temporary folders no live process is writing: their key's lock is free, or they are a day old."""
    tmp, out = root / ".tmp", []
    if not tmp.is_dir() or tmp.is_symlink():
        return out
    store = cache.Cache(root)
    for folder in sorted(tmp.iterdir()):
        parts = folder.name.split(".")
        if len(parts) == 4 and parts[0] != "discard":       # name.key.pid.random, written under the key's lock
            try:
                in_use = store.busy(parts[0], parts[1])
            except (ValueError, OSError):
                in_use = True
        else:
            in_use = time.time() - folder.lstat().st_mtime < cache.TMP_MAX_AGE
        if not in_use:
            out.append(folder)
    return out


def cmd_clean(args) -> int:
    cache.base_dir()                 # a bad NNLAB_CACHE is an error before anything is looked at
    removed, busy = 0, 0
    verb = "would remove" if args.dry_run else "removing"
    for profile in cache.PROFILES:
        root = cache.profile_dir(profile)
        if not root.is_dir():
            continue
        current = {}
        for name in experiments.available():
            try:
                current[name] = cache.resolve(name, profile).key
            except Exception as err:  # without the current key, nothing of this experiment is removed
                print(f"keeping every entry of {name}: its current key is unknown ({err})")
                current[name] = None
        removable, left = _entries(root, current)
        store = cache.Cache(root)
        for name, key in removable:
            if current.get(name, "") is None:
                continue
            print(f"{verb} {store.path(name, key)}")
            if args.dry_run:
                removed += 1
            elif store.discard(name, key):
                removed += 1
                try:
                    (root / name).rmdir()             # only if that emptied it
                except OSError:
                    pass
            else:
                busy += 1
                print(f"  kept {store.path(name, key)}: a process is writing it")
        for line in left:
            print(f"leaving alone {line}")
        for folder in _stale_temporaries(root):
            print(f"{verb} unfinished write {folder}")
            if not args.dry_run:
                shutil.rmtree(folder, ignore_errors=True)
    done = "would be removed (dry run)" if args.dry_run else "removed"
    print(f"nnlab clean: {removed} entr{'y' if removed == 1 else 'ies'} {done}"
          + (f", {busy} kept because in use" if busy else ""))
    return 0


def cmd_config(args) -> int:
    profile = cache.current_profile(args.profile)
    module = experiments.get(args.name)
    config = module.PROFILES[profile]
    defaults = {row["field"]: row["value"] for row in describe(type(config)())}
    rows = [("field", "type", f"{profile} profile", "default", "allowed")]
    for row in describe(config):
        rows.append((row["field"], row["type"], row["value"], defaults[row["field"]], row["allowed"]))
    print(f"{args.name} ({getattr(module, 'CHAPTER', '')}), profile {profile}; change a field with "
          f"`nnlab run {args.name} --set FIELD=VALUE` (JSON values)")
    _table(rows)
    return 0


def _version() -> str:
    from importlib import metadata
    try:
        return metadata.version("nnlab")
    except metadata.PackageNotFoundError:
        return "unknown (not installed)"


def parser() -> argparse.ArgumentParser:
    epilog = "environment variables:\n" + "\n".join(f"  {k:<24} {v}" for k, v in ENVIRONMENT.items())
    ap = argparse.ArgumentParser(prog="nnlab", description=__doc__, epilog=epilog,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--version", action="version", version=f"nnlab {_version()}")
    sub = ap.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def profile_option(p):
        p.add_argument("--profile", choices=cache.PROFILES, default=None,
                       help="full (committed, used by the book) or smoke (seconds; tests). "
                            "Default: $NNLAB_PROFILE, else full")

    ls = sub.add_parser("list", help="experiments, their chapters and cache state")
    profile_option(ls)
    ls.set_defaults(func=cmd_list)
    run = sub.add_parser("run", help="compute experiments into the cache")
    run.add_argument("names", nargs="*", metavar="NAME", help="experiments to run (see `nnlab list`)")
    run.add_argument("--all", action="store_true", help="run every experiment")
    profile_option(run)
    run.add_argument("--force", action="store_true",
                     help="recompute even if cached; the old entry stays until the new one is stored")
    run.add_argument("--device", choices=("cpu", "cuda"), help="where the batched engine trains "
                     "(default: $NNLAB_DEVICE, else cpu)")
    run.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE",
                     help="override a config field with a JSON value, e.g. --set 'seeds=[0,1]'; "
                          "repeatable, once per field (see `nnlab config NAME`)")
    run.add_argument("--scheduler", metavar="tcp://HOST:PORT",
                     help="run the units on this Dask scheduler (default: $NNLAB_SCHEDULER, else a local cluster)")
    run.add_argument("--workers", type=int, metavar="N",
                     help="worker processes of the local cluster (default: $NNLAB_WORKERS, else one per core)")
    run.set_defaults(func=cmd_run_in_session)
    show = sub.add_parser("show", help="print an experiment's summary table (never computes)")
    show.add_argument("name", metavar="NAME", help="the experiment")
    profile_option(show)
    show.add_argument("--format", choices=("text", "csv", "markdown"), default="text",
                      help="output format (default text)")
    show.set_defaults(func=cmd_show)
    check = sub.add_parser("check", help="exit 1 if an entry of the profile is missing, stale, corrupt "
                                         "or unreadable")
    profile_option(check)
    check.set_defaults(func=cmd_check)
    clean = sub.add_parser("clean", help="delete cache entries that no current code and profile produce")
    clean.add_argument("--dry-run", action="store_true", help="list what would be removed, remove nothing")
    clean.set_defaults(func=cmd_clean)
    conf = sub.add_parser("config", help="an experiment's config fields, values and allowed ranges")
    conf.add_argument("name", metavar="NAME", help="the experiment")
    profile_option(conf)
    conf.set_defaults(func=cmd_config)
    return ap


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return args.func(args)
    except experiments.UnknownExperiment as err:
        print(f"nnlab: {err}", file=sys.stderr)
        return 2
    except (ConfigError, cache.CacheError) as err:
        print(f"nnlab: {err}", file=sys.stderr)
        return 2
    except (cache.CacheMiss, cache.UnreadableEntry) as err:
        print(f"nnlab: {err}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())

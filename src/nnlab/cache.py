"""The result cache: one folder per (experiment, config, code) under ``cache/<name>/<key>/``.

An entry holds ``meta.json`` (name, profile, config, fingerprint, versions, seconds, created, device
and the sha256 of every file), ``arrays.npz`` (numpy arrays, loaded with ``allow_pickle=False``),
one ``<table>.csv`` per pandas table and ``scalars.json``. Writes are atomic (a temporary folder
renamed into place); a per-key file lock makes concurrent runs compute once; every load verifies
the checksums, and an entry that fails is discarded with a warning and recomputed, never served.
"""
from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import time
import uuid
import warnings
from collections.abc import Callable, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd

from nnlab import config as cfg
from nnlab import experiments
from nnlab.fingerprint import fingerprint, reachable_modules

PROFILES = ("full", "smoke")
META, ARRAYS, SCALARS = "meta.json", "arrays.npz", "scalars.json"


class CacheMiss(RuntimeError):
    """A result is not in the cache and computing it is not allowed here."""


class CorruptEntry(ValueError):
    """A cache entry whose files do not match their recorded checksums or cannot be read safely."""


@dataclass
class Result(Mapping):
    """An experiment's stored result: ``res["key"]`` (or ``res.key``) gives an array, table or scalar."""

    name: str
    meta: dict
    values: dict = field(repr=False)
    path: Path | None = None

    def __getitem__(self, key):
        try:
            return self.values[key]
        except KeyError:
            raise KeyError(f"{self.name} has no result {key!r}; it has: {', '.join(self.values)}") from None

    def __getattr__(self, key):
        if key.startswith("__") or key in ("name", "meta", "values", "path"):
            raise AttributeError(key)
        try:
            return self[key]
        except KeyError as err:
            raise AttributeError(str(err)) from None

    def __iter__(self):
        return iter(self.values)

    def __len__(self):
        return len(self.values)

    @property
    def profile(self) -> str:
        return self.meta.get("profile", "")


# ---------------------------------------------------------------------------------------- locations

def base_dir() -> Path:
    """The cache folder: $NNLAB_CACHE, else ``cache/`` in the book's root (found from the package or cwd)."""
    if os.environ.get("NNLAB_CACHE"):
        return Path(os.environ["NNLAB_CACHE"])
    here = Path(__file__).resolve().parents[2]
    for root in (here, Path.cwd().resolve(), *Path.cwd().resolve().parents):
        if (root / "_quarto.yml").is_file():
            return root / "cache"
    return Path.cwd() / "cache"


def profile_dir(profile: str) -> Path:
    """Full-profile entries are committed in ``cache/``; smoke entries live in ``cache/.smoke/`` (ignored)."""
    return base_dir() if profile == "full" else base_dir() / f".{profile}"


def current_profile(profile: str | None = None) -> str:
    profile = profile or os.environ.get("NNLAB_PROFILE", "full")
    if profile not in PROFILES:
        raise cfg.ConfigError(f"profile {profile!r} is not one of {', '.join(PROFILES)}")
    return profile


def entry_key(name: str, config_json: str, code_fingerprint: str) -> str:
    """The content address of a result: hash of name, canonical config and code fingerprint."""
    text = json.dumps([name, config_json, code_fingerprint])
    return hashlib.sha256(text.encode()).hexdigest()[:20]


# ------------------------------------------------------------------------------------- file format

def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _to_json(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, (list, tuple)):
        return [_to_json(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _to_json(v) for k, v in value.items()}
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise TypeError(f"cannot store a {type(value).__name__} in the cache (use arrays, tables, JSON values)")


def _write_files(folder: Path, values: Mapping) -> None:
    arrays, scalars = {}, {}
    for key, value in values.items():
        if isinstance(value, pd.DataFrame):
            value.to_csv(folder / f"{key}.csv", index=False)
        elif isinstance(value, np.ndarray):
            if value.dtype.hasobject:
                raise TypeError(f"result {key!r} is an object array; the cache stores no pickles")
            arrays[key] = value
        else:
            scalars[key] = _to_json(value)
    if arrays:
        np.savez_compressed(folder / ARRAYS, **arrays)
    (folder / SCALARS).write_text(json.dumps(scalars, indent=1, sort_keys=True))


def _read_files(folder: Path, meta: dict) -> dict:
    for fname, digest in meta["files"].items():
        path = folder / fname
        if not path.is_file() or _sha256(path) != digest:
            raise CorruptEntry(f"{path} does not match its recorded checksum")
    values = {}
    if ARRAYS in meta["files"]:
        try:
            with np.load(folder / ARRAYS, allow_pickle=False) as npz:
                values.update({k: npz[k] for k in npz.files})
        except ValueError as err:  # object arrays need pickle: refused
            raise CorruptEntry(f"{folder / ARRAYS}: {err}") from err
    for fname in meta["files"]:
        if fname.endswith(".csv"):
            values[fname[:-4]] = pd.read_csv(folder / fname)
    values.update(json.loads((folder / SCALARS).read_text()))
    return values


# ---------------------------------------------------------------------------------------- the cache

class Cache:
    """Entries of one profile under ``root``: atomic puts, verified gets, locked computes."""

    def __init__(self, root: Path):
        self.root = Path(root)

    def path(self, name: str, key: str) -> Path:
        return self.root / name / key

    def get(self, name: str, key: str) -> Result | None:
        """The verified entry, or None; a corrupt entry is removed with a warning."""
        folder = self.path(name, key)
        if not (folder / META).is_file():
            return None
        try:
            meta = json.loads((folder / META).read_text())
            return Result(name, meta, _read_files(folder, meta), folder)
        except (CorruptEntry, OSError, ValueError, KeyError) as err:
            warnings.warn(f"discarding corrupt cache entry {folder}: {err}", stacklevel=2)
            self._discard(folder)
            return None

    def put(self, name: str, key: str, values: Mapping, meta: dict) -> Result:
        """Write an entry atomically: a temporary folder, fsynced, renamed into place."""
        tmp = self.root / ".tmp" / uuid.uuid4().hex
        tmp.mkdir(parents=True)
        try:
            _write_files(tmp, values)
            meta = dict(meta, files={p.name: _sha256(p) for p in sorted(tmp.iterdir())})
            (tmp / META).write_text(json.dumps(meta, indent=1, sort_keys=True))
            for p in tmp.iterdir():
                with open(p, "rb") as fh:
                    os.fsync(fh.fileno())
            final = self.path(name, key)
            final.parent.mkdir(parents=True, exist_ok=True)
            if final.exists():
                self._discard(final)
            os.rename(tmp, final)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        return self.get(name, key)

    def get_or_compute(self, name: str, key: str, compute: Callable[[], Mapping], meta: dict,
                       force: bool = False) -> Result:
        """The entry, computing it under a per-key lock if it is missing (or ``force``)."""
        if not force and (hit := self.get(name, key)) is not None:
            return hit
        with self._lock(name, key):
            if not force and (hit := self.get(name, key)) is not None:
                return hit  # another process computed it while we waited
            start = time.perf_counter()
            values = compute()
            meta = dict(meta, seconds=round(time.perf_counter() - start, 3),
                        created=datetime.now(timezone.utc).isoformat(timespec="seconds"))
            return self.put(name, key, values, meta)

    def keys(self, name: str) -> list[str]:
        folder = self.root / name
        return sorted(p.name for p in folder.iterdir() if (p / META).is_file()) if folder.is_dir() else []

    def meta(self, name: str, key: str) -> dict:
        return json.loads((self.path(name, key) / META).read_text())

    def verify(self, name: str, key: str) -> str | None:
        """None when the entry's files match their checksums, else what is wrong (nothing is deleted)."""
        folder = self.path(name, key)
        try:
            meta = json.loads((folder / META).read_text())
            _read_files(folder, meta)
        except (CorruptEntry, OSError, ValueError, KeyError) as err:
            return str(err)
        return None

    @contextmanager
    def _lock(self, name: str, key: str):
        locks = self.root / ".locks"
        locks.mkdir(parents=True, exist_ok=True)
        with open(locks / f"{name}-{key}.lock", "w") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    def _discard(self, folder: Path) -> None:
        trash = self.root / ".tmp" / f"discard-{uuid.uuid4().hex}"
        trash.parent.mkdir(parents=True, exist_ok=True)
        os.rename(folder, trash)
        shutil.rmtree(trash, ignore_errors=True)


# ------------------------------------------------------------------------------ experiments ↔ cache

@dataclass(frozen=True)
class Planned:
    """An experiment resolved to a config and its cache key."""

    name: str
    profile: str
    config: object
    fingerprint: str
    key: str

    @property
    def cache(self) -> Cache:
        return Cache(profile_dir(self.profile))


def plan(name: str, profile: str | None = None, overrides: Mapping[str, str] | None = None) -> Planned:
    """Resolve experiment ``name`` (UnknownExperiment if none) and its validated config to a key."""
    profile = current_profile(profile)
    module = experiments.get(name)
    config = module.PROFILES[profile]
    if overrides:
        config = cfg.with_overrides(config, dict(overrides))
    cfg.validate(config, name)
    if hasattr(module, "check"):      # constraints between fields, before anything is computed
        module.check(config)
    code = fingerprint(module.__name__)
    return Planned(name, profile, config, code, entry_key(name, cfg.to_json(config), code))


def _library_versions() -> dict:
    from importlib import metadata
    import platform
    out = {"python": platform.python_version()}
    for dist in ("torch", "numpy", "scipy", "pandas", "scikit-learn"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            pass
    return out


def compute(p: Planned, force: bool = False) -> Result:
    """The cached result of a planned experiment, computing and storing it when needed."""
    module = experiments.get(p.name)

    def run():
        values = module.run(p.config)
        if not isinstance(values.get("summary"), pd.DataFrame):
            raise TypeError(f"experiment {p.name!r} must return a 'summary' table")
        return values

    from nnlab.device import device  # imported late: it loads torch
    meta = {"name": p.name, "profile": p.profile, "config": json.loads(cfg.to_json(p.config)),
            "key": p.key, "fingerprint": p.fingerprint, "modules": reachable_modules(module.__name__),
            "versions": _library_versions(), "device": str(device()),
            "chapter": getattr(module, "CHAPTER", "")}
    return p.cache.get_or_compute(p.name, p.key, run, meta, force=force)


def status(p: Planned) -> str:
    """fresh, stale (only entries from other code or configs), corrupt, or missing."""
    cache = p.cache
    if p.key in cache.keys(p.name):
        return "corrupt" if cache.verify(p.name, p.key) else "fresh"
    others = [k for k in cache.keys(p.name) if cache.meta(p.name, k).get("profile") == p.profile]
    return "stale" if others else "missing"


def load(name: str, profile: str | None = None, **overrides) -> Result:
    """The result of experiment ``name`` for the profile in $NNLAB_PROFILE (default ``full``).

    Computes it when missing or stale, unless $NNLAB_NO_COMPUTE=1, which raises CacheMiss naming
    the command to run instead.
    """
    p = plan(name, profile, {k: json.dumps(v) for k, v in overrides.items()})
    hit = p.cache.get(p.name, p.key)
    if hit is not None:
        return hit
    if os.environ.get("NNLAB_NO_COMPUTE") == "1":
        raise CacheMiss(f"experiment {name!r} (profile {p.profile}) is {status(p)} in the cache and "
                        f"NNLAB_NO_COMPUTE=1 forbids computing it: run `nnlab run {name} "
                        f"--profile {p.profile}` and commit cache/")
    return compute(p)


def provenance(profile: str | None = None):
    """One row per experiment: its chapter, cache state, key, run time, date and device."""
    rows = []
    for name in experiments.available():
        p = plan(name, profile)
        state = status(p)
        meta = p.cache.meta(name, p.key) if state == "fresh" else {}
        rows.append({"experiment": name, "chapter": getattr(experiments.get(name), "CHAPTER", ""),
                     "state": state, "key": p.key, "seconds": meta.get("seconds"),
                     "created": meta.get("created"), "device": meta.get("device")})
    return pd.DataFrame(rows)

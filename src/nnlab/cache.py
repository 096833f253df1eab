"""The result cache: one folder per (experiment, config, code) under ``cache/<name>/<key>/``.

An entry holds ``meta.json`` (name, profile, key, config, overrides, fingerprint, versions, seconds,
created, device, threads, CPU, the kind of every result and the sha256 of every file),
``arrays.npz`` (numpy arrays, loaded with ``allow_pickle=False``), one ``<table>.csv`` per pandas
table and ``scalars.json``. ``meta.json`` carries its own checksum, ``meta_sha256``: the sha256 of its
canonical JSON without that field, so it travels with the file, ignores whitespace (a line-ending
conversion) and catches any edited value.

Rules:

- Writes are atomic: a temporary folder, fsynced, renamed into place. A replaced entry is renamed
  aside (``<name>/.<key>.replaced``), the new one renamed in, then the old one deleted, so that one of
  them is always on disk; a read finding only the aside puts it back.
- A read never deletes. An entry that fails its checks is reported (``CorruptEntry`` in ``verify``,
  a warning in ``get``) and left in place until a new result replaces it; an I/O error raises
  ``UnreadableEntry``. A read that fails is retried once under the entry's swap lock, so a read that
  races a rewrite sees the old entry or the new one.
- Every read checks ``meta.json`` against the request (name, key, and profile, config and
  fingerprint when given) and requires the files of every result it lists.
- Locks (the ``filelock`` package, portable): a per-key lock held while computing and writing makes
  concurrent runs compute once; a per-key swap lock is held only while entries are renamed or removed.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import time
import uuid
import warnings
import zipfile
from collections.abc import Callable, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from nnlab import config as cfg
from nnlab import experiments
from nnlab.fingerprint import fingerprint, reachable_modules, source_state

PROFILES = ("full", "smoke")
META, ARRAYS, SCALARS = "meta.json", "arrays.npz", "scalars.json"
KINDS = ("table", "array", "scalar")
NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_-]*")           # experiments and keys
RESULT = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*")        # result names: <name>.csv stays in its folder
KEY = re.compile(r"[0-9a-f]{20}")                  # the shape of entry_key()
MEMO = ".keys.json"                                 # the key memo, in the cache folder (not committed)
TMP_MAX_AGE = 24 * 3600                             # an unlocked temporary folder older than this is debris


class CacheMiss(RuntimeError):
    """A result is not in the cache and computing it is not allowed here."""


class CorruptEntry(ValueError):
    """An entry whose files or meta.json do not match what was written or what was asked for."""


class UnreadableEntry(RuntimeError):
    """An entry that could not be read (an I/O error): left alone, never treated as missing."""


class CacheError(RuntimeError):
    """The cache folder is unusable (for example $NNLAB_CACHE names a file)."""


@dataclass
class Result(Mapping):
    """An experiment's stored result: ``res["key"]`` (or ``res.key``) gives an array, table or scalar.

    ``computed`` is True when this process computed it (False: it was read from the cache)."""

    name: str
    meta: dict
    values: dict = field(repr=False)
    path: Path | None = None
    computed: bool = False

    def __getitem__(self, key):
        try:
            return self.values[key]
        except KeyError:
            raise KeyError(f"{self.name} has no result {key!r}; it has: {', '.join(self.values)}") from None

    def __getattr__(self, key):
        if key.startswith("__") or key in ("name", "meta", "values", "path", "computed"):
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
        path = Path(os.environ["NNLAB_CACHE"])
        if path.exists() and not path.is_dir():
            raise CacheError(f"NNLAB_CACHE={path} is not a folder: point it at a folder (it is created "
                             "if missing) or unset it to use the book's cache/")
        return path
    here = Path(__file__).resolve().parents[2]
    for root in (here, Path.cwd().resolve(), *Path.cwd().resolve().parents):
        if (root / "_quarto.yml").is_file():
            return root / "cache"
    return Path.cwd() / "cache"


def profile_dir(profile: str) -> Path:
    """Full-profile entries are committed in ``cache/``; smoke entries live in ``cache/.smoke/`` (ignored)."""
    return base_dir() if profile == "full" else base_dir() / f".{profile}"


def current_profile(profile: str | None = None) -> str:
    """``profile``, else $NNLAB_PROFILE, else ``full``: the one rule of every command."""
    if profile is None:
        env = os.environ.get("NNLAB_PROFILE", "")
        if env and env not in PROFILES:
            raise cfg.ConfigError(f"NNLAB_PROFILE={env!r} is not a profile; profiles are {', '.join(PROFILES)}")
        profile = env or "full"
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


def meta_digest(meta: dict) -> str:
    """The checksum meta.json stores of itself: sha256 of its canonical JSON without ``meta_sha256``."""
    body = {k: v for k, v in meta.items() if k != "meta_sha256"}
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def _to_json(value):
    import numpy as np
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, (list, tuple)):
        return [_to_json(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _to_json(v) for k, v in value.items()}
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise TypeError(f"cannot store a {type(value).__name__} in the cache (use arrays, tables, JSON values)")


def _write_files(folder: Path, values: Mapping) -> dict[str, str]:
    """Write the values; return the kind of each (table, array or scalar)."""
    import numpy as np
    import pandas as pd
    arrays, scalars, kinds = {}, {}, {}
    for key, value in values.items():
        if not RESULT.fullmatch(str(key)) or ".." in str(key):
            raise ValueError(f"result name {key!r} is not a plain name (letters, digits, _, - and .)")
        if isinstance(value, pd.DataFrame):
            value.to_csv(folder / f"{key}.csv", index=False)
            kinds[key] = "table"
        elif isinstance(value, np.ndarray):
            if value.dtype.hasobject:
                raise TypeError(f"result {key!r} is an object array; the cache stores no pickles")
            arrays[key], kinds[key] = value, "array"
        else:
            scalars[key], kinds[key] = _to_json(value), "scalar"
    if arrays:
        np.savez_compressed(folder / ARRAYS, **arrays)
    (folder / SCALARS).write_text(json.dumps(scalars, indent=1, sort_keys=True))
    return kinds


def read_meta(folder: Path) -> dict:
    """An entry's meta.json as a JSON object (CorruptEntry otherwise), its checksum not checked."""
    path = folder / META
    if folder.is_symlink() or path.is_symlink():
        raise CorruptEntry(f"{path} is a symbolic link; an entry holds plain files")
    try:
        meta = json.loads(path.read_bytes())
    except ValueError as err:
        raise CorruptEntry(f"{path} is not valid JSON: {err}") from None
    if not isinstance(meta, dict):
        raise CorruptEntry(f"{path} holds a {type(meta).__name__}, not an object")
    return meta


def _check_meta(meta: dict, folder: Path, expect: Mapping) -> None:
    """Raise CorruptEntry unless meta.json is intact, is the one asked for and lists every result's file."""
    if meta.get("meta_sha256") != meta_digest(meta):
        raise CorruptEntry(f"{folder / META} does not match its own checksum (meta_sha256)")
    for key, wanted in expect.items():
        if meta.get(key) != wanted:
            raise CorruptEntry(f"{folder / META} records {key} = {meta.get(key)!r}, not the {wanted!r} asked for")
    files, results = meta.get("files"), meta.get("results")
    if not isinstance(files, dict) or not files or not all(isinstance(v, str) for v in files.values()):
        raise CorruptEntry(f"{folder / META} lists no files with their checksums")
    if not isinstance(results, dict) or not results or not all(v in KINDS for v in results.values()):
        raise CorruptEntry(f"{folder / META} lists no results with their kinds")
    if not all(RESULT.fullmatch(k) and ".." not in k for k in results):
        raise CorruptEntry(f"{folder / META} lists a result whose name is not a plain name")
    needed = {f"{k}.csv" for k, kind in results.items() if kind == "table"} | {SCALARS}
    needed |= {ARRAYS} if "array" in results.values() else set()
    if set(files) != needed:
        raise CorruptEntry(f"{folder / META} lists files {sorted(files)}; its results need {sorted(needed)}")


def _read_files(folder: Path, meta: dict, parse: bool = True) -> dict:
    """Verify every checksum and the names of the results; with ``parse``, return the values."""
    for fname, digest in meta["files"].items():
        path = folder / fname
        if path.is_symlink() or not path.is_file():
            raise CorruptEntry(f"{path} is missing or not a plain file")
        if _sha256(path) != digest:
            raise CorruptEntry(f"{path} does not match its recorded checksum")
    results = meta["results"]
    names = {kind: {k for k, v in results.items() if v == kind} for kind in KINDS}
    scalars = json.loads((folder / SCALARS).read_bytes())
    if not isinstance(scalars, dict) or set(scalars) != names["scalar"]:
        raise CorruptEntry(f"{folder / SCALARS} does not hold the scalars {sorted(names['scalar'])}")
    values = dict(scalars)
    if names["array"] and not parse:      # the names of the arrays, read without numpy (fast check)
        try:
            with zipfile.ZipFile(folder / ARRAYS) as npz:
                stored = {n[:-4] for n in npz.namelist() if n.endswith(".npy")}
        except zipfile.BadZipFile as err:
            raise CorruptEntry(f"{folder / ARRAYS}: {err}") from err
        if stored != names["array"]:
            raise CorruptEntry(f"{folder / ARRAYS} does not hold the arrays {sorted(names['array'])}")
    elif names["array"]:
        import numpy as np
        try:
            with np.load(folder / ARRAYS, allow_pickle=False) as npz:
                if set(npz.files) != names["array"]:
                    raise CorruptEntry(f"{folder / ARRAYS} does not hold the arrays {sorted(names['array'])}")
                if parse:
                    values.update({k: npz[k] for k in npz.files})
        except (ValueError, EOFError) as err:  # object arrays need pickle: refused; or a damaged zip
            raise CorruptEntry(f"{folder / ARRAYS}: {err}") from err
    if parse:
        import pandas as pd
        for name in names["table"]:
            try:
                values[name] = pd.read_csv(folder / f"{name}.csv")
            except ValueError as err:
                raise CorruptEntry(f"{folder / name}.csv: {err}") from err
    return values


# ---------------------------------------------------------------------------------------- the cache

_LOCKS: dict = {}


def _filelock(path: Path):
    """One filelock.FileLock per lock file in this process, so that holding it is reentrant."""
    from filelock import FileLock   # imported when needed: listing and checking take no lock
    if str(path) not in _LOCKS:
        _LOCKS[str(path)] = FileLock(str(path))
    return _LOCKS[str(path)]


class Cache:
    """Entries of one profile under ``root``: atomic puts, verified gets, locked computes."""

    def __init__(self, root: Path):
        self.root = Path(root)

    def path(self, name: str, key: str) -> Path:
        if not (NAME.fullmatch(name) and NAME.fullmatch(key)):
            raise ValueError(f"not a cache entry name: {name!r}/{key!r}")
        return self.root / name / key

    def aside(self, name: str, key: str) -> Path:
        """Where a replaced entry waits while its successor is renamed in."""
        return self.root / name / f".{key}.replaced"

    # ---------------------------------------------------------------------------------- reading

    def read(self, name: str, key: str, expect: Mapping | None = None, parse: bool = True) -> dict | None:
        """(meta, values) of a verified entry, or None when there is none; CorruptEntry or
        UnreadableEntry otherwise. A failed read is retried once under the swap lock."""
        want = {"name": name, "key": key, **(expect or {})}
        if not self.path(name, key).exists() and self.aside(name, key).is_dir():
            with self._swap_lock_if_possible(name, key):    # a rewrite was killed between its renames,
                if not self.path(name, key).exists():      # or is between them now: wait, put it back
                    self._restore_aside(name, key)
        try:
            found = self._read_once(name, key, want, parse)
            if found is not None or not (self.path(name, key).exists() or self.aside(name, key).exists()):
                return found
        except (CorruptEntry, FileNotFoundError):
            pass                           # perhaps a rewrite swapped the entry under us: once more,
        with self._swap_lock_if_possible(name, key):    # while no one can swap it
            try:
                return self._read_once(name, key, want, parse)
            except FileNotFoundError as err:
                raise CorruptEntry(f"{self.path(name, key)}: {err.strerror}: {err.filename}") from None

    def _read_once(self, name, key, want, parse):
        folder = self.path(name, key)
        if not folder.exists() and not folder.is_symlink():
            if self.aside(name, key).is_dir():
                folder = self.aside(name, key)    # a rewrite was killed between its two renames
            else:
                return None
        try:
            meta = read_meta(folder)
            _check_meta(meta, folder, want)
            return meta, _read_files(folder, meta, parse)
        except (CorruptEntry, FileNotFoundError):
            raise
        except OSError as err:
            raise UnreadableEntry(f"could not read {folder}: {err} (the entry is left as it is)") from err
        except (ValueError, KeyError, TypeError, AttributeError) as err:
            raise CorruptEntry(f"{folder}: {type(err).__name__}: {err}") from err

    def get(self, name: str, key: str, expect: Mapping | None = None) -> Result | None:
        """The verified entry, or None when missing or corrupt (a corrupt one is left in place with a
        warning: a new result replaces it). An I/O error raises UnreadableEntry."""
        try:
            found = self.read(name, key, expect)
        except CorruptEntry as err:
            warnings.warn(f"corrupt cache entry (left in place): {err}", stacklevel=2)
            return None
        if found is None:
            return None
        return Result(name, found[0], found[1], self.path(name, key))

    def verify(self, name: str, key: str, expect: Mapping | None = None) -> str | None:
        """None when the entry is intact and is the one asked for, else what is wrong (nothing is changed)."""
        try:
            found = self.read(name, key, expect, parse=False)
        except (CorruptEntry, UnreadableEntry) as err:
            return str(err)
        return None if found is not None else "missing"

    def keys(self, name: str) -> list[str]:
        """Keys of the entries of experiment ``name`` (folders with a key-shaped name and a meta.json)."""
        folder = self.root / name
        if not folder.is_dir():
            return []
        return sorted(p.name for p in folder.iterdir()
                      if NAME.fullmatch(p.name) and not p.is_symlink() and (p / META).is_file())

    def meta(self, name: str, key: str) -> dict:
        """The meta.json of an entry as recorded (checked: CorruptEntry if it is not intact)."""
        folder = self.path(name, key)
        meta = read_meta(folder)
        if meta.get("meta_sha256") != meta_digest(meta):
            raise CorruptEntry(f"{folder / META} does not match its own checksum (meta_sha256)")
        return meta

    # ---------------------------------------------------------------------------------- writing

    def put(self, name: str, key: str, values: Mapping, meta: dict) -> Result:
        """Write an entry atomically, replacing any entry under that key only once the new one is ready."""
        with self.lock(name, key):   # reentrant: get_or_compute already holds it
            tmp = self.root / ".tmp" / f"{name}.{key}.{os.getpid()}.{uuid.uuid4().hex[:8]}"
            tmp.mkdir(parents=True)
            try:
                kinds = _write_files(tmp, values)
                meta = dict(meta, name=name, key=key, results=kinds,
                            files={p.name: _sha256(p) for p in sorted(tmp.iterdir())})
                meta["meta_sha256"] = meta_digest(meta)
                (tmp / META).write_text(json.dumps(meta, indent=1, sort_keys=True))
                for p in [*tmp.iterdir(), tmp]:
                    _fsync(p)
                self._swap_in(tmp, name, key)
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
        return self.get(name, key)

    def _swap_in(self, tmp: Path, name: str, key: str) -> None:
        """Old entry aside, new one in, old one deleted: one of them is on disk at every moment."""
        final, aside = self.path(name, key), self.aside(name, key)
        final.parent.mkdir(parents=True, exist_ok=True)
        with self.swap_lock(name, key):
            if final.exists() or final.is_symlink():
                if aside.exists():
                    self._trash(aside)         # left by a rewrite killed after its new entry went in
                os.rename(final, aside)
            os.rename(tmp, final)
            _fsync(final.parent)
            if aside.exists():
                self._trash(aside)

    def _restore_aside(self, name: str, key: str) -> None:
        try:
            os.rename(self.aside(name, key), self.path(name, key))
        except OSError:
            pass                               # read-only, or someone else restored it

    def _trash(self, folder: Path) -> None:
        """Delete a folder: renamed into .tmp first (atomic), then removed; a vanished folder is fine."""
        trash = self.root / ".tmp" / f"discard.{uuid.uuid4().hex}"
        trash.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.rename(folder, trash)
        except FileNotFoundError:
            return
        shutil.rmtree(trash, ignore_errors=True)

    def discard(self, name: str, key: str) -> bool:
        """Delete an entry unless it is being computed or written; False if it was busy.
        Takes the entry's locks and tolerates a folder that is already gone."""
        from filelock import Timeout
        try:
            with self.lock(name, key, timeout=0), self.swap_lock(name, key):
                self._trash(self.path(name, key))
                if self.aside(name, key).exists():
                    self._trash(self.aside(name, key))
        except Timeout:
            return False
        return True

    def get_or_compute(self, name: str, key: str, compute: Callable[[], Mapping], meta: dict,
                       force: bool = False, expect: Mapping | None = None) -> Result:
        """The entry, computing it under a per-key lock if it is missing or corrupt (or ``force``).
        ``Result.computed`` tells whether this call computed it."""
        if not force and (hit := self.get(name, key, expect)) is not None:
            return hit
        with self.lock(name, key):
            if not force and (hit := self.get(name, key, expect)) is not None:
                return hit  # another process computed it while we waited
            start = time.perf_counter()
            values = compute()
            meta = dict(meta, seconds=round(time.perf_counter() - start, 3),
                        created=datetime.now(timezone.utc).isoformat(timespec="seconds"))
            result = self.put(name, key, values, meta)
            result.computed = True
            return result

    # ------------------------------------------------------------------------------------ locks

    def _lockfile(self, name: str, key: str, kind: str):
        self.path(name, key)                     # validates the names
        locks = self.root / ".locks"
        locks.mkdir(parents=True, exist_ok=True)
        return _filelock(locks / f"{name}.{key}.{kind}")

    @contextmanager
    def lock(self, name: str, key: str, timeout: float = -1):
        """Held while an entry is computed and written (timeout=0: raise filelock.Timeout if busy)."""
        with self._lockfile(name, key, "lock").acquire(timeout=timeout):
            yield

    @contextmanager
    def swap_lock(self, name: str, key: str):
        """Held only while an entry is renamed or removed."""
        with self._lockfile(name, key, "swap").acquire():
            yield

    @contextmanager
    def _swap_lock_if_possible(self, name: str, key: str):
        """The swap lock, or nothing on a cache that cannot hold lock files (read-only)."""
        try:
            lock = self._lockfile(name, key, "swap")
            lock.acquire()
        except OSError:
            yield
            return
        try:
            yield
        finally:
            lock.release()

    def busy(self, name: str, key: str) -> bool:
        """Whether some process holds the entry's lock (it is computing or writing it)."""
        from filelock import Timeout
        try:
            with self.lock(name, key, timeout=0):
                return False
        except Timeout:
            return True


def _fsync(path: Path) -> None:
    """Flush a file or folder to disk (folders cannot be opened on Windows: skipped there)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        if path.is_dir():
            return
        raise
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# ------------------------------------------------------------------------------ experiments ↔ cache

@dataclass(frozen=True)
class Planned:
    """An experiment resolved to a config and its cache key. ``config`` is None when the plan came from
    the key memo (the module was not imported); ``config_json`` is always there."""

    name: str
    profile: str
    config: object
    fingerprint: str
    key: str
    config_json: str = ""
    overrides: tuple = ()
    chapter: str = ""

    @property
    def cache(self) -> Cache:
        return Cache(profile_dir(self.profile))

    @property
    def expect(self) -> dict:
        """What an entry's meta.json must record to be this plan's result."""
        return {"name": self.name, "key": self.key, "profile": self.profile,
                "config": json.loads(self.config_json), "fingerprint": self.fingerprint}


def plan(name: str, profile: str | None = None, overrides: Mapping[str, str] | None = None) -> Planned:
    """Resolve experiment ``name`` (UnknownExperiment if none) and its validated config to a key.
    Imports the experiment; :func:`resolve` does not when its sources are unchanged."""
    profile = current_profile(profile)
    module = experiments.get(name)
    config = module.PROFILES[profile]
    if overrides:
        config = cfg.with_overrides(config, overrides)
    cfg.validate(config, name)
    if hasattr(module, "check"):      # constraints between fields, before anything is computed
        module.check(config)
    code = fingerprint(module.__name__)
    config_json = cfg.to_json(config)
    pairs = tuple(sorted((k, json.dumps(cfg.parse_value(v))) for k, v in dict(overrides or {}).items()))
    p = Planned(name, profile, config, code, entry_key(name, config_json, code), config_json, pairs,
                getattr(module, "CHAPTER", ""))
    if not overrides:
        _remember(p, module.__name__)
    return p


# ------------------------------------------------------------------------------------ the key memo
# A profile's key needs its config, hence an import of the experiment (and torch). The memo records,
# per (experiment, profile), the key with a digest of everything it was computed from: the bytes of
# every nnlab module the experiment reaches, the names of all the package's files and the library
# versions (fingerprint.source_state). While that digest is unchanged the key cannot have changed.

def _memo_path() -> Path:
    return base_dir() / MEMO


def _read_memo() -> dict:
    try:
        memo = json.loads(_memo_path().read_bytes())
    except (OSError, ValueError):
        return {}
    return memo if isinstance(memo, dict) else {}


def _recall(entry: str) -> dict | None:
    """The memo's record of ``entry`` if the sources it was computed from are unchanged, else None."""
    record = _read_memo().get(entry)
    try:
        if isinstance(record, dict) and record["state"] == source_state(record["modules"]):
            return record
    except (KeyError, TypeError, ModuleNotFoundError, OSError):
        pass                                  # a damaged memo is ignored
    return None


def _memorise(entry: str, module: str, fields: dict) -> None:
    modules = reachable_modules(module)
    record = {"state": source_state(modules), "modules": modules, **fields}
    memo = _read_memo()
    if memo.get(entry) == record:
        return
    memo[entry] = record
    try:
        _memo_path().parent.mkdir(parents=True, exist_ok=True)
        _atomic_write(_memo_path(), json.dumps(memo, indent=1, sort_keys=True))
    except OSError:
        pass                                  # a read-only cache: no memo, keys are recomputed


def _remember(p: Planned, module: str) -> None:
    _memorise(f"{p.name}/{p.profile}", module, {"key": p.key, "fingerprint": p.fingerprint,
                                                "config": p.config_json, "chapter": p.chapter})


def module_fingerprint(module: str) -> str:
    """``fingerprint(module)``, from the key memo when the module's sources are unchanged."""
    record = _recall(f"module:{module}")
    if record is not None and isinstance(record.get("fingerprint"), str):
        return record["fingerprint"]
    code = fingerprint(module)
    _memorise(f"module:{module}", module, {"fingerprint": code})
    return code


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(f"{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        tmp.write_text(text)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def resolve(name: str, profile: str | None = None) -> Planned:
    """The plan of a profile's config, from the key memo when the sources it records are unchanged
    (no import, no torch), else from :func:`plan` (which refreshes the memo)."""
    profile = current_profile(profile)
    if name not in experiments.available():
        raise experiments.UnknownExperiment(name)
    record = _recall(f"{name}/{profile}")
    if record is not None:
        try:
            return Planned(name, profile, None, record["fingerprint"], record["key"], record["config"],
                           chapter=record["chapter"])
        except KeyError:
            pass
    return plan(name, profile)


# --------------------------------------------------------------------------------- running, state

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


def cpu_model() -> str:
    """The CPU: its model name with family/model/stepping (a virtual machine may say only "AMD EPYC",
    which hides the generation) and the vector instructions torch uses, "AMD EPYC (25/17/1, AVX512)":
    results of one key can differ in the last digits between CPUs."""
    import platform

    import torch
    fields = {}
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            name, _, value = line.partition(":")
            fields.setdefault(name.strip().lower(), value.strip())
    except OSError:
        pass
    name = fields.get("model name") or platform.processor() or platform.machine()
    ids = "/".join(fields[k] for k in ("cpu family", "model", "stepping") if k in fields)
    return f"{name} ({ids + ', ' if ids else ''}{torch.backends.cpu.get_cpu_capability()})"


def compute(p: Planned, force: bool = False) -> Result:
    """The cached result of a planned experiment, computing and storing it when needed."""
    if p.config is None:
        p = plan(p.name, p.profile)
    module = experiments.get(p.name)

    def run():
        import pandas as pd
        values = module.run(p.config)
        if not isinstance(values.get("summary"), pd.DataFrame):
            raise TypeError(f"experiment {p.name!r} must return a 'summary' table")
        return values

    import torch  # the experiments use it; recorded: thread count and device shape the last digits
    from nnlab.device import device
    meta = {"name": p.name, "profile": p.profile, "config": json.loads(p.config_json),
            "overrides": {k: json.loads(v) for k, v in p.overrides}, "key": p.key,
            "fingerprint": p.fingerprint, "modules": reachable_modules(module.__name__),
            "versions": _library_versions(), "device": str(device()), "threads": torch.get_num_threads(),
            "cpu": cpu_model(), "cpu_count": os.cpu_count(), "chapter": p.chapter}
    return p.cache.get_or_compute(p.name, p.key, run, meta, force=force, expect=p.expect)


def diagnose(p: Planned) -> tuple[str, str]:
    """(state, detail): fresh, corrupt or unreadable (the entry is left alone), stale (only entries of
    this profile's plain config from other code), or missing (perhaps with entries of other configs)."""
    cache = p.cache
    try:
        found = cache.read(p.name, p.key, p.expect, parse=False)
    except CorruptEntry as err:
        return "corrupt", str(err)
    except UnreadableEntry as err:
        return "unreadable", str(err)
    if found is not None:
        return "fresh", ""
    plain, others = 0, 0
    for key in cache.keys(p.name):
        try:
            meta = read_meta(cache.path(p.name, key))    # only for the message: no checksum needed
        except (CorruptEntry, OSError):
            continue
        if meta.get("profile") == p.profile:
            plain += not meta.get("overrides")
            others += bool(meta.get("overrides"))
    if plain:
        return "stale", f"{plain} entr{'y' if plain == 1 else 'ies'} from other code"
    return "missing", f"{others} entr{'y' if others == 1 else 'ies'} with --set values only" if others else ""


def status(p: Planned) -> str:
    """fresh, corrupt, unreadable, stale or missing (see :func:`diagnose`)."""
    return diagnose(p)[0]


def load(name: str, profile: str | None = None, **overrides) -> Result:
    """The result of experiment ``name`` for the profile in $NNLAB_PROFILE (default ``full``).

    Computes it when missing or stale, unless $NNLAB_NO_COMPUTE=1, which raises CacheMiss naming
    the command to run instead. A corrupt or unreadable entry is never deleted by reading it.
    """
    text = {k: json.dumps(v) for k, v in overrides.items()}
    p = plan(name, profile, text) if overrides else resolve(name, profile)
    hit = p.cache.get(p.name, p.key, p.expect)
    if hit is not None:
        return hit
    if os.environ.get("NNLAB_NO_COMPUTE") == "1":
        raise CacheMiss(miss_message(p, "NNLAB_NO_COMPUTE=1 forbids computing it"))
    return compute(p)


def miss_message(p: Planned, why: str) -> str:
    """Why a result is not served, and what to run (and, for the committed profile, to commit)."""
    state, detail = diagnose(p)
    sets = "".join(f" --set {k}={v}" for k, v in p.overrides)
    commit = " and commit cache/" if p.profile == "full" and not p.overrides else ""
    detail = f" ({detail})" if detail else ""
    return (f"experiment {p.name!r} (profile {p.profile}) is {state} in the cache{detail} and {why}: "
            f"run `nnlab run {p.name} --profile {p.profile}{sets}`{commit}")


def provenance(profile: str | None = None):
    """One row per experiment: its chapter, cache state, key, run time, date, device, threads and CPU."""
    import pandas as pd
    rows = []
    for name in experiments.available():
        p = resolve(name, profile)
        state = status(p)
        meta = p.cache.meta(name, p.key) if state == "fresh" else {}
        rows.append({"experiment": name, "chapter": p.chapter,
                     "state": state, "key": p.key, "seconds": meta.get("seconds"),
                     "created": meta.get("created"), "device": meta.get("device"),
                     "threads": meta.get("threads"), "cpu": meta.get("cpu")})
    return pd.DataFrame(rows)

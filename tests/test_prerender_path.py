"""The pre-render hook runs as Quarto runs it, from a shell with no venv activated.

Quarto runs a pre-render command that is not a `.py`/`.ts`/`.R`/`.lua` script as a plain process: it
splits the command like a shell and executes it, so `python` is whatever PATH finds (quarto-cli
src/command/render/project.ts, runScripts; quarto.org/docs/projects/scripts.html). The Makefile puts
the venv's bin first on PATH for every rendering target; these tests run the command the same way,
with the Makefile's PATH and without it."""
from __future__ import annotations

import os
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from quarto_source import ROOT

PRE_RENDER = yaml.safe_load((ROOT / "_quarto.yml").read_text())["project"]["pre-render"]
COMMANDS = [PRE_RENDER] if isinstance(PRE_RENDER, str) else list(PRE_RENDER)


def _plain_environment() -> dict:
    """This process's environment as a plain shell has it: no venv activated, none on PATH (pytest
    itself may run from a venv, and `make test` puts the venv first on PATH)."""
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "QUARTO_PYTHON", "PYTHONPATH")}
    env["PATH"] = os.pathsep.join(d for d in os.environ.get("PATH", "").split(os.pathsep)
                                  if d and not (Path(d).parent / "pyvenv.cfg").is_file())
    return env


def _makefile_path(env: dict) -> str:
    """The PATH the Makefile's recipes run with, starting from ``env``."""
    make = shutil.which("make", path=env["PATH"])
    if make is None:
        pytest.skip("make is not installed")
    run = subprocess.run([make, "-s", "--no-print-directory", "-C", str(ROOT),
                          "--eval", "print-path: ; @echo \"$$PATH\"", "print-path"],
                         env=env, capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    return run.stdout.strip()


@pytest.fixture
def project(tmp_path):
    """A copy of the book's sources (the hook writes _freeze/ into the project it runs in)."""
    shutil.copy(ROOT / "_quarto.yml", tmp_path)
    shutil.copy(ROOT / "index.qmd", tmp_path)
    shutil.copytree(ROOT / "chapters", tmp_path / "chapters")
    return tmp_path


def _run_like_quarto(command: str, cwd: Path, env: dict) -> subprocess.CompletedProcess:
    args = shlex.split(command)  # Quarto's parseShellRunCommand, then exec: PATH finds args[0]
    try:
        return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    except FileNotFoundError as err:
        return subprocess.CompletedProcess(args, 127, "", str(err))


def test_pre_render_is_a_plain_command():
    """The reason the Makefile must set PATH: a `.py` script would run with QUARTO_PYTHON instead."""
    assert all(not shlex.split(c)[0].endswith(".py") for c in COMMANDS)


@pytest.mark.parametrize("command", COMMANDS)
def test_pre_render_runs_with_the_makefiles_path(command, project):
    env = _plain_environment()
    env["PATH"] = _makefile_path(env)
    run = _run_like_quarto(command, project, env)
    assert run.returncode == 0, f"`{command}` with the Makefile's PATH failed:\n{run.stderr}"


@pytest.mark.parametrize("command", COMMANDS)
def test_pre_render_needs_the_makefiles_path(command, project):
    """Without the Makefile's PATH the plain shell's python lacks nnlab: the Makefile line matters."""
    env = _plain_environment()
    python = shutil.which("python", path=env["PATH"])
    if python and subprocess.run([python, "-c", "import nnlab"], env=env, capture_output=True).returncode == 0:
        pytest.skip(f"{python} (outside any venv) can import nnlab here, so the check proves nothing")
    run = _run_like_quarto(command, project, env)
    assert run.returncode != 0, f"`{command}` succeeded without the venv on PATH"

"""The README's code runs (issue 18): every ```python block and every ``portable-nn ...`` line of a ```bash block.

How each kind is run, so the test stays under a minute:

* A ```python block runs in a fresh interpreter, in a temporary directory,
  after a tiny-data shim (:data:`SHIM`): ``../shared/data/mnist`` in the code
  (what CI has, seen from the repo root) becomes the test's MNIST directory
  (``$PORTABLE_NN_MNIST_DIR``, else ``../shared/data/mnist`` from the repo
  root: the ``mnist_dir`` fixture); ``load_data_wrapper`` and
  ``load_data_shared`` keep the first 500 training, 100 validation and 100
  test images; every ``SGD`` runs at most one epoch (chapter 6's 60 epochs
  would take minutes).  Everything else runs as written.
* A block preceded by ``<!-- continues: ... -->`` uses names of the block
  above it: it runs after that block (and what that one continues) in the same
  interpreter.
* A block preceded by ``<!-- not-run: reason -->`` is not run; such blocks are
  counted and named in the test's output (``-rP``), and each needs a reason.
* In a ```bash block, each ``portable-nn ...`` command (a line, or a part
  after ``&&``) runs as ``python -m portable_nn ...`` (the same entry point as
  the console script) with the data path replaced; ``train`` is shrunk with
  ``--train-size 500 --test-size 200 --epochs 1`` (the README's is the full
  30-epoch main job).  Other commands (``pip``, ``nox``) are not run here.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
#: The data path the README's snippets name (relative to the repo root, as CI has it).
README_DATA = "../shared/data/mnist"
#: Flags appended to a README ``portable-nn train`` command so it takes seconds.
SHRINK_TRAIN = ["--train-size", "500", "--test-size", "200", "--epochs", "1"]

#: Run before each python block: tiny data, at most one epoch per SGD call (see the module docstring).
SHIM = """
import portable_nn
from portable_nn import network, network2, network3

def _tiny(load):
    def tiny(*args, **kwargs):
        training, validation, test = load(*args, **kwargs)
        return training[:500], validation[:100], test[:100]
    return tiny

portable_nn.load_data_wrapper = _tiny(portable_nn.load_data_wrapper)
network3.load_data_shared = _tiny(network3.load_data_shared)

def _one_epoch(cls):
    sgd = cls.SGD
    def SGD(self, training_data, epochs, *args, **kwargs):
        return sgd(self, training_data, min(epochs, 1), *args, **kwargs)
    cls.SGD = SGD

for _cls in {network.Network, network2.Network, network3.Network, portable_nn.Network}:
    _one_epoch(_cls)
"""

_FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.MULTILINE | re.DOTALL)
_MARK = re.compile(r"<!--\s*(not-run|continues)\s*:?\s*(.*?)\s*-->\s*$")


@dataclass(frozen=True)
class Block:
    """One fenced block of the README: its language, code, line number and marker (``not-run``/``continues``)."""

    language: str
    code: str
    line: int
    mark: str | None
    reason: str

    @property
    def name(self) -> str:
        return f"{self.language or 'text'}@README.md:{self.line}"


def readme_blocks(text: str) -> list[Block]:
    """Every fenced block of ``text``, with the HTML-comment marker on the line just before it, if any."""
    blocks = []
    for match in _FENCE.finditer(text):
        before = text[: match.start()].rstrip("\n").rsplit("\n", 1)[-1]
        mark = _MARK.search(before)
        blocks.append(
            Block(
                match[1], match[2], text.count("\n", 0, match.start()) + 1,
                mark[1] if mark else None, mark[2] if mark else "",
            )
        )  # fmt: skip
    return blocks


BLOCKS = readme_blocks(README.read_text(encoding="utf-8"))
PYTHON = [b for b in BLOCKS if b.language == "python" and b.mark != "not-run"]
NOT_RUN = [b for b in BLOCKS if b.mark == "not-run"]


def chain(block: Block) -> list[Block]:
    """``block`` with the python blocks it continues before it (in README order)."""
    runs = [block]
    index = BLOCKS.index(block)
    while runs[0].mark == "continues":
        index -= 1
        while BLOCKS[index].language != "python":
            index -= 1
        runs.insert(0, BLOCKS[index])
    return runs


def shell_commands(text: str) -> list[list[str]]:
    """The ``portable-nn`` commands of the README's bash blocks, as argument lists."""
    commands = []
    for block in readme_blocks(text):
        if block.language != "bash" or block.mark == "not-run":
            continue
        for line in block.code.splitlines():
            for part in line.split("&&"):
                words = shlex.split(part, comments=True)
                if words and words[0] == "portable-nn":
                    commands.append(words[1:])
    return commands


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PORTABLE_NN_") and k != "JAX_ENABLE_X64"}
    return {**env, "PYTHONPATH": os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)}


def run_python(code: str, data: Path, cwd: Path) -> subprocess.CompletedProcess:
    """``code`` after :data:`SHIM`, with the README's data path replaced by ``data``, in a fresh interpreter."""
    source = SHIM + "\n" + code.replace(README_DATA, str(data))
    return subprocess.run(
        [sys.executable, "-c", source], capture_output=True, text=True, cwd=cwd, env=_env(), timeout=120
    )


def test_the_readme_has_blocks_and_every_not_run_block_says_why():
    assert len(PYTHON) >= 4 and shell_commands(README.read_text(encoding="utf-8"))
    assert all(b.reason for b in NOT_RUN), [b.name for b in NOT_RUN if not b.reason]
    print(f"{len(NOT_RUN)} README block(s) not run:", *(f"{b.name} ({b.reason})" for b in NOT_RUN), sep="\n  ")


@pytest.mark.parametrize("block", PYTHON, ids=[b.name for b in PYTHON])
def test_a_readme_python_block_runs(block, mnist_dir, tmp_path):
    code = "\n".join(b.code for b in chain(block))
    proc = run_python(code, mnist_dir, tmp_path)
    assert proc.returncode == 0, f"{block.name} failed:\n{proc.stderr[-3000:]}"


@pytest.mark.parametrize(
    "args", shell_commands(README.read_text(encoding="utf-8")), ids=lambda a: "portable-nn " + " ".join(a)
)
def test_a_readme_command_runs(args, mnist_dir, tmp_path):
    args = [str(mnist_dir) if a == README_DATA else a for a in args]
    if args[0] == "train":
        args += SHRINK_TRAIN
    proc = subprocess.run(
        [sys.executable, "-m", "portable_nn", *args], capture_output=True, text=True, cwd=tmp_path, env=_env(),
        timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr


def test_a_broken_snippet_fails(mnist_dir, tmp_path):
    """The runner is not vacuous: a snippet that raises, or names a missing attribute, fails."""
    assert run_python("import portable_nn\nportable_nn.no_such_thing()", mnist_dir, tmp_path).returncode != 0
    ok = run_python(PYTHON[0].code, mnist_dir, tmp_path)
    assert ok.returncode == 0, ok.stderr
    assert "Epoch 0:" in ok.stdout and "Epoch 1:" not in ok.stdout  # the shim ran one epoch of the book's loop

"""The ``portable-nn`` command: ``train``, ``evaluate``, ``predict``, ``plot`` and ``sweep``.

``portable-nn train`` with no options reproduces the book's chapter-1 run:
``[784, 30, 10]``, 30 epochs, mini-batches of 10, eta 3.0, on the first 50,000
MNIST training images, evaluated on the 10,000 test images after each epoch;
with ``--seed S`` it trains exactly ``portable_nn.Network([784, 30, 10],
seed=S)``.  Chapter 3's options (``--cost``, ``--lmbda``, ``--init``, ...)
train the book's ``network2`` on the same core, ``--preset`` chapter 6's networks.

Errors: every expected failure (a bad flag, a missing or malformed file, a
permission, a full disk, a model that does not fit the data or the limits) is
one line on stderr naming the file or flag, exit status 2 for usage errors
and 1 for the rest; ``--debug`` (anywhere on the command line, or
``PORTABLE_NN_DEBUG=1``) shows the traceback instead.  SIGINT (Ctrl-C),
SIGTERM and SIGHUP stop training at the next mini-batch: what is saved is the
network at the end of the last completed epoch, and nothing at all when no
epoch completed (exit status 128 + the signal number: 130, 143, 129).  A
stdout or stderr that goes away (a closed pipe, a full device, a closed
terminal) only stops the printing, never the training or the save.

The modules, by job: :mod:`.parser` (options), :mod:`.config` (the one run
configuration), :mod:`.train`, :mod:`.printer`, :mod:`.signals`,
:mod:`.outputs` (output checks and writes), :mod:`.models` (``evaluate``,
``predict``), :mod:`.plot`, :mod:`.common` (errors, printing), :mod:`.app`
(``main``).
"""

from __future__ import annotations

from .app import main
from .common import EXPECTED_ERRORS, CommandError
from .config import DEFAULTS, RunConfig, config_from_args
from .models import cmd_evaluate, cmd_predict
from .parser import build_parser
from .plot import cmd_plot
from .train import build_network, cmd_train

__all__ = [
    "DEFAULTS",
    "EXPECTED_ERRORS",
    "CommandError",
    "RunConfig",
    "build_network",
    "build_parser",
    "cmd_evaluate",
    "cmd_plot",
    "cmd_predict",
    "cmd_train",
    "config_from_args",
    "main",
]

"""Which process of a distributed run owns the run directory: global rank 0.

Lightning's ``ddp`` strategy runs the command line again once per extra device (``LOCAL_RANK``
set) and a multi-node job starts it on every node (``NODE_RANK``); torchrun and SLURM set
``RANK`` and ``SLURM_PROCID``. Those copies join the Lightning stages (fit, extract) and write
nothing else, so every file of a run is written once, by rank 0. Read from the environment
(no torch import), so the numpy-side stages can ask too.
"""

import logging
import os
import sys

__all__ = ["is_main_process", "MainProcessOnly"]

# A launcher sets these to a process's place in the job; a process is rank 0 when all it
# sets are 0 (node 0, device 0), as Lightning's own environments read them.
_RANK_VARIABLES = ("RANK", "LOCAL_RANK", "NODE_RANK", "GROUP_RANK", "SLURM_PROCID",
                   "JSM_NAMESPACE_RANK")


def is_main_process() -> bool:
    """Whether this process is global rank 0 (always, outside a distributed job).

    Once a process group is up its rank decides; before that, the launcher's environment.
    """
    torch = sys.modules.get("torch")
    distributed = None if torch is None else torch.distributed
    if distributed is not None and distributed.is_available() and distributed.is_initialized():
        return distributed.get_rank() == 0
    return all(int(os.environ.get(name) or 0) == 0 for name in _RANK_VARIABLES)


class MainProcessOnly(logging.Filter):
    """Let through progress lines of rank 0 only; warnings and errors of every rank."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= logging.WARNING or is_main_process()

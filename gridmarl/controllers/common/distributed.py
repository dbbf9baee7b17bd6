"""Data-parallel learners over ``torch.distributed``: what a learner needs to train as one of
``K`` processes started by ``torchrun`` (``torchrun --nproc-per-node K -m gridmarl train …``,
or ``gridmarl train --nproc K``).

Each process (rank) collects its own rollouts (its own envs and episode seeds); the ranks'
batches together are the update's batch.  The learner's loss runs under
``torch.nn.parallel.DistributedDataParallel`` (``DataParallel.wrap`` on a :class:`LossModule`
holding its networks), so every backward pass averages the gradients over the ranks (gloo on
CPU, NCCL on GPU) and the optimiser steps stay identical everywhere.  Statistics a learner
computes over the whole batch (advantage normalisation, running observation and value
normalisers) read the ranks' data concatenated in rank order (``DataParallel.gather``).  So
``K`` ranks of ``B`` envs each, with one minibatch per epoch, make the same update as one
process on the ``K·B`` envs concatenated (``tests/controllers/test_distributed.py``); with
``m`` minibatches each gradient step averages the ranks' ``m``-th shares.

Rank 0 alone writes checkpoints, logs and the run folder (``gridmarl.train``); every rank
reads ``last.pt`` on ``--resume`` (the run folder must be on a file system every node sees).

A learner opts in by implementing ``set_data_parallel(dp)`` (``MATPPO`` does); the driver
calls it when ``WORLD_SIZE > 1``.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import torch
from torch import Tensor, nn

#: ``torchrun``'s variables that say this process is one of several
ENV_VARS = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")


def launched_world_size() -> int:
    """``WORLD_SIZE`` set by ``torchrun`` (1 when this process was not started by it)."""
    return int(os.environ.get("WORLD_SIZE", "1"))


class LossModule(nn.Module):
    """The networks of a learner and its loss, as one module for ``DistributedDataParallel``:
    ``forward(*args)`` returns ``loss_fn(*args)`` (a loss tensor, or a tuple / dict holding
    it), which must use only the parameters of ``parts``.

    Args:
        loss_fn: the learner's loss on a minibatch.
        parts: name -> network (the same module objects the learner acts with).
    """

    def __init__(self, loss_fn: Callable[..., Any], **parts: nn.Module) -> None:
        super().__init__()
        self.parts = nn.ModuleDict(parts)
        self.loss_fn = loss_fn

    def forward(self, *args: Any) -> Any:
        return self.loss_fn(*args)


class DataParallel:
    """This process's place in a data-parallel group and its collectives.

    Args:
        rank: this process's index, 0 … world − 1.
        world: processes in the group.
        device: where this process's learner lives (``cuda:<LOCAL_RANK>`` on GPUs).
    """

    def __init__(self, rank: int, world: int, device: torch.device) -> None:
        self.rank, self.world, self.device = int(rank), int(world), torch.device(device)

    @classmethod
    def from_env(cls, device: torch.device) -> DataParallel | None:
        """Join the process group ``torchrun`` describes in the environment (``RANK``,
        ``WORLD_SIZE``, ``MASTER_ADDR``, ``MASTER_PORT``); None when ``WORLD_SIZE`` is 1 or
        unset.  Backend: NCCL on CUDA, gloo on CPU."""
        world = launched_world_size()
        if world <= 1:
            return None
        import torch.distributed as dist

        if not dist.is_initialized():
            backend = "nccl" if device.type == "cuda" else "gloo"
            # validation on rank 0 may take long while the others wait at the next collective
            dist.init_process_group(backend=backend, timeout=timedelta(hours=2))
        return cls(dist.get_rank(), dist.get_world_size(), device)

    @property
    def is_main(self) -> bool:
        """Rank 0: the process that writes files and logs."""
        return self.rank == 0

    def wrap(self, module: nn.Module) -> nn.Module:
        """``module`` under ``DistributedDataParallel`` (gradients averaged over the ranks at
        every backward pass).  Unused parameters are allowed (a network part an env does not
        need, e.g. the forecast encoder without a forecast); buffers are not broadcast (the
        learner keeps its normalisers equal on every rank with :meth:`gather`)."""
        from torch.nn.parallel import DistributedDataParallel

        ids = [self.device.index] if self.device.type == "cuda" else None
        with warnings.catch_warnings():
            # newer torch calls broadcast_buffers deprecated in favour of forward_sync_buffers,
            # and keeps its meaning (no sync at each forward), which is what is wanted here
            warnings.simplefilter("ignore", FutureWarning)
            return DistributedDataParallel(
                module, device_ids=ids, broadcast_buffers=False, find_unused_parameters=True
            )

    def gather(self, x: Tensor, dim: int = 0) -> Tensor:
        """Every rank's ``x`` (equal shapes) concatenated along ``dim`` in rank order."""
        import torch.distributed as dist

        parts = [torch.empty_like(x) for _ in range(self.world)]
        dist.all_gather(parts, x.contiguous())
        return torch.cat(parts, dim=dim)

    def broadcast_object(self, obj: Any) -> Any:
        """Rank 0's ``obj`` on every rank (e.g. the run folder it created)."""
        import torch.distributed as dist

        box = [obj]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def barrier(self) -> None:
        """Wait for every rank."""
        import torch.distributed as dist

        dist.barrier()

    def close(self) -> None:
        """Leave the process group, once nothing uses it.

        A learner and its ``DistributedDataParallel`` wrapper form a reference cycle (the loss
        module holds the learner's bound loss), so they would otherwise live until the
        interpreter shuts down, and with them the gloo group and its worker threads; a worker
        thread that drops the last reference to a finished collective during interpreter
        finalisation aborts the process (SIGABRT, exit code -6 under ``torchrun``).  Collecting
        the cycles first lets ``destroy_process_group`` drop the group's last reference and
        join its threads while Python is fully alive."""
        import gc

        import torch.distributed as dist

        gc.collect()
        if dist.is_initialized():
            dist.destroy_process_group()

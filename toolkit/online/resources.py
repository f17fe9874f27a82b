"""Instance types made real: CPU affinity, thread caps, a memory limit, and process plumbing.

An instance type from :data:`toolkit.specs.INSTANCE_TYPES` (``cores``, ``memory_gib``) becomes:

* a CPU set for the instance process (``sched_setaffinity`` before the interpreter starts, so every
  thread the model's libraries create inherits it).  Instances are spread over the machine's CPUs
  round-robin; a fractional type (``cpu-nano``: 0.5 cores) is pinned to one CPU that it shares.
* thread caps (``OMP_NUM_THREADS``, ``OPENBLAS_NUM_THREADS``, ``MKL_NUM_THREADS``) equal to the
  whole cores, so BLAS does not start a thread per machine CPU inside a one-core instance.
* a resident-memory limit watched by the supervisor (:func:`tree_rss`): RSS is what the kernel
  really charges.  ``RLIMIT_AS`` is not used because it limits *virtual* memory, which numpy,
  BLAS thread stacks and glibc arenas reserve in large amounts they never touch, so it would kill
  healthy instances and let no real overuse through sooner.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import math
import os
import signal
import sys
from dataclasses import dataclass
from typing import Callable, Iterable

import psutil

from ..specs import INSTANCE_TYPES, InstanceType

__all__ = [
    "Compute",
    "CpuAllocator",
    "compute_for",
    "thread_env",
    "make_preexec",
    "tree_rss",
    "MIB",
]

MIB = 1024 * 1024
_PR_SET_PDEATHSIG = 1


@dataclass(frozen=True)
class Compute:
    """What one instance of a deployment may use."""

    instance_type: str
    cores: float
    memory_limit_bytes: int

    @property
    def cpu_count(self) -> int:
        """CPUs in the instance's affinity set (a fraction still needs one CPU to run on)."""
        return max(1, math.ceil(self.cores))

    @property
    def threads(self) -> int:
        return max(1, int(self.cores))


def compute_for(instance_type: str, catalogue: dict[str, InstanceType] | None = None) -> Compute:
    t = (catalogue or INSTANCE_TYPES)[instance_type]
    return Compute(instance_type=t.name, cores=float(t.cores), memory_limit_bytes=int(t.memory_gib * 1024 * MIB))


def thread_env(compute: Compute) -> dict[str, str]:
    n = str(compute.threads)
    return {
        "OMP_NUM_THREADS": n, "OPENBLAS_NUM_THREADS": n, "MKL_NUM_THREADS": n,
        "NUMEXPR_NUM_THREADS": n, "VECLIB_MAXIMUM_THREADS": n,
    }


class CpuAllocator:
    """Hands out CPU sets round-robin so instances spread over the machine instead of piling
    onto CPU 0.  It does not reserve CPUs: with more cores asked than the machine has, instances
    share (a local machine cannot refuse a deployment the way a cloud quota would)."""

    def __init__(self, cpus: Iterable[int] | None = None) -> None:
        if cpus is None:
            try:
                cpus = sorted(os.sched_getaffinity(0))
            except AttributeError:  # not Linux
                cpus = list(range(psutil.cpu_count() or 1))
        self.cpus: list[int] = list(cpus) or [0]
        self._next = 0

    def allocate(self, compute: Compute) -> list[int]:
        n = min(compute.cpu_count, len(self.cpus))
        chosen = [self.cpus[(self._next + i) % len(self.cpus)] for i in range(n)]
        self._next = (self._next + n) % len(self.cpus)
        return sorted(chosen)


def _prctl() -> Callable[..., int] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        return libc.prctl  # type: ignore[no-any-return]
    except (OSError, AttributeError):
        return None


# Resolved once in the parent: the child between fork and exec must not load libraries.
_PRCTL = _prctl()


def make_preexec(cpus: list[int] | None) -> Callable[[], None]:
    """The function run in the child between fork and exec.

    PR_SET_PDEATHSIG makes the kernel SIGKILL the instance when the thread that spawned it dies
    (a ``kill -9`` of the host leaves no orphan holding the model in memory).  Affinity is set
    here, before the interpreter starts, so all of the instance's threads inherit it.
    """
    parent = os.getpid()

    def preexec() -> None:
        if _PRCTL is not None:
            _PRCTL(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
            # The host may have died between fork and prctl: then nobody would ever signal us.
            if os.getppid() != parent:
                os._exit(1)
        if cpus and hasattr(os, "sched_setaffinity"):
            try:
                os.sched_setaffinity(0, cpus)
            except OSError:
                pass

    return preexec


def tree_rss(proc: psutil.Process) -> int:
    """Resident bytes of a process and its children (a scoring script may fork helpers)."""
    total = proc.memory_info().rss
    try:
        for child in proc.children(recursive=True):
            try:
                total += child.memory_info().rss
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                pass
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        pass
    return total

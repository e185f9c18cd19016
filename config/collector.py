"""Python's cyclic garbage collector, set for long-running processes that allocate many short-lived objects.

With Python's defaults (a young collection every 700 net allocations of container objects), a backfill
reader spent 15% of its CPU in the collector, a batch worker's main process 14%, the Klaviyo sandbox 35%
(bench/backfill_orders.py's run with the collector's time counted per process). Almost none of what they
collect is garbage: the objects are freed by their reference counts, or live on. So:
- young collections run every ``gc_young_threshold`` allocations (BCSYNC_GC_YOUNG_THRESHOLD; 0 keeps
  Python's own), which cuts their number by about as much, and with it the older generations' collections
  they cascade into;
- what exists once a process has started (modules, classes, the settings, the mapping, pydantic's
  validators) is frozen out of every later collection (`gc.freeze()`: Python's documented way for a process
  that forks workers, whose children inherit the frozen objects without copying their pages).
Reference cycles that do become garbage are still collected, a little later.
"""

from __future__ import annotations

import gc


def set_up_collector(young_threshold: int) -> None:
    """A long-running process's collector, once its modules are imported: young collections every
    `young_threshold` allocations (0: Python's default), and everything alive now frozen out of later ones."""
    tune_collector(young_threshold)
    freeze_what_exists()


def tune_collector(young_threshold: int) -> None:
    """Young collections every `young_threshold` allocations (0: Python's default); the older generations'
    thresholds stay Python's."""
    if young_threshold > 0:
        _, older, oldest = gc.get_threshold()
        gc.set_threshold(young_threshold, older, oldest)


def freeze_what_exists() -> None:
    """Leave every object alive now out of later collections (a process's start-up: modules, validators).
    No collection first: start-up leaves a few dozen garbage objects, and a collection of everything imported
    would add about 50 ms to every command's start."""
    gc.freeze()

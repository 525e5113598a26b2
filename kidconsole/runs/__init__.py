"""Runs: a run's life (``life``: start, end, state, stop, resume), its kinds (``kinds``), and reading runs live
(``discover``, ``reader``, ``snapshot``).

Light (no torch): the console and ``kidconsole run ...`` use these modules;
the run directory (kidconsole/rundir/, docs/run-directory.md) is the contract.
"""

"""Runs: discover, read live, launch detached, supervise, stop and resume.

Light (no torch): the console and ``kidconsole run ...`` use these modules;
the run directory (kidconsole/rundir.py, docs/run-directory.md) is the contract.
"""

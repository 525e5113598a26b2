"""The heavy half: training and evaluation, started as ``accelerate launch -m trainers.train``.

Imports torch, transformers, peft and accelerate; the console never imports
this package. Everything a run produces goes to its run directory
(docs/run-directory.md).
"""

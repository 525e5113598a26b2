"""kidconsole: adapt a Korean phoneme recogniser to children's speech with LoRA.

The light half: console, CLI, corpus, subsets, reports. Nothing here imports
torch, transformers or peft at module level; the heavy half lives in
``trainers/`` and runs as ``accelerate launch`` subprocesses.
"""

__version__ = "0.1.0"

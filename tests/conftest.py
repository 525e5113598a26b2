"""Shared test settings. Area fixtures live in each tests/<area>/conftest.py."""

import os

# The tests never reach a model hub or download data.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

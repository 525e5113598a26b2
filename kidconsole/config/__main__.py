"""``python -m kidconsole.config [DOC ...]``: rewrite the generated config tables (docs/training.md)."""

import sys

from kidconsole.config.docs import write_docs

for doc in sys.argv[1:] or ["docs/training.md"]:
    print(f"{doc}: {'rewritten' if write_docs(doc) else 'current'}")

"""Run configs: the schema, ``--set key=value`` overrides, validation, the resolved copy.

Each key is declared once, in the schema's models (schema.py): its name, type, default,
constraint (the ``Expect`` text says it in words, kinds.py) and help. Validation errors
(explain.py), ``--set`` checks (overrides.py) and the key table in docs/training.md (docs.py)
all come from them. Light (no torch): the launcher validates a config before launch, the trainer
reads the resolved copy the launcher wrote into the run directory (load.py). Relative paths
resolve against the folder of the config file; the resolved config holds absolute paths, so the
run directory's copy works from anywhere. Every error names the file, the dotted key and the reason.

The modules:
- ``kinds``: value kinds (a type, its constraint, its ``Expect`` text);
- ``schema``: the sections, phases, augmentation presets and ``RunConfig``;
- ``walk``: the schema walked (an error's field, every dotted key);
- ``explain``: pydantic's errors in the user's words;
- ``overrides``: ``--set key=value``;
- ``yamlfile``: reading a YAML file, bounded;
- ``load``: resolving, loading, reading a run's copy, dumping and hashing;
- ``docs``: docs/training.md's generated tables.
"""

from kidconsole.config.docs import DOCS_BEGIN, DOCS_END, docs_tables, write_docs
from kidconsole.config.explain import _explained
from kidconsole.config.kinds import Expect, parse_layers
from kidconsole.config.load import config_hash, dump_config, load_config, read_run_config, resolve_config
from kidconsole.config.schema import (
    PRESETS, Augment, DataSection, LineageSection, LoraSection, LrGroup, ModelSection, Phase, PhaseManifest,
    RunConfig, Section, TrainSection,
)
from kidconsole.config.yamlfile import MAX_CONFIG_BYTES, read_yaml

explain_validation_error = _explained  # public name: other schemas' errors in the same words (console settings)

__all__ = [
    "DOCS_BEGIN", "DOCS_END", "MAX_CONFIG_BYTES", "PRESETS", "Augment", "DataSection", "Expect", "LineageSection",
    "LoraSection", "LrGroup", "ModelSection", "Phase", "PhaseManifest", "RunConfig", "Section", "TrainSection",
    "config_hash", "docs_tables", "dump_config", "explain_validation_error", "load_config", "parse_layers",
    "read_run_config", "read_yaml", "resolve_config", "write_docs",
]

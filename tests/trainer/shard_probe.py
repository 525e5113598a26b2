"""Run under ``accelerate launch --multi_gpu --num_processes N``: each process loads its
share of an epoch through the trainer's stream and DataLoader workers and
writes the utterance ids it saw, in order, to OUT/rank<r>.json."""

import json
import sys
from pathlib import Path

from accelerate import Accelerator

from trainers.batching import plan_epoch, shard
from trainers.data import BatchStream, load_rows, make_loader
from trainers.tokenizer import build_feature_extractor

out, manifest, workers = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])
acc = Accelerator(cpu=True)
rows = load_rows(manifest)
plan = plan_epoch([r.duration for r in rows], seed=3, epoch=1, batch_seconds=4.0, max_utts=8, bucket=16)
mine = shard(plan, acc.process_index, acc.num_processes)
stream = BatchStream(rows, mine, feature_extractor=build_feature_extractor(), kernels=(10, 4, 4),
                     strides=(5, 4, 4), sample_rate=16000, max_seconds=10.0)
seen = [(b.index, b.ids) for b in make_loader(stream, workers)]
(out / f"rank{acc.process_index}.json").write_text(json.dumps({"seen": seen, "plan": mine}))

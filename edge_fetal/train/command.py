"""`edge-fetal train --config FILE`: build the data, train, say where the run went (cli.py parses;
this runs and prints)."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from edge_fetal.errors import EdgeFetalError


def run(args: argparse.Namespace) -> int:
    """Train as the config says; checkpoints every epoch in runs/NAME (`--resume` goes on from the last)."""
    try:
        from edge_fetal.train.build_data import build_training_data
        from edge_fetal.train.config import load_config
        from edge_fetal.train.loop import train
        from edge_fetal.malloc import keep_freed_memory
    except ImportError as error:
        raise EdgeFetalError(f"training needs the `train` extra (pip install -e '.[train]'): {error}") from None
    try:
        config = load_config(args.config)
    except (OSError, ValueError) as error:
        raise EdgeFetalError(f"cannot use config {args.config}: {error}") from None
    started = time.monotonic()
    data = build_training_data(config.data, workers=config.run.threads)
    print(f"data ready in {time.monotonic() - started:.0f} s: {json.dumps({k: v for k, v in data.description.items() if 'subjects' not in k})}")
    run_dir = Path(config.run.out_dir) / config.run.name
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "data.json").write_text(json.dumps(data.description, indent=2) + "\n")
    if keep_freed_memory():
        print("malloc keeps freed memory for the next step (no page faults a step)")
    try:
        train(config, data.dataset, split=(data.train_rows, data.val_rows), resume=args.resume,
              log=lambda line: print(line, flush=True))
    except ValueError as error:
        raise EdgeFetalError(str(error)) from None
    print(f"trained in {(time.monotonic() - started) / 60:.1f} min: {run_dir}")
    return 0

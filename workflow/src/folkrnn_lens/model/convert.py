"""Convert folk-rnn's original pickle into a folkrnn-lens checkpoint, once:

    folkrnn-lens-convert folkrnn_v2.pkl resources/models/folkrnn_v2.safetensors

The pickle is read by the restricted loader (numpy arrays only); the checkpoint
holds the same float32 weights, and in its metadata the pickle's file name and
SHA-256, so every later run loads plain tensors and can say where they came from.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from folkrnn_lens.model.checkpoint import CheckpointError, file_sha256, load_folkrnn_pickle, save_checkpoint
from folkrnn_lens.model.folkrnn import FolkRNN


def convert(pickle_path: str | Path, out_path: str | Path) -> FolkRNN:
    """Write the checkpoint of the pickle's model, recording its source."""
    pickle_path, out_path = Path(pickle_path), Path(out_path)
    model = load_folkrnn_pickle(pickle_path)
    source = {"converted_from": pickle_path.name, "source_sha256": file_sha256(pickle_path)}
    partial = out_path.with_name(out_path.name + ".partial")  # no half-written checkpoint under its name
    save_checkpoint(model, partial, extra=source)
    partial.replace(out_path)
    return model


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="folkrnn-lens-convert",
        description="Convert folk-rnn's model pickle (folkrnn_v2.pkl) into a folkrnn-lens "
        "safetensors checkpoint, recording the pickle's name and SHA-256.",
    )
    parser.add_argument("pickle", type=Path, help="folk-rnn's model file (.pkl)")
    parser.add_argument("out", type=Path, help="the checkpoint to write (.safetensors)")
    parser.add_argument("--force", action="store_true", help="overwrite OUT if it exists")
    args = parser.parse_args(argv)
    if args.out.suffix != ".safetensors":
        parser.error(f"{args.out}: the checkpoint's name must end in .safetensors (load_model goes by it)")
    if args.out.exists() and not args.force:
        parser.error(f"{args.out} exists; pass --force to overwrite it")
    if not args.pickle.is_file():
        parser.error(f"{args.pickle}: no such file")
    try:
        model = convert(args.pickle, args.out)
    except CheckpointError as error:
        print(f"{parser.prog}: {error}", file=sys.stderr)
        return 1
    cfg = model.config
    print(
        f"{args.out}: {cfg.n_layers} layers of {cfg.n_units} units, {cfg.vocab_size} tokens, "
        f"from {args.pickle.name} (sha256 {file_sha256(args.pickle)})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

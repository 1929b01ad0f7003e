"""Capture speed: every quantity of folk-rnn v2 against plain inference.

Usage: python benchmarks/capture_speed.py [--tunes 64] [--steps 200] [--repeats 3]

Builds a full-size folk-rnn v2 (137 tokens, 3 x 512) with random weights and a
batch of random token sequences, then prints the best-of-N wall time of:
  capture   FolkRNN.read: i, f, g_pre, g, o, c, h of every layer and step, + softmax
  nn.LSTM   torch.nn.LSTM on the same weights and batch, + output layer and softmax
  numpy     a per-step, per-gate numpy loop in the style of folk-rnn's sample_rnn.py
            (float32, one tune at a time; timed on a few tunes and scaled up)
All three are timed in turn, repeats times, and each keeps its best, so a change
in the machine's load hits them alike.
Targets (issue 2): capture / nn.LSTM <= 2, numpy / capture >= 20.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from folkrnn_lens.model.folkrnn import FolkRNN, FolkRNNConfig
from folkrnn_lens.model.reference import reference_read


def seconds(function) -> float:
    started = time.perf_counter()
    function()
    return time.perf_counter() - started


def best_of_interleaved(repeats: int, *functions) -> list[float]:
    """Best time of each function, alternating them so that a change in the
    machine's load hits all of them alike."""
    times = [[] for _ in functions]
    for _ in range(repeats):
        for row, function in zip(times, functions):
            row.append(seconds(function))
    return [min(row) for row in times]


def main() -> None:
    formatter = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=formatter)
    parser.add_argument("--tunes", type=int, default=64)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--numpy-tunes", type=int, default=2, help="tunes the slow numpy loop really runs")
    args = parser.parse_args()

    torch.manual_seed(0)
    vocab = ["<s>", "</s>", *(f"t{k}" for k in range(135))]
    model = FolkRNN(FolkRNNConfig(vocab_size=137, n_layers=3, n_units=512), vocab).eval()
    rng = np.random.default_rng(0)
    tunes = [list(rng.choice(vocab[2:], args.steps - 1)) for _ in range(args.tunes)]

    lstm = model.torch_lstm()
    idx = torch.tensor([model.encode(["<s>", *tune]) for tune in tunes])
    h0 = torch.stack([h.detach().expand(args.tunes, -1) for h in model.h0])
    c0 = torch.stack([c.detach().expand(args.tunes, -1) for c in model.c0])

    @torch.no_grad()
    def plain_inference():
        x = torch.nn.functional.one_hot(idx, 137).float()
        out, _ = lstm(x, (h0, c0))
        return torch.softmax(out @ model.W_out + model.b_out, dim=-1)

    model.read(tunes[:2])  # warm up allocator and kernels
    plain_inference()
    few = tunes[: args.numpy_tunes]

    def numpy_loop():
        return [reference_read(model, tune, np.float32) for tune in few]

    capture, plain, numpy_few = best_of_interleaved(
        args.repeats, lambda: model.read(tunes), plain_inference, numpy_loop
    )
    numpy_all = numpy_few * args.tunes / len(few)

    recorded = 3 * 7 * args.tunes * args.steps * 512 * 4 / 2**20
    print(f"batch: {args.tunes} tunes x {args.steps} steps, 3 x 512 units, {torch.get_num_threads()} threads")
    print(f"capture (every quantity): {capture:8.3f} s   ({recorded:.0f} MiB recorded)")
    print(f"torch.nn.LSTM inference : {plain:8.3f} s")
    print(f"numpy per-step loop     : {numpy_all:8.3f} s   (best on {len(few)} tunes, scaled)")
    print(f"capture / nn.LSTM       : {capture / plain:8.2f} x   (target <= 2)")
    print(f"numpy / capture         : {numpy_all / capture:8.1f} x   (target >= 20)")


if __name__ == "__main__":
    main()

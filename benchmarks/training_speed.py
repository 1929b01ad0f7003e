"""Training speed: one folk-rnn v2 training step, per-step clipping against the fused LSTM.

Usage: python benchmarks/training_speed.py [--tunes 64] [--steps 200] [--repeats 3] [--threads 2]

Builds a full-size folk-rnn v2 (137 tokens, 3 x 512) with folk-rnn's initialisation and
a batch of random token sequences, then prints the best-of-N wall time of one training
step (forward, folk-rnn's loss, backward, Lasagne RMSprop update) for:
  per_step  FolkRNN.forward(idx, clip=5): the layers step by step, the gradient of every
            step's gate pre-activations clamped to [-5, 5] (folk-rnn's grad_clipping=5)
  fused     FolkRNN.forward(idx): torch's fused LSTM kernel, no clipping
and the seconds per epoch they imply for the music21 corpus (about 500,000 target
tokens per epoch; pass --epoch-tokens to change).
"""

from __future__ import annotations

import argparse
import math
import time

import torch

from folkrnn_lens.model.checkpoint import use_device
from folkrnn_lens.model.folkrnn import FolkRNN, FolkRNNConfig
from folkrnn_lens.training.loop import folkrnn_objective, masked_nats
from folkrnn_lens.training.optimiser import LasagneRMSprop


def main() -> None:
    formatter = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=formatter)
    parser.add_argument("--tunes", type=int, default=64)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--units", type=int, default=512)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--epoch-tokens", type=int, default=500_000, help="target tokens per epoch")
    args = parser.parse_args()

    device = use_device(args.device, args.threads)
    torch.manual_seed(0)
    vocab = ["<s>", "</s>", *(f"t{k}" for k in range(135))]
    model = FolkRNN(FolkRNNConfig(vocab_size=137, n_layers=3, n_units=args.units), vocab)
    model.reset_parameters(torch.Generator().manual_seed(0))
    model.to(device).train()
    optimizer = LasagneRMSprop(model.parameters(), lr=0.003)
    idx = torch.randint(0, 137, (args.tunes, args.steps + 1), device=device)
    inputs, targets = idx[:, :-1], idx[:, 1:]
    mask = torch.ones(inputs.shape, device=device)

    def step(clip, inputs=inputs, targets=targets, mask=mask):
        nats = masked_nats(model(inputs, clip), targets, mask)
        optimizer.zero_grad(set_to_none=True)
        folkrnn_objective(nats).backward()
        optimizer.step()
        if args.device == "cuda":
            torch.cuda.synchronize()

    results = {"per_step": math.inf, "fused": math.inf}
    clips = {"per_step": 5.0, "fused": None}
    for clip in clips.values():
        step(clip, inputs[:, :5], targets[:, :5], mask[:, :5])  # warm up
    for _ in range(args.repeats):  # alternate, best of N: a shared CPU makes single runs noisy
        for name, clip in clips.items():
            started = time.perf_counter()
            step(clip)
            results[name] = min(results[name], time.perf_counter() - started)

    tokens = args.tunes * args.steps
    print(f"one training step: {args.tunes} tunes x {args.steps} tokens, 3 x {args.units} units, "
          f"{args.device}, {torch.get_num_threads()} threads")  # fmt: skip
    for name, seconds in results.items():
        per_epoch = seconds * args.epoch_tokens / tokens
        print(f"  {name:9s}: {seconds:7.2f} s/step  -> about {per_epoch:7.0f} s per epoch "
              f"of {args.epoch_tokens} tokens")  # fmt: skip
    print(f"  per_step / fused: {results['per_step'] / results['fused']:.2f} x")


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""The PyTorch peer of `npm run bench -- --model all --peer`: the zoo's models written in
PyTorch, trained as bench trains ours (Adadelta lr 1.0, NLL loss on log-softmax, a synthetic
batch, a warm-up of 3 steps and at least --warmup-seconds, the median of N timed steps), on
the given number of threads.

For measuring only: PyTorch is never a dependency of the product. Prints one JSON line per
model, then exits; exits 3 with one line on stderr when torch cannot be imported.
"""
import argparse
import json
import statistics
import sys
import time

try:
    import torch
    import torch.nn as nn
    import torch.nn.functional as F
except ImportError as e:  # the caller says so and goes on without the peer
    print(f"torch is not importable: {e}", file=sys.stderr)
    sys.exit(3)


def conv(cin, cout, k, bias=False, relu=True, bn=False, dropout=0.0, pad=0):
    layers = [nn.Conv2d(cin, cout, k, padding=pad, bias=bias)]
    if relu:
        layers.append(nn.ReLU())
    if bn:
        layers.append(nn.BatchNorm2d(cout))
    if dropout:
        layers.append(nn.Dropout(dropout))
    return layers


class LogSoftmax(nn.Module):
    def forward(self, x):
        return F.log_softmax(x, dim=1)


def net():
    return nn.Sequential(*conv(1, 32, 5, bias=True, pad=2), nn.MaxPool2d(2), *conv(32, 64, 5, bias=True, pad=2), nn.MaxPool2d(2),
                         nn.Flatten(), nn.Linear(3136, 1024), nn.ReLU(), nn.Dropout(0.5), nn.Linear(1024, 10), LogSoftmax())


def pytorch_example():
    return nn.Sequential(*conv(1, 32, 3, bias=True), *conv(32, 64, 3, bias=True), nn.MaxPool2d(2), nn.Dropout(0.25),
                         nn.Flatten(), nn.Linear(9216, 128), nn.ReLU(), nn.Dropout(0.5), nn.Linear(128, 10), LogSoftmax())


def fc():
    return nn.Sequential(nn.Flatten(), nn.Linear(784, 128), nn.ReLU(), nn.Linear(128, 10), LogSoftmax())


def cnn_small():
    return nn.Sequential(*conv(1, 24, 3, bias=True), nn.MaxPool2d(2), *conv(24, 36, 3, bias=True), nn.MaxPool2d(2),
                         nn.Flatten(), nn.Linear(900, 128), nn.ReLU(), nn.Linear(128, 10), LogSoftmax())


def m14k(bn):
    return nn.Sequential(*conv(1, 8, 3, bn=bn), *conv(8, 16, 3, bn=bn), *conv(16, 24, 3, bn=bn), *conv(24, 8, 1), nn.MaxPool2d(2),
                         *conv(8, 16, 3, bn=bn), *conv(16, 24, 3, bn=bn), *conv(24, 10, 1), *conv(10, 10, 7, relu=False),
                         nn.Flatten(), LogSoftmax())


def gap_8k():
    d = 0.1
    return nn.Sequential(*conv(1, 6, 3, bn=True, dropout=d), *conv(6, 16, 3, bn=True, dropout=d), *conv(16, 20, 3, bn=True, dropout=d),
                         *conv(20, 6, 1), nn.MaxPool2d(2), *conv(6, 16, 3, bn=True, dropout=d), *conv(16, 20, 3, bn=True, dropout=d),
                         nn.AdaptiveAvgPool2d(1), nn.Conv2d(20, 10, 1, bias=False), nn.Flatten(), LogSoftmax())


def gap_14k():
    d = 0.1
    return nn.Sequential(*conv(1, 16, 3, bn=True, dropout=d), *conv(16, 16, 3, bn=True, dropout=d), *conv(16, 16, 3, bn=True, dropout=d),
                         nn.AvgPool2d(2), *conv(16, 32, 3, bn=True, dropout=d), *conv(32, 16, 3, bn=True),
                         nn.AdaptiveAvgPool2d(1), nn.Conv2d(16, 10, 1, bias=False), nn.Flatten(), LogSoftmax())


def bn_10k():
    d = 0.1
    return nn.Sequential(*conv(1, 14, 3, bias=True, bn=True, dropout=d), *conv(14, 30, 3, bias=True, bn=True, dropout=d),
                         *conv(30, 10, 1, bias=True, relu=False), nn.MaxPool2d(2),
                         *conv(10, 14, 3, bias=True, bn=True, dropout=d), *conv(14, 15, 3, bias=True, bn=True, dropout=d),
                         *conv(15, 15, 3, bias=True, bn=True, dropout=d), nn.AvgPool2d(6),
                         nn.Conv2d(15, 15, 1), nn.BatchNorm2d(15), nn.ReLU(), nn.Dropout(d), nn.Conv2d(15, 10, 1),
                         nn.Flatten(), LogSoftmax())


MODELS = {
    'net': net, 'pytorch-example': pytorch_example, 'fc': fc, 'cnn-small': cnn_small,
    'base-14k': lambda: m14k(False), 'bn-14k': lambda: m14k(True), 'gap-8k': gap_8k, 'gap-14k': gap_14k, 'bn-10k': bn_10k,
}


def blas():
    """The BLAS library loaded (Debian picks it by alternatives: without OpenBLAS, torch is ~5x slower)."""
    torch.mm(torch.rand(8, 8), torch.rand(8, 8))
    try:
        with open('/proc/self/maps') as maps:
            paths = {line.split()[-1] for line in maps if 'blas' in line.lower() and '/' in line}
    except OSError:
        return 'unknown'
    names = sorted(p.rsplit('/', 1)[-1] for p in paths)
    return next((n for n in names if 'openblas' in n), names[0] if names else 'unknown')


def bench(name, batch_size, warmup, warmup_seconds, steps, device):
    torch.manual_seed(1)
    model = MODELS[name]().to(device)
    model.train()
    optimizer = torch.optim.Adadelta(model.parameters(), lr=1.0)
    x = (torch.rand(batch_size, 1, 28, 28) * 2 - 0.5).to(device)
    y = torch.randint(0, 10, (batch_size,)).to(device)

    def step():
        optimizer.zero_grad()
        loss = F.nll_loss(model(x), y)
        loss.backward()
        optimizer.step()
        loss.item()  # the loss read back each step (on CUDA, this waits for the step)

    start = time.perf_counter()
    done = 0
    while done < warmup or time.perf_counter() - start < warmup_seconds:
        step()
        done += 1
    times = []
    for _ in range(steps):
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    ms = statistics.median(times) * 1000
    return {
        'model': name, 'parameters': sum(p.numel() for p in model.parameters()), 'threads': torch.get_num_threads(),
        'batch_size': batch_size, 'train_step_ms': ms, 'train_samples_per_s': 1000 * batch_size / ms,
        'torch': torch.__version__, 'blas': blas(), 'device': device,
        **({'gpu': torch.cuda.get_device_name(0), 'cuda': torch.version.cuda} if device == 'cuda' else {}),
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument('models', nargs='+', choices=list(MODELS))
    parser.add_argument('--threads', type=int, default=1)
    parser.add_argument('--batch-size', type=int, default=64)
    parser.add_argument('--steps', type=int, default=10)
    parser.add_argument('--warmup-seconds', type=float, default=2.0)
    parser.add_argument('--device', choices=['cpu', 'cuda'], default='cpu', help='cuda: the GPU peer of the webgpu backend')
    args = parser.parse_args()
    if args.device == 'cuda' and not torch.cuda.is_available():
        print('torch sees no CUDA device (torch.cuda.is_available() is False)', file=sys.stderr)
        sys.exit(3)
    torch.set_num_threads(args.threads)
    for name in args.models:
        print(json.dumps(bench(name, args.batch_size, 3, args.warmup_seconds, args.steps, args.device)), flush=True)


if __name__ == '__main__':
    main()

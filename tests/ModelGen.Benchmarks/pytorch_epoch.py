"""One training epoch of LeNet-5 or LeNet-300-100 in PyTorch: the baseline of the `train` benchmark.

Run by `dotnet run -c Release --project tests/ModelGen.Benchmarks -- train` with Debian's PyTorch
(/usr/bin/python3), or by hand:
    /usr/bin/python3 tests/ModelGen.Benchmarks/pytorch_epoch.py --model lenet5 --threads 2 --data data/mnist
The same work as ours: the 8,000 training digits (uint8 / 255), shuffled, batch 64, Adam (lr 1e-3),
cross-entropy; a few batches first to warm up, then one timed epoch. Prints "seconds: S" and the BLAS
torch was built against: Debian's torch says "generic", and Debian's default libblas.so.3 is the netlib
reference BLAS, on which its Linear layers run at about 2 GFLOP/s (its convolutions run on oneDNN).
"""
import argparse
import re
import time

import numpy as np
import torch
from torch import nn


def lenet300():
    return nn.Sequential(nn.Flatten(), nn.Linear(784, 300), nn.ReLU(), nn.Linear(300, 100), nn.ReLU(), nn.Linear(100, 10))


def lenet5():
    # Caffe's LeNet-5, as data/mnist/lenet5.onnx: no activation after the convolutions.
    return nn.Sequential(nn.Conv2d(1, 20, 5), nn.MaxPool2d(2), nn.Conv2d(20, 50, 5), nn.MaxPool2d(2), nn.Flatten(),
                         nn.Linear(800, 500), nn.ReLU(), nn.Linear(500, 10))


def epoch(model, optimizer, images, labels, batch, order):
    loss_fn = nn.CrossEntropyLoss()
    for start in range(0, len(order), batch):
        index = order[start:start + batch]
        optimizer.zero_grad()
        loss = loss_fn(model(images[index]), labels[index])
        loss.backward()
        optimizer.step()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", choices=["lenet5", "lenet300"], required=True)
    parser.add_argument("--threads", type=int, required=True)
    parser.add_argument("--data", required=True, help="the folder with train-images-u8.npy and train-labels.npy")
    parser.add_argument("--batch", type=int, default=64)
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(1)
    images = torch.from_numpy(np.load(f"{args.data}/train-images-u8.npy").astype(np.float32) / 255)
    labels = torch.from_numpy(np.load(f"{args.data}/train-labels.npy"))
    model = lenet5() if args.model == "lenet5" else lenet300()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)

    epoch(model, optimizer, images, labels, args.batch, torch.randperm(len(images))[:5 * args.batch])
    start = time.perf_counter()
    epoch(model, optimizer, images, labels, args.batch, torch.randperm(len(images)))
    print(f"seconds: {time.perf_counter() - start:.3f}")
    blas = re.search(r"BLAS_INFO=(\w+)", torch.__config__.show())
    print(f"blas: {blas.group(1) if blas else 'unknown'}")


if __name__ == "__main__":
    main()

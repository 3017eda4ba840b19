"""Trainer throughput, measured side by side in one run.

Ratios printed (MobileNet-V1 E2GC G=8, width 0.5, 64 px, batch 32 by default):

  (a) trainer img/s / bare forward+backward+SGD-step img/s on pre-made tensors of the same shape
      (the trainer's overhead: gathering, augmentation, normalisation, schedule);  target >= 0.90
  (b) trainer img/s / a plain torchvision ``Food101`` + ``transforms`` + ``DataLoader`` pipeline that
      decodes every JPEG every epoch (best of num_workers 0 and 2);                     target >= 2
      -- also with the one-off cost of building the decoded-tensor cache charged to the first
      epoch, and amortised over 10 epochs.

Measurements are interleaved (bare, trainer, torchvision, repeated ``--rounds`` times) and the
median of each is used, so a load change on the machine hits all of them alike. The load average
before and after is printed; on a shared machine, read the ratios, not the absolute img/s.

Run from the repository root:
    python benchmarks/trainer_throughput.py                       # ../shared/data/food101-mini + digits
    python benchmarks/trainer_throughput.py --data-root DIR --epochs 3 --rounds 3
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import statistics
import tempfile
import time
from pathlib import Path

import torch
from torch import nn

from e2gcsearch import ArchConfig
from e2gcsearch.data import DataConfig, LoadedData, load_data
from e2gcsearch.train import TrainConfig, build_model, train_model

DEFAULT_ROOT = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "food101-mini"


def _layout(model: nn.Module, channels_last: bool) -> nn.Module:
    return model.to(memory_format=torch.channels_last) if channels_last else model


def bare_images_per_s(arch: ArchConfig, resolution: int, batch: int, steps: int, channels_last: bool) -> float:
    """Forward + backward + SGD step on one pre-made batch, nothing else."""
    model = _layout(build_model(arch, 0).train(), channels_last)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, nesterov=True, weight_decay=4e-5)
    criterion = nn.CrossEntropyLoss()
    generator = torch.Generator().manual_seed(0)
    x = torch.randn((batch, 3, resolution, resolution), generator=generator)
    x = x.contiguous(memory_format=torch.channels_last) if channels_last else x
    y = torch.randint(0, arch.num_classes, (batch,), generator=generator)
    for _ in range(2):  # warm-up
        optimizer.zero_grad(set_to_none=True)
        criterion(model(x), y).backward()
        optimizer.step()
    start = time.perf_counter()
    for _ in range(steps):
        optimizer.zero_grad(set_to_none=True)
        criterion(model(x), y).backward()
        optimizer.step()
    return steps * batch / (time.perf_counter() - start)


def torchvision_loader(root: Path, resolution: int, batch: int, workers: int) -> torch.utils.data.DataLoader:
    """The textbook pipeline: decode + RandomResizedCrop + flip per image per epoch, in a DataLoader."""
    from torchvision import datasets, transforms

    transform = transforms.Compose(
        [
            transforms.RandomResizedCrop(resolution, scale=(0.35, 1.0)),
            transforms.RandomHorizontalFlip(),
            transforms.ToTensor(),
            transforms.Normalize((0.55, 0.44, 0.34), (0.27, 0.27, 0.28)),
        ]
    )
    dataset = datasets.Food101(str(root), split="train", transform=transform)
    return torch.utils.data.DataLoader(dataset, batch_size=batch, shuffle=True, drop_last=True, num_workers=workers)


def decode_only_images_per_s(root: Path, resolution: int, batch: int) -> float:
    """The torchvision pipeline's data side alone (one epoch, no training, no workers)."""
    images, start = 0, time.perf_counter()
    for x, _ in torchvision_loader(root, resolution, batch, 0):
        images += x.shape[0]
    return images / (time.perf_counter() - start)


def torchvision_images_per_s(
    arch: ArchConfig, root: Path, resolution: int, batch: int, epochs: int, workers: int, channels_last: bool
) -> float:
    """Training with the torchvision pipeline, which decodes every image every epoch."""
    loader = torchvision_loader(root, resolution, batch, workers)
    model = _layout(build_model(arch, 0).train(), channels_last)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, nesterov=True, weight_decay=4e-5)
    criterion = nn.CrossEntropyLoss()
    images, start = 0, time.perf_counter()
    for _ in range(epochs):
        for x, y in loader:
            x = x.contiguous(memory_format=torch.channels_last) if channels_last else x
            optimizer.zero_grad(set_to_none=True)
            criterion(model(x), y).backward()
            optimizer.step()
            images += x.shape[0]
    return images / (time.perf_counter() - start)


def trainer_figures(
    arch: ArchConfig, data: LoadedData, batch: int, epochs: int, channels_last: bool
) -> tuple[float, float]:
    """(img/s over the training steps, img/s over the whole call including validation each epoch)."""
    config = TrainConfig(
        epochs=epochs, batch_size=batch, layout="channels_last" if channels_last else "nchw", progress=False
    )
    result = train_model(arch, data, config)
    return result.images_per_s, result.train_size * epochs / result.wall_s


def cache_build_s(config: DataConfig) -> tuple[float, float, LoadedData]:
    """(seconds to decode into a fresh cache, seconds to load it again, the data)."""
    with tempfile.TemporaryDirectory() as folder:
        fresh = dataclasses.replace(config, cache_dir=folder)
        start = time.perf_counter()
        load_data(fresh, progress=False)
        build = time.perf_counter() - start
        start = time.perf_counter()
        data = load_data(fresh, progress=False)
        data.train_images, data.val_images = data.train_images.clone(), data.val_images.clone()  # off the mmap
        return build, time.perf_counter() - start, data


def median(values: list[float]) -> float:
    return statistics.median(values)


def bench_dataset(label: str, config: DataConfig, args: argparse.Namespace, root: Path | None) -> None:
    build_s, hit_s, data = cache_build_s(config) if root is not None else (0.0, 0.0, load_data(config, progress=False))
    arch = ArchConfig("mobilenet_v1", group_size=args.group_size, width=args.width, num_classes=data.num_classes)
    steps = data.train_labels.numel() // args.batch_size
    bare, trainer_steps, trainer_wall, tv0, tv2, decode = [], [], [], [], [], []
    for _ in range(args.rounds):
        bare.append(
            bare_images_per_s(arch, config.resolution, args.batch_size, steps * args.epochs, args.channels_last)
        )
        steps_ips, wall_ips = trainer_figures(arch, data, args.batch_size, args.epochs, args.channels_last)
        trainer_steps.append(steps_ips)
        trainer_wall.append(wall_ips)
        if root is not None:
            decode.append(decode_only_images_per_s(root, config.resolution, args.batch_size))
            for workers, figures in ((0, tv0), (2, tv2)):
                figures.append(
                    torchvision_images_per_s(
                        arch, root, config.resolution, args.batch_size, args.epochs, workers, args.channels_last
                    )
                )
    t_steps, t_wall, b = median(trainer_steps), median(trainer_wall), median(bare)
    print(f"\n== {label}: {data.summary_line()}")
    print(
        f"   {arch.label()}, {config.resolution} px, B={args.batch_size}, {args.epochs} epoch(s) x {args.rounds} round(s), "
        f"torch threads {torch.get_num_threads()}, {'channels_last' if args.channels_last else 'NCHW'}"
    )
    print(f"   bare fwd+bwd+step on pre-made tensors : {b:8.1f} img/s")
    print(f"   trainer, training steps               : {t_steps:8.1f} img/s")
    print(f"   trainer, whole call (incl. validation): {t_wall:8.1f} img/s")
    print(f"   (a) trainer / bare                    : {t_steps / b:8.3f}   (target >= 0.90)")
    print(f"       incl. validation every epoch      : {t_wall / b:8.3f}")
    if root is None:
        return
    tv = max(median(tv0), median(tv2))
    per_epoch = data.train_labels.numel() / t_steps
    first = data.train_labels.numel() / (per_epoch + build_s)
    ten = 10 * data.train_labels.numel() / (10 * per_epoch + build_s)
    print(
        f"   decoded-tensor cache: build {build_s:.2f} s ({data.train_labels.numel() + data.val_labels.numel()} "
        f"images), reload {hit_s * 1000:.1f} ms"
    )
    print(
        f"   torchvision Food101+transforms+DataLoader: {median(tv0):8.1f} img/s (workers 0), "
        f"{median(tv2):8.1f} img/s (workers 2)"
    )
    print(f"   torchvision decode + transforms alone : {median(decode):8.1f} img/s (no training)")
    print(f"   (b) trainer / torchvision pipeline    : {t_steps / tv:8.3f}   (target >= 2)")
    print(f"       ceiling, bare / torchvision       : {b / tv:8.3f}   (what a zero-overhead trainer would get)")
    print(f"       first epoch incl. cache build     : {first / tv:8.3f}")
    print(f"       10 epochs incl. cache build       : {ten / tv:8.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-root", type=Path, default=DEFAULT_ROOT, help="folder holding food-101/")
    parser.add_argument("--group-size", type=int, default=8)
    parser.add_argument("--width", type=float, default=0.5)
    parser.add_argument("--resolution", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--epochs", type=int, default=2, help="epochs per measurement")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved repetitions (median is reported)")
    parser.add_argument("--threads", type=int, help="torch intra-op threads (default: torch's choice)")
    parser.add_argument("--channels-last", action="store_true", help="channels_last model and inputs, all pipelines")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"load average before: {' '.join(f'{v:.2f}' for v in os.getloadavg())} on {os.cpu_count()} cores")
    if (args.data_root / "food-101" / "meta" / "train.json").is_file():
        bench_dataset(
            "food101",
            DataConfig(name="food101", root=str(args.data_root), resolution=args.resolution),
            args,
            args.data_root,
        )
    else:
        print(f"\n(no Food-101 at {args.data_root}; skipping ratio (b))")
    bench_dataset("digits (embedded)", DataConfig(name="digits", resolution=args.resolution), args, None)
    print(f"\nload average after: {' '.join(f'{v:.2f}' for v in os.getloadavg())}")


if __name__ == "__main__":
    main()

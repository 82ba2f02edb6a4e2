"""GPU memory of training on HW8-sized data, counted on any device (no GPU needed).

A training step holds on the device: the training images (``hw8.train`` moves them there
once, as uint8: 100,000 x 64 x 64 x 3 bytes for HW8), the parameters, their gradients and
Adam's two moment estimates (4 copies of the parameters), the float batch, and every
activation autograd saves for the backward pass. The last one is counted exactly here with
``torch.autograd.graph.saved_tensors_hooks`` during one forward pass at the training batch
size; the total is compared with the memory of a free Colab T4 (16 GB card, about 15 GiB
usable). Not counted: the CUDA context (about 0.3-0.5 GiB) and cuDNN's workspaces, which
the printed headroom must cover.

    python benchmarks/memory.py --json benchmarks/results/memory_hw8.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from hw8.models import HW8_SHAPE, build_model  # noqa: E402
from hw8.settings import SAMPLE_BATCH_SIZE  # noqa: E402

HW8_TRAIN_IMAGES = 100_000
T4_USABLE_GIB = 15.0  # a T4 has 16 GB; Colab's runtime reports about 15 GiB free
GIB = 2**30
# model -> the batch size it trains with (the course sample's 2000; the wide FCN's 128;
# the house recipe's members train with batch 64, so the ResNet one is counted at 64)
BATCHES = {"fcn": SAMPLE_BATCH_SIZE, "cnn": SAMPLE_BATCH_SIZE, "vae": SAMPLE_BATCH_SIZE}
BATCHES |= {"wide_fcn": 128, "resnet_ae": 64}


def saved_activation_bytes(model: torch.nn.Module, batch: torch.Tensor) -> int:
    """Bytes autograd keeps for the backward pass of ``model.loss(batch)``."""
    seen: dict[int, int] = {}

    def pack(tensor: torch.Tensor):
        storage = tensor.untyped_storage()
        seen[storage.data_ptr()] = storage.nbytes()
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        loss = model.loss(batch)
    del loss
    return sum(seen.values())


def measure(name: str, batch_size: int, images: int = HW8_TRAIN_IMAGES) -> dict:
    """The memory of training ``name`` on ``images`` HW8 images at ``batch_size``, in GiB."""
    torch.manual_seed(0)
    model = build_model(name, HW8_SHAPE)
    params = sum(p.numel() * p.element_size() for p in model.parameters())
    batch = torch.rand(batch_size, *HW8_SHAPE) * 2 - 1
    parts = {
        "training images (uint8)": images * torch.Size(HW8_SHAPE).numel(),
        "parameters, gradients, Adam moments": 4 * params,
        "float batch": batch.numel() * batch.element_size(),
        "saved activations": saved_activation_bytes(model, batch),
    }
    total = sum(parts.values())
    return {
        "model": name,
        "batch_size": batch_size,
        "images": images,
        "parts_gib": {key: round(value / GIB, 3) for key, value in parts.items()},
        "total_gib": round(total / GIB, 3),
        "t4_headroom_gib": round(T4_USABLE_GIB - total / GIB, 2),
    }


def main(argv: list[str] | None = None) -> int:
    """Print one line per model; write the JSON when asked; exit 1 if one exceeds a T4."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=list(BATCHES), choices=list(BATCHES))
    parser.add_argument("--images", type=int, default=HW8_TRAIN_IMAGES)
    parser.add_argument("--json", type=Path, help="write the results here")
    args = parser.parse_args(argv)
    rows = [measure(name, BATCHES[name], args.images) for name in args.models]
    for row in rows:
        print(
            f"{row['model']:10s} batch {row['batch_size']:5d}: {row['total_gib']:6.2f} GiB "
            f"(activations {row['parts_gib']['saved activations']:.2f}); T4 headroom "
            f"{row['t4_headroom_gib']:.2f} GiB"
        )
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        report = {"t4_usable_gib": T4_USABLE_GIB, "rows": rows}
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    return 0 if all(row["t4_headroom_gib"] > 0 for row in rows) else 1


if __name__ == "__main__":
    sys.exit(main())

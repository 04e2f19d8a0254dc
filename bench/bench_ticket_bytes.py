"""Ticket bytes: a 3.6% LeNet-300-100 ticket (MNIST shapes) against a dense fp32 checkpoint of the same network.

    .venv/bin/python bench/bench_ticket_bytes.py [--task mnist] [--family lenet-300-100] [--density 0.036]

Builds the ticket the way the client writes it (``ticketclient.format``: config.json, init.safetensors with
every tensor of the network at its init, mask.safetensors with one bool byte per prunable weight) and the
dense checkpoint (the same tensors in one safetensors file), and prints each file's bytes and the ratios;
beside them, what two interop-keeping encodings would weigh: the mask bit-packed (``np.packbits``, uint8, in
safetensors) and each file gzip-compressed (what an HTTP ``Content-Encoding: gzip`` would carry). Torch-free.
"""

from __future__ import annotations

import argparse
import gzip
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--task", default="mnist")
    parser.add_argument("--family", default="lenet-300-100")
    parser.add_argument("--density", type=float, default=0.036)
    args = parser.parse_args()

    from factories import make_bundle
    from ticketclient import format as tformat

    b = make_bundle(task=args.task, family=args.family, density=args.density)
    bundle = tformat.TicketBundle.from_bytes(config=b.config, init=b.init, mask=b.mask)
    dense = tformat.save_safetensors(bundle.init, {})
    packed = tformat.save_safetensors({k: np.packbits(v.reshape(-1)) for k, v in bundle.mask.items()}, {})
    ticket = len(b.config) + len(b.init) + len(b.mask)
    weights = sum(int(v.size) for v in bundle.mask.values())

    def gz(data: bytes) -> int:
        return len(gzip.compress(data, compresslevel=6))

    rows = [
        ("dense fp32 checkpoint (baseline)", len(dense), gz(dense)),
        ("config.json", len(b.config), gz(b.config)),
        ("init.safetensors (dense init, fp32)", len(b.init), gz(b.init)),
        ("mask.safetensors (bool, 1 byte a weight)", len(b.mask), gz(b.mask)),
        ("ticket (the three files)", ticket, gz(b.config) + gz(b.init) + gz(b.mask)),
        ("mask bit-packed (uint8 safetensors, not served)", len(packed), gz(packed)),
        ("ticket with the bit-packed mask instead", len(b.config) + len(b.init) + len(packed),
         gz(b.config) + gz(b.init) + gz(packed)),
    ]
    print(f"{args.family} on {args.task} at density {bundle.density:.4f}: {weights:,} prunable weights, "
          f"{sum(int(v.size) for v in bundle.init.values()):,} tensor values")
    print("| file | bytes | x dense | gzip -6 bytes | gzip x dense |")
    print("| --- | --- | --- | --- | --- |")
    for label, size, zipped in rows:
        print(f"| {label} | {size:,} | {size / len(dense):.3f}x | {zipped:,} | {zipped / len(dense):.3f}x |")


if __name__ == "__main__":
    main()

"""What the network sees and learns: the spread of its input and of its target over a dataset.

    python benchmarks/target_stats.py --data-dir work_data/q16k_b | tee benchmarks/target_stats.txt

For the shards of ``--data-dir`` (all, or the first ``--shards``): the noisy magnitude in dB and the
scaled input ``(noisy_dB - in_offset_db) / in_scale_db``, and the noise share ``noisy_dB - clean_dB``
the U-Net predicts (median, percentiles, the share of bins beyond +-out_scale_db, which the tanh
output cannot reach). docs/how-it-works.md quotes these figures.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from denoise.dataset import list_shards, load_dataset_settings  # noqa: E402
from denoise.spectrogram import noise_target_db, scale_input  # noqa: E402


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir", type=Path, required=True, help="a folder made by denoise data-creation")
    ap.add_argument("--shards", type=int, help="only the first N shards (default: all)")
    args = ap.parse_args(argv)
    settings = load_dataset_settings(args.data_dir)
    shards = list_shards(args.data_dir)[: args.shards]
    noisy_min, noisy_max, shares = np.inf, -np.inf, []
    beyond = total = 0
    for path in shards:
        with np.load(path) as data:
            noisy = data["noisy_db"].astype(np.float32)
            clean = data["clean_db"].astype(np.float32)
        share = noise_target_db(noisy, clean)
        noisy_min, noisy_max = min(noisy_min, float(noisy.min())), max(noisy_max, float(noisy.max()))
        beyond += int(np.sum(np.abs(share) > settings.out_scale_db))
        total += share.size
        shares.append(share.ravel()[:: max(1, share.size // 2_000_000)])  # a subsample for the percentiles
    sample = np.concatenate(shares)
    scaled = scale_input(np.array([noisy_min, noisy_max]), settings)
    print(f"$ python benchmarks/target_stats.py --data-dir {args.data_dir}"
          + (f" --shards {args.shards}" if args.shards else "") + "\n")
    print(f"{len(shards)} shard(s), {total:,} bins")
    print(f"noisy magnitude: {noisy_min:.1f} to {noisy_max:.1f} dB; scaled input {scaled[0]:.2f} to {scaled[1]:.2f}")
    q = np.percentile(sample, [1, 10, 50, 90, 99])
    print("noise share (noisy - clean, dB): percentiles 1/10/50/90/99: " + " / ".join(f"{v:.1f}" for v in q))
    print(f"bins with a share beyond +-{settings.out_scale_db:g} dB (clipped in the target): {beyond / total:.2%}")


if __name__ == "__main__":
    main()

#!/usr/bin/env bash
# The 16 kHz ablations of weights/README.md: each fine-tunes the epoch-8 model (runs/m16k/best.keras,
# see the recipe there) for 3 epochs with one change, then all are scored side by side.
set -euo pipefail
common="--init-weights runs/m16k/best.keras --epochs 3 --learning-rate 1e-4 --batch-size 16"
split=work_data/split/train
mkdir -p work_data/abl16k work_data/abl_v2 work_data/abl_v3 runs/abl/{noise,noise_clean,nc_v2,nc_v3}
for f in settings.json shard-0000{0,1,2,3}.npz; do ln -sf ../data16k/$f work_data/abl16k/$f; done
denoise data-creation --voice-dir $split/speech_16k --noise-dir $split/noise --out-dir work_data/abl_v2 \
    --nb-samples 4000 --seed 17 --snr-weighting hard --max-noises 2 --overwrite
denoise data-creation --voice-dir $split/speech_16k --noise-dir $split/noise --out-dir work_data/abl_v3 \
    --nb-samples 4000 --seed 17 --snr-weighting hard --max-noises 2 --reverb --reverb-share 0.3 --overwrite
denoise train --data-dir work_data/abl16k --out runs/abl/noise $common --loss noise
denoise train --data-dir work_data/abl16k --out runs/abl/noise_clean $common --loss noise+clean
denoise train --data-dir work_data/abl_v2 --out runs/abl/nc_v2 $common --loss noise+clean
denoise train --data-dir work_data/abl_v3 --out runs/abl/nc_v3 $common --loss noise+clean
python benchmarks/quality.py --valset work_data/valset --rates 16k,16k_reverb --no-peers --no-dnsmos \
    --weights-dir work_data/f16_shipped \
    --model "+3 epochs, noise loss=runs/abl/noise/best.keras" \
    --model "+3 epochs, noise+clean loss=runs/abl/noise_clean/best.keras" \
    --model "+3 epochs, noise+clean, hard SNRs, 1-2 noises=runs/abl/nc_v2/best.keras" \
    --model "+3 epochs, noise+clean, hard SNRs, 1-2 noises, 30 % reverberant=runs/abl/nc_v3/best.keras"

#!/usr/bin/env bash
# Ship the models: runs/s25/exp/n24_f32.keras (16 kHz, twenty-fifth stage, trained on a GPU; int8 weights) and
# runs/s25/w8d/last.keras (8 kHz, twenty-fifth stage) (see the recipe in weights/README.md; benchmarks/ablations.sh
# makes runs/abl), then run every benchmark, each output kept in benchmarks/ with the command that produced it. Needs the benchmark peers:
# pip install -r benchmarks/requirements.txt (then reinstall this project last, see README).
set -e
source .venv/bin/activate
if [ "${1:-}" != "--benchmarks-only" ]; then
python -m denoise export runs/s25/exp/n24_f32.keras --compact-to weights/denoise_16k.keras --keras-weights int8 --lite-weights int8
python -m denoise export runs/s25/w8d/last.keras --compact-to weights/denoise_8k.keras --keras-weights int8 --lite-weights int8
for m in 16k 8k; do
  { echo '$ denoise evaluate --clean-dir work_data/valset/'$m'/clean --noisy-dir work_data/valset/'$m'/noisy --out work_data/eval_'$m
    python -m denoise evaluate --clean-dir work_data/valset/$m/clean --noisy-dir work_data/valset/$m/noisy --out work_data/eval_$m 2>>/tmp/bench_errors.log; } > benchmarks/validation_$m.txt
done
fi
python benchmarks/steady_valset.py  # the steady parts of the validation set
PARTS=16k,16k_reverb,16k_clean,16k_high,16k_high_clean,16k_steady,8k,8k_clean,8k_high,8k_high_clean,8k_steady
{ echo '$ python benchmarks/quality.py --valset work_data/valset --rates '$PARTS; python benchmarks/quality.py --valset work_data/valset --rates $PARTS 2>>/tmp/bench_errors.log; } > benchmarks/quality.txt
python benchmarks/falls.py --valset work_data/valset --work work_data/bench > benchmarks/falls.txt  # prints its command
python benchmarks/band_limited.py --valset work_data/valset > benchmarks/band_limited.txt 2>>/tmp/bench_errors.log
python benchmarks/level.py --valset work_data/valset > benchmarks/level.txt 2>>/tmp/bench_errors.log  # prints its command
{ echo '$ python benchmarks/high_band.py --valset work_data/valset --weights weights/denoise_8k.keras'; python benchmarks/high_band.py --valset work_data/valset --weights weights/denoise_8k.keras 2>>/tmp/bench_errors.log; } > benchmarks/high_band.txt
# The new speed run goes on top of RESULTS.md; the earlier runs below it are kept (first line: the command).
speed_new=$(mktemp)
python benchmarks/speed.py --runs 5 2>>/tmp/bench_errors.log > "$speed_new"
{ echo '$ python benchmarks/speed.py --runs 5'; echo; echo "## benchmarks/run_all.sh, $(date -u +%F)"; cat "$speed_new"; echo; tail -n +2 benchmarks/RESULTS.md; } > "$speed_new.md"
mv "$speed_new.md" benchmarks/RESULTS.md && rm -f "$speed_new"
{ echo '$ python benchmarks/long_file.py --minutes 60 --rate 44100 --channels 2'; python benchmarks/long_file.py --minutes 60 --rate 44100 --channels 2 2>>/tmp/bench_errors.log; } > benchmarks/long_file.txt
{ for w in 1 2; do
    echo '$ time denoise data-creation --voice-dir work_data/split/train/speech_16k --noise-dir work_data/split/train/noise --out-dir work_data/dc_w'$w' --nb-samples 4000 --shard-size 500 --workers '$w' --overwrite'
    python -m denoise data-creation --voice-dir work_data/split/train/speech_16k --noise-dir work_data/split/train/noise --out-dir work_data/dc_w$w --nb-samples 4000 --shard-size 500 --workers $w --overwrite 2>/dev/null | tr '\r' '\n' | grep '^Wrote'
  done
  cmp work_data/dc_w1/shard-00007.npz work_data/dc_w2/shard-00007.npz && echo "shard-00007.npz identical for 1 and 2 workers"
} > benchmarks/data_creation.txt
rm -rf work_data/train_speed
{ echo '$ denoise train --data-dir work_data/dc_w1 --out work_data/train_speed --epochs 1 --batch-size 16 --learning-rate 3e-4'
  python -m denoise train --data-dir work_data/dc_w1 --out work_data/train_speed --epochs 1 --batch-size 16 --learning-rate 3e-4 2>/dev/null | tr '\r' '\n' | grep -E "^Training on|^Input pipeline|^Epoch 1:|^Exported|^Done"; } > benchmarks/training_speed.txt
python benchmarks/figure.py  # the README's figure, docs/example_spectrograms.png
echo FINAL DONE

#!/usr/bin/env bash
# Twenty-fifth stage's device calls (one H100, JAX, no TensorFlow): three trainings side by side that
# outlive the first call (setsid) and are collected by the second.
#   call 1: bash benchmarks/gpu_stage25.sh start    (wheels, data on 16 cores, launch, first copy back)
#   call 2: bash benchmarks/gpu_stage25.sh finish   (wait for the trainings, copy back)
# Carried: .whl (keras and what the package needs beyond the machine's image) and gpu/ (the training
# split of the corpus: speech_8k holds every training speaker, speech16_files.txt the wide-band ones).
# Trainings: n24, a new 24-filter 16 kHz model on the shipped recipe; f16, the shipped 16 kHz model
# trained on; w8, an 8 kHz model started from the shipped (24-filter) 16 kHz one. 'Shipped' is the
# twenty-third stage's model (git show 5630178:weights/denoise_16k.keras); n24 replaced it, so a
# re-run names that model: INIT16=gpu/shipped23_16k.keras (its .json and .tflite beside it, under gpu/).
# Call 3 (n24b, w8b) is in benchmarks/ablations_stage25.txt.
set -u
MODE=${1:?start or finish}
SCALE=${SCALE:-1}            # 1 on the device; a small fraction for a dry run on a CPU
WORKERS=${WORKERS:-16}
ROOT=${ROOT:-/tmp/s25}
INIT16=${INIT16:-weights/denoise_16k.keras}  # what w8 and f16 start from (see above)
STATE=$ROOT/deadline
OUT=${OUT:?OUT must name the folder whose files come back}
mkdir -p "$ROOT"
export PYTHONUNBUFFERED=1

. "$(dirname "$0")/gpu_lib.sh"

if [ "$MODE" = start ]; then
    start_call "${TOTAL_S:-1120}"
    DC="python3 -m denoise data-creation --noise-dir gpu/train/noise --snr-range -5 35 --max-noises 2 --clean-share 0.15 --pitch-range -2 7 --steady-share 0.25 --workers $WORKERS"
    n8=$(python3 -c "print(int(100000 * $SCALE))"); n16=$(python3 -c "print(int(150000 * $SCALE))")
    t=$(date +%s)
    $DC --voice-dir gpu/train/speech_8k --out-dir "$ROOT/d8" --nb-samples "$n8" --sample-rate 8000 \
        --snr-weighting uniform --pitch-share 0.3 --seed 251 > "$ROOT/data8.txt" 2>&1 || { tail "$ROOT/data8.txt"; exit 1; }
    echo "8 kHz data: $n8 pairs in $(( $(date +%s) - t )) s" | tee -a "$ROOT/times.txt"
    T=benchmarks/train_on_accelerator.py
    mkdir -p "$ROOT/runs"
    launch() {  # NAME DATA ARGS...: a training in its own session, ending by the deadline
        local name=$1 data=$2; shift 2
        local budget=$(( $(cat "$STATE") - $(date +%s) - ${LOAD_S:-75} ))
        echo "$name: budget $budget s, $*" | tee -a "$ROOT/times.txt"
        setsid nohup python3 $T --data-dir "$data" --out-dir "$ROOT/runs/$name" --budget-s "$budget" "$@" \
            > "$ROOT/runs/$name.log" 2>&1 < /dev/null &
    }
    launch w8 "$ROOT/d8" --init-weights "$INIT16" --other-rate --dropout 0 --lr 3e-4 --lr-end 1e-5 --seed 25
    t=$(date +%s)
    $DC --voice-dir "$ROOT/s16" --out-dir "$ROOT/d16" --nb-samples "$n16" --snr-weighting hard --pitch-share 0.6 \
        --lowpass-share 0.3 --lowpass-range 3000 7500 --seed 252 > "$ROOT/data16.txt" 2>&1 || { tail "$ROOT/data16.txt"; exit 1; }
    echo "16 kHz data: $n16 pairs in $(( $(date +%s) - t )) s" | tee -a "$ROOT/times.txt"
    launch n24 "$ROOT/d16" --base-filters 24 --dropout 0 --lr 1e-3 --lr-end 1e-5 --seed 26
    sleep "${STAGGER_S:-30}"
    launch f16 "$ROOT/d16" --init-weights "$INIT16" --lr 5e-5 --lr-end 1e-6 --seed 27
    end_call1 "${CALL_S:-560}" n24 f16 w8
else
    finish_call n24 f16 w8
fi

#!/usr/bin/env bash
# Distilling the two-model ensemble into one 16 kHz model on a GPU, ready for the next session lent
# a device (written and dry-run on a CPU in the twenty-eighth stage, which had none).
#
# The ensemble of the shipped n24 and the twenty-third stage's model (s23) scores 2.54 / 0.918 /
# 14.4 dB, -5 dB SI-SDR 5.5, against n24's 2.48 / 0.914 / 14.0, 4.8 (benchmarks/ablations_stage27.txt);
# fine-tuning a model toward it on the CPU moved its validation loss 13 % of the way to the teachers'
# labels, +0.016 PESQ-WB (eleventh stage); a 16-filter model trained anew toward half the ensemble's
# targets gained +0.037 over the same model on the truth, no more than another seed did (+0.035;
# twenty-eighth stage, CPU). Hence the control here; a few hundredths between single runs are noise. Three 24-filter models trained
# anew side by side on the same 150,000 fresh pairs with the same seed (same start, same order),
# differing only in their targets:
#   c24   the true targets (the control: how far a new seed alone moves n24's recipe; --truth-weight 1)
#   d24   half true, half the ensemble's (train_on_accelerator.py --teacher ... --truth-weight 0.5)
#   d24z  the ensemble's alone
# The teachers' labels are made in memory after loading (forward passes on the GPU); the control
# makes them too, so that the three start training together and share the GPU alike. Compare them
# by seen_pairs as well (each run's log and .json).
#
#   here:     bash benchmarks/gpu_stage28.sh pack      (gpu/: the corpus's training split and s23)
#   call 1:   bash benchmarks/gpu_stage28.sh start     (wheels, data on 16 cores, launch, first copy back)
#   call 2:   bash benchmarks/gpu_stage28.sh finish    (wait for the trainings, copy back)
# Carry .whl (keras and what the package needs beyond the machine's image, as in the twenty-fifth
# stage) and gpu. Then here, for each run: cat the parts | tar -x, denoise export, and
# benchmarks/quality.py + paired.py against the shipped model (commands: benchmarks/ablations_stage25.txt).
# A dry run on a CPU: SCALE=0.002 WORKERS=2 NO_WHEELS=1 KERAS_BACKEND=tensorflow TOTAL_S=300 CALL_S=200 LABEL_S=110 OUT=/tmp/o ...
set -u
MODE=${1:?pack, start or finish}
SCALE=${SCALE:-1}            # 1 on the device; a small fraction for a dry run on a CPU
WORKERS=${WORKERS:-16}
ROOT=${ROOT:-/tmp/s28}
SEED=${SEED:-281}
TEACHERS="--teacher weights/denoise_16k.keras --teacher gpu/s23.keras"
RUNS="c24 d24 d24z"
STATE=$ROOT/deadline
export PYTHONUNBUFFERED=1
. "$(dirname "$0")/gpu_lib.sh"

if [ "$MODE" = pack ]; then  # here, before call 1
    split=${SPLIT:-work_data/split/train}  # benchmarks/corpus_split.py's output
    [ -d "$split/speech_8k" ] || { echo "$split: run benchmarks/corpus_split.py first"; exit 1; }
    rm -rf gpu && mkdir -p gpu/train
    cp -rL "$split/speech_8k" "$split/noise" gpu/train/  # every training speaker, every training noise
    (cd "$split/speech_16k" && find -L . -type f | sed 's|^\./||' | sort) > gpu/speech16_files.txt
    git show 0ba917a:weights/denoise_16k.keras > gpu/s23.keras && git show 0ba917a:weights/denoise_16k.json > gpu/s23.json
    du -shL gpu .whl
    exit 0
fi
OUT=${OUT:?OUT must name the folder whose files come back}
mkdir -p "$ROOT"

if [ "$MODE" = start ]; then
    start_call "${TOTAL_S:-1120}"
    n16=$(python3 -c "print(max(200, int(150000 * $SCALE)))")
    t=$(date +%s)
    python3 -m denoise data-creation --voice-dir "$ROOT/s16" --noise-dir gpu/train/noise --out-dir "$ROOT/d16" \
        --nb-samples "$n16" --snr-range -5 35 --snr-weighting hard --max-noises 2 --clean-share 0.15 \
        --pitch-share 0.6 --pitch-range -2 7 --steady-share 0.25 --lowpass-share 0.3 --lowpass-range 3000 7500 \
        --workers "$WORKERS" --seed 282 > "$ROOT/data16.txt" 2>&1 || { tail "$ROOT/data16.txt"; exit 1; }
    echo "16 kHz data: $n16 pairs in $(( $(date +%s) - t )) s" | tee -a "$ROOT/times.txt"
    mkdir -p "$ROOT/runs"
    launch() {  # NAME SETUP_S ARGS...: a training in its own session, ending by the deadline
        local name=$1 setup_s=$2; shift 2
        local budget=$(( $(cat "$STATE") - $(date +%s) - setup_s ))
        echo "$name: budget $budget s, $*" | tee -a "$ROOT/times.txt"
        setsid nohup python3 benchmarks/train_on_accelerator.py --data-dir "$ROOT/d16" --out-dir "$ROOT/runs/$name" \
            --budget-s "$budget" --base-filters 24 --dropout 0 --lr 1e-3 --lr-end 1e-5 --seed "$SEED" "$@" \
            > "$ROOT/runs/$name.log" 2>&1 < /dev/null &
    }
    # Loading takes about 75 s (twenty-fifth stage); the teachers' labels are allowed 120 s more. The
    # control makes them too and keeps the truth (weight 1), so that all three start training together.
    launch c24 "${LABEL_S:-195}" $TEACHERS --truth-weight 1
    launch d24 "${LABEL_S:-195}" $TEACHERS --truth-weight 0.5
    launch d24z "${LABEL_S:-195}" $TEACHERS --truth-weight 0
    end_call1 "${CALL_S:-560}" $RUNS
    grep -h "distilled" "$ROOT"/runs/*.log || true
else
    finish_call $RUNS
fi

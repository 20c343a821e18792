# Shared by the benchmarks/gpu_stage*.sh device scripts (sourced; needs ROOT, STATE and OUT set).

setup() {  # the carried wheels (.whl) on the path, JAX as Keras's backend
    if [ -d .whl ] && [ -z "${NO_WHEELS:-}" ]; then
        python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
        export PYTHONPATH=/tmp/site:$PWD
    fi
    export KERAS_BACKEND=${KERAS_BACKEND:-jax} XLA_PYTHON_CLIENT_PREALLOCATE=false TF_CPP_MIN_LOG_LEVEL=2
}

start_call() {  # TOTAL_S: the deadline every training ends by (call 2 waits for it), set-up, the machine
    # said, and the wide-band training speakers' speech (16 kHz; a subset of gpu/train/speech_8k) in $ROOT/s16
    T0=$(date +%s)
    echo $((T0 + $1)) > "$STATE"
    setup
    nvidia-smi --query-gpu=name,memory.total --format=csv 2>/dev/null
    python3 -c "import keras; print('keras', keras.__version__, keras.backend.backend())
if keras.backend.backend() == 'jax':
    import jax; print('jax', jax.__version__, jax.devices())" 2>&1 | tail -2
    rm -rf "$ROOT/s16" && mkdir -p "$ROOT/s16"
    (cd gpu/train/speech_8k && while read -r f; do mkdir -p "$ROOT/s16/$(dirname "$f")"; cp "$f" "$ROOT/s16/$f"; done) < gpu/speech16_files.txt
}

pack() {  # TAG RUN...: copy what the runs have so far into $OUT (a zip being written is skipped)
    local tag=$1 d
    shift
    mkdir -p "$ROOT/pack"
    for d in "$@"; do
        cp "$ROOT/runs/$d.log" "$ROOT/pack/$d.log" 2>/dev/null
        [ -f "$ROOT/runs/$d/log.csv" ] && cp "$ROOT/runs/$d/log.csv" "$ROOT/pack/$d.csv"
        if [ -f "$ROOT/runs/$d/last.keras" ]; then
            cp "$ROOT/runs/$d/last.keras" "$ROOT/pack/$d.keras.tmp"
            if python3 -c "import sys, zipfile; sys.exit(zipfile.ZipFile(sys.argv[1]).testzip() is not None)" \
                "$ROOT/pack/$d.keras.tmp" 2>/dev/null; then
                mv "$ROOT/pack/$d.keras.tmp" "$ROOT/pack/$d.keras"
                cp "$ROOT/runs/$d/last.json" "$ROOT/pack/$d.json" 2>/dev/null
            fi
            rm -f "$ROOT/pack/$d.keras.tmp"
        fi
    done
    cp "$ROOT"/*.txt "$ROOT/pack/" 2>/dev/null
    (cd "$ROOT/pack" && tar -cf "$ROOT/$tag.tar" .) && split -b 15M -d "$ROOT/$tag.tar" "$OUT/$tag.tar.part"
    ls -la "$OUT"
}

end_call1() {  # CALL_S RUN...: once CALL_S have passed since start_call (or no training is left), say
    # how the machine and the runs are doing and copy back what they have so far
    local call_s=$1
    shift
    while [ $(( $(date +%s) - T0 )) -lt "$call_s" ]; do
        sleep 20
        pgrep -f "out-dir $ROOT/runs/" > /dev/null || break
    done
    nvidia-smi --query-gpu=utilization.gpu,memory.used --format=csv 2>/dev/null
    free -g | head -2
    tail -n 3 "$ROOT"/runs/*.log
    pack call1 "$@"
}

finish_call() {  # RUN...: call 2: wait for the trainings (until the deadline + 60 s, and at most
    # FINISH_WAIT_S, so that the copy back fits in the call's 600 s), copy them back
    local deadline stop
    deadline=$(cat "$STATE")
    stop=$(( $(date +%s) + ${FINISH_WAIT_S:-540} ))
    [ "$stop" -lt $((deadline + 60)) ] || stop=$((deadline + 60))
    setup
    while pgrep -f "out-dir $ROOT/runs/" > /dev/null && [ "$(date +%s)" -lt "$stop" ]; do sleep 10; done
    pkill -f "out-dir $ROOT/runs/" && sleep 5
    tail -n 4 "$ROOT"/runs/*.log
    pack call2 "$@"
}

# Shared by the benchmarks/gpu_stage*.sh device scripts (sourced; needs ROOT and OUT set).

setup() {  # the carried wheels (.whl) on the path, JAX as Keras's backend
    if [ -d .whl ] && [ -z "${NO_WHEELS:-}" ]; then
        python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
        export PYTHONPATH=/tmp/site:$PWD
    fi
    export KERAS_BACKEND=${KERAS_BACKEND:-jax} XLA_PYTHON_CLIENT_PREALLOCATE=false TF_CPP_MIN_LOG_LEVEL=2
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

wait_runs() {  # until no training of $ROOT/runs is left, or DEADLINE + 60 s
    local deadline=$1
    while pgrep -f "out-dir $ROOT/runs/" > /dev/null && [ "$(date +%s)" -lt $((deadline + 60)) ]; do sleep 10; done
    pkill -f "out-dir $ROOT/runs/" && sleep 5
}

#!/usr/bin/env bash
# Every GPU figure of BENCHMARKS.md from one prepared script, sized for a lent H100/H200
# session (15 minutes of device time in all, start-up included; 10 minutes a call): the speed
# figures with each switch ablated (STAGES=bench), then the `fast` preset end to end
# (STAGES=run), as two calls on the same warm machine, which share the decode cache. The
# `paper` preset (12-minute target) needs a session of its own: STAGES=paper. STAGES=checks
# runs the CUDA-only tests (needs pytest).
#
#   bash benchmarks/device_run.sh [PACK]        # repository root; the engine needs only torch,
#                                               # torchvision, numpy and rich (PYTHONPATH=.)
#   DEVICE=cpu PRESET=tiny bash benchmarks/device_run.sh PACK   # the same script, checked here
#
# Writes OUT (default /tmp/salal-device): one JSON and one log per stage, and the machine's
# description. Run directories stay in a scratch folder: their checkpoints are too big to ship.
set -u
PACK=${1:-data/cifar10-jpeg.tar.gz}
OUT=${OUT:-/tmp/salal-device}
DEVICE=${DEVICE:-cuda}
PRESET=${PRESET:-fast}
STAGES=${STAGES:-bench run}
ABLATE=${ABLATE:-as-configured,fp32,nchw,unfused-optimizer,compile,cuda-graphs}
SCRATCH=$(mktemp -d)
CACHE=${CACHE:-/tmp/salal-cache}  # outlives the call: the next call on this machine reuses it
PY=${PY:-python3}  # the GPU image's torch is under python3; it may have no plain `python`
export PYTHONPATH=.${PYTHONPATH:+:$PYTHONPATH}
mkdir -p "$OUT"
failed=0

stage() {  # stage NAME SECONDS COMMAND...: stdout to NAME.json, stderr to NAME.log
    local name=$1 limit=$2 start=$SECONDS
    shift 2
    timeout "$limit" "$@" >"$OUT/$name.json" 2>"$OUT/$name.log"
    local rc=$?
    echo "$name: exit $rc after $((SECONDS - start)) s" | tee -a "$OUT/stages.txt"
    [ "$rc" -eq 0 ] || failed=1
}

{
    date -u +%FT%TZ
    $PY -c 'import platform, torch; print(platform.platform(), "torch", torch.__version__,
"cuda", torch.version.cuda, "cudnn", torch.backends.cudnn.version())'
    command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version \
        --format=csv,noheader
    nproc
} >"$OUT/machine.txt" 2>&1

for s in $STAGES; do
    case $s in
    bench)
        stage bench 420 $PY -m salal_core.cli bench --data "$PACK" --cache-dir "$CACHE" \
            --preset "$PRESET" --device "$DEVICE" --no-end-to-end --ablate "$ABLATE"
        ;;
    checks)
        stage checks 300 $PY -m pytest -q -m gpu -p no:cacheprovider tests/test_gpu.py
        ;;
    run | paper)
        preset=$PRESET
        [ "$s" = paper ] && preset=paper
        stage "run-$preset" 570 $PY -m salal_core.cli run --data "$PACK" --cache-dir "$CACHE" \
            --preset "$preset" --device "$DEVICE" --out "$SCRATCH/run-$preset" --json
        ;;
    *)
        echo "unknown stage $s (bench, run, paper, checks)" >&2
        failed=1
        ;;
    esac
done
rm -rf "$SCRATCH"
exit $failed

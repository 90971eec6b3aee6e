#!/usr/bin/env bash
# Issue 23 item 4 on a lent GPU machine, prepared so that each device call is one command.
#
#   checks: the first-capture CUDA-graph tests, then the learner-alone ratio against RLlib's DQN
#           (`bench/gpu_dqn.py --only learners`, alternating rounds)             ~3-4 minutes
#   pong:   `bench/atari_time_to_score.py --game pong --minutes 7` (fast_atari, 12 EnvRunners x
#           64 games, the learner on the GPU), standard-protocol scores          ~9 minutes
#   all:    both, with the Pong budget cut to what one 10-minute call leaves (PONG_MINUTES=4)
#
# Before the call (on the CPU machine, from the project's root): ../shared/tools/gpu-wheels
# (fills .whl/ with Ray, Gymnasium, ale-py, pydantic, ... for Python 3.12). Then the device call,
# carrying [".whl"] (see bench/results/gpu_session.md):
#   bash bench/gpu_session.sh checks      # one call
#   bash bench/gpu_session.sh pong        # another call
# Everything it writes goes under $OUT (the device tool brings that folder back): each step's
# own output unchanged (`*.txt`), the benches' JSON, `session.log` with the times.
#
# `bash bench/gpu_session.sh --help` prints this; `DRY_RUN=1` prints each step's command without
# running it (what the CPU test does).
set -uo pipefail

usage() { sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'; }
stage=${1:-all}
case "$stage" in
  -h|--help) usage; exit 0 ;;
  checks|pong|all) ;;
  *) echo "error: stage must be checks, pong or all, got '$stage'" >&2; exit 2 ;;
esac

cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/rldojo-gpu-session}
mkdir -p "$OUT"
PYTHON=${PYTHON:-python3}
export PYTHONUNBUFFERED=1 RAY_DEDUP_LOGS=0
log() { echo "[$(date -u +%H:%M:%S)] $*" | tee -a "$OUT/session.log"; }

# Run one step with a time limit; its combined output goes unchanged to $OUT/<name>.txt.
step() {
  local name=$1 limit=$2
  shift 2
  log "start $name (limit ${limit}s): $*"
  if [ -n "${DRY_RUN:-}" ]; then
    return 0
  fi
  local started=$SECONDS
  timeout --signal=INT --kill-after=20 "$limit" "$@" > "$OUT/$name.txt" 2>&1
  local rc=$?
  log "end $name rc=$rc after $((SECONDS - started))s"
  tail -n 25 "$OUT/$name.txt"
  return $rc
}

install_wheels() {
  if [ -n "${DRY_RUN:-}" ]; then
    log "dry run: would install .whl/*.whl into /tmp/site"
    return 0
  fi
  ls .whl/*.whl > /dev/null 2>&1 || { log "no .whl/: run ../shared/tools/gpu-wheels first"; exit 3; }
  "$PYTHON" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site .whl/*.whl || exit 3
  export PYTHONPATH=/tmp/site:$PWD
  nvidia-smi > "$OUT/nvidia-smi.txt" 2>&1 || true
  git rev-parse HEAD > "$OUT/commit.txt" 2>/dev/null || true
  log "wheels installed; $(head -n 12 "$OUT/nvidia-smi.txt" | grep -m1 -o 'NVIDIA [A-Z0-9]*' || echo 'no GPU seen')"
}

# Ray without its dashboard (the slimmed wheel has no web build); `rldojo train` joins it.
start_ray() {
  [ -n "${DRY_RUN:-}" ] && return 0
  "$PYTHON" -m ray.scripts.scripts start --head --include-dashboard=false --disable-usage-stats \
    --num-cpus "$(nproc)" --port 6379 > "$OUT/ray_start.txt" 2>&1 || { log "ray start failed"; exit 4; }
  export RAY_ADDRESS=127.0.0.1:6379
}
stop_ray() {
  [ -n "${DRY_RUN:-}" ] && return 0
  "$PYTHON" -m ray.scripts.scripts stop --force > /dev/null 2>&1 || true
  unset RAY_ADDRESS
}

checks() {
  step pytest_cuda_graph 240 "$PYTHON" -m pytest -q -p no:cacheprovider -k cuda_graph \
    tests/algorithms/test_dqn.py
  step gpu_dqn_learners 300 "$PYTHON" bench/gpu_dqn.py --only learners \
    --out "$OUT/gpu_dqn_learners.json"
}

pong() {
  local minutes=$1
  start_ray
  # The budget is Tune's training time; Ray's start, the trial's setup and the two evaluations
  # (10 standard-protocol games each, at once) come on top: ~1.5 minutes on 16 cores.
  step atari_time_to_score_pong $(( ${minutes%.*} * 60 + 120 )) "$PYTHON" \
    bench/atari_time_to_score.py --game pong --minutes "$minutes" --gpus 1 --env-runners 12 \
    --episodes 10 --out "$OUT/atari_time_to_score_pong" \
    --note "lent GPU machine, bench/gpu_session.sh pong"
  stop_ray
}

log "gpu_session.sh $stage in $PWD, output in $OUT"
install_wheels
case "$stage" in
  checks) checks ;;
  pong) pong "${PONG_MINUTES:-7}" ;;
  all) checks; pong "${PONG_MINUTES:-4}" ;;
esac
log "done"

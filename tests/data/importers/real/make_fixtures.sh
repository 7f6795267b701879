#!/usr/bin/env bash
# Regenerates the fixtures in this folder by running the real tools offline, each in a throwaway
# venv under /tmp (nothing here needs a network except pip):
#   inspect/  Inspect AI 0.3.285 with mockllm and a stub OpenAI-compatible grader (stub_server.py)
#   lm-eval/  lm-evaluation-harness 0.4.13, --model dummy, local tasks (lm_eval_tasks/)
#   helm/     crfm-helm 0.5.16, simple/model1 on local scenarios (helm_local/)
# Usage: tests/data/importers/real/make_fixtures.sh [inspect|lm-eval|helm ...]   (default: all)
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
WORK="${FIXTURE_WORK:-/tmp/importer-fixtures}"
PORT="${STUB_PORT:-18771}"
PY="${PYTHON:-python3}"
mkdir -p "$WORK"
targets=("$@"); [ ${#targets[@]} -eq 0 ] && targets=(inspect lm-eval helm)

venv() {  # venv NAME PIP-SPEC...: a throwaway venv with the tool installed, reused if present
  local dir="$WORK/venv-$1"; shift
  [ -x "$dir/bin/python" ] || "$PY" -m venv "$dir"
  "$dir/bin/pip" install -q "$@" >&2
  echo "$dir"
}

run_inspect() {
  local v; v="$(venv inspect "inspect-ai==0.3.285" openai)"
  "$PY" "$HERE/stub_server.py" "$PORT" 2>"$WORK/stub.log" &
  local stub=$!
  trap 'kill $stub 2>/dev/null || true' RETURN
  sleep 1
  rm -rf "$WORK/inspect-logs" "$HERE/inspect"
  LOCAL_BASE_URL="http://127.0.0.1:$PORT/v1" LOCAL_API_KEY=stub INSPECT_LOG_LEVEL=warning \
    "$v/bin/python" "$HERE/inspect_runs.py" "$WORK/inspect-logs"
  mkdir -p "$HERE/inspect"
  # Stable names: <task>.eval / <task>.json (Inspect names files <time>_<task>_<id>).
  for f in "$WORK"/inspect-logs/*; do
    local base task; base="$(basename "$f")"; task="${base#*_}"; task="${task%_*}"
    cp "$f" "$HERE/inspect/$task.${base##*.}"
  done
}

run_lm_eval() {
  local v; v="$(venv lmeval "lm-eval==0.4.13")"
  local tasks="$WORK/lm-tasks"; rm -rf "$tasks" "$WORK/lm-out" "$HERE/lm-eval"; mkdir -p "$tasks"
  cp "$HERE/lm_eval_tasks/tiny.jsonl" "$tasks/"
  for t in tiny_mc tiny_letters; do
    sed "s#@DATA@#$tasks#" "$HERE/lm_eval_tasks/$t.yaml.in" > "$tasks/$t.yaml"
  done
  export HF_DATASETS_OFFLINE=1 HF_HUB_OFFLINE=1
  # with model_args (named acme/dummy-a), without (lm-eval names it by a random id), and a
  # second run without model_args (another random id) for --model-name per run
  "$v/bin/lm_eval" --model dummy --model_args pretrained=acme/dummy-a --tasks tiny_mc,tiny_letters \
    --include_path "$tasks" --output_path "$WORK/lm-out/with-args" --log_samples
  "$v/bin/lm_eval" --model dummy --tasks tiny_mc,tiny_letters \
    --include_path "$tasks" --output_path "$WORK/lm-out/no-args" --log_samples
  "$v/bin/lm_eval" --model dummy --tasks tiny_mc,tiny_letters --seed 7 \
    --include_path "$tasks" --output_path "$WORK/lm-out/no-args-2" --log_samples
  mkdir -p "$HERE/lm-eval"
  cp -r "$WORK"/lm-out/* "$HERE/lm-eval/"
}

run_helm() {
  "$HERE/helm_local/run_helm.sh" "$(venv helm "crfm-helm==0.5.16")" "$WORK/helm" "$HERE/helm"
}

for t in "${targets[@]}"; do
  case "$t" in
    inspect) run_inspect ;;
    lm-eval) run_lm_eval ;;
    helm) run_helm ;;
    *) echo "unknown target $t" >&2; exit 2 ;;
  esac
done

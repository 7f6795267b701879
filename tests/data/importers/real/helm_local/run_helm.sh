#!/usr/bin/env bash
# run_helm.sh VENV WORK OUT: run the tiny HELM run specs offline with simple/model1 and copy the
# run directories (run_spec.json, scenario_state.json, per_instance_stats.json) to OUT.
set -euo pipefail
VENV="$1"; WORK="$2"; OUT="$3"; HERE="$(cd "$(dirname "$0")" && pwd)"
rm -rf "$WORK" "$OUT"; mkdir -p "$WORK" "$OUT"
cd "$WORK"
for spec in tiny_joint tiny_joint_b tiny_separate; do
  PYTHONPATH="$HERE" "$VENV/bin/helm-run" --plugins tiny_helm --run-entries "$spec:model=simple/model1" \
    --suite fixtures --max-eval-instances 4 -o "$WORK/out" --skip-completed-runs=false >/dev/null 2>&1 \
    || PYTHONPATH="$HERE" "$VENV/bin/helm-run" --plugins tiny_helm --run-entries "$spec:model=simple/model1" \
    --suite fixtures --max-eval-instances 4 -o "$WORK/out"
done
for run in "$WORK"/out/runs/fixtures/*/; do
  name="$(basename "$run")"; mkdir -p "$OUT/$name"
  for f in run_spec.json scenario_state.json per_instance_stats.json; do cp "$run/$f" "$OUT/$name/"; done
done

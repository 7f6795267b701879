#!/usr/bin/env bash
# run_helm.sh VENV WORK OUT: run the tiny HELM run specs offline with simple/model1 and copy the
# run directories (run_spec.json, scenario_state.json, per_instance_stats.json) to OUT.
set -euo pipefail
VENV="$1"; WORK="$2"; OUT="$3"; HERE="$(cd "$(dirname "$0")" && pwd)"
rm -rf "$WORK" "$OUT"; mkdir -p "$WORK" "$OUT"
cd "$WORK"
PYTHONPATH="$HERE" "$VENV/bin/helm-run" --plugins tiny_helm \
  --run-entries "tiny_joint:model=simple/model1" "tiny_joint_b:model=simple/model1" \
  "tiny_separate:model=simple/model1" --suite fixtures --max-eval-instances 4 -o "$WORK/out"
for run in "$WORK"/out/runs/fixtures/tiny*/; do
  name="$(basename "$run")"; name="${name%%:*}"; mkdir -p "$OUT/$name"
  for f in run_spec.json scenario_state.json per_instance_stats.json; do cp "$run/$f" "$OUT/$name/"; done
done

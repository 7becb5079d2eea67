#!/usr/bin/env bash
# GPU check of the main job: the same recipe with a hub model (unsloth 4-bit + LoRA policy)
# on one CUDA GPU, in under 8 minutes on an H100/H200. Prints the recipe's figures and the
# wall time, and appends them to BENCHMARKS.md through scripts/bench_ppo_recipe.py.
#
#   bash scripts/gpu_check.sh                   # Qwen/Qwen3-0.6B (needs the hub, or its cache)
#   MODEL=/models/Qwen3-0.6B bash scripts/gpu_check.sh
#   NO_APPEND=1 bash scripts/gpu_check.sh       # print only
#
# Needs: pip install -e '.[unsloth]' (unsloth imports only with a CUDA GPU).
set -euo pipefail
cd "$(dirname "$0")/.."

MODEL="${MODEL:-Qwen/Qwen3-0.6B}"
OUT="${OUT:-outputs/gpu_check}"

if ! python -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)"; then
  echo "gpu_check: no CUDA GPU here (torch.cuda.is_available() is False); run it on a GPU" >&2
  exit 2
fi
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader || true
uptime

# Larger settings than the CPU default: a 0.6B policy, 64-token answers, more episodes;
# the reward model is the policy's own base with a LoRA adapter and a score head.
args=(
  --backend unsloth
  --model-name "$MODEL" --reward-base "$MODEL"
  --output-dir "$OUT"
  --reward-texts 320 --policy-samples 4 --reward-epochs 2 --reward-batch-size 16
  --episodes 512 --batch-size 32 --ppo-epochs 2 --lr 1e-4 --kl-coef 0.02
  --max-new-tokens 64 --eval-prompts 12 --eval-samples 8
)
start=$(date +%s)
if [ -n "${NO_APPEND:-}" ]; then
  timeout 480 python scripts/bench_ppo_recipe.py --no-append --output-dir "$OUT" -- "${args[@]}"
else
  timeout 480 python scripts/bench_ppo_recipe.py --output-dir "$OUT" -- "${args[@]}"
fi
echo "gpu_check: finished in $(( $(date +%s) - start )) s (budget 480 s)"

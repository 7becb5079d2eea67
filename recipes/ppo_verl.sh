#!/usr/bin/env bash
# VERL PPO (GAE advantages, a critic) on GPUs, rewarded by rlreward.
#
# The path for runs that outgrow one machine: VERL (Ray, FSDP, vLLM rollouts) calls
# rlreward.integrations.verl.compute_score for every sample; the reward is the spec in
# recipes/verl_reward.yaml (the same rule-based composite recipes/ppo_unsloth.py trains
# its reward model on; add LLM judges there). Needs NVIDIA GPUs, verl 0.9.x and vLLM:
#
#   pip install 'rlreward[verl]' vllm
#   bash recipes/ppo_verl.sh                                  # Qwen3-0.6B, 1 GPU
#   MODEL=Qwen/Qwen3-1.7B N_GPUS=8 bash recipes/ppo_verl.sh trainer.total_epochs=5
#
# Usage: bash recipes/ppo_verl.sh [-h|--help] [HYDRA_OVERRIDE ...]
# Environment: MODEL (default Qwen/Qwen3-0.6B), DATA (default $HOME/data/rlreward),
# SPEC (default recipes/verl_reward.yaml), N_GPUS (default 1). --help prints this text
# and writes nothing.
#
# Extra arguments are passed on as Hydra overrides. Without $DATA/train.parquet the
# shipped questions are written there first (recipes/verl_data.py; use --input for
# your own JSONL). The overrides below are checked against verl's own config by
# tests/recipes/test_ppo_verl.py (Hydra compose + verl's validate_config); the run
# itself was not executed on the CPU-only development machine.
set -euo pipefail

if [[ "${1:-}" == "-h" || "${1:-}" == "--help" ]]; then
    # the comment block above, without its leading "# "
    awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "${BASH_SOURCE[0]}"
    exit 0
fi

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
MODEL="${MODEL:-Qwen/Qwen3-0.6B}"
DATA="${DATA:-$HOME/data/rlreward}"
SPEC="${SPEC:-$HERE/verl_reward.yaml}"
N_GPUS="${N_GPUS:-1}"

if [[ ! -f "$DATA/train.parquet" ]]; then
    python3 "$HERE/verl_data.py" --out "$DATA"
fi

python3 -m verl.trainer.main_ppo \
    algorithm.adv_estimator=gae \
    algorithm.kl_ctrl.kl_coef=0.001 \
    data.train_files="$DATA/train.parquet" \
    data.val_files="$DATA/test.parquet" \
    data.train_batch_size=32 \
    data.max_prompt_length=256 \
    data.max_response_length=256 \
    actor_rollout_ref.model.path="$MODEL" \
    actor_rollout_ref.actor.optim.lr=1e-6 \
    actor_rollout_ref.actor.ppo_mini_batch_size=16 \
    actor_rollout_ref.actor.ppo_micro_batch_size_per_gpu=4 \
    actor_rollout_ref.rollout.name=vllm \
    actor_rollout_ref.rollout.tensor_model_parallel_size=1 \
    actor_rollout_ref.rollout.gpu_memory_utilization=0.4 \
    actor_rollout_ref.rollout.log_prob_micro_batch_size_per_gpu=8 \
    actor_rollout_ref.ref.log_prob_micro_batch_size_per_gpu=8 \
    critic.model.path="$MODEL" \
    critic.optim.lr=1e-5 \
    critic.ppo_micro_batch_size_per_gpu=4 \
    reward.custom_reward_function.path=pkg://rlreward.integrations.verl \
    reward.custom_reward_function.name=compute_score \
    +reward.custom_reward_function.reward_kwargs.spec="$SPEC" \
    trainer.logger='["console"]' \
    trainer.project_name=rlreward \
    trainer.experiment_name=ppo_verl \
    trainer.n_gpus_per_node="$N_GPUS" \
    trainer.nnodes=1 \
    trainer.total_epochs=3 \
    "$@"

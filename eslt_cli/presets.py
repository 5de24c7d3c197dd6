"""Per-task-kind default settings: CPU defaults and appendix C (``--preset paper``).

Plain data with no heavy imports, so ``--help`` can quote it.
"""

# Trainer settings that train within a minute or two on a 2-core CPU ...
VISION_CPU = {"strategy": "snes", "population": 32, "generations": 100, "std_init": 0.02, "eval_every": 10}
CONTROL_CPU = {"strategy": "snes", "population": 64, "generations": 200, "std_init": 0.3, "eval_every": 20}
# ... and appendix C's settings for GPU hosts. The ES optimiser is Adam where the
# strategy takes one; the paper does not state its learning rate, 0.01 is ours.
VISION_PAPER = {"population": 128, "generations": 4000, "optimizer": "adam", "lr": 0.01, "eval_every": 100,
                "batch_size": 1024}  # fmt: skip
CONTROL_PAPER = {"population": 256, "generations": 3000, "optimizer": "adam", "lr": 0.01, "eval_every": 100,
                 "test_episodes": 164}  # fmt: skip

# Gradient trainers (``--trainer adam|ppo``): trainer and task settings per preset.
# Adam: the paper's GD baseline (Section 3: lr 3e-4, batch 128, 20 epochs).
ADAM_CPU = {"lr": 3e-4, "epochs": 2, "eval_every": 1, "batch_size": 128}
ADAM_PAPER = {"epochs": 20}
# PPO: PureJaxRL's CartPole settings; CartPole tests at 475+ after 30k-60k steps.
PPO_CPU = {"lr": 3e-4, "timesteps": 200_000, "num_envs": 8, "rollout_steps": 128, "update_epochs": 4,
           "minibatches": 4, "gamma": 0.99, "gae_lambda": 0.95, "clip_eps": 0.2, "ent_coef": 0.01,
           "vf_coef": 0.5, "max_grad_norm": 0.5, "eval_every": 10}  # fmt: skip
PPO_PAPER = {"timesteps": 10_000_000, "num_envs": 64, "eval_every": 50}

# Brax: a smaller population on CPU (episodes cost far more than a gymnax step);
# appendix C.1 on GPU hosts, with 1000-step episodes (brax's usual length).
BRAX_CPU = {"strategy": "snes", "population": 32, "generations": 100, "std_init": 0.3, "eval_every": 10}
BRAX_PAPER = {"population": 256, "generations": 3000, "optimizer": "adam", "lr": 0.01, "eval_every": 100,
              "train_episodes": 8, "test_episodes": 164, "episode_length": 1000}  # fmt: skip

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

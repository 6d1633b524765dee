"""What mmengine hooks see of a BasicSR training run.

BasicSR has no mmengine Runner; hooks only need a few of its attributes. `iter` follows mmengine's
convention (0-based, iterations completed), i.e. BasicSR's `current_iter - 1`.
"""
from dataclasses import dataclass
from typing import Any


@dataclass
class TrainingRunner:
    model: Any
    schedule: Any
    world_size: int
    max_iters: int
    iter: int = 0
    epoch: int = 0
    max_epochs: Any = None

    @property
    def phase(self):
        return self.schedule.phase_at(self.iter)

    def scale_lr(self, factor):
        """Multiply the learning rate of every optimizer group (the model restores it before each step)."""
        for optimizer in self.model.optimizers:
            for group in optimizer.param_groups:
                group['lr'] *= factor

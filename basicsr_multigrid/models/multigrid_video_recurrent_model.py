import json
import os
import time
from os import path as osp

from basicsr.models.video_recurrent_model import VideoRecurrentModel
from basicsr.utils.dist_util import master_only
from basicsr.utils.registry import MODEL_REGISTRY


@MODEL_REGISTRY.register()
class MultigridVideoRecurrentModel(VideoRecurrentModel):
    """BasicSR's VideoRecurrentModel (BasicVSR, IconVSR, BasicVSR++) plus machine-readable validation.

    Each validation appends one JSON line per dataset to `<experiments_root>/val_metrics.jsonl`:
    `{"iter", "dataset", "wall_s", "<metric>": value, ...}`, where `wall_s` counts training time since
    the model was built, without time spent in validation. The demo and the benchmarks read it.
    """

    def __init__(self, opt):
        super().__init__(opt)
        self._train_start = time.perf_counter()
        self._validation_seconds = 0.0

    def validation(self, dataloader, current_iter, tb_logger, save_img=False):
        started = time.perf_counter()
        self._wall_at_validation = started - self._train_start - self._validation_seconds
        super().validation(dataloader, current_iter, tb_logger, save_img)
        self._validation_seconds += time.perf_counter() - started

    def _log_validation_metric_values(self, current_iter, dataset_name, tb_logger):
        super()._log_validation_metric_values(current_iter, dataset_name, tb_logger)
        self._append_metrics_record(current_iter, dataset_name)

    @master_only
    def _append_metrics_record(self, current_iter, dataset_name):
        if not self.opt['is_train']:
            return
        record = {'iter': current_iter, 'dataset': dataset_name,
                  'wall_s': round(getattr(self, '_wall_at_validation', 0.0), 3)}
        record.update({name: float(value) for name, value in self._mean_metric_values().items()})
        os.makedirs(self.opt['path']['experiments_root'], exist_ok=True)
        with open(osp.join(self.opt['path']['experiments_root'], 'val_metrics.jsonl'), 'a') as f:
            f.write(json.dumps(record) + '\n')

    def _mean_metric_values(self):
        """Mean of each metric over all frames of all folders (what BasicSR logs as the dataset value)."""
        names = list(self.opt['val']['metrics'].keys())
        per_folder = [tensor.mean(dim=0) for tensor in self.metric_results.values()]
        means = sum(per_folder) / len(per_folder)
        return {name: means[i].item() for i, name in enumerate(names)}

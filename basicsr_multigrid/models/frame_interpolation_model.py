from collections import defaultdict
from os import path as osp

import numpy as np
from basicsr.metrics import calculate_metric
from basicsr.models.sr_model import SRModel
from basicsr.utils import get_root_logger, imwrite, tensor2img
from basicsr.utils.registry import MODEL_REGISTRY

from basicsr_multigrid.models.checkpoint_mixin import AtomicCheckpointMixin
from basicsr_multigrid.models.ema_validation import EmaValidationMixin
from basicsr_multigrid.models.generator_step import GeneratorStepMixin
from basicsr_multigrid.models.optimizer_setup import setup_generator_optimizer


@MODEL_REGISTRY.register()
class FrameInterpolationModel(AtomicCheckpointMixin, EmaValidationMixin, GeneratorStepMixin, SRModel):
    """Frame interpolation (ST-MFNet, ST-MFNet Mini): `lq` holds the input frames (B, 4, C, H, W), `gt` the
    middle frame; trained on `train.pixel_opt` (and `perceptual_opt`) as BasicSR's SRModel. Validation reports
    the mean over sequences of each sequence's mean (`data_info['folder']` of the dataset: DAVIS, VFITex; one sample
    per sequence elsewhere), as the papers do, and logs the mean over all frames beside it.

    With `optim_g.type: OBProxSG, sparsity: channel` the weights are grouped by output channel (group-sparsity
    training for pruning) and each logged iteration shows the optimizer's `density`.
    """

    def setup_optimizers(self):
        setup_generator_optimizer(self)

    def nondist_validation(self, dataloader, current_iter, tb_logger, save_img):
        dataset = dataloader.dataset
        folders = getattr(dataset, 'data_info', {}).get('folder')
        metrics = self.opt['val'].get('metrics')
        if not metrics or folders is None:
            return super().nondist_validation(dataloader, current_iter, tb_logger, save_img)
        name = dataset.opt['name']
        self._initialize_best_metric_results(name)
        by_folder = defaultdict(list)
        for index, data in enumerate(dataloader):
            self.feed_data(data)
            self.test()
            visuals = self.get_current_visuals()
            images = {'img': tensor2img([visuals['result']]), 'img2': tensor2img([visuals['gt']])}
            by_folder[folders[index]].append({metric: calculate_metric(images, o) for metric, o in metrics.items()})
            if save_img:
                self.save_output(images['img'], data['lq_path'][0], name)
            del self.lq, self.output, self.gt
        frames = [values for sequence in by_folder.values() for values in sequence]
        self.metric_results = {metric: float(np.mean([np.mean([v[metric] for v in sequence])
                                                      for sequence in by_folder.values()])) for metric in metrics}
        for metric, value in self.metric_results.items():
            self._update_best_metric_result(name, metric, value, current_iter)
        self._log_validation_metric_values(current_iter, name, tb_logger)
        per_frame = ', '.join(f'{metric} {np.mean([v[metric] for v in frames]):.4f}' for metric in metrics)
        get_root_logger().info(f'\t {name}: means over {len(by_folder)} sequences above; over all {len(frames)} '
                               f'frames: {per_frame}')

    def save_output(self, image, sample_name, dataset_name):
        suffix = self.opt['val'].get('suffix') or self.opt['name']
        file = f"{sample_name.replace('/', '_')}_{suffix}.png"
        imwrite(image, osp.join(self.opt['path']['visualization'], dataset_name, file))

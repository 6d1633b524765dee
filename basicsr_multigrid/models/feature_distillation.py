"""Feature-level distillation: compare intermediate outputs of named student and teacher modules.

`train.feature_distill_opt` holds a BasicSR loss (type, loss_weight, ...) plus:

- `layers`: {student module name: teacher module name}, dotted names as in `named_modules()`;
- `mode`: `attention` (default) compares spatial attention maps (mean over channels of the squared
  activation, L2-normalised per sample; Zagoruyko & Komodakis 2017), which works for any pair of widths;
  `direct` compares the activations themselves and needs identical shapes.
"""
import torch.nn.functional as F
from basicsr.losses import build_loss

from basicsr_multigrid.utils.errors import OptionError

MODES = ('attention', 'direct')
KEY = 'train.feature_distill_opt'


def attention_map(features):
    """(B, C, ...) activations -> (B, prod(...)) unit-norm map of where the layer responds."""
    return F.normalize(features.pow(2).mean(dim=1).flatten(1), dim=1)


class FeatureDistillation:
    """Captures the outputs of the configured layers with forward hooks and turns them into one loss."""

    def __init__(self, options, student, teacher):
        options = dict(options)
        layers = options.pop('layers', None)
        self.mode = options.pop('mode', 'attention')
        if not isinstance(layers, dict) or not layers:
            raise OptionError(f'{KEY}.layers: give {{student module: teacher module}} pairs')
        if self.mode not in MODES:
            raise OptionError(f'{KEY}.mode: {self.mode!r} is not one of {", ".join(MODES)}')
        self.pairs = list(layers.items())
        self.loss = build_loss(options)
        self.student_features, self.teacher_features = {}, {}
        for student_name, teacher_name in self.pairs:
            _hook(student, student_name, self.student_features, 'student')
            _hook(teacher, teacher_name, self.teacher_features, 'teacher')

    def to(self, device):
        self.loss = self.loss.to(device)
        return self

    def __call__(self):
        total = 0
        for student_name, teacher_name in self.pairs:
            student = self.student_features[student_name].float()  # compared in fp32 under any precision
            teacher = self.teacher_features[teacher_name].float()
            if self.mode == 'attention':
                student, teacher = attention_map(student), attention_map(teacher)
            if student.shape != teacher.shape:
                raise OptionError(f'{KEY}.layers: {student_name} gives {tuple(student.shape)} but {teacher_name} '
                                  f'gives {tuple(teacher.shape)}; pair layers of the same resolution'
                                  + (' and width (or use mode: attention)' if self.mode == 'direct' else ''))
            total = total + self.loss(student, teacher.detach())
        return total


def _hook(network, name, store, role):
    try:
        module = network.get_submodule(name)
    except AttributeError:
        raise OptionError(f'{KEY}.layers: the {role} network has no module {name!r}') from None

    def keep_output(_module, _inputs, output):
        store[name] = output[0] if isinstance(output, (tuple, list)) else output

    module.register_forward_hook(keep_output)

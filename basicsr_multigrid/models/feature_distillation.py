"""Feature-level distillation: compare intermediate outputs of named student and teacher modules.

`train.feature_distill_opt` holds a BasicSR loss (type, loss_weight, ...) plus:

- `layers`: {student module name: teacher module name}, dotted names as in `named_modules()`;
- `mode`: `attention` (default) compares spatial attention maps (mean over channels of the squared
  activation, L2-normalised per sample; Zagoruyko & Komodakis 2017), which works for any pair of widths;
  `direct` compares the activations themselves and needs identical shapes.

A module that runs several times in one forward (a recurrent network's trunk runs once per frame) is compared
call by call, the k-th student call with the k-th teacher call, and the loss is the mean over calls. Outputs are
recorded only between `record()` and the loss, so validation forwards leave nothing behind.
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
        self.recording = False
        # per pair, the outputs of each call: [(student calls, teacher calls), ...]
        self.calls = [([], []) for _ in self.pairs]
        for (student_name, teacher_name), (student_calls, teacher_calls) in zip(self.pairs, self.calls):
            self._hook(student, student_name, student_calls, 'student')
            self._hook(teacher, teacher_name, teacher_calls, 'teacher')

    def _hook(self, network, name, calls, role):
        try:
            module = network.get_submodule(name)
        except AttributeError:
            raise OptionError(f'{KEY}.layers: the {role} network has no module {name!r}') from None

        def keep_output(_module, _inputs, output):
            if self.recording:
                output = (output[0] if isinstance(output, (tuple, list)) else output).float()  # fp32 in any precision
                # in attention mode only the map is kept: a (B, H*W) map per call instead of (B, C, H, W) features
                calls.append(attention_map(output) if self.mode == 'attention' else output)

        module.register_forward_hook(keep_output)

    def to(self, device):
        self.loss = self.loss.to(device)
        return self

    def record(self):
        """Start recording the layers' outputs of the student and teacher forwards that follow."""
        self._clear()
        self.recording = True

    def __call__(self):
        """The loss over the recorded forwards (sum over layer pairs of the mean over calls); stops recording."""
        self.recording = False
        total = 0
        for (student_name, teacher_name), (student_calls, teacher_calls) in zip(self.pairs, self.calls):
            if not student_calls and not teacher_calls:
                raise RuntimeError(f'{KEY}: nothing recorded for {student_name} / {teacher_name}; call record() '
                                   'before the student and teacher forwards')
            if len(student_calls) != len(teacher_calls):
                raise OptionError(f'{KEY}.layers: {student_name} ran {len(student_calls)} times in the recorded '
                                  f'forward but {teacher_name} {len(teacher_calls)}; pair layers that run equally '
                                  'often')
            total = total + sum(self._compare(student_name, teacher_name, student, teacher)
                                for student, teacher in zip(student_calls, teacher_calls)) / len(student_calls)
        self._clear()
        return total

    def _compare(self, student_name, teacher_name, student, teacher):
        """One call's loss between what the hooks kept (attention maps or features)."""
        if student.shape != teacher.shape:
            raise OptionError(f'{KEY}.layers: {student_name} gives {tuple(student.shape)} but {teacher_name} '
                              f'gives {tuple(teacher.shape)}; pair layers of the same resolution'
                              + (' and width (or use mode: attention)' if self.mode == 'direct' else ''))
        return self.loss(student, teacher.detach())

    def _clear(self):
        for student_calls, teacher_calls in self.calls:
            student_calls.clear()
            teacher_calls.clear()

"""Side-by-side crop panels: bicubic | model output(s) | ground truth, each tile labelled (with its PSNR against
the ground truth when there is one), so a before / after can be judged at a glance."""
import cv2
import numpy as np
from basicsr.metrics import calculate_psnr

from basicsr_multigrid.utils.errors import OptionError

CROP = 192  # HR pixels per side of the default crop
LABEL_HEIGHT = 22


def bicubic_upscale(lq, scale):
    return cv2.resize(lq, (lq.shape[1] * scale, lq.shape[0] * scale), interpolation=cv2.INTER_CUBIC)


def centre_crop_box(height, width, size=CROP):
    """(top, left, size_h, size_w) of a centred crop of at most `size` pixels per side."""
    size_h, size_w = min(size, height), min(size, width)
    return (height - size_h) // 2, (width - size_w) // 2, size_h, size_w


def write_panel(path, lq, outputs, scale, gt=None, box=None):
    """A PNG at `path`: the crop `box` (top, left, h, w in HR pixels; default centred) of the bicubic upscale of
    `lq`, of each named output and of `gt`. RGB uint8 arrays in; returns {tile name: PSNR or None}."""
    tiles = {'bicubic': bicubic_upscale(lq, scale), **outputs}
    if gt is not None:
        tiles['ground truth'] = gt
    height, width = tiles['bicubic'].shape[:2]
    for name, image in tiles.items():
        if image.shape[:2] != (height, width):
            raise OptionError(f'{name}: {image.shape[1]}x{image.shape[0]} frame, expected {width}x{height} '
                              f'(the input x{scale})')
    top, left, size_h, size_w = box or centre_crop_box(height, width)
    if top < 0 or left < 0 or top + size_h > height or left + size_w > width:
        raise OptionError(f'--crop: {left},{top},{size_w},{size_h} is outside the {width}x{height} frame')
    psnrs, columns = {}, []
    for name, image in tiles.items():
        psnr = calculate_psnr(image, gt, crop_border=0) if gt is not None and name != 'ground truth' else None
        psnrs[name] = psnr
        crop = np.ascontiguousarray(image[top:top + size_h, left:left + size_w])
        columns.append(_labelled(crop, name if psnr is None else f'{name} {psnr:.2f} dB'))
    separator = np.full((columns[0].shape[0], 4, 3), 255, np.uint8)
    panel = np.concatenate([part for column in columns for part in (column, separator)][:-1], axis=1)
    if not cv2.imwrite(path, cv2.cvtColor(panel, cv2.COLOR_RGB2BGR)):
        raise OptionError(f'--compare: cannot write {path}')
    return psnrs


def _labelled(crop, text):
    label = np.zeros((LABEL_HEIGHT, crop.shape[1], 3), np.uint8)
    scale = min(0.5, 0.9 * crop.shape[1] / max(1, cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, 1, 1)[0][0]))
    cv2.putText(label, text, (3, LABEL_HEIGHT - 7), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), 1, cv2.LINE_AA)
    return np.concatenate([label, crop], axis=0)

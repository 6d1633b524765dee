"""Deterministic demo video data made from photos bundled with scikit-image.

Why: the demo must train a video SR model in minutes without downloading REDS or Vimeo-90K. Each clip
is a synthetic camera move (sub-pixel pan with slight acceleration, slow zoom, small rotation) over a
real photo, so frames carry real texture and consecutive frames are misaligned as in real video, which
is what makes temporal alignment matter. The test clips (two more photos, never trained on or used to choose
anything) move faster and rotate more than any training clip. LQ frames are made the way REDS/Vimeo LR frames are made:
MATLAB-style antialiased bicubic x4 downscale of the 8-bit GT frames (`video_folder.write_clip`).

Frames are square (``size`` px, the default 256) or ``width x height`` (e.g. ``'1280x720'``, for measuring the data
cost of full-size video frames); a square size is built exactly as before the rectangular option existed.

Layout (REDS-like, keys are ``clip/frame``)::

    <out>/{train,val,test}/{GT,LQ}/<idx:03d>_<photo>/%08d.png
    <out>/meta_info_{train,val,test}.txt     "<clip> <n_frames> (<h>,<w>,<c>)" of the GT frames
    <out>/demo_info.json
"""
import json
import math
import os

import cv2
import numpy as np

from basicsr_multigrid.data.bicubic import to_uint8
from basicsr_multigrid.data.video_folder import bicubic_upscale_psnr, build_folder_atomically, write_clip

SCALE = 4
DEMO_INFO = 'demo_info.json'  # written last: marks a complete demo set
# One clip per photo. Val photos are never used for training (disjoint content, not just other frames).
TRAIN_PHOTOS = ('astronaut', 'rocket', 'motorcycle', 'hubble', 'ihc', 'camera', 'brick', 'grass', 'gravel')
VAL_PHOTOS = ('chelsea', 'coffee')
# The test split: photos never trained on or used to choose anything, moving faster and rotating more than train.
TEST_PHOTOS = ('retina', 'coins')
PHOTOS = {'train': TRAIN_PHOTOS, 'val': VAL_PHOTOS, 'test': TEST_PHOTOS}

# Motion ranges. Velocity is in source px/frame, which is ~GT px/frame since zoom stays within +-8%.
SPEED_RANGE = (0.5, 3.0)
ACCEL_MAX_FRACTION = 0.3  # velocity may change by up to 30% over a clip
ZOOM_TOTAL_MAX = 0.08  # scale factor goes 1 -> 1 +- 8% over the clip
ROTATION_TOTAL_MAX_DEG = 3.0
TEST_SPEED_RANGE = (3.0, 5.0)
TEST_ROTATION_RANGE_DEG = (3.0, 6.0)
MOTION_RANGES = {split: (SPEED_RANGE, (-ROTATION_TOTAL_MAX_DEG, ROTATION_TOTAL_MAX_DEG)) for split in ('train', 'val')}
MOTION_RANGES['test'] = (TEST_SPEED_RANGE, TEST_ROTATION_RANGE_DEG)
MIN_SIZE = 32
_WARP_MARGIN = 2.0  # px kept inside the photo so the 4x4 cubic support never needs the reflected border


def _load_photo(name):
    """RGB uint8 photo. All of these are files shipped inside scikit-image (no pooch download)."""
    from skimage import data  # imported lazily: only the builder needs it
    loaders = {
        'astronaut': data.astronaut,
        'rocket': data.rocket,
        'motorcycle': lambda: data.stereo_motorcycle()[0],
        'hubble': data.hubble_deep_field,
        'ihc': data.immunohistochemistry,
        'camera': data.camera,
        'brick': data.brick,
        'grass': data.grass,
        'gravel': data.gravel,
        'chelsea': data.chelsea,
        'coffee': data.coffee,
        'retina': data.retina,
        'coins': data.coins,
    }
    img = np.asarray(loaders[name]())
    if img.ndim == 2:  # grayscale textures -> 3 identical channels so every clip is RGB
        img = np.repeat(img[:, :, None], 3, axis=2)
    return np.ascontiguousarray(img[:, :, :3]).astype(np.uint8)


# ----------------------------------------------------------------------------------------------------
# Synthetic camera motion
# ----------------------------------------------------------------------------------------------------
def frame_size(size):
    """`size` as the builder uses it: an int for square frames, (width, height) for others. Accepts an int,
    'N', 'WxH' or (width, height); ValueError unless both sides are multiples of SCALE and >= MIN_SIZE."""
    if isinstance(size, str):
        parts = size.lower().split('x')
        try:
            size = tuple(int(part) for part in parts) if len(parts) == 2 else int(size)
        except ValueError:
            raise ValueError(f'size must be N or WIDTHxHEIGHT (e.g. 1280x720), got {size!r}') from None
    sides = tuple(size) if isinstance(size, (tuple, list)) else (size, size)
    if len(sides) != 2 or any(not isinstance(side, int) or side % SCALE or side < MIN_SIZE for side in sides):
        raise ValueError(f'size must be a multiple of {SCALE} and >= {MIN_SIZE} (each side), got {size}')
    return sides[0] if sides[0] == sides[1] else sides


def _prepare_photo(img, size):
    """Float64 [0,1] photo with short side ~1.6*size: room for the motion, not much more.

    Downscaling big photos (INTER_AREA) keeps texture at a scale a size x size window can see; tiny
    photos are upscaled only when there would be no room to move at all. A (width, height) window gets a photo
    scaled to 1.6 times the window on its tighter axis (up or down).
    """
    if isinstance(size, tuple):
        return _prepare_photo_for_window(img, *size)
    h, w = img.shape[:2]
    short = min(h, w)
    target = None
    if short > round(1.6 * size):
        target, interp = round(1.6 * size), cv2.INTER_AREA
    elif short < round(1.25 * size):
        target, interp = round(1.25 * size), cv2.INTER_CUBIC
    out = img.astype(np.float64) / 255.0
    if target is not None:
        f = target / short
        out = cv2.resize(out, (max(target, round(w * f)), max(target, round(h * f))), interpolation=interp)
    return np.clip(out, 0.0, 1.0)


def _prepare_photo_for_window(img, width, height):
    h, w = img.shape[:2]
    f = max(1.6 * width / w, 1.6 * height / h)
    out = img.astype(np.float64) / 255.0
    size = (max(round(1.6 * width), round(w * f)), max(round(1.6 * height), round(h * f)))
    out = cv2.resize(out, size, interpolation=cv2.INTER_AREA if f < 1 else cv2.INTER_CUBIC)
    return np.clip(out, 0.0, 1.0)


def _frame_geometry(motion, t, n_frames):
    f = t / (n_frames - 1) if n_frames > 1 else 0.0
    s = 1.0 + motion['zoom_total'] * f
    theta = math.radians(motion['rotation_deg_total'] * f)
    v, a = np.array(motion['velocity_px']), np.array(motion['accel_px'])
    offset = v * t + 0.5 * a * t * t
    return s, theta, offset


def _window_half_extent(size, s, theta):
    """Half extent (per axis) of the rotated, zoomed source window, plus interpolation margin."""
    if isinstance(size, tuple):
        half_w, half_h = (size[0] - 1) / 2, (size[1] - 1) / 2
        c, sn = abs(math.cos(theta)), abs(math.sin(theta))
        return np.array([half_w * c + half_h * sn, half_w * sn + half_h * c]) / s + _WARP_MARGIN
    return (size - 1) / 2 / s * (abs(math.cos(theta)) + abs(math.sin(theta))) + _WARP_MARGIN


def _sample_motion(rng, photo_hw, size, n_frames, speed_range=SPEED_RANGE,
                   rotation_range=(-ROTATION_TOTAL_MAX_DEG, ROTATION_TOTAL_MAX_DEG)):
    """Seeded smooth trajectory whose window stays inside the photo for every frame."""
    speed = rng.uniform(*speed_range)
    direction = rng.uniform(0, 2 * math.pi)
    accel_dir = rng.uniform(0, 2 * math.pi)
    accel = speed * rng.uniform(0, ACCEL_MAX_FRACTION) / max(n_frames - 1, 1)
    zoom = rng.uniform(-ZOOM_TOTAL_MAX, ZOOM_TOTAL_MAX)
    rot = rng.uniform(*rotation_range)
    start_frac = rng.uniform(0, 1, size=2)
    # Rounded before use, so demo_info.json describes exactly what was rendered.
    motion = {
        'velocity_px': [round(speed * math.cos(direction), 4), round(speed * math.sin(direction), 4)],
        'accel_px': [round(accel * math.cos(accel_dir), 4), round(accel * math.sin(accel_dir), 4)],
        'zoom_total': round(zoom, 4),
        'rotation_deg_total': round(rot, 4),
    }
    h, w = photo_hw
    # Long clips at small sizes may not fit: slow the pan down (never below fitting) instead of failing.
    for _ in range(60):
        lo, hi = np.full(2, -np.inf), np.full(2, np.inf)
        for t in range(n_frames):
            s, theta, off = _frame_geometry(motion, t, n_frames)
            e = _window_half_extent(size, s, theta)
            lo = np.maximum(lo, e - off)
            hi = np.minimum(hi, np.array([w - 1, h - 1]) - e - off)
        if np.all(lo <= hi):
            break
        motion['velocity_px'] = [round(x * 0.8, 4) for x in motion['velocity_px']]
        motion['accel_px'] = [round(x * 0.8, 4) for x in motion['accel_px']]
    else:
        raise ValueError(f'photo {w}x{h} too small for a {size}px window')
    start = lo + start_frac * (hi - lo)
    motion['start_xy'] = [round(float(x), 2) for x in np.clip(np.round(start, 2), lo, hi)]
    return motion


def _render_frame(photo, motion, t, n_frames, size):
    """Affine warp: output pixel p samples the photo at centre(t) + R(theta)/s @ (p - window centre)."""
    s, theta, off = _frame_geometry(motion, t, n_frames)
    centre = np.array(motion['start_xy']) + off
    c, sn = math.cos(theta), math.sin(theta)
    lin = np.array([[c, -sn], [sn, c]]) / s
    width, height = size if isinstance(size, tuple) else (size, size)
    o = np.array([(width - 1) / 2, (height - 1) / 2])
    mat = np.hstack([lin, (centre - lin @ o)[:, None]])
    out = cv2.warpAffine(photo, mat, (width, height), flags=cv2.INTER_CUBIC | cv2.WARP_INVERSE_MAP,
                         borderMode=cv2.BORDER_REFLECT)
    return to_uint8(out)


# ----------------------------------------------------------------------------------------------------
# Dataset builder
# ----------------------------------------------------------------------------------------------------
def _build(root, size, frames_per_split, seed):
    info = {'seed': seed, 'size': list(size) if isinstance(size, tuple) else size, 'scale': SCALE, 'clips': {}}
    for split, photos in PHOTOS.items():
        info.update({f'{split}_frames': frames_per_split[split], f'{split}_photos': list(photos)})
    idx = 0
    for split, photos in PHOTOS.items():
        n = frames_per_split[split]
        speed_range, rotation_range = MOTION_RANGES[split]
        meta = []
        for name in photos:
            clip = f'{idx:03d}_{name}'
            # Per-clip stream keyed by (seed, clip index): a clip does not change when others are added.
            rng = np.random.default_rng([seed, idx])
            photo = _prepare_photo(_load_photo(name), size)
            motion = _sample_motion(rng, photo.shape[:2], size, n, speed_range, rotation_range)
            frames = (_render_frame(photo, motion, t, n, size) for t in range(n))
            meta.append(write_clip(root, split, clip, frames, SCALE))
            info['clips'][clip] = {'split': split, 'photo': name, 'photo_hw': list(photo.shape[:2]),
                                   'motion': motion}
            idx += 1
        with open(os.path.join(root, f'meta_info_{split}.txt'), 'w') as f:
            f.writelines(meta)
    info['bicubic_val_psnr'] = round(bicubic_upscale_psnr(root, 'val'), 4)
    info['bicubic_test_psnr'] = round(bicubic_upscale_psnr(root, 'test'), 4)
    # Written last: its presence marks a complete dataset (and lets --overwrite recognise one).
    with open(os.path.join(root, DEMO_INFO), 'w') as f:
        json.dump(info, f, indent=1)
        f.write('\n')
    return info


def _write_lmdbs(root):
    from basicsr_multigrid.data.dataset_layouts import folder_clips
    from basicsr_multigrid.data.lmdb_builder import build_lmdb
    for split in PHOTOS:
        for side in ('GT', 'LQ'):
            build_lmdb(os.path.join(root, split, f'{side}.lmdb'), folder_clips(os.path.join(root, split, side)),
                       progress=False)


def make_demo_dataset(out_dir, size=256, train_frames=20, val_frames=10, seed=0, overwrite=False, lmdb=False,
                      test_frames=None):
    """Build the demo set into ``out_dir`` and return the info dict (also saved as demo_info.json).

    ``size``: GT frame side (square frames), or (width, height) / ``'WIDTHxHEIGHT'`` for other frames (see
    `frame_size`); info['size'] is then [width, height].

    Refuses (FileExistsError) a non-empty ``out_dir`` unless ``overwrite``; even then it only replaces a
    directory that is a previous demo set (has demo_info.json), never arbitrary data. The set is built
    in a temporary sibling directory and renamed into place, so an interrupted build never leaves a
    half-written dataset under ``out_dir``. Test clips have ``test_frames`` frames (default: ``val_frames``).
    With ``lmdb``, each split also gets `GT.lmdb` and `LQ.lmdb`
    (the layout tools/create_lmdb.py writes) next to its folders.
    """
    size = frame_size(size)
    test_frames = val_frames if test_frames is None else test_frames
    frames_per_split = {'train': train_frames, 'val': val_frames, 'test': test_frames}
    if min(frames_per_split.values()) < 2:
        raise ValueError(f'need at least 2 frames per clip, got {frames_per_split}')

    def build(folder):
        info = _build(folder, size, frames_per_split, seed)
        if lmdb:
            _write_lmdbs(folder)
        return info

    return build_folder_atomically(out_dir, DEMO_INFO, overwrite, build, 'demo dataset')

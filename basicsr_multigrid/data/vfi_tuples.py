"""Frame-interpolation samples (4 input frames I0, I1, I2, I3 and the target between I1 and I2) from known layouts.

The training (VFITupleDataset) and test (VFITestDataset) datasets share this module: it turns the layout
options into a list of `VFISample`s, checks at construction that every frame file or LMDB key exists, and
reads a sample's five frames. Layouts (`layout` option; `dataroot` is the root below):

vimeo_septuplet  disk: <root>/vimeo_septuplet/sequences/<a>/<b>/im1..im7.png listed in
                 <root>/vimeo_septuplet/sep_{split}list.txt; inputs im1, im3, im5, im7, target im4.
                 lmdb: the 7-frame GT LMDB of `tools/create_lmdb.py vimeo90k` (frames 0, 2, 4, 6; target 3).
quintuplet       disk: <root>/<tuple>/ with exactly five frames in name order (I0, I1, target, I2, I3), every
                 sub-folder a tuple (or the tuples named in meta_info_file). lmdb: `tools/create_lmdb.py vfi`
                 (keys <tuple>/00000000..04, meta_info_file defaults to <root>/meta_info_clips.txt).
video            clips <root>/<clip>/{i:filename_tmpl}.{filename_ext} (or LMDB keys clip/{i:08d}); every window
                 start t (step window_stride) gives inputs t, t+g, t+2g, t+3g and target t+1.5g for frame_gap
                 g: the DAVIS / VFITex protocol (DAVIS90: filename_tmpl 05d, filename_ext jpg; VFITex:
                 filename_tmpl 03d, first_frame 1). Clips come from meta_info_file (`clip frames (h,w,c)`,
                 required for lmdb, default <root>/meta_info_clips.txt) or, on disk, every sub-folder.
ucf101           <root>/<n>/frame0..frame3.png and framet.png (the QVI release).
snufilm          meta_info_file = test-{easy,medium,hard,extreme}.txt, lines `a gt c` relative to <root>;
                 extended with the frames a-g and c+g, g = c - a from the numbers in the file names. Triplets
                 whose boundary frame does not exist are skipped and counted in the log, as the reference does.
"""
import difflib
import logging
import os
import re
from os import path as osp
from typing import NamedTuple, Optional

import numpy as np

from basicsr_multigrid.data.lmdb_env import shared_lmdb_env
from basicsr_multigrid.data.dataset_layouts import (VFI_TARGET_INDEX, VFI_TUPLE_LENGTH, VIMEO_VFI_FRAMES, clip_frames,
                                                    vfi_clips_from_folder, vimeo_clip_names)
from basicsr_multigrid.data.video_frames import ClipFrameReader, VideoDataError, list_clip_folders, read_video_meta_info
from basicsr_multigrid.utils.errors import OptionError
from basicsr_multigrid.data.lmdb_builder import CLIP_META, png_shape

LAYOUTS = ('vimeo_septuplet', 'quintuplet', 'video', 'ucf101', 'snufilm')
LMDB_LAYOUTS = ('vimeo_septuplet', 'quintuplet', 'video')
# Options that only some layouts read; giving one to another layout is an error, not silently ignored.
LAYOUT_OPTIONS = {
    'split': ('vimeo_septuplet',),
    'meta_info_file': ('vimeo_septuplet', 'quintuplet', 'video', 'snufilm'),
    'frame_gap': ('video',),
    'window_stride': ('video',),
    'filename_tmpl': ('video',),
    'filename_ext': ('video',),
    'first_frame': ('video',),
}
# Every option this module reads; the datasets add their own.
TUPLE_OPTIONS = ('layout', 'dataroot', 'io_backend') + tuple(LAYOUT_OPTIONS)
UCF101_FRAMES = ('frame0.png', 'frame1.png', 'frame2.png', 'frame3.png', 'framet.png')  # I0, I1, I2, I3, target
_NUMBERED_FILE = re.compile(r'^(?P<stem>.*?)(?P<number>\d+)(?P<ext>\.[^./]+)$')

logger = logging.getLogger('basicsr')


class VFISample(NamedTuple):
    name: str  # unique, e.g. `00001/0001` (Vimeo) or `clip/00000003` (video: the target frame)
    folder: str  # the sequence it comes from, for per-sequence means (DAVIS, VFITex)
    reader: ClipFrameReader
    inputs: tuple  # 4 frame refs (clip, index) for I0, I1, I2, I3, read with reader.read(*ref)
    target: tuple  # frame ref of the target
    shape: Optional[tuple] = None  # (h, w) when a meta file says so, else None


class NamedFrameReader(ClipFrameReader):
    """A ClipFrameReader (same decoding and error messages) for frames named by file rather than by number:
    a ref is (folder relative to root, file name), e.g. ('00001/0001', 'im1.png')."""

    def __init__(self, root, option_key):
        super().__init__(root, 'disk', option_key, filename_tmpl='')

    def frame_path(self, clip, index):
        return osp.join(self.root, clip, index)


def vfi_samples(opt, default_split, default_stride):
    """The samples the layout options of a dataset describe, every frame checked to exist.

    `opt` is the dataset's option dict; errors start with `datasets.<phase>.<key>`.
    """
    prefix = f"datasets.{opt.get('phase', 'train')}"
    layout = opt.get('layout')
    if layout not in LAYOUTS:
        close = difflib.get_close_matches(str(layout), LAYOUTS, n=1)
        hint = f'; did you mean {close[0]}?' if close else ''
        raise OptionError(f'{prefix}.layout: {layout!r} is not one of {", ".join(LAYOUTS)}{hint}')
    for key, layouts in LAYOUT_OPTIONS.items():
        if opt.get(key) is not None and layout not in layouts:
            raise OptionError(f'{prefix}.{key}: not used by layout {layout} (only by {", ".join(layouts)})')
    if opt.get('dataroot') is None:
        raise OptionError(f'{prefix}.dataroot: required')
    root = osp.expanduser(str(opt['dataroot']))
    if not osp.isdir(root):
        raise VideoDataError(f'{prefix}.dataroot: folder not found: {root}')
    backend = (opt.get('io_backend') or {}).get('type', 'disk')
    if backend not in ('disk', 'lmdb'):
        raise OptionError(f'{prefix}.io_backend.type: {backend!r} is not supported; use disk or lmdb')
    if backend == 'lmdb' and layout not in LMDB_LAYOUTS:
        raise OptionError(f'{prefix}.io_backend.type: lmdb is not supported by layout {layout} '
                          f'(only by {", ".join(LMDB_LAYOUTS)})')
    if backend == 'lmdb' and opt.get('split') is not None:
        raise OptionError(f'{prefix}.split: not used with io_backend lmdb (the LMDB holds one split)')
    build = _BUILDERS[layout]
    samples = build(opt, prefix, root, backend, default_split=default_split, default_stride=default_stride)
    if not samples:
        raise VideoDataError(f'{prefix}.dataroot: no {layout} samples in {root}')
    check_frames_exist(samples)
    return samples


def _meta_file(opt, root, prefix, required):
    meta = opt.get('meta_info_file')
    if meta is None:
        if required:
            meta = osp.join(root, CLIP_META)
            if not osp.isfile(meta):
                raise VideoDataError(f'{prefix}.meta_info_file: not given and {meta} not found')
        return meta
    meta = osp.expanduser(str(meta))
    if not osp.isfile(meta):
        raise VideoDataError(f'{prefix}.meta_info_file: file not found: {meta}')
    return meta


def _read_meta(meta, prefix):
    try:
        return read_video_meta_info(meta)
    except VideoDataError as error:
        raise VideoDataError(f'{prefix}.meta_info_file: {error}') from None


def _tuple_sample(name, reader, refs, shape=None):
    """A sample from five refs in tuple order (I0, I1, target, I2, I3)."""
    inputs = tuple(ref for i, ref in enumerate(refs) if i != VFI_TARGET_INDEX)
    return VFISample(name, name, reader, inputs, refs[VFI_TARGET_INDEX], shape)


def _vimeo_septuplet(opt, prefix, root, backend, default_split, **_):
    if backend == 'lmdb':
        reader = ClipFrameReader(root, 'lmdb', f'{prefix}.dataroot')
        indices = [int(name[2:-4]) - 1 for name in VIMEO_VFI_FRAMES]  # im1 -> frame 0
        clips = _read_meta(_meta_file(opt, root, prefix, required=True), prefix)
        for clip in clips:
            if clip.num_frames != 7:
                raise VideoDataError(f'{prefix}.meta_info_file: clip {clip.name} has {clip.num_frames} frames; '
                                     f'a Vimeo-90K septuplet LMDB has 7 (for 5-frame tuples use layout quintuplet)')
        return [_tuple_sample(clip.name, reader, [(clip.name, i) for i in indices], clip.shape[:2]) for clip in clips]
    if opt.get('meta_info_file') is not None:
        raise OptionError(f'{prefix}.meta_info_file: not used by layout vimeo_septuplet on disk '
                          f'(clips come from sep_{{split}}list.txt)')
    split = opt.get('split', default_split)
    if split not in ('train', 'test'):
        raise OptionError(f'{prefix}.split: {split!r} is not train or test')
    try:
        names = vimeo_clip_names(root, split)
    except OptionError as error:
        raise VideoDataError(f'{prefix}.dataroot: {error}') from None
    reader = NamedFrameReader(osp.join(root, 'vimeo_septuplet', 'sequences'), f'{prefix}.dataroot')
    return [_tuple_sample(name, reader, [(name, frame) for frame in VIMEO_VFI_FRAMES]) for name in names]


def _quintuplet(opt, prefix, root, backend, **_):
    if backend == 'lmdb':
        reader = ClipFrameReader(root, 'lmdb', f'{prefix}.dataroot')
        clips = _read_meta(_meta_file(opt, root, prefix, required=True), prefix)
        for clip in clips:
            if clip.num_frames != VFI_TUPLE_LENGTH:
                raise VideoDataError(f'{prefix}.meta_info_file: tuple {clip.name} has {clip.num_frames} frames; '
                                     f'a frame-interpolation tuple has {VFI_TUPLE_LENGTH} (I0, I1, target, I2, I3)')
        return [_tuple_sample(clip.name, reader, [(clip.name, i) for i in range(VFI_TUPLE_LENGTH)], clip.shape[:2])
                for clip in clips]
    reader = NamedFrameReader(root, f'{prefix}.dataroot')
    meta = _meta_file(opt, root, prefix, required=False)
    if meta is None:
        try:
            tuples = [(clip.name, clip.frames) for clip in vfi_clips_from_folder(root)]
        except OptionError as error:
            raise VideoDataError(f'{prefix}.dataroot: {error}') from None
    else:
        tuples = []
        for clip in _read_meta(meta, prefix):
            folder = osp.join(root, clip.name)
            frames = clip_frames(folder) if osp.isdir(folder) else ()
            if len(frames) != VFI_TUPLE_LENGTH:
                raise VideoDataError(f'{prefix}.dataroot: {folder}: {len(frames)} frames; a frame-interpolation '
                                     f'tuple needs {VFI_TUPLE_LENGTH} (I0, I1, target, I2, I3)')
            tuples.append((clip.name, frames))
    return [_tuple_sample(name, reader, [(name, osp.basename(frame)) for frame in frames])
            for name, frames in tuples]


def _positive_int(opt, prefix, key, default):
    value = opt.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise OptionError(f'{prefix}.{key}: must be an integer >= 1, got {value!r}')
    return value


def _video(opt, prefix, root, backend, default_stride, **_):
    gap = opt.get('frame_gap', 2)
    if isinstance(gap, bool) or not isinstance(gap, int) or gap < 2 or gap % 2:
        raise OptionError(f'{prefix}.frame_gap: must be an even integer >= 2 (inputs t, t+g, t+2g, t+3g, '
                          f'target t+1.5g), got {gap!r}')
    stride = _positive_int(opt, prefix, 'window_stride', default_stride)
    first = opt.get('first_frame', 0)
    if isinstance(first, bool) or not isinstance(first, int) or first < 0:
        raise OptionError(f'{prefix}.first_frame: must be an integer >= 0, got {first!r}')
    naming = dict(filename_tmpl=str(opt.get('filename_tmpl', '08d')), filename_ext=str(opt.get('filename_ext', 'png')))
    reader = ClipFrameReader(root, backend, f'{prefix}.dataroot', **naming)
    meta = _meta_file(opt, root, prefix, required=backend == 'lmdb')
    clips = _read_meta(meta, prefix) if meta else list_clip_folders(root)
    samples = []
    for clip in clips:
        shape = clip.shape[:2] if clip.shape else None
        for t in range(first, first + clip.num_frames - 3 * gap, stride):
            target = t + 3 * gap // 2
            inputs = tuple((clip.name, t + k * gap) for k in range(4))
            samples.append(VFISample(reader.frame_name(clip.name, target), clip.name, reader, inputs,
                                     (clip.name, target), shape))
    if clips and not samples:
        longest = max(clip.num_frames for clip in clips)
        raise VideoDataError(f'{prefix}.frame_gap: {gap} needs clips of at least {3 * gap + 1} frames; '
                             f'the longest clip has {longest}')
    return samples


def _ucf101(opt, prefix, root, backend, **_):
    reader = NamedFrameReader(root, f'{prefix}.dataroot')
    names = sorted(name for name in os.listdir(root) if osp.isdir(osp.join(root, name)))
    order = (0, 1, 4, 2, 3)  # tuple order I0, I1, target, I2, I3
    return [_tuple_sample(name, reader, [(name, UCF101_FRAMES[i]) for i in order]) for name in names]


def _snufilm(opt, prefix, root, backend, **_):
    if opt.get('meta_info_file') is None:
        raise OptionError(f'{prefix}.meta_info_file: required for layout snufilm (the test-<level>.txt triplet list)')
    list_file = _meta_file(opt, root, prefix, required=False)
    reader = NamedFrameReader(root, f'{prefix}.dataroot')
    samples, skipped, total = [], 0, 0
    with open(list_file) as f:
        for line_no, line in enumerate(f, start=1):
            paths = line.split()
            if not paths:
                continue
            where = f'{list_file}:{line_no}'
            if len(paths) != 3:
                raise VideoDataError(f'{where}: expected a triplet "a gt c", got {line.strip()!r}')
            total += 1
            first, last = _numbered(paths[0], where), _numbered(paths[2], where)
            gap = last[1] - first[1]
            if gap <= 0:
                raise VideoDataError(f'{where}: frame numbers of {paths[0]} and {paths[2]} do not increase')
            before, after = _renumbered(paths[0], first, first[1] - gap), _renumbered(paths[0], first, last[1] + gap)
            if before is None or not all(osp.isfile(osp.join(root, p)) for p in (before, after)):
                skipped += 1
                continue
            refs = [(osp.dirname(p), osp.basename(p)) for p in (before, paths[0], paths[1], paths[2], after)]
            sample = _tuple_sample(osp.splitext(paths[1])[0], reader, refs)
            samples.append(sample._replace(folder=osp.dirname(paths[1])))
    if skipped:
        logger.info(f'{list_file}: skipped {skipped} of {total} triplets whose boundary frame (a-g or c+g) does not '
                    f'exist, as the reference evaluation does; {total - skipped} remain')
    return samples


def _numbered(path, where):
    """(match, frame number) of a file name ending in digits before the extension."""
    match = _NUMBERED_FILE.match(osp.basename(path))
    if match is None:
        raise VideoDataError(f'{where}: {path} has no frame number before its extension')
    return match, int(match['number'])


def _renumbered(path, numbered, number):
    """`path` with frame `number` in the same zero-padded width, or None for a negative number."""
    match = numbered[0]
    if number < 0:
        return None
    name = f"{match['stem']}{number:0{len(match['number'])}d}{match['ext']}"
    return osp.join(osp.dirname(path), name)


_BUILDERS = {'vimeo_septuplet': _vimeo_septuplet, 'quintuplet': _quintuplet, 'video': _video, 'ucf101': _ucf101,
             'snufilm': _snufilm}


def check_frames_exist(samples):
    """One-line error naming the first missing frame file or LMDB key (cheap: stat calls or key look-ups)."""
    by_reader = {}
    for sample in samples:
        refs = by_reader.setdefault(id(sample.reader), (sample.reader, {}))[1]
        for ref in (*sample.inputs, sample.target):
            refs.setdefault(ref, sample.name)
    for reader, refs in by_reader.values():
        if reader.backend == 'lmdb':
            with shared_lmdb_env(reader.root).begin(write=False, buffers=True) as txn:
                for ref, name in refs.items():
                    if txn.get(reader.frame_name(*ref).encode()) is None:
                        raise VideoDataError(f'{reader.root}: missing LMDB key {reader.frame_name(*ref)} '
                                             f'(frame of sample {name})')
        else:
            for ref, name in refs.items():
                if not osp.isfile(reader.frame_path(*ref)):
                    raise VideoDataError(f'missing frame {reader.frame_path(*ref)} (frame of sample {name})')


def first_frame_shape(sample):
    """(h, w) of a sample's target frame: from the meta file, a PNG header, or by decoding it."""
    if sample.shape is not None:
        return tuple(sample.shape)
    if sample.reader.backend == 'disk':
        path = sample.reader.frame_path(*sample.target)
        try:
            with open(path, 'rb') as f:
                shape = png_shape(f.read(26))
        except OSError as error:
            raise VideoDataError(f'cannot read frame {path}: {error.strerror}') from None
        if shape is not None:
            return shape[:2]
    return sample.reader.read(*sample.target).shape[:2]


def read_sample(sample):
    """(inputs (4, h, w, 3), target (h, w, 3)) float32 RGB in [0, 1]; one-line error if the sizes differ."""
    refs = (*sample.inputs, sample.target)
    frames = [sample.reader.read(*ref) for ref in refs]
    for ref, frame in zip(refs[1:], frames[1:]):
        if frame.shape != frames[0].shape:
            raise VideoDataError(f'sample {sample.name}: frame {sample.reader.frame_path(*ref)} is '
                                 f'{frame.shape[0]}x{frame.shape[1]} but {sample.reader.frame_path(*refs[0])} is '
                                 f'{frames[0].shape[0]}x{frames[0].shape[1]}; the frames of a sample must match')
    return np.stack(frames[:4]), frames[4]

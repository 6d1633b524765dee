"""Build and verify BasicSR LMDBs of video clips: keys `clip/{i:08d}`, PNG values, `meta_info.txt`.

A build writes into `<out>.partial` and renames it to `<out>` only when every frame is stored and the meta
files are written, so an interrupted build never looks finished and an existing LMDB is replaced only by a
complete one. Rerunning the same build resumes: frames already committed are skipped.
"""
import hashlib
import json
import os
import random
import shutil
import struct
import time
from multiprocessing import Pool
from os import path as osp
from typing import NamedTuple, Sequence

import cv2
import lmdb
import numpy as np

from basicsr_multigrid.data.video_frames import VideoDataError, meta_info_line, read_video_meta_info
from basicsr_multigrid.utils.atomic_io import write_text_atomic
from basicsr_multigrid.utils.errors import OptionError

IMAGE_META = 'meta_info.txt'  # BasicSR's per-image meta: `key.png (h,w,c) compress_level`
CLIP_META = 'meta_info_clips.txt'  # the video datasets' meta: `clip frame_count (h,w,c)`
BUILD_PLAN = 'build_plan.json'  # present only while a build is unfinished
PARTIAL_SUFFIX = '.partial'
COMMIT_EVERY = 256  # frames per write transaction
_PNG_SIGNATURE = b'\x89PNG\r\n\x1a\n'
_PNG_CHANNELS = {0: 1, 2: 3, 3: 3, 4: 2, 6: 4}  # IHDR colour type -> channels as cv2 decodes them unchanged


class LmdbBuildError(OptionError):
    """A problem with the sources or the output of an LMDB build; the message names the file or key."""


class ClipSource(NamedTuple):
    name: str  # key prefix, may contain '/' (Vimeo-90K: 00001/0001)
    frames: tuple  # source image paths in frame order; frame i is stored under `name/{i:08d}`


class BuildReport(NamedTuple):
    path: str
    frames: int  # frames in the finished LMDB
    written: int  # frames encoded by this run (fewer than `frames` after a resume)
    seconds: float
    bytes: int

    @property
    def images_per_s(self):
        return self.written / self.seconds if self.seconds > 0 else float('inf')


def frame_key(clip, index):
    return f'{clip}/{index:08d}'


def png_shape(buffer):
    """(h, w, c) of a PNG from its header, without decoding; None if `buffer` is not a PNG."""
    if len(buffer) < 26 or not buffer.startswith(_PNG_SIGNATURE):
        return None
    width, height = struct.unpack('>II', buffer[16:24])
    return height, width, _PNG_CHANNELS.get(buffer[25], 3)


def encode_png(image_path, compress_level):
    """Read an image file as BasicSR's make_lmdb does (unchanged depth and channels) and encode it as PNG."""
    image = cv2.imread(image_path, cv2.IMREAD_UNCHANGED)
    if image is None:
        raise LmdbBuildError(f'cannot read image {image_path}')
    ok, buffer = cv2.imencode('.png', image, [cv2.IMWRITE_PNG_COMPRESSION, compress_level])
    if not ok:
        raise LmdbBuildError(f'cannot encode image {image_path} as PNG')
    return buffer.tobytes()


def _encode_entry(job):
    key, image_path, compress_level = job
    return key, encode_png(image_path, compress_level)


def build_lmdb(out_path, clips: Sequence[ClipSource], *, workers=1, compress_level=1, overwrite=False,
               progress=True, on_commit=None):
    """Store every frame of `clips` in the LMDB `out_path`; see the module docstring for resume and overwrite.

    `on_commit(frames_stored)` is called after each committed transaction (tests use it to interrupt a build).
    """
    out_path = osp.normpath(out_path)
    entries = _plan_entries(clips)
    if osp.exists(out_path) and not overwrite:
        raise LmdbBuildError(f'{out_path}: already exists; pass --overwrite to replace it')
    partial = out_path + PARTIAL_SUFFIX
    plan = {'keys_sha1': _keys_digest(entries), 'frames': len(entries), 'compress_level': compress_level}
    _prepare_partial(partial, plan, overwrite)

    start = time.perf_counter()
    env = lmdb.open(partial, map_size=_initial_map_size(entries))
    try:
        with env.begin() as txn:
            stored = {bytes(key).decode() for key in txn.cursor().iternext(keys=True, values=False)}
        todo = [(key, image_path, compress_level) for key, image_path in entries if key not in stored]
        written = _write_entries(env, todo, len(stored), len(entries), workers, progress, on_commit)
        seconds = time.perf_counter() - start
        _write_meta_files(env, partial, clips, compress_level)
    finally:
        env.close()
    os.remove(osp.join(partial, BUILD_PLAN))
    _replace(out_path, partial)
    size = sum(osp.getsize(osp.join(out_path, name)) for name in os.listdir(out_path))
    return BuildReport(out_path, len(entries), written, seconds, size)


def _plan_entries(clips):
    entries, seen = [], set()
    for clip in clips:
        if not clip.frames:
            raise LmdbBuildError(f'clip {clip.name}: no frames')
        for index, image_path in enumerate(clip.frames):
            key = frame_key(clip.name, index)
            if key in seen:
                raise LmdbBuildError(f'duplicate key {key} (clip {clip.name} is listed twice)')
            if not osp.isfile(image_path):
                raise LmdbBuildError(f'missing frame {image_path} (clip {clip.name}, frame {index})')
            seen.add(key)
            entries.append((key, image_path))
    if not entries:
        raise LmdbBuildError('no clips to store')
    return entries


def _keys_digest(entries):
    """Identifies the sources: a resume must not mix frames of edited files with stale ones."""
    digest = hashlib.sha1()
    for key, image_path in entries:
        stat = os.stat(image_path)
        digest.update(f'{key}\t{osp.abspath(image_path)}\t{stat.st_size}\t{stat.st_mtime_ns}\n'.encode())
    return digest.hexdigest()


def _prepare_partial(partial, plan, overwrite):
    """Resume a matching unfinished build, refuse a different one (unless overwriting), or start afresh."""
    plan_file = osp.join(partial, BUILD_PLAN)
    if osp.exists(partial):
        previous = _read_json(plan_file)
        if previous == plan:
            return
        if not overwrite:
            raise LmdbBuildError(f'{partial}: an unfinished build of other data is there; '
                                 'pass --overwrite to discard it')
        shutil.rmtree(partial)
    os.makedirs(partial)
    with open(plan_file, 'w') as f:
        json.dump(plan, f)


def _read_json(file):
    try:
        with open(file) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def _initial_map_size(entries):
    """Twice the source bytes plus slack: PNG re-encoding at a low level rarely doubles a file; grown if needed."""
    source_bytes = sum(osp.getsize(image_path) for _, image_path in entries)
    return max(64 << 20, 2 * source_bytes + (16 << 20))


def _write_entries(env, todo, stored, total, workers, progress, on_commit):
    from tqdm import tqdm
    bar = tqdm(total=total, initial=stored, unit='img', disable=not progress, dynamic_ncols=True)
    pool = Pool(workers) if workers > 1 else None
    try:
        encoded = pool.imap(_encode_entry, todo, chunksize=4) if pool else map(_encode_entry, todo)
        batch = []
        for item in encoded:
            batch.append(item)
            if len(batch) == COMMIT_EVERY:
                stored += _commit(env, batch)
                bar.update(len(batch))
                batch = []
                if on_commit:
                    on_commit(stored)
        if batch:
            stored += _commit(env, batch)
            bar.update(len(batch))
    finally:
        bar.close()
        if pool:
            pool.terminate()
    return len(todo)


def _commit(env, batch):
    """Write one batch in one transaction, growing the map when it is full."""
    while True:
        try:
            with env.begin(write=True) as txn:
                for key, value in batch:
                    txn.put(key.encode(), value)
            return len(batch)
        except lmdb.MapFullError:
            env.set_mapsize(2 * env.info()['map_size'])


def _write_meta_files(env, folder, clips, compress_level):
    """BasicSR's image meta and the clip meta, with shapes read from the stored PNG headers."""
    image_lines, clip_lines = [], []
    with env.begin() as txn:
        for clip in clips:
            shapes = []
            for index in range(len(clip.frames)):
                key = frame_key(clip.name, index)
                shape = png_shape(txn.get(key.encode()))
                shapes.append(shape)
                image_lines.append(f'{key}.png ({shape[0]},{shape[1]},{shape[2]}) {compress_level}\n')
            if any(shape != shapes[0] for shape in shapes):
                odd = next(i for i, shape in enumerate(shapes) if shape != shapes[0])
                raise LmdbBuildError(f'clip {clip.name}: frame {clip.frames[odd]} is {shapes[odd]}, '
                                     f'frame {clip.frames[0]} is {shapes[0]}; frames of a clip must match')
            h, w, c = shapes[0]
            clip_lines.append(meta_info_line(clip.name, len(clip.frames), (h, w, c)))
    write_text_atomic(osp.join(folder, IMAGE_META), image_lines)
    write_text_atomic(osp.join(folder, CLIP_META), clip_lines)


def _replace(out_path, partial):
    """Swap the finished build in; an existing output is removed only after the new one is in place."""
    if not osp.exists(out_path):
        os.rename(partial, out_path)
        return
    retired = f'{out_path}.replaced{os.getpid()}'
    os.rename(out_path, retired)
    os.rename(partial, out_path)
    shutil.rmtree(retired) if osp.isdir(retired) else os.remove(retired)


def measure_png_encode(image_paths, compress_level=1, limit=100):
    """Single-process PNG encode throughput (images/s) of already decoded images: the yardstick for builds."""
    image_paths = list(image_paths)
    step = max(1, len(image_paths) // limit)  # spread over the whole set: clips may differ in size
    images = [cv2.imread(p, cv2.IMREAD_UNCHANGED) for p in image_paths[::step][:limit]]
    start = time.perf_counter()
    for image in images:
        cv2.imencode('.png', image, [cv2.IMWRITE_PNG_COMPRESSION, compress_level])
    return len(images) / max(time.perf_counter() - start, 1e-9)


# ----------------------------------------------------------------------------------------------- verification

def read_image_meta(meta_file):
    """`key.png (h,w,c) level` lines -> {key: (h, w, c)}; a malformed line is an error naming file and line."""
    if not osp.isfile(meta_file):
        raise LmdbBuildError(f'{meta_file}: file not found')
    shapes = {}
    with open(meta_file) as f:
        for line_no, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                name, shape_text, _level = line.split()
                key = name.rsplit('.', 1)[0]
                shape = tuple(int(v) for v in shape_text.strip('()').split(','))
                if len(shape) != 3:
                    raise ValueError
            except ValueError:
                raise LmdbBuildError(f'{meta_file}:{line_no}: expected "key.png (h,w,c) compress_level", '
                                     f'got {line.strip()!r}') from None
            shapes[key] = shape
    return shapes


def verify_lmdb(lmdb_path, clip_meta_file=None, sample=None, seed=0, progress=False):
    """Decode every listed key (or a random `sample` of them) and check it against the meta files.

    Returns (keys checked, list of one-line problems). Raises LmdbBuildError when the LMDB cannot be opened.
    """
    _check_finished(lmdb_path)
    expected = read_image_meta(osp.join(lmdb_path, IMAGE_META))
    problems = []
    if clip_meta_file:
        problems += _check_clip_meta(clip_meta_file, expected)
    keys = sorted(expected)
    if sample is not None and sample < len(keys):
        keys = sorted(random.Random(seed).sample(keys, sample))
    from tqdm import tqdm
    env = lmdb.open(lmdb_path, readonly=True, lock=False, readahead=False)
    try:
        with env.begin() as txn:
            for key in tqdm(keys, unit='img', disable=not progress):
                problem = _check_value(key, txn.get(key.encode()), expected[key])
                if problem:
                    problems.append(problem)
            if sample is None:
                problems += [f'key {bytes(k).decode()}: stored but not listed in {IMAGE_META}'
                             for k in txn.cursor().iternext(keys=True, values=False)
                             if bytes(k).decode() not in expected]
    finally:
        env.close()
    return len(keys), problems


def _check_finished(lmdb_path):
    if osp.exists(lmdb_path + PARTIAL_SUFFIX) and not osp.exists(lmdb_path):
        raise LmdbBuildError(f'{lmdb_path}: incomplete build ({lmdb_path + PARTIAL_SUFFIX} is unfinished); '
                             'rerun the same create_lmdb command to complete it')
    if not osp.isfile(osp.join(lmdb_path, 'data.mdb')):
        raise LmdbBuildError(f'{lmdb_path}: not an LMDB (no data.mdb)')
    if osp.exists(osp.join(lmdb_path, BUILD_PLAN)):
        raise LmdbBuildError(f'{lmdb_path}: incomplete build ({BUILD_PLAN} is still there)')


def _check_value(key, value, shape):
    if value is None:
        return f'key {key}: missing'
    image = cv2.imdecode(np.frombuffer(value, np.uint8), cv2.IMREAD_UNCHANGED)
    if image is None:
        return f'key {key}: corrupt value ({len(value)} bytes do not decode as an image)'
    decoded = image.shape if image.ndim == 3 else (*image.shape, 1)
    if tuple(decoded) != tuple(shape):
        return f'key {key}: decoded shape {tuple(decoded)} but {IMAGE_META} says {tuple(shape)}'
    return None


def _check_clip_meta(clip_meta_file, expected):
    try:
        clips = read_video_meta_info(clip_meta_file)
    except VideoDataError as error:
        raise LmdbBuildError(str(error)) from None
    problems = []
    for clip in clips:
        for index in range(clip.num_frames):
            key = frame_key(clip.name, index)
            if key not in expected:
                problems.append(f'key {key}: listed in {clip_meta_file} (clip {clip.name}) but not in the LMDB')
            elif expected[key] != clip.shape:
                problems.append(f'key {key}: {IMAGE_META} says {expected[key]} but {clip_meta_file} says {clip.shape}')
    return problems

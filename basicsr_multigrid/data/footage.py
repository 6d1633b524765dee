"""Paired video folders from your own footage: decode videos, cut them into clips, split by whole video.

Each video is decoded with PyAV. A scene cut (the mean absolute difference of consecutive 32x32 grey thumbnails
above `scene_threshold`, in [0, 1]) ends a shot; every shot is cut into clips of `clip_len` consecutive frames
and its leftover frames are dropped. Frames are cropped at the bottom and right to a multiple of `scale` when
needed. Whole videos go to `test`, then `val`, from the end of the name-sorted list, until each has its number of
clips; the rest is `train`: no frame of a video, let alone of a shot, is on two sides. The folder layout is
`video_folder`'s (the datasets read it as it is), plus `dataset_info.json`.
"""
import json
import os
import re
from os import path as osp

import cv2
import numpy as np

from basicsr_multigrid.data.video_folder import bicubic_upscale_psnr, build_folder_atomically, write_clip
from basicsr_multigrid.utils.errors import OptionError

VIDEO_EXTENSIONS = ('.mp4', '.mov', '.mkv', '.avi', '.webm', '.m4v', '.mpg', '.mpeg', '.ts')
INFO = 'dataset_info.json'  # written last: marks a complete folder
SPLITS = ('train', 'val', 'test')
THUMBNAIL = 32


class FootageError(OptionError):
    """A problem with the input videos or the output folder; the message names the file or option."""


def find_videos(inputs):
    """Video files named in `inputs` (files, or folders searched recursively), sorted, without duplicates."""
    videos = []
    for item in inputs:
        if osp.isdir(item):
            found = [osp.join(root, name) for root, _, names in os.walk(item) for name in names
                     if name.lower().endswith(VIDEO_EXTENSIONS)]
            if not found:
                raise FootageError(f'--input: no video files ({", ".join(VIDEO_EXTENSIONS)}) under {item}')
            videos += found
        elif osp.isfile(item):
            videos.append(item)
        else:
            raise FootageError(f'--input: no such file or folder: {item}')
    return sorted(set(osp.abspath(v) for v in videos))


def decode_frames(path):
    """The frames of the first video stream of `path` as RGB uint8 arrays, in order."""
    import av
    try:
        with av.open(path) as container:
            if not container.streams.video:
                raise FootageError(f'{path}: no video stream')
            for frame in container.decode(video=0):
                yield frame.to_ndarray(format='rgb24')
    except av.FFmpegError as error:
        raise FootageError(f'{path}: cannot decode video ({error.strerror or type(error).__name__})') from None


def _thumbnail(frame):
    grey = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)
    return cv2.resize(grey, (THUMBNAIL, THUMBNAIL), interpolation=cv2.INTER_AREA).astype(np.float32) / 255.0


def clips_of_video(frames, clip_len, scene_threshold, scale, report):
    """Yields lists of `clip_len` consecutive frames, never across a scene cut, cropped to a multiple of `scale`,
    as they complete (one clip in memory at a time); fills `report` with frame, shot and crop counts."""
    current, previous = [], None
    report.update(frames=0, shots=0, size=None, cropped_from=None)
    for frame in frames:
        report['frames'] += 1
        h, w = frame.shape[:2]
        if report['size'] is None:
            report['size'] = [h - h % scale, w - w % scale]
            if h % scale or w % scale:
                report['cropped_from'] = [h, w]
        thumbnail = _thumbnail(frame)
        if previous is None or np.abs(thumbnail - previous).mean() > scene_threshold:
            report['shots'] += 1
            current = []  # a new shot: an unfinished clip of the last one is dropped
        previous = thumbnail
        current.append(np.ascontiguousarray(frame[:h - h % scale, :w - w % scale]))
        if len(current) == clip_len:
            yield current
            current = []


def assign_splits(clip_counts, val_clips, test_clips):
    """{video: split}: whole videos, from the end of the sorted list, to test then val until each has its clips."""
    splits, wanted = {}, {'test': test_clips, 'val': val_clips}
    videos = sorted(clip_counts)
    for split in ('test', 'val'):
        have = 0
        while have < wanted[split] and videos:
            video = videos.pop()
            splits[video], have = split, have + clip_counts[video]
        if have < wanted[split]:
            break
    splits.update({video: 'train' for video in videos})
    counts = {split: sum(n for v, n in clip_counts.items() if splits.get(v) == split) for split in SPLITS}
    if counts['train'] == 0 or counts['test'] < test_clips or counts['val'] < val_clips:
        raise FootageError(f'--input: {len(clip_counts)} videos give {sum(clip_counts.values())} clips, not enough for '
                           f'{val_clips} val and {test_clips} test clips plus training clips from other videos '
                           '(splits take whole videos); add videos or lower --val-clips / --test-clips')
    return splits


def clip_name(video, index):
    stem = re.sub(r'[^A-Za-z0-9_.-]+', '_', osp.splitext(osp.basename(video))[0])
    return f'{stem}_{index:04d}'


def make_video_dataset(inputs, out_dir, scale=4, clip_len=30, val_clips=2, test_clips=2, scene_threshold=0.15,
                       overwrite=False, log=print):
    """Build the folder (see the module docstring) and return its info dict (also saved as dataset_info.json)."""
    if clip_len < 2:
        raise FootageError(f'--clip-len: need at least 2 frames per clip, got {clip_len}')
    if scale < 1:
        raise FootageError(f'--scale: must be >= 1, got {scale}')
    videos = find_videos(inputs)
    stems = [clip_name(video, 0) for video in videos]
    clash = next((v for v, stem in zip(videos, stems) if stems.count(stem) > 1), None)
    if clash:
        raise FootageError(f'--input: two videos would give clips of the same name as {clash}; rename one')

    def build(folder):
        pending = osp.join(folder, 'pending')
        info = {'scale': scale, 'clip_len': clip_len, 'scene_threshold': scene_threshold, 'videos': {}}
        meta = {}
        for video in videos:
            report, names = {}, []
            for frames in clips_of_video(decode_frames(video), clip_len, scene_threshold, scale, report):
                names.append(clip_name(video, len(names)))
                meta[names[-1]] = write_clip(pending, 'all', names[-1], frames, scale)
            if not names:
                raise FootageError(f'{video}: no shot has {clip_len} frames ({report["frames"]} frames in '
                                   f'{report["shots"]} shots); lower --clip-len')
            if report['cropped_from']:
                log(f'{video}: frames {report["cropped_from"][0]}x{report["cropped_from"][1]} are not divisible by '
                    f'scale {scale}; cropped to {report["size"][0]}x{report["size"][1]} (bottom / right)')
            info['videos'][osp.basename(video)] = dict(report, path=video, clips=names)
            log(f'{video}: {report["frames"]} frames, {report["shots"]} shots -> {len(names)} clips')
        splits = assign_splits({v: len(d['clips']) for v, d in info['videos'].items()}, val_clips, test_clips)
        for video, details in info['videos'].items():
            details['split'] = split = splits[video]
            for name in details['clips']:
                for side in ('GT', 'LQ'):
                    os.makedirs(osp.join(folder, split, side), exist_ok=True)
                    os.rename(osp.join(pending, 'all', side, name), osp.join(folder, split, side, name))
        for split in SPLITS:
            lines = [meta[name] for details in info['videos'].values() if details['split'] == split
                     for name in details['clips']]
            if lines:
                with open(osp.join(folder, f'meta_info_{split}.txt'), 'w') as f:
                    f.writelines(lines)
        os.rmdir(osp.join(pending, 'all', 'GT'))
        os.rmdir(osp.join(pending, 'all', 'LQ'))
        os.rmdir(osp.join(pending, 'all'))
        os.rmdir(pending)
        info['clips'] = {split: sum(len(d['clips']) for d in info['videos'].values() if d['split'] == split)
                         for split in SPLITS}
        info['bicubic_psnr'] = {split: round(bicubic_upscale_psnr(folder, split), 4)
                                for split in SPLITS if info['clips'][split]}
        with open(osp.join(folder, INFO), 'w') as f:
            json.dump(info, f, indent=1)
            f.write('\n')
        return info

    try:
        return build_folder_atomically(out_dir, INFO, overwrite, build, 'video dataset')
    except FileExistsError as error:
        raise FootageError(f'--out: {error}') from None

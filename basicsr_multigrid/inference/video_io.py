"""Reading and writing the videos a trained model runs on, with PyAV.

A source is a video file (any container / codec FFmpeg decodes; the first video stream) or a folder of frame
images (sorted by name). A sink is a video file (H.264 in .mp4 / .mov / .mkv, or lossless FFV1 in .mkv, at the
source's frame rate, the source's audio stream copied when there is one) or a folder of PNG frames. A sink writes
to a temporary name next to its target and renames it when complete: an interrupted run leaves nothing under the
final name, and an existing output is replaced only with `overwrite`.
"""
import os
import shutil
from fractions import Fraction
from os import path as osp

import cv2
import numpy as np

from basicsr_multigrid.data.footage import decode_frames
from basicsr_multigrid.data.video_frames import frame_images, read_rgb_image
from basicsr_multigrid.utils.errors import OptionError

CODECS = ('h264', 'ffv1', 'png')
FOLDER_FPS = Fraction(25)  # a frame folder has no rate of its own


class VideoSource:
    """Frames (RGB uint8 arrays, in order) of a video file or a frame folder, with its rate and frame count."""

    def __init__(self, path, option_key='--input'):
        self.path, self.option_key = path, option_key
        if osp.isdir(path):
            self.files = frame_images(path, option_key)
            self.fps, self.num_frames, self.has_audio = FOLDER_FPS, len(self.files), False
        elif osp.isfile(path):
            self.files = None
            self._probe()
        else:
            raise OptionError(f'{option_key}: no such file or folder: {path}')

    def _probe(self):
        import av
        try:
            with av.open(self.path) as container:
                if not container.streams.video:
                    raise OptionError(f'{self.option_key}: {self.path} has no video stream')
                stream = container.streams.video[0]
                self.fps = Fraction(stream.average_rate or stream.guessed_rate or FOLDER_FPS)
                self.num_frames = stream.frames or None  # 0 when the container does not say
                self.has_audio = bool(container.streams.audio)
        except av.FFmpegError as error:
            raise OptionError(f'{self.option_key}: {self.path}: cannot open video '
                              f'({error.strerror or type(error).__name__})') from None

    def frames(self):
        if self.files is None:
            return decode_frames(self.path)
        return (read_rgb_image(file, self.option_key) for file in self.files)

    def audio_packets(self, container):
        """Packets of the first audio stream, demuxed from a second opening of the file."""
        stream = container.streams.audio[0]
        for packet in container.demux(stream):
            if packet.dts is not None:
                yield packet


def output_codec(path, codec=None):
    """The codec a sink at `path` uses: `codec` if given, else png for a folder (no extension), h264 otherwise."""
    if codec is None:
        codec = 'h264' if osp.splitext(path)[1] else 'png'
    if codec not in CODECS:
        raise OptionError(f'--codec: {codec!r} is not one of {", ".join(CODECS)}')
    extension = osp.splitext(path)[1].lower()
    if codec == 'png' and extension:
        raise OptionError(f'--output: {path}: PNG frames go to a folder (a path without extension)')
    if codec != 'png' and extension not in ('.mp4', '.mov', '.mkv'):
        raise OptionError(f'--output: {path}: write {codec} to .mp4, .mov or .mkv, or PNG frames to a folder')
    if codec == 'ffv1' and extension != '.mkv':
        raise OptionError(f'--output: {path}: lossless ffv1 needs a .mkv file')
    return codec


def check_output(path, overwrite, option_key='--output'):
    if osp.lexists(path) and not overwrite:
        raise OptionError(f'{option_key}: {path} exists; pass --overwrite to replace it')
    parent = osp.dirname(osp.abspath(path))
    if not osp.isdir(parent):
        raise OptionError(f'{option_key}: folder {parent} does not exist')


class VideoSink:
    """Writes RGB uint8 frames to `path` (a video file or a PNG folder); a context manager that publishes the
    output only when the block ends without an error."""

    def __init__(self, path, fps, codec=None, crf=18, audio_from=None, overwrite=False):
        self.path, self.fps, self.crf = path, Fraction(fps), crf
        self.codec = output_codec(path, codec)
        check_output(path, overwrite)
        self.audio_from = audio_from if audio_from is not None and audio_from.has_audio else None
        base, extension = osp.splitext(path)
        self.temporary = f'{base}.partial{os.getpid()}{extension}'
        self.count = 0

    def __enter__(self):
        if self.codec == 'png':
            os.makedirs(self.temporary)
        return self

    def write(self, frame):
        if self.codec == 'png':
            file = osp.join(self.temporary, f'{self.count:08d}.png')
            if not cv2.imwrite(file, cv2.cvtColor(frame, cv2.COLOR_RGB2BGR)):
                raise OSError(f'cannot write {file}')
        else:
            if self.count == 0:
                self._open_container(frame.shape)
            self._encode(frame)
        self.count += 1

    def _open_container(self, shape):
        import av
        self.container = av.open(self.temporary, mode='w')
        stream = self.container.add_stream('libx264' if self.codec == 'h264' else 'ffv1', rate=self.fps)
        stream.height, stream.width = shape[0] - shape[0] % 2, shape[1] - shape[1] % 2  # 4:2:0 needs even sizes
        stream.pix_fmt = 'yuv420p' if self.codec == 'h264' else 'bgr0'
        if self.codec == 'h264':
            stream.options = {'crf': str(self.crf)}
        self.video = stream
        self.audio_input, self.audio_packets, self.audio = None, iter(()), None
        if self.audio_from is not None:
            self.audio_input = av.open(self.audio_from.path)
            self.audio = self.container.add_stream_from_template(self.audio_input.streams.audio[0])
            self.audio_packets = self.audio_from.audio_packets(self.audio_input)
            self.next_audio = next(self.audio_packets, None)

    def _encode(self, frame):
        import av
        frame = np.ascontiguousarray(frame[:self.video.height, :self.video.width])
        video_frame = av.VideoFrame.from_ndarray(frame, format='rgb24')
        video_frame.pts = self.count
        video_frame.time_base = 1 / self.fps
        for packet in self.video.encode(video_frame):
            self.container.mux(packet)
        self._mux_audio_until(Fraction(self.count + 1) / self.fps)

    def _mux_audio_until(self, seconds):
        """Copy the audio packets up to `seconds`, so that the file interleaves audio with the video."""
        while self.audio is not None and self.next_audio is not None and (
                seconds is None or self.next_audio.dts * self.next_audio.time_base < seconds):
            self.next_audio.stream = self.audio
            self.container.mux(self.next_audio)
            self.next_audio = next(self.audio_packets, None)

    def __exit__(self, exc_type, error, traceback):
        try:
            if self.codec != 'png' and self.count:
                if exc_type is None:
                    for packet in self.video.encode():
                        self.container.mux(packet)
                    self._mux_audio_until(None)
                self.container.close()
                if self.audio_input is not None:
                    self.audio_input.close()
        finally:
            if exc_type is not None or not self.count:
                _remove(self.temporary)
        if exc_type is None:
            if not self.count:
                raise OptionError(f'--input: no frames were decoded; nothing written to {self.path}')
            _remove(self.path)
            os.replace(self.temporary, self.path)
        return False


def _remove(path):
    if osp.isdir(path) and not osp.islink(path):
        shutil.rmtree(path)
    elif osp.lexists(path):
        os.remove(path)

"""tools/create_lmdb.py, verify_lmdb.py and prepare_reds.py on small REDS-, Vimeo- and folder-style trees, each run
as users run it, in a process of its own (conftest.run_tool); what they build on is tested through the package."""
import os
from os import path as osp

import cv2
import lmdb
import numpy as np
import pytest

from basicsr_multigrid.data.multigrid_paired_video_dataset import MultigridPairedVideoDataset
from basicsr_multigrid.data.video_frames import ClipFrameReader, VideoDataError, read_video_meta_info
from basicsr_multigrid.multigrid.sampler import ShapedIndex
from basicsr_multigrid.data import lmdb_builder
from basicsr_multigrid.data.dataset_layouts import folder_clips
from basicsr_multigrid.data.lmdb_builder import ClipSource, build_lmdb
from tests.conftest import (REPO_ROOT, demo_options, load_yaml, recorded, run_tool, run_training, tree_digest,
                            write_options)


def write_clip(folder, num_frames, h=12, w=20, seed=0, names=None):
    """Random-texture frames (distinct per frame) named 00000000.png ... or `names`."""
    os.makedirs(folder, exist_ok=True)
    rng = np.random.default_rng(seed)
    names = names or [f'{i:08d}.png' for i in range(num_frames)]
    for name in names:
        cv2.imwrite(osp.join(folder, name), rng.integers(0, 256, (h, w, 3), dtype=np.uint8))
    return [osp.join(folder, name) for name in names]


def read_all(lmdb_path):
    with lmdb.open(lmdb_path, readonly=True, lock=False) as env, env.begin() as txn:
        return {bytes(k).decode(): bytes(v) for k, v in txn.cursor()}


def decoded(value):
    return cv2.imdecode(np.frombuffer(value, np.uint8), cv2.IMREAD_UNCHANGED)


def tool_succeeds(name, *args):
    """Run tools/<name>.py with `args` in a fresh process; it must exit 0. Returns the CompletedProcess."""
    result = run_tool(name, *args)
    assert result.returncode == 0, result.stderr
    return result


def one_line_error(result, tool_name, returncode=2):
    """The error line of a tool run that must exit with `returncode` and print one line (no traceback) on stderr."""
    assert result.returncode == returncode, result.stderr
    err = result.stderr.strip()
    assert err.startswith(f'{tool_name}: error: ') and '\n' not in err, err
    return err


@pytest.fixture
def folder_tree(tmp_path):
    root = tmp_path / 'clips'
    write_clip(str(root / 'walk'), 5, seed=1)
    write_clip(str(root / 'bike'), 3, h=16, w=8, seed=2)  # clips of any length and size
    return str(root)


@pytest.fixture
def folder_build(folder_tree, tmp_path):
    """`create_lmdb.py folder` on folder_tree with two workers: (the LMDB's path, what the tool printed)."""
    out = str(tmp_path / 'clips.lmdb')
    result = tool_succeeds('create_lmdb', 'folder', '--input', folder_tree, '--out', out, '--workers', '2',
                           '--no-progress')
    return out, result.stdout


@pytest.fixture
def built(folder_build):
    return folder_build[0]


def test_folder_build_stores_every_frame_losslessly_with_both_meta_files(folder_tree, folder_build):
    built, report = folder_build
    values = read_all(built)
    assert sorted(values) == [f'bike/{i:08d}' for i in range(3)] + [f'walk/{i:08d}' for i in range(5)]
    for key, value in values.items():
        clip, frame = key.split('/')
        assert np.array_equal(decoded(value), cv2.imread(osp.join(folder_tree, clip, f'{frame}.png')))
    with open(osp.join(built, 'meta_info.txt')) as f:
        assert f.readline() == 'bike/00000000.png (16,8,3) 1\n'  # BasicSR's image meta format
    clips = read_video_meta_info(osp.join(built, 'meta_info_clips.txt'))
    assert clips == [('bike', 3, (16, 8, 3)), ('walk', 5, (12, 20, 3))]
    assert 'img/s with 2 worker(s)' in report and 'PNG encode alone' in report and 'ratio' in report
    tool_succeeds('verify_lmdb', built, '--meta', osp.join(built, 'meta_info_clips.txt'), '--no-progress')


def test_built_lmdbs_feed_the_training_dataset_like_the_folders(demo_data, tmp_path):
    """folder -> create_lmdb -> MultigridPairedVideoDataset gives the tensors that reading the folders gives."""
    roots = {}
    for side in ('GT', 'LQ'):
        roots[side] = str(tmp_path / f'{side}.lmdb')
        tool_succeeds('create_lmdb', 'folder', '--input', osp.join(demo_data, 'train', side), '--out', roots[side],
                      '--workers', '1', '--no-progress')
    base = dict(name='t', phase='train', scale=4, num_frame=4, gt_size=32, use_hflip=True, use_rot=True,
                meta_info_file=osp.join(roots['GT'], 'meta_info_clips.txt'))
    from_disk = MultigridPairedVideoDataset(dict(base, dataroot_gt=osp.join(demo_data, 'train', 'GT'),
                                                 dataroot_lq=osp.join(demo_data, 'train', 'LQ'),
                                                 io_backend={'type': 'disk'}))
    from_lmdb = MultigridPairedVideoDataset(dict(base, dataroot_gt=roots['GT'], dataroot_lq=roots['LQ'],
                                                 io_backend={'type': 'lmdb'}))
    for index in (0, 20, len(from_disk) - 1):
        a, b = (dataset[ShapedIndex(index, 4, 32, seed=index)] for dataset in (from_disk, from_lmdb))
        assert a['key'] == b['key'] and np.array_equal(a['gt'], b['gt']) and np.array_equal(a['lq'], b['lq'])


def make_reds_tree(root):
    for clip, seed in (('000', 0), ('001', 1), ('011', 2)):
        write_clip(osp.join(root, 'train_sharp', clip), 3, h=16, w=16, seed=seed)
        write_clip(osp.join(root, 'train_sharp_bicubic', 'X4', clip), 3, h=4, w=4, seed=seed)
    write_clip(osp.join(root, 'val_sharp', '000'), 3, h=16, w=16, seed=9)
    write_clip(osp.join(root, 'val_sharp_bicubic', 'X4', '000'), 3, h=4, w=4, seed=9)


def test_reds_prepare_then_lmdb_with_partitions(tmp_path):
    root = str(tmp_path / 'REDS')
    make_reds_tree(root)
    download = tree_digest(osp.join(root, 'val_sharp'))
    tool_succeeds('prepare_reds', '--root', root)
    tool_succeeds('prepare_reds', '--root', root)  # rerunning is safe
    assert tree_digest(osp.join(root, 'val_sharp')) == download  # symlink mode leaves the download as it was
    assert osp.isfile(osp.join(root, 'train_sharp', '240', '00000002.png'))
    assert osp.isfile(str(tmp_path / 'REDS4' / 'sharp_bicubic' / '011' / '00000000.png'))
    assert [c.name for c in read_video_meta_info(osp.join(root, 'meta_info_REDS_train.txt'))] == ['001', '240']
    assert [c.name for c in read_video_meta_info(osp.join(root, 'meta_info_REDS4_val.txt'))] == ['000', '011']

    tool_succeeds('create_lmdb', 'reds', '--root', root, '--no-progress')
    gt = read_all(osp.join(root, 'train_sharp_with_val.lmdb'))
    lq = read_all(osp.join(root, 'train_sharp_bicubic_with_val.lmdb'))
    assert len(gt) == len(lq) == 12 and decoded(lq['240/00000001']).shape == (4, 4, 3)
    assert np.array_equal(decoded(gt['240/00000001']), cv2.imread(osp.join(root, 'val_sharp', '000', '00000001.png')))
    assert read_video_meta_info(osp.join(root, 'meta_info_REDSofficial_val.txt')) == [('240', 3, (16, 16, 3))]


def make_vimeo_tree(root, clips=('00001/0001', '00001/0002')):
    for side, size in (('vimeo_septuplet', 16), ('vimeo_septuplet_matlabLRx4', 4)):
        for seed, clip in enumerate(clips):
            write_clip(osp.join(root, side, 'sequences', clip), 7, h=size, w=2 * size, seed=seed,
                       names=[f'im{i}.png' for i in range(1, 8)])
    with open(osp.join(root, 'vimeo_septuplet', 'sep_trainlist.txt'), 'w') as f:
        f.write('\n'.join(clips) + '\n')


def test_vimeo_keeps_all_seven_frames_and_vfi_takes_frames_1_3_4_5_7(tmp_path):
    root = str(tmp_path / 'vimeo90k')
    make_vimeo_tree(root)
    tool_succeeds('create_lmdb', 'vimeo90k', '--root', root, '--no-progress')
    gt = read_all(osp.join(root, 'vimeo90k_train_GT_all.lmdb'))
    assert len(gt) == 14 and '00001/0002/00000006' in gt  # the key the Vimeo option files read
    assert decoded(read_all(osp.join(root, 'vimeo90k_train_LR7frames.lmdb'))['00001/0001/00000000']).shape == (4, 8, 3)
    assert read_video_meta_info(osp.join(root, 'meta_info_Vimeo90K_train_GT.txt'))[0] == ('00001/0001', 7, (16, 32, 3))

    out = str(tmp_path / 'vfi.lmdb')
    tool_succeeds('create_lmdb', 'vfi', '--vimeo', root, '--out', out, '--no-progress')
    tuples = read_all(out)
    sequence = osp.join(root, 'vimeo_septuplet', 'sequences', '00001', '0002')
    for index, frame in enumerate(('im1', 'im3', 'im4', 'im5', 'im7')):  # target im4 is tuple frame 2
        assert np.array_equal(decoded(tuples[f'00001/0002/{index:08d}']),
                              cv2.imread(osp.join(sequence, f'{frame}.png')))


def test_vfi_folder_rejects_tuples_that_are_not_quintuplets(tmp_path):
    root = tmp_path / 'tuples'
    write_clip(str(root / 'a'), 5)
    write_clip(str(root / 'b'), 4)
    result = run_tool('create_lmdb', 'vfi', '--input', root, '--out', tmp_path / 'x.lmdb')
    assert f'{root / "b"}: 4 frames; a frame-interpolation tuple needs 5' in one_line_error(result, 'create_lmdb')
    assert not osp.exists(tmp_path / 'x.lmdb') and not osp.exists(tmp_path / 'x.lmdb.partial')


class Interrupt(Exception):
    pass


def test_interrupted_build_is_detected_and_completed_by_rerunning(folder_tree, tmp_path, monkeypatch):
    monkeypatch.setattr(lmdb_builder, 'COMMIT_EVERY', 3)
    clips = folder_clips(folder_tree)
    out = str(tmp_path / 'resumed.lmdb')

    def interrupt(stored):
        raise Interrupt

    with pytest.raises(Interrupt):
        build_lmdb(out, clips, workers=2, progress=False, on_commit=interrupt)
    assert not osp.exists(out) and len(read_all(out + '.partial')) == 3
    assert 'incomplete build' in one_line_error(run_tool('verify_lmdb', out), 'verify_lmdb')

    report = build_lmdb(out, clips, workers=2, progress=False)
    assert (report.frames, report.written) == (8, 5)  # only the frames the first run did not commit
    fresh = build_lmdb(str(tmp_path / 'fresh.lmdb'), clips, workers=1, progress=False)
    assert read_all(out) == read_all(fresh.path) and not osp.exists(out + '.partial')
    with open(osp.join(out, 'meta_info.txt')) as a, open(osp.join(fresh.path, 'meta_info.txt')) as b:
        assert a.read() == b.read()


def test_existing_output_needs_overwrite_and_is_replaced_only_when_complete(folder_tree, built):
    before = tree_digest(built)
    args = ['folder', '--input', folder_tree, '--out', built, '--no-progress']
    assert one_line_error(run_tool('create_lmdb', *args), 'create_lmdb') == (
        f'create_lmdb: error: {built}: already exists; pass --overwrite to replace it')
    assert tree_digest(built) == before

    os.remove(osp.join(folder_tree, 'walk', '00000004.png'))  # a broken source: nothing may be lost
    write_clip(osp.join(folder_tree, 'walk'), 1, names=['00000004.png'], h=3, w=3)
    assert 'frames of a clip must match' in one_line_error(run_tool('create_lmdb', *args, '--overwrite'), 'create_lmdb')
    assert tree_digest(built) == before

    write_clip(osp.join(folder_tree, 'walk'), 1, names=['00000004.png'], seed=5)
    tool_succeeds('create_lmdb', *args, '--overwrite')
    assert np.array_equal(decoded(read_all(built)['walk/00000004']),
                          cv2.imread(osp.join(folder_tree, 'walk', '00000004.png')))
    assert [name for name in os.listdir(osp.dirname(built)) if 'clips.lmdb' in name] == ['clips.lmdb']


def damage(lmdb_path, key, value):
    with lmdb.open(lmdb_path) as env, env.begin(write=True) as txn:
        txn.delete(key.encode()) if value is None else txn.put(key.encode(), value)


def test_verify_reports_corrupt_and_missing_keys(built):
    damage(built, 'walk/00000003', b'\x89PNG garbage')
    damage(built, 'bike/00000001', None)
    result = run_tool('verify_lmdb', built, '--no-progress')
    assert result.returncode == 1, result.stderr
    err = result.stderr
    assert f'{built}: key walk/00000003: corrupt value' in err
    assert f'{built}: key bike/00000001: missing' in err

    reader = ClipFrameReader(built, 'lmdb')  # what the datasets read through
    with pytest.raises(VideoDataError, match=f'cannot decode frame {built}:walk/00000003$'):
        reader.read('walk', 3)


def test_verify_rejects_a_wrong_meta_line_and_checks_the_clip_meta(built, tmp_path):
    clip_meta = tmp_path / 'clips.txt'
    clip_meta.write_text('walk 6 (12,20,3)\n')  # one frame more than stored
    result = run_tool('verify_lmdb', built, '--meta', clip_meta, '--sample', '3', '--no-progress')
    assert result.returncode == 1, result.stderr
    assert f'key walk/00000005: listed in {clip_meta} (clip walk) but not in the LMDB' in result.stderr

    meta = osp.join(built, 'meta_info.txt')
    with open(meta) as f:
        lines = f.readlines()
    lines[1] = 'walk/00000001.png 12x20 1\n'
    with open(meta, 'w') as f:
        f.writelines(lines)
    error = one_line_error(run_tool('verify_lmdb', built), 'verify_lmdb')
    assert f'{meta}:2: expected "key.png (h,w,c) compress_level"' in error


def test_missing_source_frame_and_missing_input_are_named(tmp_path):
    result = run_tool('create_lmdb', 'folder', '--input', tmp_path / 'nope', '--out', tmp_path / 'o.lmdb')
    assert one_line_error(result, 'create_lmdb') == f'create_lmdb: error: input: folder not found: {tmp_path / "nope"}'
    frames = (*write_clip(str(tmp_path / 'c'), 1), str(tmp_path / 'gone.png'))
    with pytest.raises(lmdb_builder.LmdbBuildError, match='missing frame .*gone.png \\(clip c, frame 1\\)'):
        build_lmdb(str(tmp_path / 'o.lmdb'), [ClipSource('c', frames)])


def test_create_lmdb_cli_exits_nonzero_with_one_line(tmp_path):
    """A missing dataset root: exit status 2 and one line on stderr, no traceback."""
    result = run_tool('create_lmdb', 'vimeo90k', '--root', tmp_path)
    assert one_line_error(result, 'create_lmdb') == (
        f'create_lmdb: error: Vimeo-90K GT: folder not found: {tmp_path}/vimeo_septuplet/sequences')


@pytest.mark.slow
def test_demo_lmdb_option_file_trains_exactly_like_the_folder_one(tmp_path):
    """make_demo_data --lmdb + the shipped LMDB demo options: the same validation PSNR as reading PNG folders."""
    data = str(tmp_path / 'demo')
    tool_succeeds('make_demo_data', '--out', data, '--size', '128', '--train-frames', '8', '--val-frames', '4',
                  '--lmdb')
    psnr = {}
    for variant, suffix in (('folder', ''), ('lmdb', '_lmdb')):
        base = osp.join(REPO_ROOT, 'options', 'train', 'demo', f'train_BasicVSR_multigrid_demo{suffix}.yml')
        opt = demo_options(data, base=base, name=variant, network_g__num_feat=8, network_g__num_block=1,
                           datasets__train__num_frame=4, datasets__train__gt_size=64, train__total_iter=6,
                           train__scheduler__periods=[6], train__multigrid__spatial_sizes=[8, 16],
                           val__val_freq=6, logger__print_freq=1, logger__save_checkpoint_freq=100)
        shipped = load_yaml(base)['datasets']['train']['io_backend']['type']
        assert opt['datasets']['train']['io_backend']['type'] == shipped
        if variant == 'lmdb':
            for dataset in opt['datasets'].values():
                dataset['dataroot_gt'] += '.lmdb'
                dataset['dataroot_lq'] += '.lmdb'
        run_training(tmp_path / variant, write_options(opt, tmp_path, f'{variant}.yml'))
        psnr[variant] = [record['psnr'] for record in recorded(tmp_path / variant, variant).validations]
    assert psnr['folder'] == psnr['lmdb'] and len(psnr['lmdb']) >= 1

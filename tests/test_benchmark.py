"""The benchmarks (basicsr_multigrid/benchmarks/ and their command lines tools/benchmark_*.py): a real (tiny)
side-by-side multigrid run, a tuned and seeded one reported on the test split, one on data without a test split, the
JSON schema, the speedup arithmetic, the plot; the distillation workflows, their run reuse and baselines; the
published pair's complexity."""
import argparse
import copy
import json
import os
import subprocess
import sys
from os import path as osp

import pytest
import torch

from basicsr_multigrid.benchmarks import runs as run_options
from basicsr_multigrid.benchmarks import summaries, vfi_baselines, vfi_distillation, vsr_distillation
from basicsr_multigrid.benchmarks.vfi_distillation import PRESET as VFI_PRESET
from basicsr_multigrid.benchmarks.vsr_distillation import PRESET as VSR_PRESET
from tests.conftest import REPO_ROOT, TINY_WIDTHS, demo_options, recorded, textured_sequence, write_options

PNG_SIGNATURE = b'\x89PNG\r\n\x1a\n'


def tiny(demo_data, base, **overrides):
    settings = dict(network_g__num_feat=4, network_g__num_block=1, datasets__train__num_frame=4,
                    datasets__train__gt_size=64, datasets__train__batch_size_per_gpu=1,
                    datasets__train__num_worker_per_gpu=0, train__total_iter=12, train__scheduler__periods=[12])
    settings.update(overrides)
    return demo_options(demo_data, base=osp.join(REPO_ROOT, 'options', 'train', 'demo', base), **settings)


def tiny_option_files(demo_data, tmp_path):
    """(baseline, multigrid) option files of the tiny demo runs the benchmark tests compare."""
    baseline = write_options(tiny(demo_data, 'train_BasicVSR_demo.yml'), tmp_path, 'baseline.yml')
    multigrid = write_options(tiny(demo_data, 'train_BasicVSR_multigrid_demo.yml',
                                   train__multigrid__spatial_sizes=[8, 16]), tmp_path, 'multigrid.yml')
    return baseline, multigrid


@pytest.mark.slow
def test_side_by_side_run_writes_results_and_plot(demo_data, tmp_path):
    baseline, multigrid = tiny_option_files(demo_data, tmp_path)
    out, png = tmp_path / 'results.json', tmp_path / 'results.png'
    result = subprocess.run([sys.executable, 'tools/benchmark_multigrid.py', '--baseline', baseline, '--multigrid',
                             multigrid, '--largebatch', '2', '--val-points', '2', '--work-dir', str(tmp_path / 'work'),
                             '--out', str(out), '--plot', str(png)],
                            cwd=REPO_ROOT, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    results = json.loads(out.read_text())
    assert {'machine', 'date', 'runs', 'speedup_to_baseline_psnr', 'psnr_drop_db'} <= set(results)
    assert [run['name'] for run in results['runs']] == ['baseline', 'multigrid', 'multigrid_batch_x2']
    for run in results['runs']:
        assert {'name', 'wall_s', 'final_psnr', 'final_ssim', 'iters', 'curve', 'phases'} <= set(run)
        assert all(len(point) == 3 for point in run['curve'])
        assert [point[1] for point in run['curve']][-1] == run['iters']
        for phase in run['phases']:
            assert {'lq_size', 'num_frame', 's_per_iter', 'data_share', 'predicted_rel_cost',
                    'measured_rel_cost'} <= set(phase)
    assert [run['iters'] for run in results['runs']] == [12, 12, 6]
    assert [(p['lq_size'], p['num_frame']) for p in results['runs'][1]['phases']] == \
        [(8, 2), (8, 4), (16, 2), (16, 4)]  # the shipped demo schedule: T/2 then T in each stage
    assert results['psnr_drop_db'] == pytest.approx(results['runs'][0]['final_psnr'] - results['runs'][1]['final_psnr'])
    assert png.read_bytes()[:8] == PNG_SIGNATURE
    import matplotlib.image
    assert matplotlib.image.imread(str(png)).shape[2] in (3, 4)


@pytest.mark.slow
def test_precision_twins_train_in_bf16_and_are_compared_with_their_fp32_runs(demo_data, tmp_path):
    baseline, multigrid = tiny_option_files(demo_data, tmp_path)
    out, work = tmp_path / 'results.json', tmp_path / 'work'
    result = subprocess.run([sys.executable, 'tools/benchmark_multigrid.py', '--baseline', baseline, '--multigrid',
                             multigrid, '--largebatch', '0', '--val-points', '1', '--precision', 'bf16',
                             '--work-dir', str(work), '--out', str(out)],
                            cwd=REPO_ROOT, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    results = json.loads(out.read_text())
    runs = {run['name']: run for run in results['runs']}
    assert list(runs) == ['baseline', 'multigrid', 'baseline_bf16', 'multigrid_bf16']
    assert [run['precision'] for run in runs.values()] == ['fp32', 'fp32', 'bf16', 'bf16']
    for name in ('baseline', 'multigrid'):
        logs = {precision: (work / 'experiments' / next(d for d in os.listdir(work / 'experiments')
                                                        if d.endswith(f'_{name}{suffix}'))).glob('train_*.log')
                for precision, suffix in (('fp32', ''), ('bf16', '_bf16'))}
        assert 'Training precision: bf16' in next(logs['bf16']).read_text()
        assert 'Training precision: fp32' in next(logs['fp32']).read_text()
        twin = results['precision'][f'{name}_bf16']
        fp32_wall, bf16_wall = runs[name]['wall_s'], runs[f'{name}_bf16']['wall_s']
        assert twin['equal_iter_speedup']['mean'] == pytest.approx(fp32_wall / bf16_wall)
        for split in ('val', 'test'):
            change = runs[f'{name}_bf16']['splits'][split]['final_psnr'] - runs[name]['splits'][split]['final_psnr']
            assert twin['psnr_change_db'][split]['mean'] == pytest.approx(change)
    reached = [wall for wall, _, psnr in runs['multigrid_bf16']['curve'] if psnr >= runs['baseline']['final_psnr']]
    expected = runs['baseline']['wall_s'] / reached[0] if reached else None  # against the fp32 baseline
    assert runs['multigrid_bf16']['speedup_to_baseline_psnr'] == pytest.approx(expected)
    assert 'multigrid_bf16: ' in result.stdout and 'faster than multigrid (fp32) at equal iterations' in result.stdout


@pytest.mark.slow
def test_step_benchmark_times_every_phase_shape_for_every_variant(demo_data, tmp_path):
    opt = write_options(tiny(demo_data, 'train_BasicVSR_multigrid_demo.yml', train__multigrid__spatial_sizes=[8, 16]),
                        tmp_path, 'multigrid.yml')
    out = tmp_path / 'step.json'
    result = subprocess.run([sys.executable, 'tools/benchmark_step.py', '-opt', opt, '--variants', 'fp32', 'bf16',
                             '--repeats', '2', '--warmup', '1', '--threads', '1', '--profile', 'bf16',
                             '--out', str(out)],
                            cwd=REPO_ROOT, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    results = json.loads(out.read_text())
    shapes = [(s['iters'], s['lq_size'], s['num_frame']) for s in results['shapes']]
    assert shapes == [(4, 8, 2), (4, 8, 4), (2, 16, 2), (2, 16, 4)]  # the demo's 4 phases (70% / 30%) of 12
    fp32, bf16 = results['s_per_step']['fp32'], results['s_per_step']['bf16']
    assert len(fp32) == len(bf16) == 4 and all(t > 0 for t in fp32 + bf16)
    weighted = sum(n * t for (n, _, _), t in zip(shapes, fp32)) / sum(n * t for (n, _, _), t in zip(shapes, bf16))
    assert results['speedup']['bf16']['run_speedup'] == pytest.approx(weighted)
    assert results['speedup']['bf16']['speedup_per_shape'] == pytest.approx([a / b for a, b in zip(fp32, bf16)])
    assert results['profile']['variant'] == 'bf16' and any('conv' in op['op'] for op in results['profile']['ops'])
    bad = subprocess.run([sys.executable, 'tools/benchmark_step.py', '-opt', opt, '--variants', 'fp32', 'bf16+nhwc'],
                         cwd=REPO_ROOT, capture_output=True, text=True, timeout=600)
    assert bad.returncode != 0 and "bf16+nhwc: unknown flag 'nhwc'" in bad.stderr.strip().splitlines()[-1]


def run_with_curve(points, final_psnr, wall_s):
    return {'curve': points, 'final_psnr': final_psnr, 'wall_s': wall_s,
            'phases': [{'s_per_iter': 1.0, 'iters': 1}]}


def test_speedup_is_baseline_time_over_first_time_at_baseline_psnr():
    baseline = run_with_curve([[100, 10, 25.0], [200, 20, 26.0]], 26.0, 200)
    fast = run_with_curve([[40, 10, 25.5], [80, 20, 26.1], [120, 30, 26.3]], 26.3, 120)
    never = run_with_curve([[50, 10, 25.0], [100, 20, 25.9]], 25.9, 100)
    summary = summaries.compare([baseline, fast, never])
    assert summary == {'speedup_to_baseline_psnr': pytest.approx(2.5), 'psnr_drop_db': pytest.approx(-0.3)}
    assert never['speedup_to_baseline_psnr'] is None and never['psnr_drop_db'] == pytest.approx(0.1)


def test_largebatch_scales_batch_iterations_and_lr():
    opt = {'num_gpu': 0, 'datasets': {'train': {'batch_size_per_gpu': 2}},
           'train': {'total_iter': 300, 'scheduler': {'periods': [300]}, 'hooks': [{'type': 'LinearWarmupHook'}]}}
    large = run_options.largebatch_options(opt, 4)
    assert large['datasets']['train']['batch_size_per_gpu'] == 8 and large['train']['total_iter'] == 75
    assert large['train']['scheduler']['periods'] == [75]
    assert large['train']['hooks'] == [{'type': 'LinearWarmupHook'},
                                       {'type': 'LinearScalingLRHook', 'reference_batch': 2}]  # LR x 4
    assert opt['datasets']['train']['batch_size_per_gpu'] == 2  # the input is not modified


@pytest.mark.slow
def test_benchmark_kd_reports_the_published_pairs_complexity(tmp_path):
    """--complexity-only measures the published ST-MFNet and ST-MFNet Mini (small frames here)."""
    out = tmp_path / 'kd.json'
    result = subprocess.run([sys.executable, 'tools/benchmark_kd.py', '--out', str(out), '--complexity-only',
                             '--resolution', '64', '--repeats', '1'], cwd=REPO_ROOT, capture_output=True, text=True,
                            timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    with open(out) as f:
        result = json.load(f)
    teacher, mini = result['published']['teacher'], result['published']['mini']
    assert (teacher['params'], mini['params']) == (21028700, 1822063)
    assert teacher['macs'] > mini['macs'] > 0 and teacher['ms_per_frame'] > 0 and mini['ms_per_frame'] > 0
    # the warping ops are counted too: 64x64 frames padded to 128, AdaCoF on I1 and I2 at 64, 128 and 256 px
    adacof_macs = 2 * (64 ** 2 + 128 ** 2 + 256 ** 2) * 25 * (4 * 3 + 4)
    assert mini['macs_ops'] == {'adacof': adacof_macs}
    assert teacher['macs_ops']['adacof'] == adacof_macs and set(teacher['macs_ops']) == {'adacof', 'softsplat',
                                                                                         'correlation'}
    for network in (teacher, mini):
        assert network['macs'] == network['macs_conv_linear'] + sum(network['macs_ops'].values())
        assert network['ms_per_frame_eager_ops'] > 0 and network['fused_max_abs_diff'] < 1e-5
    assert result['published']['speedup_eager_ops'] > 0
    assert result['published']['params_ratio'] == pytest.approx(1822063 / 21028700, abs=1e-4)
    assert set(result['targets_met']) == {'published_speedup'} and 'teacher' not in result


def test_benchmark_kd_reuses_a_run_only_if_it_started_after_the_weights_it_started_from(tmp_path):
    """Same options but initial weights rewritten since (an earlier sparse run's, at the same path): not reused;
    and the read-off's initial weights are rewritten only when they change."""
    init = str(tmp_path / 'init.pth')
    state = {'w': torch.arange(4.0)}
    torch.save({'params': state}, init)
    opt = {'name': 'run', 'path': {'pretrain_network_g': init, 'pretrain_network_t': None}, 'train': {'x': 1}}
    used, root = str(tmp_path / 'run.yml'), tmp_path / 'experiments' / 'run'
    (root / 'models').mkdir(parents=True)
    (root / 'models' / 'net_g_latest.pth').write_bytes(b'')
    write_options(opt, tmp_path, 'run.yml')
    os.utime(init, (1000, 1000))
    os.utime(used, (2000, 2000))
    assert run_options.finished_with(str(root), opt, used)
    assert not run_options.finished_with(str(root), dict(opt, train={'x': 2}), used)
    os.utime(init, (3000, 3000))
    assert not run_options.finished_with(str(root), opt, used)
    assert run_options.same_weights(init, {'w': torch.arange(4.0)})
    assert not run_options.same_weights(init, {'w': torch.arange(4.0) + 1})
    assert not run_options.same_weights(str(tmp_path / 'none.pth'), state)


@pytest.mark.slow
def test_benchmark_kd_dis_splat_baseline_finds_the_middle_of_a_translation():
    """The no-learning baseline of the KD benchmark lands on the true middle frame of a texture moving 2 px between
    I1 and I2 in x and y, where the frame average is off by the whole motion."""
    clip, middle = textured_sequence(step_x=2, step_y=2)
    i1, middle, i2 = clip[0, 1], middle[0], clip[0, 2]
    for method, limit in ((vfi_baselines.dis_splat_average, 0.005), (vfi_baselines.frame_average, None)):
        error = (method(i1, i2) - middle)[:, 8:-8, 8:-8].abs().mean().item()
        if limit is None:
            assert error > 0.01
        else:
            assert error < limit


def test_benchmark_kd_workflow_prunes_then_trains_both_students_and_reuses_its_runs(demo_data, tmp_path, monkeypatch,
                                                                                    capsys):
    """The whole workflow at tiny widths and iterations: teacher, sparse run, read-off, distilled and no-KD
    students for two seeds; a second invocation reuses every finished run."""
    original = vfi_distillation.demo_run_options

    def tiny_runs(opt, name, data, iters, val_points, seed=None):
        opt = original(opt, name, data, iters, val_points, seed)
        opt['datasets']['val'].update(dataroot=osp.join(data, 'train', 'GT'), window_stride=6,
                                      meta_info_file=osp.join(data, 'meta_info_train.txt'))  # test clips are short
        opt['datasets']['train']['num_worker_per_gpu'] = 0
        for key in ('network_g', 'network_t'):
            if key in opt and opt[key]['type'] == 'STMFNet':
                opt[key].update(TINY_WIDTHS)
        return opt

    monkeypatch.setattr(vfi_distillation, 'demo_run_options', tiny_runs)
    png = tmp_path / 'kd.png'

    def workflow(seeds):
        preset = dict(VFI_PRESET, teacher_iters=2, sparse_iters=2, student_iters=2, seeds=seeds)
        return vfi_distillation.results(demo_data, str(tmp_path / 'work'), preset, demo_resolution=64, resolution=64,
                                        repeats=1)

    result = workflow(seeds=2)
    vfi_distillation.plot(dict(result, machine='CPU', date='today'), png)
    assert png.read_bytes().startswith(PNG_SIGNATURE)
    assert {'teacher', 'sparse', 'student', 'student_no_kd', 'student_pruned_init', 'student_no_kd_pruned_init',
            'student_template', 'student_no_kd_template', 'frame_average', 'seeds', 'kd_gain_db',
            'kd_gain_db_pruned_init', 'kd_gain_db_template', 'published', 'targets_met'} <= set(result)
    assert result['sparse']['init']['tensors_from_sparse_run'] > 0
    assert len(result['student']['psnr_per_seed']) == len(result['student_no_kd']['psnr_per_seed']) == 2
    assert result['kd_gain_db'] == [pytest.approx(kd - no_kd, abs=1e-3) for kd, no_kd in
                                    zip(result['student']['psnr_per_seed'], result['student_no_kd']['psnr_per_seed'])]
    student = result['student']['network']
    assert student['type'] == 'STMFNetMini' and student['use_flow'] is True and student['flow_estimator'] == 'dis'
    assert student['grid_channels'] == [result['sparse']['widths'][f'grid_channels[{i}]'] for i in range(3)]
    from basicsr_multigrid.archs.stmfnet_mini_arch import STMFNetMini
    built = STMFNetMini(**{key: value for key, value in student.items() if key != 'type'})
    assert result['student']['params'] == sum(p.numel() for p in built.parameters())
    # the demo student keeps the teacher's DIS splatting branch (no parameters); nothing else is in one, not the other
    assert result['student']['params'] <= result['teacher']['params']
    # the template's own widths, whatever the sparse run kept: the shipped student file's network
    template = run_options.load_options(vfi_distillation.DEMO_OPTIONS['student'])['network_g']
    assert result['student_template']['network'] == template
    built = STMFNetMini(**{key: value for key, value in template.items() if key != 'type'})
    assert result['student_template']['params'] == result['student_no_kd_template']['params'] == sum(
        p.numel() for p in built.parameters())
    assert len(result['kd_gain_db_template']) == 2
    assert set(result['targets_met']) == {'published_speedup', 'teacher_over_frame_average', 'params_ratio',
                                          'student_gap_to_teacher', 'kd_gain', 'student_gap_to_teacher_pruned_init',
                                          'kd_gain_pruned_init', 'student_gap_to_teacher_template',
                                          'kd_gain_template'}
    gap = result['teacher']['psnr'] - min(result['student_template']['psnr_per_seed'])
    assert result['targets_met']['student_gap_to_teacher_template'] == (gap <= 0.5)
    capsys.readouterr()
    workflow(seeds=1)
    printed = capsys.readouterr().out
    assert 'teacher: reusing the finished run' in printed and 'sparse: reusing the finished run' in printed
    assert 'student seed 0: reusing the finished run' in printed and ': training ' not in printed


@pytest.mark.slow
def test_benchmark_kd_vsr_distils_a_half_width_student_with_and_without_multigrid(demo_data, tmp_path, monkeypatch,
                                                                                  capsys):
    """--preset vsr-cpu at tiny widths and iterations: the teacher trains once, four students train at the
    student's width, the teacher's PSNR is what its own run measured, and a second invocation trains nothing."""
    original = vsr_distillation.vsr_run_options

    def tiny_runs(opt, name, data, val_points, seed=None):
        opt = copy.deepcopy(opt)
        teacher_feat, student_feat = 8, 4
        opt['network_g']['num_feat'] = teacher_feat if name == 'kd_vsr_teacher' else student_feat
        for network in ('network_g', 'network_t'):
            if network in opt:
                opt[network]['num_block'] = 1
        if 'network_t' in opt:
            opt['network_t']['num_feat'] = teacher_feat
        opt['datasets']['train'].update(num_frame=4, gt_size=64, batch_size_per_gpu=1, num_worker_per_gpu=0)
        opt['train'].update(total_iter=4, hooks=[])
        opt['train']['scheduler']['periods'] = [4]
        if 'multigrid' in opt['train']:
            opt['train']['multigrid']['spatial_sizes'] = [8, 16]
        return original(opt, name, data, val_points, seed)

    monkeypatch.setattr(vsr_distillation, 'vsr_run_options', tiny_runs)
    png, work = tmp_path / 'kd-vsr.png', tmp_path / 'work'

    def workflow():
        return vsr_distillation.run_workflow(demo_data, str(work), VSR_PRESET, kd_variants=('gate', 'feature'))

    result = workflow()
    vsr_distillation.vsr_plot(dict(result, machine='CPU', date='today'), png)
    assert png.read_bytes().startswith(PNG_SIGNATURE)
    assert result['teacher']['weights'] == osp.join('experiments', 'kd_vsr_teacher', 'models', 'net_g_latest.pth')
    experiments = work / 'experiments'
    # the teacher the students distilled from is the one trained here: the KD run's validation of it equals the
    # teacher run's own last validation on both splits
    teacher_final = {r['dataset']: r['psnr'] for r in recorded(work, 'kd_vsr_teacher').validations}  # last wins
    assert result['teacher']['psnr'] == {'val': pytest.approx(teacher_final['demo_val'], abs=1e-4),
                                         'test': pytest.approx(teacher_final['demo_val_test'], abs=1e-4)}
    for label in ('student', 'student_no_kd', 'student_multigrid', 'student_no_kd_multigrid', 'student_multigrid_gate',
                  'student_multigrid_feature'):
        weights = torch.load(experiments / f'kd_vsr_{label}_seed0' / 'models' / 'net_g_latest.pth',
                             weights_only=True)['params']
        assert weights['fusion.weight'].shape[:2] == (4, 8), label  # every student trained at the student's width
        phases = {r['phase'] for r in recorded(work, f'kd_vsr_{label}_seed0').iterations}
        assert (len(phases) > 1) == ('multigrid' in label), label
        iterations = recorded(work, f'kd_vsr_{label}_seed0').iterations
        assert ('l_distill' in iterations[0]) == ('no_kd' not in label), label
        # the variants train what they name: the gate logs the share of items it kept, the feature term is logged
        # (and not zero) at every iteration
        assert ('distill_kept' in iterations[0]) == label.endswith('_gate'), label
        assert all(record.get('l_feature', 0) > 0 for record in iterations) == label.endswith('_feature'), label
    for suffix in ('', '_multigrid'):
        kd, no_kd = result[f'student{suffix}']['psnr_per_seed'], result[f'student_no_kd{suffix}']['psnr_per_seed']
        assert result[f'kd_gain_db{suffix}'] == {split: [pytest.approx(kd[split][0] - no_kd[split][0], abs=1e-3)]
                                                 for split in ('test', 'val')}
    for variant in ('gate', 'feature'):
        kd, no_kd = (result[label]['psnr_per_seed'] for label in (f'student_multigrid_{variant}',
                                                                  'student_no_kd_multigrid'))
        assert result[f'kd_gain_db_multigrid_{variant}'] == {
            split: [pytest.approx(kd[split][0] - no_kd[split][0], abs=1e-3)] for split in ('test', 'val')}
    capsys.readouterr()
    workflow()
    printed = capsys.readouterr().out
    assert 'teacher: reusing the finished run kd_vsr_teacher (same options)' in printed
    assert ': training ' not in printed and str(work) not in printed  # runs named by name, not by this machine's path


def run_benchmark_kd(*args):
    return subprocess.run([sys.executable, 'tools/benchmark_kd.py', *args], cwd=REPO_ROOT, capture_output=True,
                          text=True, timeout=300)


@pytest.mark.slow
def test_benchmark_kd_vsr_options_are_checked(demo_data, tmp_path):
    out = tmp_path / 'kd.json'
    for extra, message in ((['--teacher-weights', 'x.pth'], '--teacher-weights: only the vsr-cpu preset'),
                           (['--preset', 'vsr-cpu', '--student-iters', '3'], '--student-iters: the vsr-cpu preset'),
                           (['--preset', 'vsr-cpu', '--complexity-only'], '--complexity-only: measures the published'),
                           (['--kd-variants', 'gate'], '--kd-variants: only the vsr-cpu preset'),
                           (['--preset', 'vsr-cpu', '--teacher-weights', str(tmp_path / 'no.pth'), '--data', demo_data,
                             '--work-dir', str(tmp_path / 'work')], f"--teacher-weights: file not found: {tmp_path}")):
        result = run_benchmark_kd('--out', str(out), *extra)
        lines = result.stderr.strip().splitlines()
        assert result.returncode == 1 and len(lines) == 1 and message in lines[0], result.stderr
        assert not out.exists()


@pytest.mark.slow
def test_tuned_seeded_run_chooses_on_val_and_reports_test(demo_data, tmp_path):
    baseline, multigrid = tiny_option_files(demo_data, tmp_path)
    out = tmp_path / 'tuned.json'
    result = subprocess.run([sys.executable, 'tools/benchmark_multigrid.py', '--baseline', baseline, '--multigrid',
                             multigrid, '--largebatch', '0', '--val-points', '2', '--tune', '--lr-factors', '0.5', '2',
                             '--warmups', 'off', '--seeds', '2', '--work-dir', str(tmp_path / 'work'),
                             '--out', str(out)], cwd=REPO_ROOT, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    results = json.loads(out.read_text())
    for label in ('baseline', 'multigrid'):
        trials = results['tuning'][label]['trials']
        assert [t['lr_factor'] for t in trials] == [0.5, 2]
        best = max(trials, key=lambda t: t['val_psnr'])  # chosen on val, whatever test says
        assert results['tuning'][label]['chosen'] == {'lr_factor': best['lr_factor'], 'warmup': 'off'}
        seeds = results['seed_runs'][label]
        assert len(seeds) == 2 and all(set(run['splits']) == {'val', 'test'} for run in seeds)
        assert seeds[0]['splits']['test']['final_psnr'] != seeds[1]['splits']['test']['final_psnr']
    test = results['splits']['test']['multigrid']
    baseline_runs, multigrid_runs = results['seed_runs']['baseline'], results['seed_runs']['multigrid']
    drops = [b['splits']['test']['final_psnr'] - m['splits']['test']['final_psnr']
             for b, m in zip(baseline_runs, multigrid_runs)]
    assert test['psnr_drop_values'] == pytest.approx(drops)
    assert test['psnr_drop_db']['mean'] == pytest.approx(sum(drops) / 2)
    budget = results['budget']
    assert budget['split'] == 'test' and budget['bicubic_psnr'] == pytest.approx(results['bicubic']['test'])
    assert budget['long_enough'] == (budget['margin_db'] >= 0.3)
    assert 'training budget' in result.stdout and 'test: multigrid' in result.stdout


def without_test_split(demo_data, folder):
    """The demo data's train and val splits alone, as REDS, Vimeo-90K or a user's own folder have them: no test split
    and no recorded bicubic PSNR."""
    os.makedirs(folder)
    for split in ('train', 'val'):
        os.symlink(osp.join(demo_data, split), osp.join(folder, split))
        with open(osp.join(demo_data, f'meta_info_{split}.txt')) as source:
            with open(osp.join(folder, f'meta_info_{split}.txt'), 'w') as copy_:
                copy_.write(source.read())
    return folder


@pytest.mark.slow
def test_benchmark_summarises_data_without_a_test_split(demo_data, tmp_path):
    """Every summary works on the splits that exist: here val only (it raised KeyError after the first run)."""
    baseline, multigrid = tiny_option_files(demo_data, tmp_path)
    data, out = without_test_split(demo_data, str(tmp_path / 'no_test')), tmp_path / 'results.json'
    result = subprocess.run([sys.executable, 'tools/benchmark_multigrid.py', '--baseline', baseline, '--multigrid',
                             multigrid, '--largebatch', '0', '--val-points', '2', '--seeds', '2', '--data', data,
                             '--work-dir', str(tmp_path / 'work'), '--out', str(out),
                             '--plot', str(tmp_path / 'r.png')],
                            cwd=REPO_ROOT, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    results = json.loads(out.read_text())
    assert [set(run['splits']) for run in results['runs']] == [{'val'}, {'val'}]
    assert list(results['splits']) == ['val'] and len(results['splits']['val']['multigrid']['psnr_drop_values']) == 2
    assert results['bicubic'] == {} and results['budget']['split'] == 'val' and results['budget']['margin_db'] is None
    assert 'val: baseline' in result.stdout and 'no bicubic reference here' in result.stdout
    validated = {r['dataset'] for r in recorded(tmp_path / 'work', next(
        d for d in os.listdir(tmp_path / 'work' / 'experiments') if d.endswith('_multigrid'))).validations}
    assert validated == {'demo_val'}  # the benchmark added no test set


def test_tune_grid_scales_the_lr_and_switches_the_warmup():
    opt = {'train': {'total_iter': 200, 'optim_g': {'lr': 2e-3},
                     'hooks': [{'type': 'LinearScalingLRHook', 'reference_batch': 2}]}}
    on = run_options.variant_options(opt, 0.5, 'on')
    assert on['train']['optim_g']['lr'] == pytest.approx(1e-3)
    assert on['train']['hooks'][0] == {'type': 'LinearWarmupHook', 'warmup_iter': 10}
    own = dict(opt, train=dict(opt['train'], hooks=[{'type': 'LinearWarmupHook', 'warmup_iter': 50}]))
    assert run_options.variant_options(own, 1, 'on')['train']['hooks'] == on['train']['hooks'][:1]
    off = run_options.variant_options(on, 2, 'off')
    assert off['train']['hooks'] == [{'type': 'LinearScalingLRHook', 'reference_batch': 2}]
    assert run_options.variant_options(on, 1, 'on')['train']['hooks'] == on['train']['hooks']
    quarter = run_options.variant_options(opt, 1, 0.25)['train']['hooks'][0]
    assert quarter == {'type': 'LinearWarmupHook', 'warmup_iter': 50}
    assert [run_options.warmup_choice(text) for text in ('off', 'on', '0.25')] == ['off', 'on', 0.25]
    for bad in ('1.5', '0', 'long'):
        with pytest.raises(argparse.ArgumentTypeError):
            run_options.warmup_choice(bad)
    assert opt['train']['optim_g']['lr'] == 2e-3  # the input is not modified
    assert summaries.spread([1.0, None, 3.0]) == {'mean': 2.0, 'min': 1.0, 'max': 3.0, 'missing': 1}


def test_results_name_runs_by_their_place_in_the_work_directory_or_the_repository(tmp_path):
    work = str(tmp_path / 'work')
    run = osp.join(work, 'experiments', 'kd_vsr_teacher', 'models', 'net_g_latest.pth')
    assert run_options.portable_path(run, work) == osp.join('experiments', 'kd_vsr_teacher', 'models',
                                                            'net_g_latest.pth')
    shipped = osp.join(REPO_ROOT, 'options', 'train', 'demo', 'train_BasicVSR_demo.yml')
    assert run_options.portable_path(shipped, work) == osp.join('options', 'train', 'demo', 'train_BasicVSR_demo.yml')
    elsewhere = str(tmp_path / 'mine.pth')  # the user's own file outside both: as given
    assert run_options.portable_path(elsewhere, work) == elsewhere

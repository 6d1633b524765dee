"""Shared by the benchmarks in tools/: the machine they ran on."""
import os
import platform
from os import path as osp


def machine_name():
    try:
        import torch
        if torch.cuda.is_available():
            return f'{torch.cuda.device_count()} x {torch.cuda.get_device_name(0)}'
    except ImportError:
        pass
    model = platform.processor() or platform.machine()
    if osp.isfile('/proc/cpuinfo'):
        with open('/proc/cpuinfo') as f:
            model = next((line.split(':', 1)[1].strip() for line in f if line.startswith('model name')), model)
    return f'CPU {model}, {os.cpu_count()} cores'

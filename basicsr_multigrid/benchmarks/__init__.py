"""Benchmarks: training runs launched side by side and compared (the layer above training/, below tools/).

runs.py (launching, reuse, option builders), summaries.py (one summary per run and the comparisons), complexity.py
(params, MACs, timing), vfi_baselines.py (frame average, DIS splatting), and one module per workflow with its plots
and tables: multigrid.py, vfi_distillation.py, vsr_distillation.py, plus sparse_lambda.py (the lambda at which a
sparse run's loss holds its channels). tools/benchmark_*.py are their command lines."""

"""Multigrid training schedule (Lin et al., AAAI 2023): which shape each iteration trains on."""
from .schedule import MultigridSchedule, Phase, ScheduleError  # noqa: F401  (re-exported)

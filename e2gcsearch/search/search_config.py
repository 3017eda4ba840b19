"""What a whole search is: :class:`SearchConfig` (what to optimize, on which data, with which budget
and storage), checked when it is made, before anything is measured or written."""

from __future__ import annotations

import dataclasses

from ..checks import study_name
from ..data import DataConfig
from ..store.storage import refuse_unkept
from .trial import TrialSettings

DEFAULT_TRIALS = (
    16  # one 'run' on the embedded digits: about 6 minutes on 2 cores, plus a minute of one-off calibration
)
WARM_STARTS = ("auto", "model", "none")  # the CLI's default is auto (see benchmarks/search_replay.py)


@dataclasses.dataclass(frozen=True)
class SearchConfig:
    """A whole search: what to optimize (``settings``), on which data, with which budget and storage."""

    settings: TrialSettings
    data: DataConfig
    storage: str
    study_name: str
    sampler: str = "tpe"
    seed: int | None = 0
    trials: int | None = DEFAULT_TRIALS
    timeout_s: float | None = None
    baselines: bool = True
    workers: int = 1
    devices: tuple[int, ...] | None = None  # GPU of each worker (default: every GPU with device cuda)
    share_devices: bool = False  # allow more workers than GPUs (they take turns measuring)
    placed: tuple[str, ...] = ()  # each worker's device, resolved once by the run (empty: the settings' device)
    progress: bool = True
    warm_start: str | None = None  # "model": queue the energy model's predicted best points; "auto": model
    # unless it cannot be calibrated for the space (then a note); None or "none": the sampler alone
    warm_start_profile: str | None = None  # device profile JSON (default: calibrate or reuse the cached one)

    def __post_init__(self) -> None:
        study_name(self.study_name)  # refused before anything is measured or written
        refuse_unkept(self.storage)

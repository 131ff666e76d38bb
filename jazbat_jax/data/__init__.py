"""Data loading: WISDM 2019 (raw UCI or packed), Quiroz 2018 walking emotions, SEECS-layout CSVs.

Every loader returns a ``WindowSet`` (see ``core``); ``split_windows`` makes leak-free splits;
``Standardizer`` is fitted on the training part only. See docs/data.md.
"""
from .core import Split, Standardizer, WindowSet
from .example import example_recording
from .paths import bundled_sample_root, data_root, shared_data_root
from .quiroz import EMOTIONS as QUIROZ_EMOTIONS
from .quiroz import load_quiroz
from .raw import MalformedLineError, parse_wisdm_raw_file, read_wisdm_raw_stream, write_wisdm_raw
from .seecs import SEECS_EMOTIONS, SEECS_HEADER, load_seecs, write_seecs_recording
from .splits import PROTOCOLS, format_split_summary, save_split_summary, split_windows, summarize_split
from .windows import acc_magnitude, contiguous_segments, cut_windows, window_count, window_starts
from .wisdm import ACTIVITIES, ACTIVITY_CODES, ACTIVITY_NAMES, load_wisdm

__all__ = [
    "WindowSet", "Standardizer", "Split",
    "load_wisdm", "load_quiroz", "load_seecs", "split_windows",
    "data_root", "bundled_sample_root", "example_recording", "shared_data_root",
    "format_split_summary", "save_split_summary", "summarize_split",
    "parse_wisdm_raw_file", "read_wisdm_raw_stream", "write_wisdm_raw", "MalformedLineError",
    "write_seecs_recording", "SEECS_EMOTIONS", "SEECS_HEADER", "QUIROZ_EMOTIONS",
    "ACTIVITIES", "ACTIVITY_CODES", "ACTIVITY_NAMES", "PROTOCOLS",
    "acc_magnitude", "contiguous_segments", "cut_windows", "window_count", "window_starts",
]

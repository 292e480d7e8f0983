"""Offline datasets: the D4RL hdf5 layout, loading (purerl/D4RL hdf5, Minari), generation, normalised scores.

- `load(path, view="qlearning"|"exact"|"episodes")` and `metadata(path)` (`purerl.data.load`);
- the dataset kinds `KINDS` that `purerl collect` generates (the command itself is `purerl.collect`);
- `normalized_score`, `reference_returns`, `D4RL_REFS` (`purerl.data.score`, `purerl.data.refs`);
- `resolve(name_or_path)`, `default_cache_dir()` (`$PURERL_DATA`, default ~/.cache/purerl/datasets);
- preprocessing helpers `normalize_states`, `iql_reward_scale`, `antmaze_shift`, `clip_actions`;
- `summarize(data)`: episodes, episode lengths, returns, rewards, actions at bounds (`purerl.data.summary`;
  `purerl collect` writes it beside every dataset as `<file>.stats.json`);
- the experts that ship with purerl and their file format (`purerl.data.shipped`).
"""

from purerl.data.cache import KINDS, dataset_path, default_cache_dir, resolve
from purerl.data.layout import FLAT_KEYS, REQUIRED_KEYS, read_hdf5, validate, write_hdf5
from purerl.data.load import VIEWS, episodes_view, exact_view, load, metadata, qlearning_view, read_minari
from purerl.data.prep import antmaze_shift, clip_actions, iql_reward_scale, normalize_states
from purerl.data.refs import D4RL_REFS, d4rl_refs
from purerl.data.score import normalized_score, reference_returns, score_of
from purerl.data.summary import stats_path, summarize

__all__ = [
    "KINDS", "FLAT_KEYS", "REQUIRED_KEYS", "VIEWS", "D4RL_REFS", "antmaze_shift", "clip_actions",
    "d4rl_refs", "dataset_path", "default_cache_dir", "episodes_view", "exact_view", "iql_reward_scale",
    "load",
    "metadata", "normalize_states", "normalized_score", "qlearning_view", "read_hdf5", "read_minari",
    "reference_returns", "resolve", "score_of", "stats_path", "summarize", "validate", "write_hdf5",
]

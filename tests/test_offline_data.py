"""purerl.data: D4RL qlearning semantics, round trip, episode boundaries, kinds, Minari, normalised scores,
bad input (spec `offline_data.md`, tests 1-6)."""

import importlib
import os
import warnings

import bad_datasets
import h5py
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import struct
from gymnax.environments import environment, spaces

from purerl import data as pdata
from purerl import envs  # noqa: F401

# Generous per-test limit: the tiny SAC + rollouts compile several programs; slow when the CPU is shared.
pytestmark = pytest.mark.timeout(600)

pcollect = importlib.import_module("purerl.collect")


def synthetic(n_eps=(4, 3, 5), obs_dim=2, act_dim=1, seed=0, dones=("terminal", "timeout", "timeout")):
    """Episodes stored contiguously; each ends with a terminal or a timeout row."""
    rng = np.random.default_rng(seed)
    rows = {k: [] for k in pdata.FLAT_KEYS}
    for length, done in zip(n_eps, dones, strict=True):
        obs = rng.normal(size=(length + 1, obs_dim)).astype(np.float32)
        rows["observations"].append(obs[:-1])
        rows["next_observations"].append(obs[1:])
        rows["actions"].append(rng.uniform(-1, 1, (length, act_dim)).astype(np.float32))
        rows["rewards"].append(rng.normal(size=length).astype(np.float32))
        term, tout = np.zeros(length, bool), np.zeros(length, bool)
        (term if done == "terminal" else tout)[-1] = True
        rows["terminals"].append(term)
        rows["timeouts"].append(tout)
    return {k: np.concatenate(v) for k, v in rows.items()}


def d4rl_qlearning_loop(d):
    """Plain transcription of d4rl.qlearning_dataset (with a timeouts key)."""
    out = {k: [] for k in ("observations", "actions", "rewards", "next_observations", "terminals")}
    n = len(d["rewards"])
    for i in range(n - 1):
        if bool(d["timeouts"][i]):
            continue
        out["observations"].append(d["observations"][i])
        out["actions"].append(d["actions"][i])
        out["rewards"].append(d["rewards"][i])
        out["next_observations"].append(d["observations"][i + 1])
        out["terminals"].append(bool(d["terminals"][i]))
    return {k: np.array(v) for k, v in out.items()}


# --- 1. qlearning semantics ---------------------------------------------------------------------------

def test_qlearning_view_matches_d4rl_loop(tmp_path):
    d = synthetic()
    path = str(tmp_path / "d.hdf5")
    pdata.write_hdf5(path, d, {"env_id": "x"})  # no purerl_version: treated as a real D4RL file
    q = pdata.load(path)  # default view for D4RL files: qlearning
    ref = d4rl_qlearning_loop(d)
    n = len(d["rewards"])
    assert len(q["rewards"]) == (n - 1) - int(d["timeouts"][: n - 1].sum())
    for key, value in ref.items():
        np.testing.assert_array_equal(q[key], value)
    assert not q["timeouts"].any()
    # the row after a terminal is the next episode's first state, as in d4rl
    assert q["terminals"].sum() == 1


def test_qlearning_without_timeouts_uses_step_counter():
    d = synthetic(n_eps=(3, 3), dones=("timeout", "timeout"))
    no_tout = {k: v for k, v in d.items() if k != "timeouts"}
    np.testing.assert_array_equal(
        pdata.qlearning_view(no_tout, max_episode_steps=3)["observations"],
        pdata.qlearning_view(d)["observations"],
    )


def test_exact_and_episodes_views(tmp_path):
    d = synthetic()
    path = str(tmp_path / "d.hdf5")
    pdata.write_hdf5(path, d, {"env_id": "x", "purerl_version": "0"})
    exact = pdata.load(path)  # purerl file: exact by default
    for key in pdata.FLAT_KEYS:
        np.testing.assert_array_equal(exact[key], d[key])
    eps = pdata.load(path, view="episodes")
    assert [len(e["rewards"]) for e in eps] == [4, 3, 5]


# --- 3. episode boundaries with a terminating env ------------------------------------------------------

@struct.dataclass
class WalkState(environment.EnvState):
    pos: jax.Array
    time: int


@struct.dataclass
class WalkParams(environment.EnvParams):
    max_steps_in_episode: int = 20


class Walk(environment.Environment):
    """1-D walk: pos += 0.3 * action + noise; terminates when |pos| > 1 (sometimes, before step 20)."""

    @property
    def default_params(self):
        return WalkParams()

    def reset_env(self, key, params):
        pos = jax.random.uniform(key, (), minval=-0.5, maxval=0.5)
        return jnp.array([pos, 0.0]), WalkState(pos=pos, time=0)

    def step_env(self, key, state, action, params):
        pos = state.pos + 0.3 * action[0] + 0.1 * jax.random.normal(key)
        new = WalkState(pos=pos, time=state.time + 1)
        obs = jnp.array([pos, new.time / 20.0])
        return obs, new, -jnp.abs(pos), jnp.abs(pos) > 1.0, {}

    def action_space(self, params=None):
        return spaces.Box(-1.0, 1.0, (1,), jnp.float32)

    def observation_space(self, params=None):
        return spaces.Box(-jnp.inf, jnp.inf, (2,), jnp.float32)


@pytest.fixture(scope="module")
def walk_data():
    env = Walk()
    behaviour = pcollect.Behaviour(env, env.default_params, num_envs=4)
    data = behaviour.rollout(behaviour.act_random, jnp.zeros(()), jax.random.PRNGKey(0), 500)
    again = behaviour.rollout(behaviour.act_random, jnp.zeros(()), jax.random.PRNGKey(0), 500)
    return data, again


def test_episode_boundaries(walk_data):
    data, again = walk_data
    for key in data:  # deterministic given the key
        np.testing.assert_array_equal(data[key], again[key])
    assert len(data["rewards"]) == 500
    term, tout = data["terminals"], data["timeouts"]
    assert term.any() and tout[:-1].any()
    assert not (term & tout).any()
    # terminals only on true terminations (|pos| > 1 in the pre-reset observation)
    np.testing.assert_array_equal(term, np.abs(data["next_observations"][:, 0]) > 1.0)
    # timeouts (except the cut last row) only on step-20 rows without termination
    steps = np.round(data["next_observations"][:, 1] * 20).astype(int)
    assert (steps[:-1][tout[:-1]] == 20).all()
    np.testing.assert_array_equal(tout[:-1], (steps[:-1] == 20) & ~term[:-1])
    assert tout[-1]  # the cut row
    # contiguous episodes: within an episode next_obs[i] == obs[i+1]; at done rows they differ (pre-reset obs)
    done = term | tout
    same = np.all(data["next_observations"][:-1] == data["observations"][1:], axis=1)
    np.testing.assert_array_equal(same, ~done[:-1])
    # each episode starts at step 0
    starts = np.concatenate([[0], np.nonzero(done)[0][:-1] + 1])
    assert (data["observations"][starts, 1] == 0).all()


def test_policy_sequence_follows_the_on_policy_schedule():
    """PPO experts' training data is regenerated: policy i acts for steps [i n, (i + 1) n) of every env, and
    episodes run on across policy changes (as in the learner's rollouts); rows are in replay layout."""
    env = Walk()
    behaviour = pcollect.Behaviour(env, env.default_params, num_envs=4)
    policies = jnp.array([-0.5, 0.25, 0.75])  # policy i always plays action policies[i]
    rows = behaviour.policy_sequence(lambda p, k, o: (jnp.full((1,), p), jnp.zeros(())), policies,
                                     steps_per_policy=7, num_envs=3, key=jax.random.PRNGKey(0))
    assert rows["actions"].shape == (3 * 7 * 3, 1)
    step = np.arange(63) // 3  # row j = step j // E of env j % E
    np.testing.assert_allclose(rows["actions"][:, 0], np.asarray(policies)[step // 7])
    grid = {k: v.reshape((21, 3) + v.shape[1:]) for k, v in rows.items()}
    done = grid["terminals"] | grid["timeouts"]
    same = np.all(grid["next_observations"][:-1] == grid["observations"][1:], axis=-1)
    np.testing.assert_array_equal(same, ~done[:-1])  # no reset at the policy changes (steps 7 and 14)
    assert (grid["observations"][7, :, 1] > 0).any()


def test_episode_order_and_stitch():
    done = np.array([[0, 1], [1, 0], [0, 0], [0, 1]], bool)  # (T=4, E=2)
    t, e = pcollect.episode_order(done)
    assert list(zip(t, e, strict=True)) == [(0, 1), (0, 0), (1, 0), (1, 1), (2, 1), (3, 1)]
    t, e = pcollect.episode_order(done, tails=True)
    assert list(zip(t, e, strict=True))[-2:] == [(2, 0), (3, 0)]
    a = synthetic(n_eps=(2, 3), dones=("timeout", "timeout"))
    a["timeouts"][-1] = False  # unfinished last episode: cut away by stitch
    b = synthetic(n_eps=(2,), dones=("terminal",), seed=1)
    s = pcollect.stitch(a, b, cap=100)
    assert len(s["rewards"]) == 2 + 2
    np.testing.assert_array_equal(s["observations"][2:], b["observations"])
    assert len(pcollect.stitch(a, b, cap=3)["rewards"]) == 3


# --- 2 + 4. the whole pipeline on a tiny SAC run (round trip, kinds, resumability) -----------------------

TINY = dict(env="Pendulum-v1", size=600, expert_steps=500, checkpoint_every=250, sac_rollout_steps=250,
            sac_learning_starts=250, sac_hidden=(16, 16), num_envs=4, eval_episodes=4, ref_episodes=4,
            episode_length=50, progress=False)


@pytest.fixture(scope="module")
def collected(tmp_path_factory):
    out = str(tmp_path_factory.mktemp("datasets"))
    config = pcollect.CollectConfig(kinds=pcollect.KINDS, out=out, **TINY)
    return config, pcollect.collect(config)


def test_round_trip_layout(collected):
    config, paths = collected
    data, meta = pdata.read_hdf5(paths["medium"])
    for key in ("observations", "actions", "rewards", "next_observations", "terminals", "timeouts",
                "infos/action_log_probs"):
        assert key in data
    assert data["observations"].shape == (600, 3) and data["observations"].dtype == np.float32
    assert data["actions"].shape == (600, 1) and np.abs(data["actions"]).max() <= 1.0
    assert data["rewards"].shape == (600,) and data["terminals"].dtype == np.bool_
    exact = pdata.load(paths["medium"], view="exact")
    for key in pdata.FLAT_KEYS:
        np.testing.assert_array_equal(exact[key], data[key])
    for key in ("env_id", "kind", "ref_min_score", "ref_max_score", "collect_seed", "policy_step", "git_hash",
                "episode_length", "backend"):
        assert key in meta
    assert meta["kind"] == "medium" and meta["episode_length"] == 50 and meta["backend"] == "gymnax"
    with h5py.File(paths["medium"]) as f:
        assert f["observations"].compression == "gzip"


def test_kinds(collected):
    config, paths = collected
    loaded = {k: pdata.read_hdf5(p) for k, p in paths.items()}
    meta = loaded["medium"][1]
    evals = np.load(os.path.join(config.out, "Pendulum-v1-expert-purerl-v0.ckpt.npz"))["evals"]
    m = meta["medium_checkpoint"]
    lo, hi = meta["ref_min_score"], meta["ref_max_score"]
    assert m == pcollect.medium_index(evals, lo, hi, config.medium_fraction)
    threshold = lo + config.medium_fraction * (hi - lo)
    assert all(evals[j] < threshold for j in range(1, m))
    # medium-replay: exactly the replay transitions before the medium checkpoint (sac_num_envs = 1: in order)
    saved = np.load(os.path.join(config.out, "Pendulum-v1-expert-purerl-v0.ckpt.npz"))
    mr = loaded["medium-replay"][0]
    assert len(mr["rewards"]) == meta["policy_step"] == 250 * m
    np.testing.assert_array_equal(mr["observations"], saved["buffer_observations"][: 250 * m])
    np.testing.assert_array_equal(mr["terminals"], saved["buffer_terminals"][: 250 * m])
    assert mr["timeouts"][-1]
    # medium-expert = stitch(medium, expert)
    me = pcollect.stitch(loaded["medium"][0], loaded["expert"][0], 2 * config.size)
    for key in pdata.FLAT_KEYS:
        np.testing.assert_array_equal(loaded["medium-expert"][0][key], me[key])
    assert len(loaded["full-replay"][0]["rewards"]) == min(config.size, config.expert_steps)  # whole buffer
    assert len(loaded["random"][0]["rewards"]) == 600


def test_resume_reuses_expert_and_is_deterministic(collected, capsys):
    config, paths = collected
    before = pdata.read_hdf5(paths["medium"])[0]
    os.remove(paths["medium"])
    verbose = pcollect.CollectConfig(kinds=("medium", "expert"), out=config.out, **{**TINY, "progress": True})
    pcollect.collect(verbose)
    err = capsys.readouterr().err
    assert "reusing the expert checkpoint" in err and "exists, kept" in err
    after = pdata.read_hdf5(paths["medium"])[0]
    for key in before:
        np.testing.assert_array_equal(before[key], after[key])


def test_existing_file_never_overwritten(collected, tmp_path):
    config, paths = collected
    d = synthetic()
    with pytest.raises(ValueError, match="exists"):
        pdata.write_hdf5(paths["random"], d, {})
    path = str(tmp_path / "x.hdf5")
    pdata.write_hdf5(path, d, {})
    pdata.write_hdf5(path, d, {}, overwrite=True)


# --- 5. Minari --------------------------------------------------------------------------------------------

def write_minari(root, data_format="hdf5", dict_obs=False):
    """A hand-made dataset in Minari 0.5's layout (`data/metadata.json`, `data/main_data.hdf5`); the real
    thing, written by minari itself, is checked in `test_minari_written_by_minari`."""
    rng = np.random.default_rng(0)
    episodes = []
    for i, t in enumerate((3, 5)):
        episodes.append({
            "observations": rng.normal(size=(t + 1, 2)).astype(np.float32),
            "actions": rng.uniform(-1, 1, (t, 1)).astype(np.float32),
            "rewards": rng.normal(size=t),
            "terminations": np.arange(t) == t - 1 if i == 0 else np.zeros(t, bool),
            "truncations": np.zeros(t, bool) if i == 0 else np.arange(t) == t - 1,
        })
    bad_datasets.write_minari_dir(root, episodes, {"ref_min_score": -10.0, "ref_max_score": 30.0},
                                  data_format=data_format, dict_obs=dict_obs)
    return [(e["observations"], e["actions"], e["rewards"]) for e in episodes]


def test_minari_conversion(tmp_path):
    root = str(tmp_path / "minari")
    episodes = write_minari(root)
    d = pdata.load(root)  # exact by default
    assert d["observations"].shape == (8, 2)
    (obs0, _, rew0), (obs1, _, rew1) = episodes
    np.testing.assert_array_equal(d["observations"], np.concatenate([obs0[:-1], obs1[:-1]]))
    np.testing.assert_array_equal(d["next_observations"], np.concatenate([obs0[1:], obs1[1:]]))
    np.testing.assert_allclose(d["rewards"], np.concatenate([rew0, rew1]).astype(np.float32))
    np.testing.assert_array_equal(d["terminals"], [0, 0, 1, 0, 0, 0, 0, 0])
    np.testing.assert_array_equal(d["timeouts"], [0, 0, 0, 0, 0, 0, 0, 1])
    meta = pdata.metadata(root)
    assert pdata.reference_returns(meta) == (-10.0, 30.0)
    assert pdata.score_of([10.0], meta) == pytest.approx(50.0)
    # the dataset's data/ directory works too; its main_data.hdf5 gets a pointer to the directory
    np.testing.assert_array_equal(pdata.load(os.path.join(root, "data"))["actions"], d["actions"])
    with pytest.raises(ValueError, match="looks like a Minari main_data.hdf5 file; pass its dataset dir"):
        pdata.load(os.path.join(root, "data", "main_data.hdf5"))
    # not a Minari directory / the Minari < 0.5 layout (no metadata.json)
    with pytest.raises(ValueError, match="is not a Minari dataset directory"):
        pdata.load(str(tmp_path))
    os.remove(os.path.join(root, "data", "metadata.json"))
    with pytest.raises(ValueError, match="written by Minari < 0.5"):
        pdata.load(root)


def test_minari_dict_obs_and_arrow(tmp_path):
    root = str(tmp_path / "dict")
    episodes = write_minari(root, dict_obs=True)
    with pytest.raises(ValueError, match=r"obs_keys.*|\['a', 'b'\]"):
        pdata.load(root)
    d = pdata.load(root, obs_keys=["a", "b"])
    np.testing.assert_array_equal(d["observations"][:3], episodes[0][0][:-1])
    arrow = str(tmp_path / "arrow")
    write_minari(arrow, data_format="arrow")
    try:
        import pyarrow  # noqa: F401
        expected = "'arrow' datasets are not supported yet"
    except ImportError:
        expected = "needs pyarrow"
    with pytest.raises(ValueError, match=expected):
        pdata.load(arrow)


def collect_minari(env, dataset_id, episodes):
    """Random episodes recorded by minari's own DataCollector, saved as a dataset in the hdf5 format (minari's
    default, named explicitly) under $MINARI_DATASETS_PATH/<dataset_id>."""
    import minari

    # minari warns about unset author, code_permalink, ... and (dict case) an env spec it cannot serialise
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        collector = minari.DataCollector(env, data_format="hdf5")
        collector.action_space.seed(0)
        for seed in range(episodes):
            collector.reset(seed=seed)
            done = False
            while not done:
                _, _, terminated, truncated, _ = collector.step(collector.action_space.sample())
                done = terminated or truncated
        collector.create_dataset(dataset_id, ref_min_score=-1.0, ref_max_score=1.0, algorithm_name="random")
    collector.close()
    return minari.load_dataset(dataset_id)


@pytest.mark.parametrize("env_id", ["Pendulum-v1", "CartPole-v1", "dict"])
def test_minari_written_by_minari(tmp_path, monkeypatch, env_id):
    """A dataset written by minari itself loads with the arrays minari's own reader gives, per row."""
    pytest.importorskip("minari", reason="minari is a dev extra (pip install -e '.[dev]')")
    import gymnasium as gym

    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path))  # nothing written to ~/.minari
    if env_id == "dict":  # dict observations: Pendulum's split into "a" (cos, sin) and "b" (velocity)
        base = gym.make("Pendulum-v1", max_episode_steps=12)
        space = gym.spaces.Dict({"a": gym.spaces.Box(-1, 1, (2,)), "b": gym.spaces.Box(-8, 8, (1,))})
        env = gym.wrappers.TransformObservation(base, lambda o: {"a": o[:2], "b": o[2:]}, space)
    else:
        env = gym.make(env_id, max_episode_steps=20)
    dataset_id = f"purerl-test/{env_id.split('-')[0].lower()}-v0"
    dataset = collect_minari(env, dataset_id, episodes=4)
    root = tmp_path / dataset_id
    # minari's layout: metadata.json and main_data.hdf5 under <dataset_id>/data, nothing at the root
    assert sorted(os.listdir(root)) == ["data"]
    assert sorted(os.listdir(root / "data")) == ["main_data.hdf5", "metadata.json"]
    episodes = list(dataset.iterate_episodes())
    assert len(episodes) == 4
    if env_id == "dict":
        obs = [np.concatenate([e.observations["a"], e.observations["b"]], 1) for e in episodes]
    else:
        obs = [np.asarray(e.observations, np.float32).reshape(len(e.observations), -1) for e in episodes]
    expected = {
        "observations": np.concatenate([o[:-1] for o in obs]),
        "next_observations": np.concatenate([o[1:] for o in obs]),
        "actions": np.concatenate([np.asarray(e.actions, np.float32).reshape(len(e.rewards), -1)
                                   for e in episodes]),
        "rewards": np.concatenate([e.rewards for e in episodes]).astype(np.float32),
        "terminals": np.concatenate([e.terminations for e in episodes]),
        "timeouts": np.concatenate([e.truncations for e in episodes]),
    }
    obs_keys = ["a", "b"] if env_id == "dict" else None
    for path in (root, root / "data"):
        d = pdata.load(str(path), obs_keys=obs_keys)
        assert len(d["rewards"]) == dataset.total_steps
        for key, value in expected.items():
            np.testing.assert_array_equal(d[key], value, err_msg=key)
    # Pendulum's episodes end at the time limit; random CartPole falls over before step 20 (seeded)
    assert expected["terminals" if env_id == "CartPole-v1" else "timeouts"].sum() == 4
    eps = pdata.load(str(root), view="episodes", obs_keys=obs_keys)
    assert [len(e["rewards"]) for e in eps] == [len(e.rewards) for e in episodes]
    assert pdata.reference_returns(pdata.metadata(str(root), obs_keys)) == (-1.0, 1.0)


# --- 6. normalised score ------------------------------------------------------------------------------------

@pytest.mark.parametrize("env", ["hopper", "halfcheetah", "walker2d", "ant"])
def test_normalized_score_d4rl_table(env):
    lo, hi = pdata.reference_returns(name=f"{env}-medium-v2")
    assert (lo, hi) == pdata.D4RL_REFS[env]
    assert pdata.normalized_score(lo, lo, hi) == pytest.approx(0.0)
    assert pdata.normalized_score(hi, lo, hi) == pytest.approx(100.0)
    assert pdata.normalized_score((lo + hi) / 2, lo, hi) == pytest.approx(50.0)


def test_normalized_score_from_purerl_metadata(collected):
    _, paths = collected
    meta = pdata.metadata(paths["expert"])
    lo, hi = pdata.reference_returns(meta, name="hopper")  # the file's own refs win over the table
    assert (lo, hi) == (meta["ref_min_score"], meta["ref_max_score"])
    assert pdata.score_of([lo], meta) == pytest.approx(0.0, abs=1e-4)
    assert pdata.score_of([hi], meta) == pytest.approx(100.0, abs=1e-4)
    assert pdata.score_of([lo, hi], meta) == pytest.approx(50.0, abs=1e-4)


# --- bad input --------------------------------------------------------------------------------------------

def test_validation_errors(tmp_path):
    d = synthetic()
    missing = {k: v for k, v in d.items() if k != "actions"}
    with pytest.raises(ValueError, match="'actions'"):
        pdata.validate(missing)
    short = {**d, "rewards": d["rewards"][:-1]}
    with pytest.raises(ValueError, match="'rewards'.*length mismatch"):
        pdata.validate(short)
    with pytest.raises(ValueError, match="'observations' has dimension 2 but the environment's is 3"):
        pdata.validate(d, obs_dim=3)
    path = str(tmp_path / "m.hdf5")
    with h5py.File(path, "w") as f:
        for k, v in missing.items():
            f[k] = v
    with pytest.raises(ValueError, match="'actions'"):
        pdata.load(path)
    with pytest.raises(ValueError, match="unknown view"):
        pdata.load(path, view="nope")
    with pytest.raises(ValueError, match="not found"):
        pdata.load(str(tmp_path / "none.hdf5"))


@pytest.mark.parametrize("fmt", bad_datasets.FORMATS)
@pytest.mark.parametrize("case", bad_datasets.CASES)
def test_bad_dataset_files(tmp_path, fmt, case):
    """Each defect gives a ValueError naming the key (and the first bad row), at load and metadata time."""
    path = bad_datasets.write_bad_datasets(str(tmp_path), fmt)[case]
    expected = bad_datasets.MESSAGES[fmt][case]
    with pytest.raises(ValueError, match=expected):
        pdata.load(path)
    with pytest.raises(ValueError, match=expected):  # the CLI reads the metadata first (env_id)
        pdata.metadata(path)


@pytest.mark.parametrize("fmt", bad_datasets.FORMATS)
def test_bad_dataset_baseline_is_good(tmp_path, fmt):
    """Without its defect each bad file is a valid Pendulum-v1 dataset."""
    path = bad_datasets.write_good_dataset(str(tmp_path / ("good.hdf5" if fmt == "hdf5" else "good")), fmt)
    d = pdata.load(path, env_obs_dim=bad_datasets.OBS_DIM, env_act_dim=bad_datasets.ACT_DIM)
    for key, value in bad_datasets.good_rows().items():
        np.testing.assert_array_equal(d[key], value)


def test_validate_values():
    d = synthetic()
    with pytest.raises(ValueError, match=r"key 'observations' has dtype \|O \(Python objects"):
        pdata.validate({**d, "observations": d["observations"].astype(object)})
    next_obs = np.where(np.arange(12)[:, None] == 4, -np.inf, d["next_observations"])
    with pytest.raises(ValueError, match=r"'next_observations' holds a non-finite value \(-inf\) at row 4"):
        pdata.validate({**d, "next_observations": next_obs})
    with pytest.raises(ValueError, match=r"key 'terminals' holds a non-finite value \(nan\) at row 0"):
        pdata.validate({**d, "terminals": np.where(np.arange(12) == 0, np.nan, 0.0)})
    with pytest.raises(ValueError, match=r"'next_observations' has shape \(12, 3\) but 'observations' has"):
        pdata.validate({**d, "next_observations": np.zeros((12, 3), np.float32)})
    with pytest.raises(ValueError, match="key 'rewards' is a scalar; it needs one row per transition"):
        pdata.validate({**d, "rewards": np.float32(1.0)})
    pdata.validate({**d, "infos/action_log_probs": np.full(12, -np.inf)})  # only the flat keys are checked


def test_dataset_env_mismatch(tmp_path):
    from purerl import offline

    path = str(tmp_path / "d.hdf5")
    pdata.write_hdf5(path, synthetic(), {"env_id": "Pendulum-v1", "purerl_version": "0"})  # obs dim 2 != 3
    with pytest.raises(ValueError, match="dataset/env mismatch.*dimension 2 but the environment's is 3"):
        offline.prepare(path)


def test_resolve_and_cache_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("PURERL_DATA", str(tmp_path))
    assert pdata.default_cache_dir() == str(tmp_path)
    path = pdata.dataset_path("Pendulum-v1", "medium-replay")
    assert path == str(tmp_path / "Pendulum-v1-medium-replay-purerl-v0.hdf5")
    with pytest.raises(ValueError, match="purerl collect --env Pendulum-v1 --kinds medium-replay"):
        pdata.resolve("Pendulum-v1-medium-replay")
    pdata.write_hdf5(path, synthetic(), {})
    assert pdata.resolve("Pendulum-v1-medium-replay") == path
    monkeypatch.delenv("PURERL_DATA")
    assert pdata.default_cache_dir().endswith(os.path.join("purerl", "datasets"))


def test_collect_bad_config():
    with pytest.raises(ValueError, match="kinds must be one of random, medium, .*, got 'medum'"):
        pcollect.validate(pcollect.CollectConfig(kinds=("medum",)))
    with pytest.raises(ValueError, match="discrete actions"):
        pcollect.validate(pcollect.CollectConfig(env="CartPole-v1", expert_steps=10_000))
    with pytest.raises(ValueError, match="checkpoint_every"):
        pcollect.validate(pcollect.CollectConfig(checkpoint_every=300, sac_rollout_steps=250))
    with pytest.raises(ValueError, match="expert_algo must be one of sac, ppo, got 'td3'"):
        pcollect.validate(pcollect.CollectConfig(expert_algo="td3"))
    with pytest.raises(ValueError, match="multiple of ppo_num_envs"):
        pcollect.validate(pcollect.CollectConfig(expert_algo="ppo", checkpoint_every=3000))
    with pytest.raises(ValueError, match="num_minibatches"):  # PPO's own batch arithmetic, before compiling
        pcollect.validate(pcollect.CollectConfig(expert_algo="ppo", ppo_num_envs=5, ppo_num_steps=10,
                                                 checkpoint_every=1000, expert_steps=1000))


def test_cli_collect_rejects_bad_kind(capsys):
    from purerl.cli import main

    with pytest.raises(SystemExit):
        main(["collect", "--env", "Pendulum-v1", "--kinds", "medium,bogus", "--size", "10", "--out",
              "/nonexistent"])
    assert "invalid choice 'bogus' for argument '--kinds'" in capsys.readouterr().err

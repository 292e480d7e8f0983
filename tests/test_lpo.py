"""Learned objectives (LPO / TA-LPO / DPO) and their ES meta-training: drift conditions, clip-as-drift, DPO,
ES on a toy, population vmap == sequential runs, population sharded over 2 processes == vmap, resume ==
uninterrupted, bad input."""

import dataclasses
import operator
from functools import partial
from pathlib import Path

import jax
import jax.flatten_util
import jax.numpy as jnp
import numpy as np
import pytest
from loopback import free_port, launch, python, wait_all

from purerl.agents import lpo, ppo

RATIOS = jnp.exp(jnp.linspace(-3.0, 3.0, 241))
ADVS = jnp.linspace(-5.0, 5.0, 101)
R, A = jnp.meshgrid(RATIOS, ADVS, indexing="ij")


def random_params(net, key, scale):
    _, template = lpo.drift_template(net.hidden, net.temporal)
    flat, unravel = jax.flatten_util.ravel_pytree(template)
    return unravel(scale * jax.random.normal(key, flat.shape))


@partial(jax.jit, static_argnums=0)
def _drift_checks(net, params, progress):
    ones = jnp.ones_like(ADVS)
    prog = jnp.full_like(ADVS, progress)
    slope = jax.vmap(jax.grad(lambda r, a, p: net.apply(params, r, a, p)))(ones, ADVS, prog)
    return net.apply(params, R, A, jnp.full_like(R, progress)), net.apply(params, ones, ADVS, prog), slope


@pytest.mark.parametrize("temporal", [False, True])
@pytest.mark.parametrize("ppo_init", [False, True])
def test_drift_nonnegative_and_zero_with_zero_slope_at_ratio_one(temporal, ppo_init):
    net = lpo.DriftNet(hidden=32, temporal=temporal, ppo_init=ppo_init)
    for i, scale in enumerate([0.01, 1.0, 10.0] * 2):
        params = random_params(net, jax.random.PRNGKey(i), scale)
        for progress in (0.0, 0.37, 1.0):
            d, at_one, slope = _drift_checks(net, params, progress)
            assert float(d.min()) >= 0.0
            assert np.all(np.asarray(at_one) == 0.0)
            assert np.all(np.asarray(slope) == 0.0)


def test_drift_is_not_trivially_zero():
    net = lpo.DriftNet(hidden=32, temporal=True, ppo_init=False)
    params = random_params(net, jax.random.PRNGKey(0), 1.0)
    assert float(net.apply(params, R, A, jnp.full_like(R, 0.5)).max()) > 0.1


def test_temporal_net_at_progress_zero_equals_lpo_net_with_first_rows():
    ta = lpo.DriftNet(hidden=16, temporal=True)
    plain = lpo.DriftNet(hidden=16, temporal=False)
    params = random_params(ta, jax.random.PRNGKey(3), 0.5)
    sub = jax.tree.map(lambda x: x, params)
    sub["params"]["hidden_layer"]["kernel"] = params["params"]["hidden_layer"]["kernel"][:8]
    np.testing.assert_allclose(ta.apply(params, R, A, jnp.zeros_like(R)), plain.apply(sub, R, A), atol=1e-6)


def test_ppo_clip_as_drift_equals_clipped_loss():
    k1, k2 = jax.random.split(jax.random.PRNGKey(0))
    r = jnp.exp(0.5 * jax.random.normal(k1, (4096,)))
    a = jax.random.normal(k2, (4096,))

    def clipped(r):
        return -jnp.minimum(r * a, jnp.clip(r, 0.8, 1.2) * a).mean()

    def as_drift(r):
        return -(r * a - lpo.clip_drift(r, a, 0.2)).mean()

    np.testing.assert_allclose(clipped(r), as_drift(r), atol=1e-6)
    np.testing.assert_allclose(jax.grad(clipped)(r), jax.grad(as_drift)(r), atol=1e-7)


def test_dpo_drift_conditions_and_penalised_sides():
    d = lpo.dpo_drift(R, A)
    assert float(d.min()) >= 0.0
    ones = jnp.ones_like(ADVS)
    assert np.all(np.asarray(lpo.dpo_drift(ones, ADVS)) == 0.0)
    assert np.all(np.asarray(jax.vmap(jax.grad(lpo.dpo_drift))(ones, ADVS)) == 0.0)
    # PPO's free side
    np.testing.assert_allclose(np.asarray(d)[np.asarray((R - 1.0) * A <= 0)], 0.0, atol=1e-6)
    # hand value: r = 3, A = 1 -> x = 2, D = 2 - 2 tanh(1)
    np.testing.assert_allclose(lpo.dpo_drift(jnp.array(3.0), jnp.array(1.0)), 2 - 2 * np.tanh(1.0), rtol=1e-6)


def test_bias_free_net_is_even_in_its_params():
    """Why init_scale > 0: at ES mean 0 each antithetic pair would score exactly the same."""
    net = lpo.DriftNet(hidden=16, temporal=False, ppo_init=False)
    params = random_params(net, jax.random.PRNGKey(1), 1.0)
    neg = jax.tree.map(lambda x: -x, params)
    np.testing.assert_allclose(net.apply(params, R, A, method="raw"), net.apply(neg, R, A, method="raw"),
                               atol=1e-6)


# ---------------------------------------------------------------------------------------------------------
# ES loop on a toy fitness (no inner PPO): improvement, sign, resume


def toy_cfg(tmp_path, **kw):
    base = dict(hidden=4, temporal=False, population=16, generations=60, sigma=0.1, es_lr=0.05,
                checkpoint_every=2, out=str(tmp_path / "meta"))
    base.update(kw)
    return lpo.MetaConfig(**base)


def toy_population_fitness(population, keys):
    flat = jax.vmap(lambda p: jax.flatten_util.ravel_pytree(p)[0])(population)
    return -((flat - 0.5) ** 2).sum(axis=1)  # maximised at 0.5 everywhere


def test_es_improves_toy_fitness(tmp_path):
    res = lpo.meta_train(toy_cfg(tmp_path), log=lambda m: None, population_fitness=toy_population_fitness)
    per_gen = res["fitness"].mean(axis=1)
    start = -0.25 * 36
    assert per_gen[:3].mean() < 0.9 * start + 1.0
    assert per_gen[-5:].mean() > 0.25 * start  # distance to the optimum cut by > 75 %
    mean = jax.flatten_util.ravel_pytree(res["es_state"].mean)[0]
    assert float(jnp.abs(mean - 0.5).mean()) < 0.25


def test_resume_equals_uninterrupted(tmp_path):
    full = lpo.meta_train(toy_cfg(tmp_path / "a", generations=6), log=lambda m: None,
                          population_fitness=toy_population_fitness)
    part_cfg = toy_cfg(tmp_path / "b", generations=4)
    lpo.meta_train(part_cfg, log=lambda m: None, population_fitness=toy_population_fitness)
    resumed = lpo.meta_train(dataclasses.replace(part_cfg, generations=6, resume=True), log=lambda m: None,
                             population_fitness=toy_population_fitness)
    np.testing.assert_array_equal(full["fitness"], resumed["fitness"])
    for x, y in zip(jax.tree.leaves(full["es_state"]), jax.tree.leaves(resumed["es_state"]), strict=True):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))
    for name in ("drift_mean.msgpack", "drift_best.msgpack"):
        net, params = lpo.load_drift(str(tmp_path / "b" / "meta" / name))
        assert net.hidden == 4


# ---------------------------------------------------------------------------------------------------------
# Inner PPO with a traced drift: population vmap == sequential, shard == vmap (one tiny inner config)

INNER = lpo.MetaConfig(population=4, total_timesteps=256, num_envs=2, num_steps=64, update_epochs=2,
                       num_minibatches=2, eval_episodes=4, hidden=16, temporal=True)


def make_population():
    _, template = lpo.drift_template(INNER.hidden, INNER.temporal)
    flat, unravel = jax.flatten_util.ravel_pytree(template)
    z = 0.3 * jax.random.normal(jax.random.PRNGKey(7), (4, flat.size))
    return jax.vmap(unravel)(z)


def inner_keys():
    return jnp.broadcast_to(jax.random.PRNGKey(1), (4, 2))  # every member trains on the same seed


@pytest.fixture(scope="module")
def population():
    return make_population()


@pytest.fixture(scope="module")
def vmapped_fitness(population):
    net, _ = lpo.drift_template(INNER.hidden, INNER.temporal)
    return np.asarray(jax.jit(jax.vmap(lpo.make_member_fitness(INNER, net)))(population, inner_keys()))


def test_population_vmap_equals_sequential_runs(population, vmapped_fitness):
    net, _ = lpo.drift_template(INNER.hidden, INNER.temporal)
    single = jax.jit(lpo.make_member_fitness(INNER, net))
    # itemgetter binds member i when it is made (a lambda would read the loop variable whenever it is called)
    members = [jax.tree.map(operator.itemgetter(i), population) for i in range(4)]
    seq = [float(single(member, jax.random.PRNGKey(1))) for member in members]
    np.testing.assert_allclose(vmapped_fitness, seq, rtol=1e-5)
    assert np.all(np.isfinite(vmapped_fitness))


def test_population_sharded_over_two_processes_equals_vmap(vmapped_fitness, tmp_path):
    # Two processes with one CPU device each (see tests/loopback.py for why not two devices in one process).
    out, port = str(tmp_path / "fitness.npy"), str(free_port())
    worker = str(Path(__file__).parent / "lpo_shard_worker.py")
    wait_all(launch([python(worker, str(pid), port, out) for pid in range(2)]), timeout=300)
    np.testing.assert_allclose(np.load(out), vmapped_fitness, rtol=1e-5)


# ---------------------------------------------------------------------------------------------------------
# Bad input


def test_population_not_divisible_by_devices(tmp_path):
    with pytest.raises(ValueError, match="population = 6 is not divisible by num_devices = 4"):
        lpo.validate_meta(toy_cfg(tmp_path, population=6, num_devices=4))
    with pytest.raises(ValueError, match="population must be even"):
        lpo.validate_meta(toy_cfg(tmp_path, population=7))


def test_unknown_objective_is_refused():
    with pytest.raises(ValueError, match="objective must be one of clip, dpo, learned"):
        ppo.make_agent(ppo.Config(objective="lpo_v2"))


def test_drift_file_of_wrong_shape_or_missing_is_refused(tmp_path):
    net, params = lpo.drift_template(hidden=8, temporal=True)
    path = str(tmp_path / "d.msgpack")
    lpo.save_drift(path, params, hidden=8, temporal=False)  # meta says 8 features, params have 16
    with pytest.raises(ValueError, match="parameter shapes"):
        ppo.make_agent(ppo.Config(objective="learned", drift=path))
    with pytest.raises(ValueError, match="needs a drift file"):
        ppo.make_agent(ppo.Config(objective="learned"))
    with pytest.raises(ValueError, match="does not exist"):
        ppo.make_agent(ppo.Config(objective="learned", drift=str(tmp_path / "nope")))
    (tmp_path / "junk").write_bytes(b"not msgpack")
    with pytest.raises(ValueError, match="not a purerl drift file"):
        ppo.make_agent(ppo.Config(objective="learned", drift=str(tmp_path / "junk")))


def test_saved_drift_round_trips_into_ppo(tmp_path):
    net, _ = lpo.drift_template(hidden=8, temporal=True)
    params = random_params(net, jax.random.PRNGKey(2), 0.5)
    path = str(tmp_path / "d.msgpack")
    lpo.save_drift(path, params, hidden=8, temporal=True)
    drift = lpo.objective_drift(ppo.Config(objective="learned", drift=path))
    p = jnp.full_like(R, 0.3)
    np.testing.assert_array_equal(drift(R, jnp.log(R), A, p), net.apply(params, R, A, p, jnp.log(R)))


@pytest.mark.parametrize("ppo_init", [True, False])
def test_drift_from_scratch_or_from_ppo_clip_round_trips(tmp_path, ppo_init):
    """ppo_init=False (the LPO paper's start): zero weights are no drift at all; True: they are PPO-clip."""
    net, zero = lpo.drift_template(hidden=8, temporal=True, ppo_init=ppo_init)
    path = str(tmp_path / "d.msgpack")
    lpo.save_drift(path, zero, hidden=8, temporal=True, ppo_init=ppo_init)
    loaded_net, _ = lpo.load_drift(path)
    assert loaded_net.ppo_init is ppo_init
    drift = lpo.objective_drift(ppo.Config(objective="learned", drift=path))
    expected = jax.nn.relu(lpo.clip_drift(R, A) - net.shift) if ppo_init else jnp.zeros_like(R)
    np.testing.assert_allclose(drift(R, jnp.log(R), A, jnp.full_like(R, 0.5)), expected, atol=1e-7)
    assert bool((expected > 0).any()) is ppo_init

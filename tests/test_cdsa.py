"""CDSA (reconstructed, see purerl/agents/cdsa.py): the spec's tests 1-7 plus bad input."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from purerl import data as pdata
from purerl.agents import cdsa

pytestmark = pytest.mark.timeout(600)

TINY = cdsa.Config(
    score_hidden=(64, 64),
    model_hidden=(64, 64),
    score_batch=1024,
    model_batch=256,
    lr=1e-3,
    model_steps=3000,
    sigma_min=0.08,
    sigma_max=0.6,
    cosine_lr=True,
)

MU = np.array([1.0, -0.5], np.float32)
SIGMA = np.array([[1.0, 0.3], [0.3, 0.5]], np.float32)


@pytest.fixture(scope="module")
def gaussian_models():
    rng = np.random.default_rng(0)
    n = 20000
    x = rng.multivariate_normal(MU, SIGMA, n).astype(np.float32)
    data = {"observations": x, "next_observations": x, "actions": np.zeros((n, 1), np.float32)}
    models, curves = cdsa.train_models(data, TINY, jax.random.PRNGKey(0))
    return models


def test_score_matches_analytic_gaussian(gaussian_models):
    """Spec test 1 (relative error aggregated over the test points: ||s - s*|| / ||s*|| in the L2 sense,
    because pointwise relative error is undefined at x = mu where the true score vanishes)."""
    rng = np.random.default_rng(1)
    x = rng.multivariate_normal(MU, SIGMA, 4000).astype(np.float32)
    inside = (
        np.einsum("ni,ij,nj->n", x - MU, np.linalg.inv(SIGMA), x - MU) <= 4.0
    )  # within 2 std (Mahalanobis)
    x = x[inside]
    _, _, score_fn = cdsa.model_fns(TINY, gaussian_models, 2, 1)
    for sigma in (0.1, 0.5):
        exact = -(x - MU) @ np.linalg.inv(SIGMA + sigma**2 * np.eye(2)).T
        learned = np.asarray(score_fn(jnp.asarray(x), sigma))
        rel = np.sqrt(((learned - exact) ** 2).sum() / (exact**2).sum())
        assert rel < 0.1, (sigma, rel)


def test_dsm_loss_identity():
    """Spec test 2: the exact noised score gives d - sigma^2 tr((Sigma + sigma^2 I)^-1); a zero score d."""
    d, n = 3, 100_000
    rng = np.random.default_rng(2)
    m = rng.normal(size=(d, d))
    cov = m @ m.T / d + 0.2 * np.eye(d)
    mu = rng.normal(size=d)
    kx, kz = jax.random.split(jax.random.PRNGKey(3))
    x = mu + jax.random.normal(kx, (n, d)) @ jnp.asarray(np.linalg.cholesky(cov).T, jnp.float32)
    z = jax.random.normal(kz, (n, d))
    for sigma in (0.1, 0.7):
        c_inv = jnp.asarray(np.linalg.inv(cov + sigma**2 * np.eye(d)), jnp.float32)
        exact = lambda xn, s, c=c_inv: -(xn - mu) @ c.T  # noqa: E731
        loss = float(cdsa.dsm_loss(exact, x, jnp.full((n,), sigma), z))
        target = d - sigma**2 * np.trace(np.linalg.inv(cov + sigma**2 * np.eye(d)))
        assert abs(loss - target) < 0.01 * target, (sigma, loss, target)
        zero = float(cdsa.dsm_loss(lambda xn, s: jnp.zeros_like(xn), x, jnp.full((n,), sigma), z))
        assert abs(zero - d) < 0.01 * d and zero > loss


A = np.array([[0.9, 0.1, 0.0], [0.0, 0.8, 0.2], [0.1, 0.0, 0.95]], np.float32)
B = np.array([[1.0, 0.0], [0.5, 1.0], [0.0, -1.0]], np.float32)  # full column rank


@pytest.fixture(scope="module")
def linear_models():
    rng = np.random.default_rng(4)
    n = 20000
    s = rng.normal(size=(n, 3)).astype(np.float32)
    a = rng.uniform(-0.9, 0.9, size=(n, 2)).astype(np.float32)
    data = {"observations": s, "actions": a, "next_observations": s @ A.T + a @ B.T}
    models, _ = cdsa.train_models(data, TINY, jax.random.PRNGKey(5))
    return models, data


def test_inverse_dynamics_linear_system(linear_models):
    """Spec test 3: I(s, s') recovers a (MSE < 1e-3); jvp and difference forms of a_aux agree for small ds."""
    models, _ = linear_models
    rng = np.random.default_rng(6)
    s = rng.normal(size=(2000, 3)).astype(np.float32)
    a = rng.uniform(-0.8, 0.8, size=(2000, 2)).astype(np.float32)
    forward_fn, inverse_fn, score_fn = cdsa.model_fns(TINY, models, 3, 2)
    mse = float(jnp.mean((inverse_fn(jnp.asarray(s), jnp.asarray(s @ A.T + a @ B.T)) - a) ** 2))
    assert mse < 1e-3, mse
    cfg = dict(lam=1.0, kappa=0.05, sigma_e=0.1)  # ds = 5e-4 * score: small
    forms = [
        jax.vmap(
            lambda si, ai, f=form: cdsa.correct(forward_fn, inverse_fn, score_fn, si, ai, aux_form=f, **cfg)
        )(jnp.asarray(s), jnp.asarray(a * 0.5))
        for form in ("jvp", "difference")
    ]
    assert float(jnp.max(jnp.abs(forms[0] - forms[1]))) < 1e-3
    assert float(jnp.max(jnp.abs(forms[0] - a * 0.5))) > 0  # the correction is not trivially zero


def test_off_switch_bitwise(linear_models):
    """Spec test 4: lam = 0 (static, or traced in a vmapped sweep) returns the base actions bit for bit."""
    models, _ = linear_models
    rng = np.random.default_rng(7)
    obs = jnp.asarray(rng.normal(size=(257, 3)).astype(np.float32))
    w = jnp.asarray(rng.normal(size=(2,)).astype(np.float32))
    # includes -0.0 and values outside [-1, 1]: a0 + 0 * x or clipping would change some of them
    base_act = lambda p, o, k: jnp.where(o[:2] > 1.5, -0.0, o[:2] * p * 1.7)  # noqa: E731
    expected = jax.jit(jax.vmap(lambda o: base_act(w, o, None)))(obs)
    assert (
        np.abs(np.asarray(expected)).max() > 1
        and (np.signbit(np.asarray(expected)) & (np.asarray(expected) == 0)).any()
    )
    cfg = dataclasses.replace(TINY, lam=0.0)
    act = cdsa.make_corrected_policy(base_act, models, cfg, obs_mean=models.obs_mean, obs_std=models.obs_std)
    got = jax.jit(jax.vmap(lambda o: act(w, o, None)))(obs)
    assert np.array_equal(np.asarray(got).view(np.uint32), np.asarray(expected).view(np.uint32))
    swept = jax.jit(jax.vmap(lambda lam: jax.vmap(lambda o: act(w, o, None, lam))(obs)))(
        jnp.array([0.0, 0.5])
    )
    assert np.array_equal(np.asarray(swept[0]).view(np.uint32), np.asarray(expected).view(np.uint32))
    assert not np.array_equal(np.asarray(swept[1]), np.asarray(expected))


def test_correction_direction_point_mass():
    """Spec test 5: analytic point mass s' = s + 0.1 a, data N(0, I), base pushes away from the origin."""
    forward_fn = lambda s, a: s + 0.1 * a  # noqa: E731
    inverse_fn = lambda s, sp: (sp - s) / 0.1  # noqa: E731
    score_fn = lambda x, sigma: -x / (1.0 + sigma**2)  # noqa: E731
    s = jax.random.normal(jax.random.PRNGKey(8), (2000, 2))
    a0 = 0.5 * s / jnp.linalg.norm(s, axis=1, keepdims=True)

    def logp_next(lam):
        a = jax.vmap(lambda si, ai: cdsa.correct(forward_fn, inverse_fn, score_fn, si, ai, lam, 1.0, 0.5))(
            s, a0
        )
        return -0.5 * jnp.sum((s + 0.1 * a) ** 2, 1)

    base = logp_next(0.0)
    prev = base
    for lam in (0.25, 0.5, 1.0):
        cur = logp_next(lam)
        assert float(jnp.mean(cur > base)) >= 0.95, lam
        assert bool(jnp.all(cur >= prev - 1e-6)), lam
        prev = cur


def test_risk_metrics_vs_numpy():
    """Spec test 6."""
    r = jnp.arange(1.0, 101.0)
    assert float(cdsa.value_at_risk(r, 0.1)) == 10.0
    assert float(cdsa.conditional_value_at_risk(r, 0.1)) == 5.5
    rng = np.random.default_rng(9)
    for n, alpha in ((37, 0.1), (100, 0.05), (1000, 0.1)):
        x = rng.normal(size=(3, n)).astype(np.float32)
        var = np.quantile(x, alpha, axis=1, method="lower")
        np.testing.assert_array_equal(np.asarray(cdsa.value_at_risk(jnp.asarray(x), alpha)), var)
        cvar = np.array([row[row <= v].mean() for row, v in zip(x, var, strict=True)])
        np.testing.assert_allclose(
            np.asarray(cdsa.conditional_value_at_risk(jnp.asarray(x), alpha)), cvar, rtol=1e-6
        )


def _write_dataset(path, shift, seed):
    rng = np.random.default_rng(seed)
    n = 256
    obs = (rng.normal(size=(n, 3)) + shift).astype(np.float32)
    d = {
        "observations": obs,
        "actions": rng.uniform(-1, 1, (n, 1)).astype(np.float32),
        "rewards": np.zeros(n, np.float32),
        "next_observations": obs,
        "terminals": np.ones(n, bool),
        "timeouts": np.zeros(n, bool),
    }
    pdata.write_hdf5(
        path,
        d,
        {
            "env_id": "Pendulum-v1",
            "episode_length": 200,
            "purerl_version": "0",
            "ref_min_score": -200.0,
            "ref_max_score": 0.0,
        },
    )
    return path


def test_normalisation_guard(linear_models, tmp_path):
    """Spec test 7 + bad input: mismatched statistics -> ValueError, nothing written."""
    models, _ = linear_models
    base_act = lambda p, o, k: o[:2]  # noqa: E731
    with pytest.raises(ValueError, match="normalisation statistics differ"):
        cdsa.make_corrected_policy(
            base_act, models, TINY, obs_mean=models.obs_mean + 0.1, obs_std=models.obs_std
        )
    with pytest.raises(ValueError, match="normalisation statistics differ"):
        cdsa.make_corrected_policy(
            base_act, models, TINY, obs_mean=models.obs_mean, obs_std=models.obs_std * 2
        )
    first = _write_dataset(str(tmp_path / "a.hdf5"), 0.0, 0)
    second = _write_dataset(str(tmp_path / "b.hdf5"), 3.0, 1)
    out = tmp_path / "out"
    cfg = dataclasses.replace(
        TINY,
        dataset=first,
        models_dataset=second,
        out=str(out),
        base_updates=2,
        model_steps=2,
        eval_episodes=2,
    )
    with pytest.raises(ValueError, match="normalisation statistics differ"):
        cdsa.run(cfg)
    assert not out.exists()


@pytest.mark.parametrize(
    "field,value,match",
    [
        ("sigma_min", 0.0, "sigma_min must be > 0"),
        ("sigma_max", -1.0, "sigma_max must be > 0"),
        ("sigma_e", 0.0, "sigma_e must be > 0"),
        ("sigma_min", 2.0, "sigma_min = 2.0 must be < sigma_max"),
        ("lam", -0.1, "lam must be >= 0"),
        ("aux_form", "exact", "aux_form"),
        ("base", "cql", "base must be"),
    ],
)
def test_bad_config(field, value, match, tmp_path):
    cfg = dataclasses.replace(TINY, **{field: value}, out=str(tmp_path / "out"))
    data = {
        "observations": np.zeros((4, 2), np.float32),
        "actions": np.zeros((4, 1), np.float32),
        "next_observations": np.zeros((4, 2), np.float32),
    }
    with pytest.raises(ValueError, match=match):
        cdsa.train_models(data, cfg, jax.random.PRNGKey(0))
    with pytest.raises(ValueError, match=match):
        cdsa.run(cfg)
    assert not (tmp_path / "out").exists()


def test_run_base_vs_corrected(tmp_path):
    """The entry point end to end on a tiny budget: paired evaluation, risk metrics, results.json written."""
    import json

    path = _write_dataset(str(tmp_path / "d.hdf5"), 0.0, 0)
    cfg = dataclasses.replace(
        TINY,
        dataset=path,
        base_updates=20,
        model_steps=20,
        eval_episodes=3,
        seeds=(0, 1),
        base_hidden=(16, 16),
        score_hidden=(16,),
        model_hidden=(16,),
        out=str(tmp_path / "o"),
    )
    result = cdsa.run(cfg)
    with open(tmp_path / "o" / "results.json") as f:
        assert json.load(f)["summary"] == result["summary"]
    for name in ("base", "cdsa"):
        s = result["summary"][name]
        assert len(s["mean_score"]) == 2 and all(np.isfinite(s["VaR_0.1"]))
        assert all(v <= m for v, m in zip(s["VaR_0.1"], s["mean_score"], strict=True))


def test_cli_train_cdsa_bad_input(tmp_path, capsys):
    """`purerl train cdsa` is wired to cdsa.main: bad input exits with a clear error and writes nothing."""
    from purerl import cli

    out = tmp_path / "out"
    path = _write_dataset(str(tmp_path / "d.hdf5"), 0.0, 0)
    for flags, match in (
        (["--base", "cql", "--dataset", path], "invalid choice 'cql' for argument '--base'"),
        (["--base", "td3_bc", "--dataset", path, "--sigma-e", "0"], "sigma_e must be > 0"),
        (["--base", "td3_bc", "--dataset", str(tmp_path / "missing.hdf5")], "neither an existing path"),
    ):
        with pytest.raises(SystemExit) as err:
            cli.main(["train", "cdsa", *flags, "--out", str(out)])
        assert err.value.code == 2
        assert match in capsys.readouterr().err
        assert not out.exists()


def test_run_prepares_iql_data_like_iql(monkeypatch):
    """The IQL base is trained on IQL's own preprocessing (reward scaling, clipped actions), not TD3+BC's."""
    seen = {}

    def fake_prepare(*args, **kwargs):
        seen.update(kwargs)
        raise RuntimeError("stop before loading")

    monkeypatch.setattr(cdsa.offline, "prepare", fake_prepare)
    with pytest.raises(RuntimeError, match="stop before loading"):
        cdsa.run(dataclasses.replace(TINY, base="iql", dataset="unused"))
    assert seen["reward_scaling"] == "episode_range" and seen["clip_actions"] == 1.0 - 1e-5

"""benchmarks/bench_sac.py learn: PMOE-SAC's result carries its router's use of experts over training."""

import numpy as np

from benchmarks import bench_sac


def test_pmoe_learn_records_the_router_over_training_and_per_seed():
    tiny = dict(rollout_steps=50, learning_starts=100, batch_size=16, hidden=(16, 16), eval_episodes=2)
    res = bench_sac.learn("pmoe_sac", 2, 1000, "Pendulum-v1", num_experts=4, **tiny)
    router = res["extra"]["router"]
    assert router["env_steps"] == [50 * (i + 1) for i in (0, 2, 4, 6, 8, 11, 13, 15, 17, 19)]  # of 20
    for name in bench_sac.ROUTER_METRICS:
        assert len(router[name]["seed_mean"]) == 10 and len(router[name]["final_per_seed"]) == 2
    effective = np.array(router["effective_experts"]["final_per_seed"])
    entropy = np.array(router["router_entropy"]["final_per_seed"])
    assert np.all((effective >= 1.0) & (effective <= 4.0 + 1e-6))  # exp(H(mean w)) over 4 experts
    assert np.all((entropy >= 0.0) & (entropy <= np.log(4.0) + 1e-6))
    assert "router" not in bench_sac.learn("sac", 2, 100, "Pendulum-v1", **tiny)["extra"]  # no router

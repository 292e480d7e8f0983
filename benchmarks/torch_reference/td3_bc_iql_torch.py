"""PyTorch reference timing for TD3+BC and IQL gradient updates (batch 256, 256x256 nets) on a CPU or GPU.

A minimal re-implementation written for this benchmark (no code copied), structured like the reference
implementations the speed bar names: sfujim/TD3_BC (separate Actor and twin-Critic modules, deep-copied
targets, a Python `total_it` counter deciding the actor step, Polyak by a loop over parameters) and
CORL-style IQL (TwinQ, V, Gaussian actor built on torch.distributions.Normal, CosineAnnealingLR on the actor).
Update semantics follow purerl's `td3_bc.py` and `iql.py` docstrings (IQL: V, then the
actor with the new V, then the critics from the new V(s'), then Polyak), i.e. the same work per step as
purerl's agents. Initialisation (PyTorch defaults instead of orthogonal) does not change the cost.

Data: random tensors with hopper's shapes (obs 11, act 3) held in memory; each update draws a batch with
torch.randint and indexes the tensors (the reference replay buffers index numpy arrays and copy to torch;
the in-torch gather is the cheaper choice, so this favours PyTorch slightly).

"8 seeds": PyTorch has no vmap over whole training states here, so 8 independent model sets are updated one
after the other in each step (8 sequential updates per step); updates/s are reported per seed and over all
seeds.

`--device cuda` runs the same code on a GPU (models and data on the device, timings synchronised), the
setting of the published JAX-vs-PyTorch comparisons.

Runs in a separate venv with torch installed (never purerl's):
    /tmp/torchvenv/bin/python benchmarks/torch_reference/td3_bc_iql_torch.py --algo td3_bc --seeds 1
Prints one JSON object per (algo, seeds, threads) to stdout.
"""

from __future__ import annotations

import argparse
import copy
import json
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

OBS, ACT, HID = 11, 3, 256


def mlp(inp: int, out: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(inp, HID), nn.ReLU(), nn.Linear(HID, HID), nn.ReLU(), nn.Linear(HID, out))


class Data:
    """Random offline dataset; `sample()` returns one minibatch (obs, act, reward, next_obs, not_done)."""

    def __init__(self, rows: int, batch: int, seed: int = 0, device: str = "cpu"):
        g = torch.Generator().manual_seed(seed)  # drawn on the CPU, then moved: same data on every device
        self.obs = torch.randn(rows, OBS, generator=g).to(device)
        self.act = (torch.rand(rows, ACT, generator=g) * 2 - 1).to(device)
        self.rew = torch.randn(rows, 1, generator=g).to(device)
        self.next_obs = torch.randn(rows, OBS, generator=g).to(device)
        self.not_done = (torch.rand(rows, 1, generator=g) > 0.001).float().to(device)
        self.rows, self.batch, self.device = rows, batch, device

    def sample(self):
        i = torch.randint(0, self.rows, (self.batch,), device=self.device)
        return self.obs[i], self.act[i], self.rew[i], self.next_obs[i], self.not_done[i]


# --- TD3+BC (sfujim/TD3_BC structure) ------------------------------------------------------------


class Actor(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = mlp(OBS, ACT)

    def forward(self, s):
        return torch.tanh(self.net(s))  # max_action 1


class TwinCritic(nn.Module):
    def __init__(self):
        super().__init__()
        self.q1, self.q2 = mlp(OBS + ACT, 1), mlp(OBS + ACT, 1)

    def forward(self, s, a):
        sa = torch.cat([s, a], 1)
        return self.q1(sa), self.q2(sa)

    def Q1(self, s, a):
        return self.q1(torch.cat([s, a], 1))


def polyak(net: nn.Module, target: nn.Module, tau: float) -> None:
    for p, tp in zip(net.parameters(), target.parameters(), strict=True):
        tp.data.copy_(tau * p.data + (1 - tau) * tp.data)


class TD3BC:
    def __init__(
        self, gamma=0.99, tau=0.005, policy_noise=0.2, noise_clip=0.5, policy_freq=2, alpha=2.5, lr=3e-4
    ):
        self.actor = Actor()
        self.actor_target = copy.deepcopy(self.actor)
        self.actor_opt = torch.optim.Adam(self.actor.parameters(), lr=lr)
        self.critic = TwinCritic()
        self.critic_target = copy.deepcopy(self.critic)
        self.critic_opt = torch.optim.Adam(self.critic.parameters(), lr=lr)
        self.gamma, self.tau, self.policy_noise, self.noise_clip = gamma, tau, policy_noise, noise_clip
        self.policy_freq, self.alpha, self.total_it = policy_freq, alpha, 0

    def train(self, data: Data) -> None:
        self.total_it += 1
        s, a, r, s2, not_done = data.sample()
        with torch.no_grad():
            noise = (torch.randn_like(a) * self.policy_noise).clamp(-self.noise_clip, self.noise_clip)
            a2 = (self.actor_target(s2) + noise).clamp(-1.0, 1.0)
            tq1, tq2 = self.critic_target(s2, a2)
            y = r + not_done * self.gamma * torch.min(tq1, tq2)
        q1, q2 = self.critic(s, a)
        critic_loss = F.mse_loss(q1, y) + F.mse_loss(q2, y)
        self.critic_opt.zero_grad()
        critic_loss.backward()
        self.critic_opt.step()
        if self.total_it % self.policy_freq == 0:
            pi = self.actor(s)
            q = self.critic.Q1(s, pi)
            lam = self.alpha / q.abs().mean().detach()
            actor_loss = -lam * q.mean() + F.mse_loss(pi, a)
            self.actor_opt.zero_grad()
            actor_loss.backward()
            self.actor_opt.step()
            polyak(self.critic, self.critic_target, self.tau)
            polyak(self.actor, self.actor_target, self.tau)


# --- IQL (CORL-style modules; update order of the official code, spec sec. 8) --------------------


class ValueNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.v = mlp(OBS, 1)

    def forward(self, s):
        return self.v(s).squeeze(-1)


class TwinQ(nn.Module):
    def __init__(self):
        super().__init__()
        self.q1, self.q2 = mlp(OBS + ACT, 1), mlp(OBS + ACT, 1)

    def both(self, s, a):
        sa = torch.cat([s, a], 1)
        return self.q1(sa).squeeze(-1), self.q2(sa).squeeze(-1)

    def forward(self, s, a):
        return torch.min(*self.both(s, a))


class GaussianPolicy(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = mlp(OBS, ACT)
        self.log_std = nn.Parameter(torch.zeros(ACT))

    def forward(self, s):
        mean = torch.tanh(self.net(s))
        std = torch.exp(self.log_std.clamp(-5.0, 2.0))
        return torch.distributions.Normal(mean, std)


class IQL:
    def __init__(
        self, gamma=0.99, tau=0.005, expectile=0.7, beta=3.0, max_weight=100.0, lr=3e-4, max_steps=1_000_000
    ):
        self.q = TwinQ()
        self.q_target = copy.deepcopy(self.q).requires_grad_(False)
        self.v = ValueNet()
        self.actor = GaussianPolicy()
        self.q_opt = torch.optim.Adam(self.q.parameters(), lr=lr)
        self.v_opt = torch.optim.Adam(self.v.parameters(), lr=lr)
        self.actor_opt = torch.optim.Adam(self.actor.parameters(), lr=lr)
        self.actor_sched = torch.optim.lr_scheduler.CosineAnnealingLR(self.actor_opt, max_steps)
        self.gamma, self.tau, self.expectile, self.beta, self.max_weight = (
            gamma,
            tau,
            expectile,
            beta,
            max_weight,
        )

    def train(self, data: Data) -> None:
        s, a, r, s2, not_done = data.sample()
        r, not_done = r.squeeze(-1), not_done.squeeze(-1)
        with torch.no_grad():
            target_q = self.q_target(s, a)
        # 1. V by expectile regression
        u = target_q - self.v(s)
        weight = torch.abs(self.expectile - (u < 0).float())
        v_loss = (weight * u**2).mean()
        self.v_opt.zero_grad()
        v_loss.backward()
        self.v_opt.step()
        # 2. actor, advantage with the new V
        with torch.no_grad():
            w = torch.exp(self.beta * (target_q - self.v(s))).clamp(max=self.max_weight)
        log_prob = self.actor(s).log_prob(a).sum(-1)
        actor_loss = -(w * log_prob).mean()
        self.actor_opt.zero_grad()
        actor_loss.backward()
        self.actor_opt.step()
        self.actor_sched.step()
        # 3. critics from the new V(s')
        with torch.no_grad():
            y = r + not_done * self.gamma * self.v(s2)
        q1, q2 = self.q.both(s, a)
        q_loss = F.mse_loss(q1, y) + F.mse_loss(q2, y)
        self.q_opt.zero_grad()
        q_loss.backward()
        self.q_opt.step()
        # 4. Polyak on the target critics
        polyak(self.q, self.q_target, self.tau)


AGENTS = {"td3_bc": TD3BC, "iql": IQL}


def measure(
    algo: str,
    seeds: int,
    threads: int,
    rows: int,
    batch: int,
    warmup: int,
    updates: int,
    repeats: int,
    max_seconds: float,
    device: str = "cpu",
) -> dict:
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    data = Data(rows, batch, device=device)
    agents = [AGENTS[algo]() for _ in range(seeds)]
    for agent in agents:  # Module.to moves parameters in place, so the optimisers keep pointing at them
        for module in vars(agent).values():
            if isinstance(module, nn.Module):
                module.to(device)

    def sync():
        if device.startswith("cuda"):
            torch.cuda.synchronize()  # CUDA kernels run asynchronously: time only finished work

    def run(n):
        """Up to n steps (each updates every seed), stopping after max_seconds -> (steps, seconds)."""
        sync()
        t = time.perf_counter()
        for i in range(n):
            for agent in agents:
                agent.train(data)
            if time.perf_counter() - t > max_seconds:
                sync()
                return i + 1, time.perf_counter() - t
        sync()
        return n, time.perf_counter() - t

    run(warmup)
    runs = [run(updates) for _ in range(repeats)]
    rate = max(n / s for n, s in runs)
    return {
        "algo": algo,
        "seeds": seeds,
        "threads": threads,
        "rows": rows,
        "batch": batch,
        "warmup": warmup,
        "max_seconds_per_repeat": max_seconds,
        "repeats": [{"steps": n, "s": round(s, 3)} for n, s in runs],
        "updates_per_s_per_seed": round(rate, 2),
        "updates_per_s_all_seeds": round(seeds * rate, 2),
        "seeds_mode": "one model set" if seeds == 1 else f"{seeds} model sets updated sequentially per step",
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "device": torch.cuda.get_device_name() if device.startswith("cuda") else "cpu",
    }


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--algo", choices=sorted(AGENTS), nargs="+", default=sorted(AGENTS))
    p.add_argument("--seeds", type=int, nargs="+", default=[1, 8])
    p.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    p.add_argument("--rows", type=int, default=1_000_000)
    p.add_argument("--batch", type=int, default=256)
    p.add_argument("--warmup", type=int, default=50)
    p.add_argument("--updates", type=int, default=300, help="timed updates per seed per repeat")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--max-seconds", type=float, default=15.0, help="cap per repeat (a repeat stops early)")
    p.add_argument("--device", default="cpu", help="cpu or cuda")
    args = p.parse_args()
    for algo in args.algo:
        for seeds in args.seeds:
            for threads in args.threads:
                updates = max(2, args.updates // seeds) if seeds > 1 else args.updates
                print(
                    json.dumps(
                        measure(
                            algo,
                            seeds,
                            threads,
                            args.rows,
                            args.batch,
                            min(args.warmup, updates),
                            updates,
                            args.repeats,
                            args.max_seconds,
                            args.device,
                        )
                    ),
                    flush=True,
                )


if __name__ == "__main__":
    main()

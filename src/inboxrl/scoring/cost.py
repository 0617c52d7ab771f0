"""What one episode cost, read off its trajectory: tokens x list price for endpoint models, the episode's share of
machine time x the machine's price for local ones (`models.pricing` holds the table)."""

from __future__ import annotations

from inboxrl.models.pricing import PriceTable, estimate_cost
from inboxrl.trajectory import Trajectory


def machine_seconds(traj: Trajectory) -> float:
    """The episode's share of machine time: recorded by the agent loop, else the sum of its turns' latencies."""
    recorded = traj.meta.get("machine_time_s")
    if isinstance(recorded, (int, float)):
        return float(recorded)
    return sum(t.latency_s for t in traj.turns)


def episode_cost(traj: Trajectory, table: PriceTable | None = None) -> float | None:
    """USD, or None when the model's price is unknown."""
    return estimate_cost(traj.model, traj.prompt_tokens, traj.completion_tokens, machine_seconds(traj), table)

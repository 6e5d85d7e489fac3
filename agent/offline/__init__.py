"""The offline advisor: a deterministic planner over the same tools, used when no Anthropic key is set."""

from agent.offline.planner import OfflinePlanner

__all__ = ["OfflinePlanner"]

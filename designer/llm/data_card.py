"""The data card section of the prompt: ``sandbox.harness.datacard`` in a few lines.

The numbers come from the harness (train part and protocol only, computed once per split);
this module only words them, and attaches the text to a proposer.
"""
from __future__ import annotations

from typing import Any

from sandbox.harness.datacard import DataCard, data_card


def render_data_card(card: DataCard) -> str:
    """The card as bullet lines (no heading); validation appears only as user counts."""
    seg = ", ".join(f"{name} ({v['train_interactions']}) {v['users']}" for name, v in card.segments.items())
    lines = [
        f"- data set: {card.name}; {card.n_users:,} users, {card.n_items:,} items, "
        f"{card.train_interactions:,} train interactions (density {card.density:.2%}) over "
        f"{card.days:.0f} days; ratings: {card.ratings}",
        f"- train interactions per user: {_quantiles(card.user_quantiles)}",
        f"- train interactions per item: {_quantiles(card.item_quantiles)}; the top 20% items hold "
        f"{card.head_share:.0%} of them; {card.items_without_train:,} items have none in train",
        f"- validation users: {card.validation_users:,}; by train activity: {seg}",
        f"- train.item_features: {card.item_features}",
        f"- train.user_features: {card.user_features}",
        f"- protocol: {card.protocol}. Recommendations never contain an item the user had in "
        f"train; K = {card.k}",
    ]
    return "\n".join(lines)


def _quantiles(q: dict[str, float]) -> str:
    return ", ".join(f"{name} {value:.0f}" for name, value in q.items()) or "none"


def attach_data_card(proposer: Any, split: Any, k: int) -> str:
    """Compute the data card of ``split`` and give it to every LLM proposer in ``proposer``
    (an ``LLMProposer`` or a ``MixedProposer`` holding one). Returns the text.

    The one call the CLI makes after building the executor:
    ``attach_data_card(chosen.proposer, executor.split, settings.k)``.
    """
    llms = [p for p in [proposer, *getattr(proposer, "arms", {}).values()] if hasattr(p, "data_card")]
    text = render_data_card(data_card(split, k))
    for llm in llms:
        llm.data_card = text
    return text

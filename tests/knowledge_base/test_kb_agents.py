"""Contract: agents, versions and the champion flag, candidate code (every backend)."""
from __future__ import annotations

from datetime import UTC

import pytest
from pydantic import ValidationError

from knowledge_base import AgentSpec, ConflictError, NotFoundError, Store


def test_agent_round_trip_and_upsert_keeps_identity(store: Store) -> None:
    spec = AgentSpec(name="pop", family="popularity", description="d",
                     parameter_space={"alpha": {"low": 0.0, "high": 1.0}})
    created = store.upsert_agent(spec)
    assert created.parameter_space == {"alpha": {"low": 0.0, "high": 1.0}}
    assert created.created_at.tzinfo == UTC

    updated = store.upsert_agent(spec.model_copy(update={"description": "new"}))
    assert (updated.id, updated.created_at) == (created.id, created.created_at)
    assert store.get_agent("pop").description == "new"
    store.upsert_agent(AgentSpec(name="als", family="als"))
    assert [a.name for a in store.list_agents()] == ["als", "pop"]


def test_read_models_are_frozen(store: Store, agent: str) -> None:
    got = store.get_agent(agent)
    with pytest.raises(ValidationError):
        got.description = "changed"  # type: ignore[misc]


def test_missing_agent_raises_not_found_naming_it(store: Store) -> None:
    with pytest.raises(NotFoundError, match="nobody"):
        store.get_agent("nobody")
    with pytest.raises(NotFoundError, match="nobody"):
        store.add_version("nobody", 1, "sha", "fam", {})


def test_versions_number_tag_and_order(store: Store, agent: str) -> None:
    assert store.next_version_number(agent) == 1
    v1 = store.add_version(agent, 1, "sha1", "popularity", {"k": 1})
    v2 = store.add_version(agent, 2, "sha2", "popularity", {"k": 2}, parent_version_id=v1.id)
    assert store.next_version_number(agent) == 3
    assert v2.tag == "pop/v2" and v2.parent_version_id == v1.id
    assert [v.number for v in store.list_versions(agent)] == [1, 2]
    assert store.get_version(agent, 2) == v2 == store.get_version_by_id(v2.id)
    with pytest.raises(NotFoundError, match="v7"):
        store.get_version(agent, 7)
    with pytest.raises(NotFoundError):
        store.get_version_by_id(999)


def test_champion_flag_moves_and_stays_unique(store: Store, agent: str) -> None:
    assert store.champion(agent) is None
    v1 = store.add_version(agent, 1, "a", "f", {})
    v2 = store.add_version(agent, 2, "b", "f", {})
    v3 = store.add_version(agent, 3, "c", "f", {}, make_champion=False)
    assert store.champion(agent) == store.get_version_by_id(v2.id)
    assert not v3.is_champion

    store.set_champion(agent, v1.id)  # a rollback
    assert [v.is_champion for v in store.list_versions(agent)] == [True, False, False]
    with pytest.raises(NotFoundError):
        store.set_champion("other", v1.id)


def test_duplicate_version_is_a_conflict_and_rolls_back_everything(
    store: Store, agent: str
) -> None:
    v1 = store.add_version(agent, 1, "a", "f", {})
    with pytest.raises(ConflictError):
        store.add_version(agent, 1, "b", "f", {})  # clears the champion, then fails
    champion = store.champion(agent)
    assert champion is not None and champion.id == v1.id  # the clearing was rolled back
    assert len(store.list_versions(agent)) == 1


def test_delete_version_detaches_children(store: Store, agent: str) -> None:
    v1 = store.add_version(agent, 1, "a", "f", {})
    v2 = store.add_version(agent, 2, "b", "f", {}, parent_version_id=v1.id)
    store.delete_version(v1.id)
    assert store.get_version_by_id(v2.id).parent_version_id is None
    assert store.next_version_number(agent) == 3
    with pytest.raises(NotFoundError):
        store.delete_version(v1.id)


def test_code_is_deduplicated_by_hash(store: Store) -> None:
    code = "class Agent:\n    pass\n" * 1000
    store.put_code("abc", code)
    store.put_code("abc", code)  # idempotent
    assert store.get_code("abc") == code
    with pytest.raises(NotFoundError, match="zzz"):
        store.get_code("zzz")

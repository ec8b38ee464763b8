"""The knowledge base: SQLAlchemy rows, the store API and Alembic migrations.

Never imports ``designer`` or ``sandbox``.
"""
from knowledge_base.engine import default_url
from knowledge_base.errors import (
    ConflictError,
    DatabaseUnavailableError,
    KnowledgeBaseError,
    NotFoundError,
    SchemaOutOfDateError,
)
from knowledge_base.models import (
    Agent,
    AgentSpec,
    AgentVersion,
    Experiment,
    ExperimentDraft,
    ExperimentResult,
    ExperimentStatus,
    Failure,
    FailureDraft,
    FailureKind,
    Insight,
    LLMCall,
    LLMCallDraft,
    PromotionState,
    Review,
    ReviewDecision,
)
from knowledge_base.store import Store

__all__ = [
    "Agent", "AgentSpec", "AgentVersion", "ConflictError", "DatabaseUnavailableError",
    "Experiment", "ExperimentDraft", "ExperimentResult", "ExperimentStatus", "Failure",
    "FailureDraft", "FailureKind", "Insight", "KnowledgeBaseError", "LLMCall", "LLMCallDraft",
    "NotFoundError", "PromotionState", "Review", "ReviewDecision", "SchemaOutOfDateError",
    "Store", "default_url",
]

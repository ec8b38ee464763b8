"""The fixed evaluation harness: data sets, splits, metrics and the metric report.

Runs outside the candidate's process; never imports ``designer`` or ``knowledge_base``.
"""
from sandbox.harness.data import DatasetError, Interactions
from sandbox.harness.datasets import DATASETS, DEFAULT_DATASET, load_dataset
from sandbox.harness.report import (InvalidRecommendationsError, MetricReport, eval_users,
                                    relevant_matrix, score_recommendations,
                                    validate_recommendations)
from sandbox.harness.splits import (SPLIT_METHODS, Split, SplitTooSmallError,
                                    require_validation_users, split_interactions)

__all__ = ["DATASETS", "DEFAULT_DATASET", "DatasetError", "Interactions",
           "InvalidRecommendationsError", "MetricReport", "SPLIT_METHODS", "Split", "SplitTooSmallError",
           "eval_users", "load_dataset", "relevant_matrix", "require_validation_users", "score_recommendations",
           "split_interactions", "validate_recommendations"]

"""Pipelines: graphs of recall sources, ranker, re-ranker and router under an outer reward.

``spec`` (the YAML artefact), ``resolve`` (spec -> a ``sandbox.composition.PipelinePlan``
with every component's code), ``pool`` (the sources a composition search may use) and
``subject`` (a pipeline as what the design loop evolves).
"""

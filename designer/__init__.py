"""The evolution loop: proposers, prompts, promotion, versions and the CLI.

Imports ``sandbox`` and ``knowledge_base``; never the other way round.
"""

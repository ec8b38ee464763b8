"""The agent SDK: the one module candidate code may import besides stdlib, numpy, scipy, torch.

Inside the sandbox this folder is put on ``sys.path``, so candidates write ``import agent_sdk``.
"""

import agenticrs_no_such_module  # noqa: F401


class Agent:
    pass

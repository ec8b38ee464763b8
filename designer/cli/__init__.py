"""The ``agenticrs`` command line (typer + rich). Only this package sets up logging/rich."""

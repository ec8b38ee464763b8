"""Options shared by the commands that run a loop (``design``, ``compose``, ``evolve``)."""
from __future__ import annotations

import typer

AUTO_APPROVE = typer.Option(False, "--auto-approve", help="approve winners without review")
DATASET = typer.Option(None, "--dataset", help="synthetic | ml-100k | FILE.csv")
DATA_DIR = typer.Option(None, "--data-dir")
N_USERS = typer.Option(None, "--n-users", min=10, help="synthetic: users")
N_ITEMS = typer.Option(None, "--n-items", min=10, help="synthetic: items")
SPLIT = typer.Option(None, "--split", help="user_temporal | global_temporal")
SEED = typer.Option(None, "--seed")
WALL_LIMIT = typer.Option(None, "--wall-limit", help="seconds per run")
MEMORY_MB = typer.Option(None, "--memory-mb", help="memory per run")
WORKERS = typer.Option(1, "--workers", min=1, max=64, metavar="N",
                       help="candidates evaluated at once, each in its own sandbox slot")
COLUMNS = typer.Option(None, "--columns", help="interactions file: user=COL,item=COL,timestamp=COL[,rating=COL]")
ALLOW_INSECURE = typer.Option(False, "--allow-insecure-sandbox")
PRICES = typer.Option(None, "--prices", help="USD per million tokens 'IN,OUT' for OpenAI-compatible servers "
                                             "litellm has no price for")

"""Resource limits of one sandboxed run."""
from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class Limits(BaseModel):
    """Limits applied to every run; defaults suit a 2-core, 24 GB machine."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    wall_seconds: float = Field(600.0, gt=0, description="wall-clock limit; SIGKILL of the whole group")
    cpu_seconds: float = Field(1800.0, gt=0, description="CPU time limit (RLIMIT_CPU and cgroup)")
    memory_mb: int = Field(6144, gt=0, description="memory limit of the whole run")
    max_processes: int = Field(128, gt=0, description="processes/threads of the run")
    output_mb: int = Field(512, gt=0, description="quota of the writable output folder")
    tmp_mb: int = Field(256, gt=0, description="size of the private /tmp")
    open_files: int = Field(1024, gt=0, description="RLIMIT_NOFILE")
    threads: int = Field(2, gt=0, description="OMP/MKL/OpenBLAS/torch threads")
    cpu_quota: float = Field(2.0, gt=0, description="CPUs the run may use (cgroup cpu quota)")
    log_bytes: int = Field(64 * 1024, gt=0, description="stdout/stderr bytes kept (the tail)")

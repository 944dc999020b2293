"""schemathesis hooks: let generated tasks reach the engine.

Loaded by the schemathesis command through ``SCHEMATHESIS_HOOKS``. A
generated image name never exists, so without this every create would stop
at the missing image; schema-valid tasks are given the local test image, so
that create, start, stop and remove run on the real engine too.
"""

from __future__ import annotations

import os
from typing import Any

import schemathesis
from schemathesis import GenerationMode

TEST_IMAGE = os.environ.get("BERTH_TEST_IMAGE", "berth-test/busybox:latest")


@schemathesis.hook
def map_case(context: Any, case: Any) -> Any:
    """Schema-valid task registrations use the local test image."""
    positive = case.meta is None or case.meta.generation.mode == GenerationMode.POSITIVE
    registering = case.method.upper() == "POST" and case.path == "/v1/tasks"
    if positive and registering and isinstance(case.body, dict):
        for container in case.body.get("containers") or []:
            if isinstance(container, dict):
                container["image"] = TEST_IMAGE
                container["pull_policy"] = "never"
    return case

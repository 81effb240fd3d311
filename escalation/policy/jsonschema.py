"""JSON Schemas of the policy and rule-pack formats, generated from the models,
so editors can complete and check policies
(``# yaml-language-server: $schema=...``)."""

from __future__ import annotations

from typing import Any

from escalation.policy import PackDocument, PolicyDocument

__all__ = ["pack_schema", "policy_schema"]


def policy_schema() -> dict[str, Any]:
    """The JSON Schema of a policy file."""
    schema = PolicyDocument.model_json_schema(by_alias=True, mode="validation")
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "escalation policy"
    return schema


def pack_schema() -> dict[str, Any]:
    """The JSON Schema of a rule-pack file."""
    schema = PackDocument.model_json_schema(by_alias=True, mode="validation")
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "escalation rule pack"
    return schema

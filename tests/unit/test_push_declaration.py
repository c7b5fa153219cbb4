"""A push declared on a dbt exposure (meta.dynamodb_push), read from dbt's manifest."""

from __future__ import annotations

import pytest

from dynamodb_cdc.push import declaration_from_manifest


def manifest(meta, depends=("model.shop.user_summary",), disabled=None):
    return {
        "nodes": {
            "model.shop.user_summary": {"name": "user_summary", "schema": "analytics", "alias": "user_summary_v2"},
            "model.shop.users": {"name": "users", "schema": "analytics", "alias": None},
        },
        "exposures": {} if disabled else {
            "exposure.shop.summary_app": {"name": "summary_app", "resource_type": "exposure",
                                          "depends_on": {"nodes": list(depends)}, "config": {"meta": meta}},
        },
        "disabled": {"exposure.shop.summary_app": [{"name": "summary_app", "resource_type": "exposure"}]}
        if disabled else {},
    }


def test_the_declaration_names_the_relation_by_schema_and_alias():
    got = declaration_from_manifest(
        manifest({"dynamodb_push": {"table": "user_summary", "key": ["user_id"], "sync_deletes": True,
                                    "sets": "tags, labels", "version_column": "_version"}}), "summary_app")
    assert got == {"relation": "analytics.user_summary_v2", "table": "user_summary", "key": ["user_id"],
                   "sync_deletes": True, "sets": ["tags", "labels"], "version_column": "_version"}


def test_the_model_is_chosen_when_the_exposure_depends_on_several():
    m = manifest({"dynamodb_push": {"table": "t", "model": "users"}},
                 depends=("model.shop.user_summary", "model.shop.users"))
    assert declaration_from_manifest(m, "summary_app")["relation"] == "analytics.users"
    m = manifest({"dynamodb_push": {"table": "t"}}, depends=("model.shop.user_summary", "model.shop.users"))
    with pytest.raises(ValueError, match="depends on 2 models.*meta.dynamodb_push.model"):
        declaration_from_manifest(m, "summary_app")


@pytest.mark.parametrize("m, words", [
    (manifest({}), "has no meta.dynamodb_push block"),
    (manifest({"dynamodb_push": {"key": ["id"]}}), "needs table"),
    (manifest({"dynamodb_push": {"table": "t", "sync_delete": True}}), "unknown meta.dynamodb_push key.*sync_delete"),
    (manifest({}, disabled=True), "no exposure named summary_app in the dbt manifest \\(it is disabled\\)"),
])
def test_declaration_errors_say_what_to_fix(m, words):
    with pytest.raises(ValueError, match=words):
        declaration_from_manifest(m, "summary_app")

"""The `spec` output against the rules of Airbyte's connector acceptance tests (TestSpec in airbytehq/airbyte
`airbyte-integrations/bases/connector-acceptance-test/connector_acceptance_test/tests/test_core.py`, ported: that
package is not maintained for this CDK), what Airbyte's form needs to show every field, and the config migrations of
the manifest (`spec.config_normalization_rules.config_migrations`): each old form, what it becomes, and that a
migrated config is left alone."""

from __future__ import annotations

import json
import logging
import re
import tempfile
from pathlib import Path
from typing import Any, Dict, Iterator, List, Mapping, Tuple

import jsonschema
import pytest
import yaml

from source_codefresh import SourceCodefresh

ROOT = Path(__file__).resolve().parent.parent
Path_ = Tuple[str, ...]

# test_core.py's names that hold secrets (a property of that name that can hold text must be airbyte_secret).
SECRET_PROPERTY_NAMES = (
    "client_token",
    "access_token",
    "api_token",
    "token",
    "secret",
    "client_secret",
    "password",
    "key",
    "service_account_info",
    "service_account",
    "tenant_id",
    "certificate",
    "jwt",
    "credentials",
    "app_id",
    "appid",
    "refresh_token",
)
FORBIDDEN_KEYWORDS = (
    "not",
    "anyOf",
    "patternProperties",
    "prefixItems",
    "allOf",
    "if",
    "then",
    "else",
    "dependentSchemas",
    "dependentRequired",
)
# The spec's keywords that are not property names: a path segment after one of these is a keyword's value.
SCHEMA_WORDS = ("anyOf", "oneOf", "allOf", "not", "properties", "items", "type", "prefixItems")


@pytest.fixture(scope="module")
def spec(parse_manifest_once) -> Dict[str, Any]:
    return SourceCodefresh().spec(logging.getLogger("airbyte")).connectionSpecification


def nodes(schema: Any, path: Path_ = ()) -> Iterator[Tuple[Path_, Dict[str, Any]]]:
    """Every object of the spec with its path (keys and list indexes as text)."""
    if isinstance(schema, dict):
        yield path, schema
        for key, value in schema.items():
            yield from nodes(value, (*path, key))
    elif isinstance(schema, list):
        for index, value in enumerate(schema):
            yield from nodes(value, (*path, str(index)))


def properties(spec: Mapping[str, Any]) -> Iterator[Tuple[Path_, Dict[str, Any]]]:
    """Every property definition, at any depth (inside array items too)."""
    for path, node in nodes(spec):
        if len(path) >= 2 and path[-2] == "properties" and isinstance(node, dict) and "type" in node:
            yield path, node


# --- test_core.py TestSpec -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("config_file", sorted((ROOT / "integration_tests" / "configs").glob("*.json")), ids=str)
def test_config_match_spec(spec, config_file):
    jsonschema.validate({k: v for k, v in json.loads(config_file.read_text()).items() if not k.startswith("_")}, spec)


def test_enum_usage(spec):
    for path, node in nodes(spec):
        if isinstance(node.get("enum"), list):
            assert len(set(node["enum"])) == len(node["enum"]), f"{'/'.join(path)}: duplicate enum values"


def test_oneof_usage(spec):
    # No oneOf today; the rule stands for the first one.
    for path, node in nodes(spec):
        for keyword in ("oneOf", "anyOf"):
            if keyword not in node or path[-1:] == ("properties",):
                continue
            assert node.get("type") == "object", f"{'/'.join(path)}: a {keyword} block belongs to an object"
            variants = node[keyword]
            assert all("properties" in variant for variant in variants)
            common = set.intersection(*(set(variant["properties"]) for variant in variants))
            consts = [name for name in common if all("const" in v["properties"][name] for v in variants)]
            assert len(consts) == 1, f"{'/'.join(path)}: exactly one common property with const"
            for variant in variants:
                assert not {"default", "enum"} & set(variant["properties"][consts[0]])


def _property_name(path: Path_) -> str:
    for part in reversed(path):
        if not part.isdigit() and part not in SCHEMA_WORDS:
            return part
    return ""


def test_secret_is_properly_marked(spec):
    for path, prop in properties(spec):
        if _property_name(path).lower() not in SECRET_PROPERTY_NAMES:
            continue
        types = prop["type"] if isinstance(prop["type"], list) else [prop["type"]]
        can_hold_secret = bool({"string", "integer", "number"} & set(types)) and not prop.get("const")
        assert bool(prop.get("airbyte_secret")) == can_hold_secret, "/".join(path)
    assert spec["properties"]["api_key"]["airbyte_secret"] is True


def test_property_type_is_not_array(spec):
    for path, prop in properties(spec):
        if isinstance(prop["type"], list):
            assert len(prop["type"]) == 1 or (len(prop["type"]) == 2 and prop["type"][1] == "null"), "/".join(path)


def test_object_not_empty(spec):
    # Airbyte's form shows no input for an object without properties.
    for path, node in nodes(spec):
        if path and node.get("type") == "object" and "oneOf" not in node:
            assert node.get("properties"), f"{'/'.join(path)} is an object without properties"


def test_array_type(spec):
    for path, node in nodes(spec):
        if node.get("type") == "array" and "items" in node:
            items = node["items"]
            assert isinstance(items, dict), f"{'/'.join(path)}: one item type"
            assert items.get("type") in ("object", "string", "number", "integer") or "enum" in items, "/".join(path)


def test_forbidden_complex_types(spec):
    for path, node in nodes(spec):
        if path[-1:] == ("properties",):
            continue
        found = set(node) & set(FORBIDDEN_KEYWORDS)
        assert not found, f"{'/'.join(path)} uses {sorted(found)}"


def test_defined_refs_exist_in_json_spec_file(spec):
    assert "$ref" not in json.dumps(spec)


def test_additional_properties_is_true(spec):
    for path, node in nodes(spec):
        if "additionalProperties" in node:
            assert node["additionalProperties"] is True, f"{'/'.join(path)}: additionalProperties must be true"


def test_docker_env():
    dockerfile = (ROOT / "Dockerfile").read_text()
    (entrypoint,) = re.findall(r'^ENTRYPOINT \["([^"]+)"\]', dockerfile, re.MULTILINE)
    assert f'AIRBYTE_ENTRYPOINT="{entrypoint}"' in dockerfile


def test_date_fields_have_a_format_and_a_pattern_the_date_picker_fills(spec):
    # test_core.py only warns here, and asks for patterns this connector cannot take as they are (its date-time one
    # has no `Z`; its date one is DD-MM-YYYY). Each date field has a format and a pattern of what Airbyte's picker
    # writes; start_date's also accepts every form saved configs hold (a date alone, fractions, offsets).
    start, analytics = spec["properties"]["start_date"], spec["properties"]["analytics_start_date"]
    assert start["format"] == "date-time" and analytics["format"] == "date"
    for value in ("2025-01-01T00:00:00Z", "2025-01-01", "2025-01-01T00:00:00.000Z", "2025-01-01T02:00:00+02:00"):
        assert re.match(start["pattern"], value), value
    assert re.match(analytics["pattern"], "2026-06-01") and not re.match(analytics["pattern"], "01-06-2026")


# --- the form: every field can be filled in --------------------------------------------------------------------------


def test_every_property_has_a_title_a_description_and_an_order(spec):
    for path, prop in properties(spec):
        assert prop.get("title") and prop.get("description"), "/".join(path)
        assert isinstance(prop.get("order"), int), f"{'/'.join(path)} has no order"


def test_orders_are_distinct_among_siblings_and_every_group_is_declared(spec):
    groups = [group["id"] for group in spec["groups"]]
    assert len(set(groups)) == len(groups)
    for path, node in nodes(spec):
        siblings = node.get("properties") if path[-1:] != ("properties",) else None
        if not isinstance(siblings, dict):
            continue
        if path == ():
            by_group: Dict[str, List[int]] = {}
            for prop in siblings.values():
                assert prop.get("group") in groups, f"{prop.get('title')}: group {prop.get('group')!r}"
                by_group.setdefault(prop["group"], []).append(prop["order"])
            assert all(len(set(orders)) == len(orders) for orders in by_group.values()), by_group
            assert set(by_group) == set(groups), "a declared group without a field"
        else:
            orders = [prop["order"] for prop in siblings.values()]
            assert len(set(orders)) == len(orders), "/".join(path)


def test_lists_of_name_and_value_replace_the_objects_the_form_could_not_show(spec):
    params = spec["properties"]["custom_streams"]["items"]["properties"]["params"]
    variables = spec["properties"]["pipeline_runs"]["items"]["properties"]["variables"]
    for field in (params, variables):
        assert field["type"] == "array"
        assert field["items"]["required"] == ["name", "value"]
        assert {name: prop["type"] for name, prop in field["items"]["properties"].items()} == {
            "name": "string",
            "value": "string",
        }


# --- config migrations -----------------------------------------------------------------------------------------------


def migrated(config: Mapping[str, Any]) -> Dict[str, Any]:
    """The config as the CDK migrates it when the source is built: what it writes back to the config file (and emits);
    not what it derives at every start (the spec's defaults, api_root), which is never saved."""
    with tempfile.TemporaryDirectory() as workdir:
        path = Path(workdir) / "config.json"
        path.write_text(json.dumps(config))
        SourceCodefresh(config=dict(config), config_path=str(path))
        saved: Dict[str, Any] = json.loads(path.read_text())
        return saved


@pytest.mark.parametrize(
    "old,new",
    [
        pytest.param(
            {"account_id": "5f1a", "report_granularity": "Daily", "report_date_range": ["2026-06-01", "2026-06-30"]},
            {"analytics_granularity": "day", "analytics_start_date": "2026-06-01"},
            id="0.0.x fields",
        ),
        pytest.param({"report_granularity": "month"}, {"analytics_granularity": "month"}, id="granularity as is"),
        pytest.param({"report_granularity": "WEEKLY"}, {"analytics_granularity": "week"}, id="granularity, any case"),
        pytest.param({"report_granularity": "hour"}, {}, id="granularity this connector has not: the default"),
        pytest.param(
            {"report_date_range": ["2026-03-01T00:00:00Z", "2026-04-01T00:00:00Z"]},
            {"analytics_start_date": "2026-03-01"},
            id="date-time range: its day",
        ),
        pytest.param({"report_date_range": "2026-03-01"}, {"analytics_start_date": "2026-03-01"}, id="one date"),
        pytest.param({"report_date_range": ["last week"]}, {}, id="not a date: dropped"),
        pytest.param({"report_date_range": []}, {}, id="empty range"),
        pytest.param({"report_name": "creditConsumption"}, {"analytics_reports": ["creditConsumption"]}, id="report"),
        pytest.param({"from": 0, "to": "x", "startdate": "2025-01-01", "enddate": "2025-02-01"}, {}, id="0.0.1 fields"),
        pytest.param(
            {"report_granularity": "week", "analytics_granularity": "month"},
            {"analytics_granularity": "month"},
            id="a new field wins",
        ),
        pytest.param(
            {
                "custom_streams": [
                    {
                        "name": "failed",
                        "path": "workflow",
                        "primary_key": "id",
                        "pagination": "cursor",
                        "params": {"status": ["error", "terminated"], "limit_to": 5},
                    },
                    {"name": "registries", "path": "registries", "primary_key": "_id", "pagination": "none"},
                ]
            },
            {
                "custom_streams": [
                    {
                        "name": "failed",
                        "path": "workflow",
                        "primary_key": "id",
                        "pagination": "cursor",
                        "params": [
                            {"name": "status", "value": "error"},
                            {"name": "status", "value": "terminated"},
                            {"name": "limit_to", "value": "5"},
                        ],
                    },
                    {"name": "registries", "path": "registries", "primary_key": "_id", "pagination": "none"},
                ]
            },
            id="params object",
        ),
        pytest.param(
            {
                "pipeline_runs": [
                    {"pipeline": "demo/a", "variables": {"DAYS": 7, "MODE": "x"}},
                    {"pipeline": "demo/b"},
                ]
            },
            {
                "pipeline_runs": [
                    {
                        "pipeline": "demo/a",
                        "variables": [{"name": "DAYS", "value": "7"}, {"name": "MODE", "value": "x"}],
                    },
                    {"pipeline": "demo/b"},
                ]
            },
            id="variables object",
        ),
    ],
)
def test_an_old_config_is_migrated(parse_manifest_once, old, new):
    base = {"api_key": "k", "start_date": "2025-01-01T00:00:00Z"}
    result = migrated({**base, **old})
    assert result == {**base, **new}
    assert migrated(result) == result, "a migrated config is left as it is"


@pytest.mark.parametrize(
    "config",
    [
        {"api_key": "k"},
        {"api_key": "k", "custom_streams": "registries"},
        {"api_key": "k", "custom_streams": 5, "pipeline_runs": {"pipeline": "demo/a"}},
        {"api_key": "k", "pipeline_runs": [{"pipeline": "demo/a", "variables": [{"name": "A", "value": "1"}]}]},
    ],
)
def test_a_current_or_malformed_config_is_not_touched(parse_manifest_once, config):
    # Malformed ones are refused afterwards, with the sentence of the spec or of source.py's checks.
    assert migrated(config) == config


# --- defaults: the spec's, and nowhere else ---------------------------------------------------------------------------


def started(config: Mapping[str, Any]) -> Mapping[str, Any]:
    """The config the components read (the CDK's `configure` answers it): migrated, then transformed."""
    with tempfile.TemporaryDirectory() as workdir:
        return SourceCodefresh(config=dict(config)).configure(dict(config), workdir)


def test_every_field_left_out_takes_the_spec_default(parse_manifest_once, spec):
    config = started({"api_key": "k", "pipeline_runs": [{"pipeline": "demo/a"}], "custom_streams": [{"name": "x"}]})
    defaults = {name: field["default"] for name, field in spec["properties"].items() if "default" in field}
    assert defaults, "the spec declares defaults"
    assert {name: config[name] for name in defaults} == defaults
    runs, customs = spec["properties"]["pipeline_runs"]["items"], spec["properties"]["custom_streams"]["items"]
    assert config["pipeline_runs"] == [
        {"pipeline": "demo/a", "wait_timeout_minutes": runs["properties"]["wait_timeout_minutes"]["default"]}
    ]
    assert config["custom_streams"] == [{"name": "x", "records_key": customs["properties"]["records_key"]["default"]}]


def test_a_field_given_keeps_its_value_and_an_empty_text_takes_the_default(parse_manifest_once, spec):
    config = started({"api_key": "k", "num_workers": 3, "builds_lookback_hours": 0, "base_url": ""})
    assert (config["num_workers"], config["builds_lookback_hours"]) == (3, 0)
    assert config["base_url"] == spec["properties"]["base_url"]["default"]
    assert config["api_root"] == config["base_url"]


def test_the_defaults_are_not_saved(parse_manifest_once):
    # The CDK writes back only what a migration changes: a saved config follows the defaults of the release reading it.
    assert migrated({"api_key": "k"}) == {"api_key": "k"}


def test_the_ceiling_of_the_concurrency_level_is_the_spec_maximum_of_num_workers(spec):
    manifest = yaml.safe_load((ROOT / "manifest.yaml").read_text())
    assert manifest["concurrency_level"]["max_concurrency"] == spec["properties"]["num_workers"]["maximum"]


def test_no_default_of_a_field_is_written_again_where_the_config_is_read():
    """`config.get('x') or <default>` in the manifest, `config.get("x") or <default>` in the code: the default's home
    is the spec (SpecDefaults fills it in before anything reads the config)."""
    spec_properties = yaml.safe_load((ROOT / "manifest.yaml").read_text())["spec"]["connection_specification"][
        "properties"
    ]
    with_default = [name for name, field in spec_properties.items() if "default" in field]
    texts = {
        path: path.read_text() for path in [ROOT / "manifest.yaml", *sorted((ROOT / "source_codefresh").glob("*.py"))]
    }
    for name in with_default:
        # `or 16`, `or 'day'`, `or false`, `is not none else 72`: a literal standing in for a missing value.
        fallback = re.compile(
            rf"""get\(\s*['"]{name}['"]\s*\)\s*(or\s*(\d|'[^']|"[^"]|true|false)|is not none)""", re.I
        )
        found = [str(path.relative_to(ROOT)) for path, text in texts.items() if fallback.search(text)]
        assert not found, f"{name}: a default of its own in {found}; read config['{name}'] (the spec's default)"

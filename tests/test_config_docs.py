"""config/README.md documents every key of config/schema.yaml, and no other.

Each key is a row of a Markdown table in config/README.md whose first cell is the key's dotted
path in backticks and whose second cell is its default:

    | `models.<name>.training.lr` | `0.02` | `lr: 0.001` | learning rate ... |

Paths follow the schema: ``a.b`` for a property, ``<name>`` for the entries of a map
(``additionalProperties`` with properties of its own: ``models.<name>``), ``[]`` for the items of
a list of objects (``statistics.pairs[].a``), and the placeholder of ``SHARED`` for the keys of a
shared definition (``dataset.coco.<split>.images``). A definition of ``$defs`` used in several places
(``SHARED``) has its keys documented once, under one path; each key that uses it is documented
itself. The keys of ``models.<name>.model`` are those of both families (``allOf`` branches).

Where the schema gives a ``default``, the README's default cell must be that value, as YAML in
backticks; where the schema lists a key as ``required``, the cell starts with "required".
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = ROOT / "config" / "schema.yaml"
DOCS = ROOT / "config" / "README.md"

#: Definitions used in several places, and the one path their keys are documented under.
SHARED = {
    "#/$defs/split": "dataset.coco.<split>",
    "#/$defs/mask_split": "dataset.folders.<split>",
    "#/$defs/training": "models.<name>.training",
    "#/$defs/deimv2_model": "models.<name>.model",
    "#/$defs/job_limits": "compute.jobs.<kind>",
    "#/$defs/cell": "statistics.pairs[].<side>",
}
MAP_ENTRY = "<name>"  # the path segment of an entry of a map (additionalProperties)
NO_DEFAULT = object()

ROW = re.compile(r"^\|\s*`(?P<key>[^`]+)`\s*\|(?P<rest>.*)\|\s*$")


def _deref(schema: dict, node: dict) -> tuple[dict, str | None]:
    """The node with its ``$ref`` followed (keys beside the ``$ref`` win), and the ref."""
    ref = node.get("$ref")
    if ref is None:
        return node, None
    assert ref.startswith("#/"), f"config/schema.yaml: only local $refs are supported, got {ref}"
    target = schema
    for part in ref[2:].split("/"):
        target = target[part]
    return {**target, **{k: v for k, v in node.items() if k != "$ref"}}, ref


def _branches(node: dict) -> list[dict]:
    """The node and the conditional branches whose properties it may take (allOf, if/then/else)."""
    found = [node]
    for sub in [*node.get("allOf", []), node.get("then"), node.get("else")]:
        if sub:
            found.extend(_branches(sub))
    return found


def schema_keys() -> dict[str, dict]:
    """Every key of the schema by dotted path: {"default": value or NO_DEFAULT, "required": bool}."""
    schema = yaml.safe_load(SCHEMA.read_text())
    keys: dict[str, dict] = {}
    expanded: set[str] = set()

    def record(path: str, nodes: list[dict], required: bool) -> None:
        entry = keys.setdefault(path, {"default": NO_DEFAULT, "required": False})
        entry["required"] = entry["required"] or required
        for node in nodes:
            if "default" in node:
                entry["default"] = node["default"]

    def walk(path: str, nodes: list[dict]) -> None:
        """Record the children of the key at ``path`` described by ``nodes``."""
        children: dict[str, list[dict]] = {}
        required: set[str] = set()
        maps: list[dict] = []
        items: list[dict] = []
        for node in nodes:
            for branch in _branches(node):
                for name, child in (branch.get("properties") or {}).items():
                    children.setdefault(name, []).append(child)
                required.update(branch.get("required", []) if branch is node else [])
                extra = branch.get("additionalProperties")
                if isinstance(extra, dict):
                    maps.append(extra)
                if isinstance(branch.get("items"), dict):
                    items.append(branch["items"])
        for name, child_nodes in children.items():
            visit(f"{path}.{name}" if path else name, child_nodes, name in required)
        for extra in maps:
            resolved, _ = _deref(schema, extra)
            if any(b.get("properties") for b in _branches(resolved)):
                visit(f"{path}.{MAP_ENTRY}", [extra], False)
        for item in items:
            resolved, _ = _deref(schema, item)
            if any(b.get("properties") for b in _branches(resolved)):
                walk(f"{path}[]", [resolved])

    def visit(path: str, nodes: list[dict], required: bool) -> None:
        """Record the key at ``path`` and walk its children; a shared definition's children go under its one path."""
        resolved = []
        for node in nodes:
            node, ref = _deref(schema, node)
            if ref in SHARED:
                if ref not in expanded:
                    expanded.add(ref)
                    walk(SHARED[ref], [node])
                record(path, [node], required)
                continue
            resolved.append(node)
        if resolved:
            record(path, resolved, required)
            walk(path, resolved)

    walk("", [schema])
    return keys


def documented_keys() -> tuple[dict[str, str], list[str]]:
    """{dotted path: default cell} of config/README.md's key rows, and the keys listed twice."""
    rows: dict[str, str] = {}
    twice: list[str] = []
    for line in DOCS.read_text().splitlines():
        match = ROW.match(line)
        if not match:
            continue
        key, cells = match["key"], [cell.strip() for cell in re.split(r"(?<!\\)\|", match["rest"])]
        if key in rows:
            twice.append(key)
        rows[key] = cells[0] if cells else ""
    return rows, twice


def test_the_schema_walk_finds_the_nested_keys():
    """Guards the walk itself: the keys of maps, shared definitions, both model families, list items."""
    keys = schema_keys()
    for key in ("dataset.coco.train", "dataset.coco.<split>.annotations", "grid.seeds", "models.<name>",
                "models.<name>.architecture", "models.<name>.model.fpn_channels", "models.<name>.model.weights",
                "models.<name>.training.lr", "models.<name>.training.augmentation.mosaic_scale",
                "multimodal.phases.phase2", "multimodal.fusion.temperature", "compute.jobs.light",
                "compute.jobs.<kind>.runtime", "statistics.pairs[].a", "statistics.pairs[].<side>.phase",
                "report.jpeg_quality"):
        assert key in keys, f"the walk of config/schema.yaml misses {key}"
    assert len(keys) > 150, f"the walk of config/schema.yaml found only {len(keys)} keys"
    assert keys["dataset"]["required"] and keys["statistics.pairs[].<side>.model"]["required"]
    assert keys["statistics.pairs[].<side>.phase"]["default"] == "base"


def test_every_schema_key_is_documented_and_no_other():
    schema, (documented, twice) = schema_keys(), documented_keys()
    missing = sorted(set(schema) - set(documented))
    extra = sorted(set(documented) - set(schema))
    problems = []
    if missing:
        problems.append("keys of config/schema.yaml that config/README.md does not document "
                        "(add a table row starting with the key in backticks):\n  " + "\n  ".join(missing))
    if extra:
        problems.append("keys config/README.md documents that config/schema.yaml does not have "
                        "(remove the row or fix the path):\n  " + "\n  ".join(extra))
    if twice:
        problems.append("keys documented twice in config/README.md:\n  " + "\n  ".join(sorted(twice)))
    assert not problems, "\n".join(problems)


def test_documented_defaults_are_the_schema_defaults():
    schema, (documented, _) = schema_keys(), documented_keys()
    wrong = []
    for key, entry in sorted(schema.items()):
        cell = documented.get(key)
        if cell is None:
            continue  # reported by the test above
        if entry["required"] != cell.lower().startswith("required"):
            wrong.append(f"{key}: the schema has it {'required' if entry['required'] else 'optional'}, "
                         f"the README's default cell says {cell!r}")
        if entry["default"] is NO_DEFAULT:
            continue
        match = re.fullmatch(r"`([^`]*)`", cell)
        if not match:
            wrong.append(f"{key}: the schema's default is {entry['default']!r}; the README's default cell "
                         f"must be exactly that value as YAML in backticks, got {cell!r}")
            continue
        try:
            value = yaml.safe_load(match[1])
        except yaml.YAMLError as error:
            wrong.append(f"{key}: the README's default {match[1]!r} is not YAML ({error})")
            continue
        if value != entry["default"] or type(value) is not type(entry["default"]):
            wrong.append(f"{key}: the README says the default is {value!r}, the schema {entry['default']!r}")
    assert not wrong, "config/README.md states defaults the schema does not have:\n  " + "\n  ".join(wrong)


@pytest.mark.parametrize("name", ["config.yaml", "thesis.yaml"])
def test_the_shipped_configs_use_only_documented_keys(name):
    """The two shipped configs, walked as dotted paths, name only keys config/README.md documents."""
    documented, _ = documented_keys()
    config = yaml.safe_load((ROOT / "config" / name).read_text())
    patterns = {key: re.compile("^" + re.escape(key).replace(re.escape("<name>"), "[^.]+")
                               .replace(re.escape("<split>"), "(train|val|test)")
                               .replace(re.escape("<kind>"), "(training|evaluation|light)")
                               .replace(re.escape("<side>"), "(a|b)") + "$") for key in documented}
    phase_training = re.compile(r"^multimodal\.(training|fusion_only|joint\.training|phases\.phase[123])\.")
    joint_model = re.compile(r"^multimodal\.joint\.model\.")
    used: list[str] = []

    def paths(value, prefix: str) -> None:
        if isinstance(value, dict) and not prefix.endswith(".import_checkpoint"):
            for key, child in value.items():
                path = f"{prefix}.{key}" if prefix else str(key)
                used.append(path)
                paths(child, path)
        elif isinstance(value, list) and value and all(isinstance(item, dict) for item in value):
            for item in value:
                paths(item, f"{prefix}[]")

    paths(config, "")
    undocumented = [path for path in used
                    if not any(p.match(joint_model.sub("models.x.model.", phase_training.sub("models.x.training.", path)))
                               for p in patterns.values())]
    assert not undocumented, f"config/{name} uses keys config/README.md does not document:\n  " + "\n  ".join(undocumented)

"""YAML input with positions: every error names the file, the line and the field.

PyYAML's ``safe_load`` forgets where a value came from and silently keeps the last of two
duplicate keys. Here a document is *composed* (nodes keep their ``start_mark``), then converted to
plain Python while recording, for each field path (``expect.violated.no_null_deref``,
``schedule[3]``), the line it is written on. Validators then report problems with
:class:`InputError`, whose text is ``FILE:LINE: FIELD: MESSAGE``.

List items in field paths are numbered from 1, like the steps of a schedule, so that
``schedule[13]`` and "step 13" name the same line of a case.

Also here: the ``variant`` syntax shared by case files and variant files (``--variant``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import yaml
from yaml.constructor import ConstructorError, SafeConstructor
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from kvmmu.vocab import (
    DEFAULT_PRESET,
    PRESETS,
    ROOT_KINDS,
    Config,
    KnobValue,
    Variant,
    config_error,
    knob_error,
    make_variant,
)

# Field names for errors that belong to no field.
DOCUMENT = "(document)"
SYNTAX = "(syntax)"


class InputError(Exception):
    """A problem in an input file, at a line, in a field. ``str()`` is ``FILE:LINE: FIELD: MSG``."""

    def __init__(self, file: str, line: int, field: str, message: str) -> None:
        super().__init__(f"{file}:{line}: {field}: {message}")
        self.file = file
        self.line = line
        self.field = field
        self.message = message


@dataclass(frozen=True)
class Document:
    """A loaded YAML document: plain Python ``data`` and the line of every field path."""

    file: str
    data: object
    lines: Mapping[str, int]

    def line(self, path: str) -> int:
        """The line of ``path``, or of its nearest ancestor that has one (a missing field is
        reported on the line of the mapping that should hold it)."""
        while path:
            if path in self.lines:
                return self.lines[path]
            path = parent_path(path)
        return self.lines.get("", 1)

    def error(self, path: str, message: str) -> InputError:
        return InputError(self.file, self.line(path), path or DOCUMENT, message)


def parent_path(path: str) -> str:
    """``a.b[2]`` -> ``a.b``; ``a.b`` -> ``a``; ``a`` -> ``""``. Keys may contain dots (knob
    names do), so this may stop inside a key: callers only need *some* recorded ancestor."""
    if path.endswith("]"):
        return path[: path.rindex("[")]
    if "." in path:
        return path[: path.rindex(".")]
    return ""


def child_path(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def item_path(path: str, index: int) -> str:
    """The path of the ``index``-th (0-based) item of the list at ``path``, numbered from 1."""
    return f"{path}[{index + 1}]"


# --- loading -------------------------------------------------------------------------------------


def load_yaml(path: Path | str, text: str | None = None) -> Document:
    """Load one YAML document from ``path`` (or from ``text``, reported as ``path``)."""
    file = str(path)
    if text is None:
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as exc:
            raise InputError(file, 1, DOCUMENT, f"cannot read: {exc.strerror}") from exc
        except UnicodeDecodeError as exc:
            raise InputError(file, 1, DOCUMENT, "not UTF-8 text") from exc
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else 1
        raise InputError(file, line, SYNTAX, _syntax_message(exc)) from exc
    except yaml.YAMLError as exc:  # e.g. a second document in the stream
        raise InputError(file, 1, SYNTAX, str(exc)) from exc
    if node is None:
        raise InputError(file, 1, DOCUMENT, "the file is empty")
    lines: dict[str, int] = {"": node.start_mark.line + 1}
    data = _convert(file, node, "", lines, SafeConstructor())
    return Document(file, data, lines)


def _syntax_message(exc: yaml.MarkedYAMLError) -> str:
    context, start, found = exc.context, exc.context_mark, exc.problem_mark
    # The problem is often found lines after its cause (an unclosed bracket): name both lines.
    if context and start is not None and found is not None and start.line != found.line:
        context = f"{context} (started on line {start.line + 1})"
    parts = [p for p in (context, exc.problem) if p]
    return "invalid YAML: " + ", ".join(parts)


def _convert(
    file: str, node: Node, path: str, lines: dict[str, int], constructor: SafeConstructor
) -> object:
    """Plain Python for ``node``, recording lines; rejects duplicate and non-scalar keys."""
    if isinstance(node, MappingNode):
        result: dict[str, object] = {}
        for key_node, value_node in node.value:
            key_line = key_node.start_mark.line + 1
            if not isinstance(key_node, ScalarNode):
                raise InputError(file, key_line, path or DOCUMENT, "keys must be plain words")
            key = str(key_node.value)
            sub = child_path(path, key)
            if key in result:
                first = lines.get(sub, key_line)
                raise InputError(
                    file, key_line, sub, f"duplicate key (first given on line {first})"
                )
            lines[sub] = key_line
            result[key] = _convert(file, value_node, sub, lines, constructor)
        return result
    if isinstance(node, SequenceNode):
        items: list[object] = []
        for index, item in enumerate(node.value):
            sub = item_path(path, index)
            lines[sub] = item.start_mark.line + 1
            items.append(_convert(file, item, sub, lines, constructor))
        return items
    assert isinstance(node, ScalarNode)
    try:
        return constructor.construct_object(node, deep=True)
    except ConstructorError as exc:  # e.g. an explicit tag like !!python/object
        raise InputError(
            file, node.start_mark.line + 1, path or DOCUMENT, str(exc.problem)
        ) from exc


# --- validation helpers (shared by case files and variant files) --------------------------------


def type_name(value: object) -> str:
    """How YAML users call the type of ``value``."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "a whole number"
    if isinstance(value, float):
        return "a number with a fraction"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return type(value).__name__


def shown(value: object) -> str:
    """``value`` as it would be written in YAML, for messages."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    return repr(value) if isinstance(value, str) else str(value)


def as_mapping(
    doc: Document,
    path: str,
    value: object,
    required: Iterable[str] = (),
    optional: Iterable[str] = (),
) -> dict[str, object]:
    """``value`` as a mapping with exactly the allowed keys: unknown keys and missing required
    keys are errors (unknown first, since a misspelt key also looks like a missing one)."""
    if not isinstance(value, dict):
        raise doc.error(path, f"expected a mapping, got {type_name(value)}")
    required = tuple(required)
    allowed = (*required, *optional)
    for key in value:
        if key not in allowed:
            raise doc.error(
                child_path(path, key), f"unknown key (allowed here: {', '.join(allowed)})"
            )
    for key in required:
        if key not in value:
            raise doc.error(path, f"missing required key {key!r}")
    return value


def as_list(doc: Document, path: str, value: object) -> list[object]:
    if not isinstance(value, list):
        raise doc.error(path, f"expected a list, got {type_name(value)}")
    return value


def as_str(doc: Document, path: str, value: object) -> str:
    if not isinstance(value, str):
        raise doc.error(path, f"expected a string, got {type_name(value)} {shown(value)}")
    return value


def as_bool(doc: Document, path: str, value: object) -> bool:
    if not isinstance(value, bool):
        raise doc.error(path, f"expected true or false, got {type_name(value)} {shown(value)}")
    return value


def as_int(doc: Document, path: str, value: object, minimum: int | None = None) -> int:
    """A whole number (YAML booleans are not numbers here)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise doc.error(path, f"expected a whole number, got {type_name(value)} {shown(value)}")
    if minimum is not None and value < minimum:
        raise doc.error(path, f"expected a whole number >= {minimum}, got {value}")
    return value


CONFIG_KEYS = ("vcpus", "zappers", "notifier", "max_zaps", "max_invalidations")


# --- variants ------------------------------------------------------------------------------------

VARIANT_FORMAT = "kvmmu-variant/1"


def parse_variant(doc: Document, path: str, value: object) -> Variant:
    """A ``variant`` field of a case: a preset name, or ``{base: PRESET, knobs: {...}}``."""
    if isinstance(value, str):
        return _preset(doc, path, value)
    fields = as_mapping(doc, path, value, optional=("base", "knobs"))
    return _variant(doc, path, fields)


def _preset(doc: Document, path: str, name: str) -> Variant:
    if name not in PRESETS:
        raise doc.error(path, f"unknown preset {name!r} (known: {', '.join(PRESETS)})")
    return make_variant(name)


def _variant(doc: Document, path: str, fields: Mapping[str, object]) -> Variant:
    """``base`` and ``knobs`` of a mapping already checked for unknown keys."""
    base = DEFAULT_PRESET
    if "base" in fields:
        base = as_str(doc, child_path(path, "base"), fields["base"])
        _preset(doc, child_path(path, "base"), base)
    knobs_path = child_path(path, "knobs")
    raw = fields.get("knobs", {})
    # Any key is allowed by the shape: knob_error() names unknown knobs with the list of known ones.
    if not isinstance(raw, dict):
        raise doc.error(knobs_path, f"expected a mapping of knob: value, got {type_name(raw)}")
    knobs: dict[str, KnobValue] = {}
    for knob, knob_value in raw.items():
        reason = knob_error(knob, knob_value)
        if reason is not None:
            raise doc.error(child_path(knobs_path, knob), reason + _quoted_hint(knob_value))
        assert isinstance(knob_value, str | bool)  # knob_error accepted it
        knobs[knob] = knob_value
    return make_variant(base, knobs)


def _quoted_hint(value: object) -> str:
    """``"true"`` in quotes is a string in YAML; say so, since the message shows it as true."""
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return " (a quoted string: write true or false without quotes)"
    return ""


def load_variant_file(path: Path | str) -> Variant:
    """A variant file, as given to the CLI's ``--variant``::

        format: kvmmu-variant/1     # optional
        name: my-variant            # optional, the name shown in reports
        description: ...            # optional
        base: paolo                 # optional, default v5.16
        knobs: {zap.yield: true}    # optional

    Raises :class:`InputError`.
    """
    doc = load_yaml(path)
    fields = as_mapping(
        doc, "", doc.data, optional=("format", "name", "description", "base", "knobs")
    )
    if "format" in fields:
        fmt = as_str(doc, "format", fields["format"])
        if fmt != VARIANT_FORMAT:
            raise doc.error("format", f"unsupported format {fmt!r} (this is {VARIANT_FORMAT})")
    if "description" in fields:
        as_str(doc, "description", fields["description"])
    variant = _variant(doc, "", fields)
    if "name" in fields:
        name = as_str(doc, "name", fields["name"])
        if not name.strip():
            raise doc.error("name", "the name is empty")
        variant = dataclasses.replace(variant, name=name)
    return variant


# --- configurations (cases and proof obligations) -------------------------------------------


def parse_config(doc: Document, path: str, value: object) -> Config:
    fields = as_mapping(doc, path, value, optional=CONFIG_KEYS)
    default = Config()
    vcpus = default.vcpus
    if "vcpus" in fields:
        vcpus = _root_kinds(doc, child_path(path, "vcpus"), fields["vcpus"])
    zappers = default.zappers
    if "zappers" in fields:
        zappers = as_int(doc, child_path(path, "zappers"), fields["zappers"], minimum=0)
        if zappers > 2:
            raise doc.error(child_path(path, "zappers"), f"at most 2 zappers, got {zappers}")
    notifier = default.notifier
    if "notifier" in fields:
        notifier = as_bool(doc, child_path(path, "notifier"), fields["notifier"])
    bounds: dict[str, int | None] = {
        "max_zaps": default.max_zaps,
        "max_invalidations": default.max_invalidations,
    }
    for name in bounds:
        if name in fields:
            bound = fields[name]
            sub = child_path(path, name)
            bounds[name] = None if bound is None else as_int(doc, sub, bound, minimum=0)
    config = Config(vcpus, zappers, notifier, bounds["max_zaps"], bounds["max_invalidations"])
    # The checks above give the line of the field; this one catches any rule vocab adds later.
    reason = config_error(config)
    if reason is not None:
        raise doc.error(path, reason)
    return config


def _root_kinds(doc: Document, path: str, value: object) -> tuple[str, ...]:
    items = as_list(doc, path, value)
    if not items:
        raise doc.error(path, "at least one vCPU is needed")
    kinds = []
    for index, item in enumerate(items):
        sub = item_path(path, index)
        kind = as_str(doc, sub, item)
        if kind not in ROOT_KINDS:
            raise doc.error(sub, f"unknown root kind {kind!r} (one of {', '.join(ROOT_KINDS)})")
        kinds.append(kind)
    return tuple(kinds)


# --- schedule ------------------------------------------------------------------------------------


# --- finding input files -------------------------------------------------------------------------


def find_yaml_files(paths: Iterable[Path | str]) -> list[Path]:
    """YAML files under ``paths``: files as given, folders searched recursively for ``*.yaml``;
    sorted, without duplicates. A path that does not exist raises FileNotFoundError (a typo must
    not look like an empty, passing run)."""
    found: set[Path] = set()
    for entry in map(Path, paths):
        if entry.is_dir():
            found.update(p for p in entry.rglob("*.yaml") if p.is_file())
        elif entry.is_file():
            found.add(entry)
        else:
            raise FileNotFoundError(f"no such file or directory: {entry}")
    return sorted(found)

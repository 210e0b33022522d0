"""YAML input with positions: every error names the file, the line and the field.

PyYAML's ``safe_load`` forgets where a value came from and silently keeps the last of two
duplicate keys. Here a document is *composed* (nodes keep their ``start_mark``), then converted to
plain Python while recording, for each field path (``expect.violated.no_null_deref``,
``schedule[3]``), the line it is written on. Validators then report problems with
:class:`InputError`, whose text is ``FILE:LINE: FIELD: MESSAGE``.

List items in field paths are numbered from 1, like the steps of a schedule, so that
``schedule[13]`` and "step 13" name the same line of a case.

Every input file (cases, variant files, proof obligations, sweep files) passes one gate,
:func:`load_yaml`: a regular file of at most :data:`MAX_BYTES`, no anchors, aliases, merge keys
or tags, at most :data:`MAX_DEPTH` levels of nesting, and one rule for plain scalars
(:func:`_plain_scalar`): ``true``/``false``, ``null``, plain decimal numbers, else strings, and
whatever YAML 1.1 or 1.2 would read otherwise (``yes``, ``1:20``, ``2021-12-10``, ``.nan``) is
refused. The rule is documented in ``conformance/FORMAT.md`` ("The YAML subset").

Also here: the ``variant`` syntax shared by case files and variant files (``--variant``).
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
import stat
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import yaml
from yaml.composer import Composer
from yaml.events import AliasEvent
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode
from yaml.parser import Parser
from yaml.resolver import BaseResolver
from yaml.scanner import Scanner

from kvmmu.vocab import (
    DEFAULT_PRESET,
    PRESETS,
    ROOT_KINDS,
    Config,
    KnobValue,
    Variant,
    bound_error,
    config_error,
    knob_error,
    make_variant,
    timeout_error,
)

# Field names for errors that belong to no field.
DOCUMENT = "(document)"
SYNTAX = "(syntax)"


class InputError(Exception):
    """A problem in an input file, at a line, in a field. ``str()`` is ``FILE:LINE: FIELD: MSG``."""

    def __init__(self, file: str, line: int, field: str, message: str) -> None:
        # every part may echo the file's content (a key, a value) or a path: never raw controls
        file, field, message = printable(file), printable(field), printable(message)
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

# The gate every input file passes (cases, variant files, proof obligations, sweep files). Each
# limit turns a denial of service or an interpreter error into a clean FILE:LINE: FIELD message.
# PyYAML's pure-Python parser takes about a second per 50 kB on a busy machine; our largest file
# is under 3 kB
MAX_BYTES = 64 * 1024
MAX_DEPTH = 32  # our deepest field path is 4 levels; the composer recurses once per level
MAX_INT_DIGITS = 18  # every whole number fits a 64-bit integer
MAX_NUMBER_CHARS = 40  # a longer decimal is a typo, and float() of it is not worth the time

# The plain scalars this loader reads as something other than a string (the rest of YAML's
# implicit typing is refused, see _plain_scalar).
_INT = re.compile(r"[-+]?(?:0|[1-9][0-9]*)")
_FLOAT = re.compile(r"[-+]?(?:[0-9]+\.[0-9]*|\.[0-9]+)(?:[eE][-+][0-9]+)?")
# Numbers of YAML 1.2 that YAML 1.1 reads as strings: refused unless _INT or _FLOAT reads them.
_YAML12_NUMBER = re.compile(
    r"[-+]?(?:0o[0-7]+|0x[0-9a-fA-F]+|(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?"
    r"|\.(?:inf|Inf|INF|nan|NaN|NAN))"
)
_DATE_LIKE = re.compile(r"[0-9]{4}-[0-9]{1,2}-[0-9]{1,2}(?:[Tt \t].*)?", re.DOTALL)
# PyYAML's YAML 1.1 resolver names what other tools would make of a plain scalar.
_YAML11 = yaml.resolver.Resolver()

# Characters a terminal acts on: never echoed raw, never accepted in a key or a value (tab and
# newline excepted in values, where block text needs them).
_ALLOWED_IN_VALUES = frozenset("\t\n")


def _is_control(char: str) -> bool:
    # C*: controls, format characters (bidi overrides), surrogates, private use; Z[lp]: line and
    # paragraph separators, which end a line on some terminals
    return unicodedata.category(char)[0] == "C" or unicodedata.category(char) in ("Zl", "Zp")


def printable(text: str) -> str:
    """``text`` with every control character escaped (``\\x1b``, ``\\n``, ``\\u202e``), for
    messages that echo user input: a file must not be able to forge a line on the terminal."""
    if not any(_is_control(c) for c in text):
        return text
    return "".join(
        c.encode("unicode_escape").decode("ascii") if _is_control(c) else c for c in text
    )


class _GateLoader(yaml.reader.Reader, Scanner, Parser, Composer, BaseResolver):
    """PyYAML's composer without aliases, anchors, tags or implicit typing, and with a depth
    limit. Plain scalars keep the tag :data:`_PLAIN` and are typed by :func:`_plain_scalar`."""

    def __init__(self, text: str) -> None:
        yaml.reader.Reader.__init__(self, text)
        Scanner.__init__(self)
        Parser.__init__(self)
        Composer.__init__(self)
        BaseResolver.__init__(self)
        self.paths: list[str] = []  # the field path of each node being composed, outermost first

    def fetch_flow_collection_start(self, token_class: type[yaml.Token]) -> None:
        # The scanner looks ahead across a whole flow collection: stop it before the composer
        if self.flow_level >= MAX_DEPTH:
            raise _Refused(self.get_mark(), "", f"nested deeper than {MAX_DEPTH} levels")
        super().fetch_flow_collection_start(token_class)

    def compose_node(self, parent: Node | None, index: int) -> Node | None:
        path = self.paths[-1] if self.paths else ""
        if isinstance(parent, MappingNode) and isinstance(index, ScalarNode):
            path = child_path(path, str(index.value))
        elif isinstance(parent, SequenceNode) and isinstance(index, int):
            path = item_path(path, index)
        event = self.peek_event()  # type: ignore[no-untyped-call]
        if isinstance(event, AliasEvent) or getattr(event, "anchor", None) is not None:
            raise _Refused(
                event.start_mark,
                path,
                "anchors and aliases (&name, *name) are not accepted: write the value out",
            )
        tag = getattr(event, "tag", None)
        if tag is not None:
            tag = str(tag).replace("tag:yaml.org,2002:", "!!")  # as it was written
            raise _Refused(
                event.start_mark,
                path,
                f"tags ({tag}) are not accepted: write the value plainly, or quote it for a string",
            )
        if len(self.paths) >= MAX_DEPTH:
            raise _Refused(event.start_mark, path, f"nested deeper than {MAX_DEPTH} levels")
        self.paths.append(path)
        try:
            return super().compose_node(parent, index)
        finally:
            self.paths.pop()

    def resolve(self, kind: type[Node], value: object, implicit: tuple[bool, bool]) -> str:
        if kind is ScalarNode and implicit[0]:
            return _PLAIN
        return str(super().resolve(kind, value, implicit))  # type: ignore[no-untyped-call]


_PLAIN = "kvmmu:plain"


class _Refused(yaml.YAMLError):
    """A construct the gate refuses, at ``mark``."""

    def __init__(self, mark: yaml.Mark, path: str, message: str) -> None:
        super().__init__(message)
        self.mark = mark
        self.path = path
        self.message = message


def read_input(path: Path | str) -> str:
    """The text of the input file ``path``: a regular file of at most :data:`MAX_BYTES` bytes
    of UTF-8. A FIFO, a device or a folder is refused at once, without reading from it (opening
    with O_NONBLOCK: a FIFO with no writer would block the open)."""
    file = str(path)
    if not file:
        raise InputError("''", 1, DOCUMENT, "an empty path names no file")
    try:
        fd = os.open(file, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY)
    except OSError as exc:
        raise InputError(file, 1, DOCUMENT, f"cannot read: {exc.strerror}") from exc
    try:
        mode = os.fstat(fd).st_mode
        if stat.S_ISDIR(mode):
            raise InputError(file, 1, DOCUMENT, "is a folder, not a YAML file")
        if not stat.S_ISREG(mode):
            raise InputError(file, 1, DOCUMENT, f"not a regular file ({_file_kind(mode)})")
        with os.fdopen(os.dup(fd), "rb") as handle:
            data = handle.read(MAX_BYTES + 1)
    finally:
        os.close(fd)
    _check_size(file, len(data))
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise InputError(file, line, DOCUMENT, "not UTF-8 text") from exc


def _file_kind(mode: int) -> str:
    kinds = (
        (stat.S_ISFIFO, "a FIFO"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISSOCK, "a socket"),
    )
    return next((name for test, name in kinds if test(mode)), "not a file")


def _check_size(file: str, size: int) -> None:
    if size > MAX_BYTES:
        raise InputError(file, 1, DOCUMENT, f"larger than the limit of {MAX_BYTES} bytes")


def load_yaml(path: Path | str, text: str | None = None) -> Document:
    """Load one YAML document from ``path`` (or from ``text``, reported as ``path``), through
    the gate: see the module docstring and ``conformance/FORMAT.md`` (YAML subset)."""
    file = str(path)
    if text is None:
        text = read_input(path)
    else:
        _check_size(file, len(text.encode("utf-8", "surrogatepass")))
    loader: _GateLoader | None = None
    try:
        loader = _GateLoader(text)
        node = loader.get_single_node()
    except _Refused as exc:
        raise InputError(file, exc.mark.line + 1, exc.path or DOCUMENT, exc.message) from exc
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else 1
        raise InputError(file, line, SYNTAX, _syntax_message(exc)) from exc
    except yaml.reader.ReaderError as exc:
        line = text[: exc.position].count("\n") + 1
        raise InputError(file, line, SYNTAX, f"invalid YAML: {exc.reason}") from exc
    except yaml.YAMLError as exc:  # e.g. a second document in the stream
        raise InputError(file, 1, SYNTAX, str(exc).replace("\n", " ")) from exc
    finally:
        if loader is not None:
            loader.dispose()
    if node is None:
        raise InputError(file, 1, DOCUMENT, "the file is empty")
    lines: dict[str, int] = {"": node.start_mark.line + 1}
    data = _convert(file, node, "", lines)
    return Document(file, data, lines)


def _syntax_message(exc: yaml.MarkedYAMLError) -> str:
    context, start, found = exc.context, exc.context_mark, exc.problem_mark
    # The problem is often found lines after its cause (an unclosed bracket): name both lines.
    if context and start is not None and found is not None and start.line != found.line:
        context = f"{context} (started on line {start.line + 1})"
    parts = [p for p in (context, exc.problem) if p]
    return "invalid YAML: " + ", ".join(parts)


def _convert(file: str, node: Node, path: str, lines: dict[str, int]) -> object:
    """Plain Python for ``node``, recording lines; rejects duplicate, non-scalar and merge keys
    and control characters, and types plain scalars by :func:`_plain_scalar`."""
    if isinstance(node, MappingNode):
        result: dict[str, object] = {}
        for key_node, value_node in node.value:
            key_line = key_node.start_mark.line + 1
            if not isinstance(key_node, ScalarNode):
                raise InputError(file, key_line, path or DOCUMENT, "keys must be plain words")
            key = str(key_node.value)
            if key == "<<" and key_node.style is None:
                raise InputError(
                    file, key_line, path or DOCUMENT, "merge keys (<<) are not accepted"
                )
            if any(_is_control(c) for c in key):
                raise InputError(
                    file, key_line, path or DOCUMENT, f"a control character in the key {key!r}"
                )
            sub = child_path(path, key)
            if key in result:
                first = lines.get(sub, key_line)
                raise InputError(
                    file, key_line, sub, f"duplicate key (first given on line {first})"
                )
            lines[sub] = key_line
            result[key] = _convert(file, value_node, sub, lines)
        return result
    if isinstance(node, SequenceNode):
        items: list[object] = []
        for index, item in enumerate(node.value):
            sub = item_path(path, index)
            lines[sub] = item.start_mark.line + 1
            items.append(_convert(file, item, sub, lines))
        return items
    assert isinstance(node, ScalarNode)
    value = str(node.value)
    try:
        if node.tag == _PLAIN:
            return _plain_scalar(value)
        _check_text(value)
        return value
    except ValueError as exc:
        raise InputError(file, node.start_mark.line + 1, path or DOCUMENT, str(exc)) from None


def _check_text(value: str) -> None:
    bad = next((c for c in value if _is_control(c) and c not in _ALLOWED_IN_VALUES), None)
    if bad is not None:
        raise ValueError(f"control character {bad!r} in {value!r}: not accepted")


def _plain_scalar(value: str) -> object:
    """An unquoted scalar: ``null`` (or ``~`` or nothing), ``true``, ``false``, a decimal whole
    number of at most :data:`MAX_INT_DIGITS` digits, a finite decimal number with a point, or
    else a string, unless YAML 1.1 or 1.2 would read it as something else (``yes``, ``off``,
    ``0x1F``, ``1:20``, ``2021-12-10``, ``.nan``, ``1e3``, ``True``...): that is refused with a
    ValueError, so that no file means one thing here and another elsewhere."""
    if value in ("", "~", "null"):
        return None
    if value in ("true", "false"):
        return value == "true"
    if _INT.fullmatch(value):
        if len(value.lstrip("+-")) > MAX_INT_DIGITS:
            raise ValueError(f"a whole number of more than {MAX_INT_DIGITS} digits")
        return int(value)
    if _FLOAT.fullmatch(value) and len(value) <= MAX_NUMBER_CHARS:
        number = float(value)
        if not math.isfinite(number):
            raise ValueError(f"{value} is too large a number")
        return number
    _check_text(value)
    tag = _YAML11.resolve(ScalarNode, value, (True, False))  # type: ignore[no-untyped-call]
    yaml11 = str(tag).rsplit(":", 1)[-1]
    hint = "or quote it for a string"
    if yaml11 == "bool" or value.lower() in ("true", "false"):
        raise ValueError(f"{value!r} is not a boolean here: write true or false, {hint}")
    if yaml11 == "null" or value.lower() == "null":
        raise ValueError(f"{value!r}: write null for no value, {hint}")
    if yaml11 == "timestamp" or _DATE_LIKE.fullmatch(value):
        raise ValueError(f"{value!r} reads as a date or a time in YAML: write it {hint}")
    if yaml11 in ("int", "float") or _YAML12_NUMBER.fullmatch(value):
        raise ValueError(
            f"{value!r} is not a plain decimal number: write one like 12 or 1.5, {hint} (no 0x, "
            "0o, leading zeros, _, base-60 1:20, exponent without a point, .nan or .inf)"
        )
    if yaml11 == "merge":
        raise ValueError(f"merge keys (<<) are not accepted: {hint}")
    return value


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


def as_seconds(doc: Document, path: str, value: object) -> float:
    """A timeout: a finite number of seconds, > 0 and within ``vocab.MAX_TIMEOUT_S``."""
    reason = timeout_error(value)
    if reason is not None:
        raise doc.error(path, f"{reason} (got {type_name(value)} {shown(value)})")
    assert isinstance(value, int | float)
    return float(value)


def as_bound(doc: Document, path: str, value: object) -> int:
    """A bound in steps (BMC depth, largest k): 1 to ``vocab.MAX_BOUND``."""
    bound = as_int(doc, path, value)
    reason = bound_error(bound)
    if reason is not None:
        raise doc.error(path, reason)
    return bound


def as_name(doc: Document, path: str, value: object) -> str:
    """A non-empty string naming something (an id, a name)."""
    name = as_str(doc, path, value)
    if not name.strip():
        raise doc.error(path, "the name is empty")
    return name


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
        name = as_name(doc, "name", fields["name"])
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
    not look like an empty, passing run), and so does an empty path (which would otherwise mean
    the working directory, ``.venv`` included). Anything else that is not a folder (a FIFO, a
    device) is returned, for :func:`load_yaml` to refuse with its file name."""
    found: set[Path] = set()
    for given in paths:
        if not str(given):
            raise FileNotFoundError("an empty path names no file or folder")
        entry = Path(given)
        if entry.is_dir():
            found.update(p for p in entry.rglob("*.yaml") if not p.is_dir())
        elif os.path.lexists(entry):
            found.add(entry)
        else:
            raise FileNotFoundError(f"no such file or directory: {entry}")
    return sorted(found)

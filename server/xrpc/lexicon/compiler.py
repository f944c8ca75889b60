"""Compilation: lexicon documents into trees of validator nodes, with every reference resolved.

Every schema is compiled once, when the documents are loaded; references are linked after the last
document, so a broken document fails at start-up and a call costs microseconds.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, cast

from server.xrpc.lexicon.formats import FORMATS, is_nsid
from server.xrpc.lexicon.nodes import (
    MISSING,
    PARAM_COERCERS,
    AnyNode,
    ArrayNode,
    BlobNode,
    BooleanNode,
    BytesNode,
    CidLinkNode,
    IntegerNode,
    Node,
    NullNode,
    ObjectNode,
    Param,
    ParamsNode,
    Property,
    RefNode,
    StringCheck,
    StringNode,
    TokenNode,
    UnionNode,
    UnknownNode,
    byte_length_check,
    const_check,
    enum_check,
    format_check,
    grapheme_length_check,
)
from server.xrpc.lexicon.syntax import (
    BODY_SCHEMA_TYPES,
    FIELD_TYPES,
    METHOD_TYPES,
    PRIMARY_TYPES,
    RECORD_KEY_TYPES,
    JsonObject,
    LexiconLoadError,
    MethodSchema,
    Schema,
    full_ref,
)

_PARAM_TYPES: Final = frozenset(PARAM_COERCERS)


class Compiler:
    """Compiles the definitions of a set of documents and links their references."""

    def __init__(self) -> None:
        self.defs: dict[str, Node] = {}
        self.refs: list[tuple[RefNode, Schema]] = []

    def field(self, schema: Schema) -> Node:
        kind = schema.required_string("type")
        if kind not in FIELD_TYPES:
            raise schema.error(f'type "{kind}" is not allowed here')
        if kind == "string":
            return self.string(schema)
        if kind == "integer":
            allowed = schema.integers("enum")
            const = schema.scalar("const", int)
            schema.scalar("default", int)
            if const is not MISSING:
                allowed = [cast(int, const)]
            return IntegerNode(
                schema.integer("minimum"),
                schema.integer("maximum"),
                None if allowed is None else frozenset(allowed),
            )
        if kind == "boolean":
            const = schema.scalar("const", bool)
            schema.scalar("default", bool)
            return BooleanNode(None if const is MISSING else cast(bool, const))
        if kind == "object":
            return self.object(schema)
        if kind == "array":
            items = schema.child("items")
            if items is None:
                raise schema.error('"items" is required')
            return ArrayNode(self.field(items), schema.integer("minLength"), schema.integer("maxLength"))
        if kind == "ref":
            return self.ref(schema, schema.required_string("ref"))
        if kind == "union":
            return self.union(schema)
        if kind == "bytes":
            return BytesNode(schema.integer("minLength"), schema.integer("maxLength"))
        if kind == "blob":
            accept = schema.strings("accept")
            return BlobNode(None if accept is None else tuple(accept), schema.integer("maxSize"))
        if kind == "cid-link":
            return CidLinkNode()
        if kind == "null":
            return NullNode()
        if kind == "unknown":
            return UnknownNode()
        raise schema.error("a token can only be a definition of its own, not a field")

    def string(self, schema: Schema) -> StringNode:
        checks: list[StringCheck] = []
        const = schema.scalar("const", str)
        schema.scalar("default", str)
        if const is not MISSING:
            checks.append(const_check(cast(str, const)))
        allowed = schema.strings("enum")
        if allowed is not None:
            checks.append(enum_check(allowed))
        min_bytes, max_bytes = schema.integer("minLength"), schema.integer("maxLength")
        if min_bytes is not None or max_bytes is not None:
            checks.append(byte_length_check(min_bytes, max_bytes))
        min_graphemes, max_graphemes = schema.integer("minGraphemes"), schema.integer("maxGraphemes")
        if min_graphemes is not None or max_graphemes is not None:
            checks.append(grapheme_length_check(min_graphemes, max_graphemes))
        format_name = schema.string("format")
        if format_name is not None:
            if format_name not in FORMATS:
                raise schema.error(f'unknown string format "{format_name}"')
            checks.append(format_check(format_name, FORMATS[format_name]))
        return StringNode(checks)

    def object(self, schema: Schema) -> ObjectNode:
        properties = schema.child("properties")
        members = {} if properties is None else properties.data
        required = set(schema.strings("required") or ())
        nullable = set(schema.strings("nullable") or ())
        undeclared = sorted((required | nullable) - members.keys())
        if undeclared:
            raise schema.error(f'"{undeclared[0]}" is required or nullable but not among the properties')
        compiled = []
        for name, member in members.items():
            member_schema = Schema(member, f"{schema.where}/properties/{name}", schema.lexicon_id)
            compiled.append(
                Property(
                    name,
                    self.field(member_schema),
                    name in required,
                    name in nullable,
                    member_schema.data.get("default", MISSING),
                )
            )
        return ObjectNode(compiled)

    def ref(self, schema: Schema, ref: str) -> RefNode:
        node = RefNode(full_ref(ref, schema.lexicon_id))
        self.refs.append((node, schema))
        return node

    def union(self, schema: Schema) -> UnionNode:
        refs = schema.strings("refs")
        if refs is None:
            raise schema.error('"refs" is required')
        targets = {}
        for ref in refs:
            node = self.ref(schema, ref)
            targets[node.key.removesuffix("#main")] = node
        return UnionNode(targets, refs, bool(schema.boolean("closed")))

    def params(self, schema: Schema) -> ParamsNode:
        if schema.string("type") != "params":
            raise schema.error('"type" must be "params"')
        properties = schema.child("properties")
        members = {} if properties is None else properties.data
        required = set(schema.strings("required") or ())
        undeclared = sorted(required - members.keys())
        if undeclared:
            raise schema.error(f'"{undeclared[0]}" is required but not among the properties')
        params = []
        for name, member in members.items():
            member_schema = Schema(member, f"{schema.where}/properties/{name}", schema.lexicon_id)
            kind = member_schema.required_string("type")
            scalar_schema = member_schema.child("items") if kind == "array" else member_schema
            scalar_kind = None if scalar_schema is None else scalar_schema.string("type")
            if scalar_kind not in _PARAM_TYPES:
                raise member_schema.error(
                    "a parameter must be a boolean, integer, string or unknown, or an array"
                )
            if scalar_kind != "unknown":
                node = self.field(member_schema)
            elif kind == "array":
                node = ArrayNode(
                    AnyNode(), member_schema.integer("minLength"), member_schema.integer("maxLength")
                )
            else:
                node = AnyNode()
            params.append(
                Param(
                    name,
                    PARAM_COERCERS[scalar_kind],
                    node,
                    kind == "array",
                    name in required,
                    member_schema.data.get("default", MISSING),
                )
            )
        return ParamsNode(params)

    def link(self) -> None:
        for node, schema in self.refs:
            target = self.defs.get(node.key)
            if target is None:
                raise schema.error(f'reference "{node.key}" does not resolve to a loaded definition')
            node.target = target


@dataclass(frozen=True, slots=True)
class Method:
    """A method's declaration and the compiled validators of its parameters, input and output."""

    schema: MethodSchema
    params: ParamsNode | None
    input: Node | None
    output: Node | None


def _body(compiler: Compiler, method: Schema, key: str) -> tuple[JsonObject | None, Node | None]:
    """The raw ``input``/``output`` of a method and the compiled validator of its ``schema``."""
    body = method.child(key)
    if body is None:
        return None, None
    body.required_string("encoding")
    schema = body.child("schema")
    if schema is None:
        return body.data, None
    if schema.string("type") not in BODY_SCHEMA_TYPES:
        raise schema.error('"type" must be "object", "ref" or "union"')
    return body.data, compiler.field(schema)


def _compile_method(compiler: Compiler, schema: Schema, nsid: str, kind: str) -> Method:
    parameters = schema.child("parameters")
    if kind == "query" and "input" in schema.data:
        raise schema.error("a query has no input")
    input_data, input_node = _body(compiler, schema, "input")
    output_data, output_node = _body(compiler, schema, "output")
    errors = []
    for index, entry in enumerate(cast(list[object], schema.data.get("errors") or [])):
        errors.append(Schema(entry, f"{schema.where}/errors/{index}", nsid).required_string("name"))
    return Method(
        MethodSchema(
            nsid=nsid,
            kind="query" if kind == "query" else "procedure",
            description=schema.string("description"),
            parameters=None if parameters is None else parameters.data,
            input=input_data,
            output=output_data,
            errors=tuple(errors),
        ),
        None if parameters is None else compiler.params(parameters),
        input_node,
        output_node,
    )


def compile_document(
    compiler: Compiler, document: object, methods: dict[str, Method], records: dict[str, Node]
) -> str:
    """Compiles the definitions of one document into ``compiler``; answers the document's NSID."""
    lexicon_id = document.get("id") if isinstance(document, dict) else None
    if not isinstance(lexicon_id, str) or not is_nsid(lexicon_id):
        raise LexiconLoadError(
            'a lexicon document must be a JSON object whose "id" is a valid NSID',
            lexicon_id if isinstance(lexicon_id, str) else None,
        )
    top = Schema(document, lexicon_id, lexicon_id)
    if top.integer("lexicon") != 1:
        raise top.error('"lexicon" must be 1')
    defs = top.child("defs")
    if defs is None or not defs.data:
        raise top.error('"defs" must hold at least one definition')
    for name, definition in defs.data.items():
        key = f"{lexicon_id}#{name}"
        schema = Schema(definition, key, lexicon_id)
        kind = schema.required_string("type")
        if kind in PRIMARY_TYPES and name != "main":
            raise schema.error(f"a {kind} must be the main definition")
        if kind == "record":
            record_key = schema.required_string("key")
            if record_key not in RECORD_KEY_TYPES and not record_key.startswith("literal:"):
                raise schema.error(f'unknown record key type "{record_key}"')
            record = schema.child("record")
            if record is None or record.string("type") != "object":
                raise schema.error('"record" must be an object schema')
            compiler.defs[key] = records[lexicon_id] = compiler.object(record)
        elif kind in METHOD_TYPES:
            methods[lexicon_id] = _compile_method(compiler, schema, lexicon_id, kind)
        elif kind == "token":
            compiler.defs[key] = TokenNode(lexicon_id if name == "main" else key)
        elif kind in FIELD_TYPES:
            compiler.defs[key] = compiler.field(schema)
        else:
            raise schema.error(f'definition type "{kind}" is not supported')
    return lexicon_id

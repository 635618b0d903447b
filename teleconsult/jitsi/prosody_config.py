"""Reading a Prosody configuration file without running it: the subset of Lua that Prosody
configurations use (assignments of strings, numbers, booleans and tables; VirtualHost,
Component and Include statements; comments). Used by `teleconsult check --jitsi-config`
(config_check.py) and by nothing that serves requests.
"""

from __future__ import annotations

import glob
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

MAX_INCLUDE_DEPTH = 4


class ConfigSyntaxError(ValueError):
    pass


# Reading the Lua subset ------------------------------------------------------------------------


class Unknown:
    """A value this reader does not evaluate (a variable, a concatenation, a function call)."""

    def __init__(self, text: str) -> None:
        self.text = text

    def __repr__(self) -> str:
        return f"Unknown({self.text!r})"


@dataclass
class LuaTable:
    items: list[Any] = field(default_factory=list)
    fields: dict[str, Any] = field(default_factory=dict)


@dataclass
class Section:
    kind: str  # "global", "VirtualHost", "Component"
    name: str = "*"
    component_type: str | None = None
    options: dict[str, Any] = field(default_factory=dict)
    source: str = ""


@dataclass
class ProsodyConfig:
    sections: list[Section]
    includes: list[str] = field(default_factory=list)  # patterns followed
    unfollowed: list[str] = field(default_factory=list)  # patterns that matched nothing

    @property
    def global_options(self) -> dict[str, Any]:
        merged: dict[str, Any] = {}
        for section in self.sections:
            if section.kind == "global":
                merged.update(section.options)
        return merged

    def find(self, kind: str, name: str) -> Section | None:
        found = [s for s in self.sections if s.kind == kind and s.name.lower() == name.lower()]
        if not found:
            return None
        # Prosody merges repeated sections of the same host
        merged = Section(kind, found[0].name, found[0].component_type, {}, found[0].source)
        for section in found:
            merged.options.update(section.options)
            merged.component_type = section.component_type or merged.component_type
        return merged


_TOKEN_RE = re.compile(r"""
    (?P<space>\s+)
  | (?P<comment>--(?:\[(?P<ceq>=*)\[[\s\S]*?\](?P=ceq)\]|[^\n]*))
  | (?P<long>\[(?P<leq>=*)\[[\s\S]*?\](?P=leq)\])
  | (?P<string>"(?:[^"\\\n]|\\[\s\S])*"|'(?:[^'\\\n]|\\[\s\S])*')
  | (?P<number>0[xX][0-9a-fA-F]+|(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)
  | (?P<name>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<op>\.\.\.|\.\.|==|~=|<=|>=|[-+*/%^#<>=(){}\[\];:,.])
""", re.VERBOSE)

_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "a": "\a", "b": "\b", "f": "\f", "v": "\v",
            "\\": "\\", '"': '"', "'": "'", "\n": "\n"}


def _unquote(text: str) -> str:
    body = text[1:-1]
    out, i = [], 0
    while i < len(body):
        ch = body[i]
        if ch == "\\" and i + 1 < len(body):
            nxt = body[i + 1]
            if nxt.isdigit():
                digits = re.match(r"\d{1,3}", body[i + 1:]).group(0)  # type: ignore[union-attr]
                out.append(chr(int(digits)))
                i += 1 + len(digits)
                continue
            out.append(_ESCAPES.get(nxt, nxt))
            i += 2
            continue
        out.append(ch)
        i += 1
    return "".join(out)


@dataclass
class _Token:
    kind: str
    value: Any
    line: int


def _tokens(text: str) -> list[_Token]:
    tokens: list[_Token] = []
    pos, line = 0, 1
    while pos < len(text):
        match = _TOKEN_RE.match(text, pos)
        if not match:
            raise ConfigSyntaxError(f"line {line}: cannot read {text[pos:pos + 20]!r}")
        kind = next(k for k in ("space", "comment", "long", "string", "number", "name", "op")
                    if match.group(k) is not None)
        raw = match.group(0)
        if kind == "string":
            tokens.append(_Token("string", _unquote(raw), line))
        elif kind == "long":
            inner = re.match(r"\[(=*)\[\n?([\s\S]*)\]\1\]", raw)
            tokens.append(_Token("string", inner.group(2) if inner else raw, line))
        elif kind == "number":
            tokens.append(_Token("number", float(int(raw, 16)) if raw[:2].lower() == "0x" else float(raw), line))
        elif kind in ("name", "op"):
            tokens.append(_Token(kind, raw, line))
        line += raw.count("\n")
        pos = match.end()
    return tokens


class _Parser:
    def __init__(self, tokens: list[_Token], source: str) -> None:
        self.tokens, self.i, self.source = tokens, 0, source

    def peek(self, offset: int = 0) -> _Token | None:
        j = self.i + offset
        return self.tokens[j] if j < len(self.tokens) else None

    def take(self) -> _Token:
        token = self.tokens[self.i]
        self.i += 1
        return token

    def is_op(self, token: _Token | None, op: str) -> bool:
        return token is not None and token.kind == "op" and token.value == op

    def value(self) -> Any:
        start = self.peek()
        if start is None:
            raise ConfigSyntaxError("unexpected end of file after '='")
        value = self._simple()
        # anything that continues the expression (.., +, a call): not evaluated
        nxt = self.peek()
        if nxt is not None and nxt.kind == "op" and nxt.value not in (",", ";", "}", "]", ")", "=") \
                and nxt.line == self.tokens[self.i - 1].line:
            self._skip_expression(start.line)
            return Unknown("expression")
        return value

    def _skip_expression(self, line: int) -> None:
        depth = 0
        while self.peek() is not None:
            token = self.peek()
            assert token is not None
            if depth == 0 and token.line > line and token.kind in ("name", "string"):
                return
            if depth == 0 and self.is_op(token, ";"):
                return
            if depth == 0 and token.kind == "op" and token.value in (",", "}"):
                return
            if token.kind == "op" and token.value in ("(", "{", "["):
                depth += 1
            elif token.kind == "op" and token.value in (")", "}", "]"):
                depth -= 1
            line = token.line
            self.take()

    def _simple(self) -> Any:
        token = self.take()
        if token.kind in ("string", "number"):
            return int(token.value) if token.kind == "number" and token.value.is_integer() else token.value
        if token.kind == "name":
            if token.value == "true":
                return True
            if token.value == "false":
                return False
            if token.value == "nil":
                return None
            return Unknown(token.value)
        if self.is_op(token, "{"):
            return self._table()
        if self.is_op(token, "-") and self.peek() is not None and self.peek().kind == "number":  # type: ignore
            return -self._simple()
        raise ConfigSyntaxError(f"{self.source} line {token.line}: unexpected {token.value!r}")

    def _table(self) -> LuaTable:
        table = LuaTable()
        while True:
            token = self.peek()
            if token is None:
                raise ConfigSyntaxError(f"{self.source}: unclosed table")
            if self.is_op(token, "}"):
                self.take()
                return table
            if self.is_op(token, ",") or self.is_op(token, ";"):
                self.take()
                continue
            if token.kind == "name" and self.is_op(self.peek(1), "="):
                self.take()
                self.take()
                table.fields[token.value] = self.value()
            elif self.is_op(token, "["):
                self.take()
                key = self.value()
                if not self.is_op(self.peek(), "]") or not self.is_op(self.peek(1), "="):
                    raise ConfigSyntaxError(f"{self.source} line {token.line}: bad table key")
                self.take()
                self.take()
                table.fields[str(key)] = self.value()
            else:
                table.items.append(self.value())

    def statements(self, on_section, on_option, on_include) -> None:
        while self.peek() is not None:
            token = self.take()
            if token.kind == "op" and token.value == ";":
                continue
            if token.kind == "name" and token.value in ("VirtualHost", "Component", "Host"):
                name = self.take() if self.peek() is not None else None
                if name is None or name.kind != "string":
                    raise ConfigSyntaxError(f"{self.source} line {token.line}: {token.value} needs a name")
                kind = "VirtualHost" if token.value == "Host" else token.value
                component_type = None
                if kind == "Component" and self.peek() is not None and self.peek().kind == "string" \
                        and self.peek().line == name.line:  # type: ignore[union-attr]
                    component_type = self.take().value
                on_section(kind, name.value, component_type)
                continue
            if token.kind == "name" and token.value in ("Include", "include") and \
                    self.peek() is not None and self.peek().kind == "string":  # type: ignore[union-attr]
                on_include(self.take().value)
                continue
            if token.kind == "name" and self.is_op(self.peek(), "="):
                self.take()
                on_option(token.value, self.value())
                continue
            # anything else (a function call, `local x = ...`): skip the rest of the statement
            self._skip_expression(token.line)


def parse_config(text: str, path: Path | None = None, _depth: int = 0) -> ProsodyConfig:
    """Read a Prosody configuration; `Include` patterns are resolved next to `path`."""
    source = str(path) if path else "<config>"
    config = ProsodyConfig(sections=[Section("global", source=source)])
    current = config.sections[0]

    def on_section(kind: str, name: str, component_type: str | None) -> None:
        nonlocal current
        current = Section(kind, name, component_type, source=source)
        config.sections.append(current)

    def on_option(name: str, value: Any) -> None:
        current.options[name] = value

    def on_include(pattern: str) -> None:
        base = path.parent if path else Path.cwd()
        full = pattern if Path(pattern).is_absolute() else str(base / pattern)
        matches = sorted(glob.glob(full))
        if not matches or _depth >= MAX_INCLUDE_DEPTH:
            config.unfollowed.append(pattern)
            return
        config.includes.append(pattern)
        for match in matches:
            included = parse_config(Path(match).read_text(encoding="utf-8", errors="replace"), Path(match),
                                    _depth + 1)
            # an included file starts in the global section, like Prosody's Include
            config.sections.extend(included.sections)
            config.includes.extend(included.includes)
            config.unfollowed.extend(included.unfollowed)
        nonlocal current
        current = config.sections[-1]  # Prosody shares the section state with included files

    _Parser(_tokens(text), source).statements(on_section, on_option, on_include)
    return config

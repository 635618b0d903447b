"""The small immutable records on the command line's path (links, a box's URLs, a header, what
a transfer returns) are ``typing.NamedTuple`` classes, not dataclasses: importing
``dataclasses`` loads ``inspect`` (with ``ast``, ``dis`` and ``tokenize``) and each
``@dataclass`` compiles its methods at import, about 14 ms of the 100 ms that `teleconsult drop`
spent importing before it could send a byte (docs/benchmarks.md). ``typing`` is loaded anyway
(by cryptography). A field that holds a credential or a secret stays out of the repr, as
``field(repr=False)`` kept it out before: :func:`repr_without`."""

from __future__ import annotations


def repr_without(record: tuple, *hidden: str) -> str:
    """``Name(field=value, ...)`` for a NamedTuple, leaving out the `hidden` fields."""
    shown = ", ".join(f"{name}={getattr(record, name)!r}" for name in record._fields if name not in hidden)
    return f"{type(record).__name__}({shown})"

"""A mypy plugin: ``record.get("key")`` on a TypedDict must name one of its keys.

mypy checks ``record["stauts"]`` against the TypedDict (``TypedDict "PrinterRecord"
has no key "stauts"``) but, as PEP 589 allows, not ``record.get("stauts")``: that
returns ``object`` and passes silently. The dashboard reads most fields of the wire
records (``pm_core.protocol.records``) with ``.get()``, so that it keeps working when
an older hub leaves a field out; without this plugin a field renamed between hub and
dashboard would still be caught only by end-to-end tests.

With it, a literal key that the TypedDict does not define is the same error as for
``[]`` (code ``typeddict-item``, with mypy's "Did you mean" note). A key that is not
a literal (``record.get(name)``) is not checked; neither is ``"key" in record``. On
a union of TypedDicts mypy asks for each member, so every member must have the key.
Everything else (the type ``.get()`` returns) is mypy's own answer.

Enabled in pyproject.toml: ``[tool.mypy] plugins = ["tools/mypy_record_keys.py"]``.
"""

from __future__ import annotations

from collections.abc import Callable

from mypy.plugin import MethodContext, Plugin
from mypy.plugins.common import try_getting_str_literals
from mypy.plugins.default import typed_dict_get_callback
from mypy.types import Type, TypedDictType

#: The method mypy resolves ``TypedDict.get`` to (its own plugin hooks the same name).
GET = "typing.Mapping.get"


def checked_get(ctx: MethodContext) -> Type:
    if isinstance(ctx.type, TypedDictType) and ctx.args and len(ctx.args[0]) == 1:
        keys = try_getting_str_literals(ctx.args[0][0], ctx.arg_types[0][0]) or []
        for key in keys:
            if key not in ctx.type.items:
                ctx.api.msg.typeddict_key_not_found(ctx.type, key, ctx.context)
    # The first plugin with a hook wins, so hand over to mypy's for the result type.
    return typed_dict_get_callback(ctx)


class RecordKeysPlugin(Plugin):
    def get_method_hook(self, fullname: str) -> Callable[[MethodContext], Type] | None:
        return checked_get if fullname == GET else None


def plugin(version: str) -> type[Plugin]:
    return RecordKeysPlugin

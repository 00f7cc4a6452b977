"""The one-line docstring under each config field, read from the source when asked.

Every field of the config models has a docstring (its description). pydantic can
attach them itself (``use_attribute_docstrings``), but it reads and parses the source
of every model class when it is built: 18 ms of every run's start-up, for text only
``phone-enrich init`` writes. They are read here instead, the way pydantic reads them:
the string literal right under the field's annotation, in the class that annotates the
field last (a subclass that sets another default without a docstring has none).
"""

from __future__ import annotations

import ast
import functools
import inspect
import itertools
import textwrap

from pydantic import BaseModel


def field_description(model: type[BaseModel], name: str) -> str | None:
    """The docstring of field ``name`` of ``model``, cleaned as pydantic cleans it."""
    for cls in model.__mro__:
        if name in inspect.get_annotations(cls):
            return _docstrings(cls).get(name)
    return None


@functools.cache
def _docstrings(cls: type) -> dict[str, str]:
    """Field name -> the string literal right under its annotation, in ``cls`` itself."""
    tree = ast.parse(textwrap.dedent(inspect.getsource(cls)))
    body = next(node for node in tree.body if isinstance(node, ast.ClassDef)).body
    docs: dict[str, str] = {}
    for node, after in itertools.pairwise(body):
        if (
            isinstance(node, ast.AnnAssign)
            and isinstance(node.target, ast.Name)
            and isinstance(after, ast.Expr)
            and isinstance(after.value, ast.Constant)
            and isinstance(after.value.value, str)
        ):
            docs[node.target.id] = inspect.cleandoc(after.value.value)
    return docs

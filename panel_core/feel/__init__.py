"""Server-side FEEL for Camunda Forms: a subset evaluated exactly as form-js evaluates it.

form-js evaluates the expressions of a form (``conditional.hide``, ``=variable`` labels,
defaults and option sources) in the browser with feelin 6.1.1. To render the same form on
the server, this package parses a well-defined subset of FEEL and evaluates it with feelin's
semantics, JavaScript quirks included; ``tests/test_feel.py`` compares it with feelin itself.

The subset: number, string, boolean and null literals; variables and ``a.b`` paths;
``+ - * / **`` and prefix minus; ``= != < <= > >=``, ``between … and …``; ``x in [list]``,
``x in value`` and ``x in`` intervals ``[a..b]``, ``(a..b)``, ``]a..b[`` (and mixtures);
``and``, ``or``; ``if … then … else …``; list and context literals; filters ``list[item > 1]``
and indexes ``list[1]``, ``list[-1]``; ``some``/``every … in … satisfies``; ``for … in …
return``; and, with positional arguments, feelin's built-in functions on strings (``string
length``, ``upper case``, ``lower case``, ``substring``, ``substring before``, ``substring
after``, ``contains``, ``starts with``, ``ends with``, ``matches``, ``replace``, ``split``,
``string join``), on lists (``list contains``, ``count``, ``min``, ``max``, ``sum``,
``mean``, ``median``, ``stddev``, ``mode``, ``product``, ``all``, ``any``, ``sublist``,
``append``, ``concatenate``, ``insert before``, ``remove``, ``list replace``, ``reverse``,
``index of``, ``union``, ``distinct values``, ``flatten``), on contexts (``get value``,
``get entries``, ``context``, ``context merge``, ``context put``) and ``not``, ``string``,
``number``, ``is``, ``abs``, ``floor``, ``ceiling``. Regular expressions are JavaScript's,
as feelin builds them (:mod:`panel_core.feel.jsregex`). Everything else - temporal values,
the other numeric and range functions, ``sort`` (which needs a function), function
definitions, ``instance of``, unary tests, named arguments, comments - is refused by
:func:`parse` with a :class:`FeelError` saying what and where.
"""

from __future__ import annotations

from panel_core.feel.errors import FeelError
from panel_core.feel.evaluator import evaluate
from panel_core.feel.parser import Expression, parse

__all__ = [
    "Expression",
    "FeelError",
    "evaluate",
    "parse",
]

"""Restricted evaluator for BPMN conditions and scripts.

SpiffWorkflow's default script engine runs plain ``eval``/``exec`` over task data, so a process
model could import modules or walk ``().__class__.__bases__`` to anything in the process. Here every
expression and script is

1. parsed and checked against a *whitelist* of AST node types (anything not listed is refused with
   a message and the line it is on);
2. rewritten so that the operations that can exhaust memory or CPU go through guards
   (``**``, ``*``, ``+``, ``<<``, ``%``, slices, ``in``, every ``for`` iterable, method calls);
3. compiled from that validated tree (never from the source text) and run over a copy of the task
   data, with the guards written over it and ``__builtins__`` = :data:`SAFE_BUILTINS` plus the
   registered functions.

Validated code is cached per source string, so a gateway condition costs a dictionary copy and an
``eval`` after its first use.

Language: literals, names, arithmetic/comparison/boolean operators, ``x if c else y``, subscripts
and slices, list/dict/set/tuple displays, comprehensions, f-strings, calls of :data:`SAFE_BUILTINS`
and of the registered functions, calls of the methods in :data:`SAFE_METHODS` (checked again at run
time against the receiver's exact type). Scripts add assignment, augmented assignment, ``if``,
``for``, ``break``/``continue``, ``pass`` and ``del`` of variables and items. No name or attribute
may begin with ``_``.

Resource limits (per evaluate/execute): integers up to :data:`MAX_INTEGER_BITS`, exponents up to
:data:`MAX_EXPONENT`, strings/lists/ranges up to :data:`MAX_SEQUENCE_LENGTH` items,
:data:`MAX_LOOP_ITERATIONS` loop iterations (``for`` and comprehensions together) and
:data:`MAX_ELEMENTS_PROCESSED` elements copied or scanned by built-ins, concatenation, slices and
``in``. Not bounded: ``==``/``<`` between large values inside loops, and pathological structures
that share themselves exponentially; the engine step's Celery time limit is the backstop there.

Scripts only ever leave JSON-like values (see :data:`STORABLE_SCALARS`) in task data, and a script
that fails leaves task data exactly as it was.
"""

from __future__ import annotations

import ast
import contextvars
import copy
import difflib
import functools
import keyword
import operator
import re
import textwrap
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from types import CodeType, TracebackType
from typing import Any

from SpiffWorkflow.bpmn.exceptions import WorkflowTaskException
from SpiffWorkflow.bpmn.script_engine import PythonScriptEngine
from SpiffWorkflow.bpmn.script_engine.python_environment import BasePythonScriptEngineEnvironment
from SpiffWorkflow.exceptions import SpiffWorkflowException

__all__ = [
    "EvaluationError",
    "RestrictedEnvironment",
    "RestrictedEvaluator",
    "RestrictedScriptEngine",
    "SAFE_BUILTINS",
    "SAFE_METHODS",
]

# --- limits ----------------------------------------------------------------------------------------

MAX_SOURCE_LENGTH = 100_000
MAX_INTEGER_BITS = 10_000  # ~3000 decimal digits: far beyond any fee or count
MAX_EXPONENT = 10_000
MAX_SEQUENCE_LENGTH = 1_000_000  # str/list/tuple length, range() length, rendered text
MAX_LOOP_ITERATIONS = 100_000
MAX_ELEMENTS_PROCESSED = 10_000_000
MAX_FORMAT_WIDTH = 1_000  # width/precision in an f-string format spec
MAX_ROUND_DIGITS = 100
MAX_DATA_DEPTH = 100
MAX_STORED_ITEMS = 1_000_000
MAX_STORED_CHARS = 20_000_000

_FILENAME = "<bpmn-script>"


class EvaluationError(Exception):
    """An expression or script was refused or failed; ``line`` is the 1-based line when known."""

    def __init__(self, message: str, line: int | None = None) -> None:
        self.message = message
        self.line = line
        super().__init__(f"line {line}: {message}" if line is not None else message)


# --- run-time budget -------------------------------------------------------------------------------


class _Budget:
    __slots__ = ("elements", "iterations")

    def __init__(self) -> None:
        self.iterations = 0
        self.elements = 0


# The guards are plain functions shared by every run (they are reachable from C code such as
# sorted(key=...)), so the budget of the current run is found through a context variable.
_BUDGET: contextvars.ContextVar[_Budget | None] = contextvars.ContextVar("motcua_eval_budget", default=None)


def _charge(count: int) -> None:
    budget = _BUDGET.get()
    if budget is None:
        return
    budget.elements += count
    if budget.elements > MAX_ELEMENTS_PROCESSED:
        raise EvaluationError(
            f"too much work: more than {MAX_ELEMENTS_PROCESSED:,} elements copied or scanned"
        )


def _charge_sized(value: Any) -> None:
    if type(value) in _SIZED_TYPES:
        _charge(len(value))


def _g_iter(iterable: Iterable[Any]) -> Iterator[Any]:
    """Every ``for`` (statement or comprehension) iterates through this: counts iterations."""
    budget = _BUDGET.get() or _Budget()
    for item in iterable:
        budget.iterations += 1
        if budget.iterations > MAX_LOOP_ITERATIONS:
            raise EvaluationError(f"too many loop iterations (limit {MAX_LOOP_ITERATIONS:,})")
        yield item


# --- guarded operators -----------------------------------------------------------------------------

_SEQUENCES = (str, list, tuple)


def _check_length(length: int, what: str) -> None:
    if length > MAX_SEQUENCE_LENGTH:
        raise EvaluationError(f"{what} would have {length:,} items (limit {MAX_SEQUENCE_LENGTH:,})")
    _charge(length)


def _check_add(a: Any, b: Any) -> None:
    if isinstance(a, _SEQUENCES) and isinstance(b, _SEQUENCES):
        _check_length(len(a) + len(b), "concatenation")


def _check_mul(a: Any, b: Any) -> None:
    if isinstance(a, int) and isinstance(b, int):
        if a.bit_length() + b.bit_length() > MAX_INTEGER_BITS:
            raise EvaluationError(f"product would exceed {MAX_INTEGER_BITS} bits")
    elif isinstance(a, _SEQUENCES) and isinstance(b, int):
        _check_length(len(a) * max(b, 0), "repetition")
    elif isinstance(b, _SEQUENCES) and isinstance(a, int):
        _check_length(len(b) * max(a, 0), "repetition")


def _check_pow(base: Any, exponent: Any) -> None:
    if isinstance(exponent, int | float | Decimal) and not -MAX_EXPONENT <= exponent <= MAX_EXPONENT:
        raise EvaluationError(f"exponent {exponent} is too large (limit {MAX_EXPONENT})")
    if (
        isinstance(base, int)
        and isinstance(exponent, int)
        and exponent > 0
        and abs(base) > 1
        and abs(base).bit_length() * exponent > MAX_INTEGER_BITS
    ):
        raise EvaluationError(f"power would exceed {MAX_INTEGER_BITS} bits")


def _check_lshift(a: Any, b: Any) -> None:
    if isinstance(a, int) and isinstance(b, int) and a and b > 0 and a.bit_length() + b > MAX_INTEGER_BITS:
        raise EvaluationError(f"shift would exceed {MAX_INTEGER_BITS} bits")


def _check_mod(a: Any, b: Any) -> None:
    # printf-style formatting takes widths from data ("%*d"): f-strings are checked instead.
    if isinstance(a, str | bytes):
        raise EvaluationError("'%' formatting of text is not allowed; use an f-string")


def _guard(check: Callable[[Any, Any], None], op: Callable[[Any, Any], Any]) -> Callable[[Any, Any], Any]:
    def guarded(a: Any, b: Any) -> Any:
        check(a, b)
        return op(a, b)

    return guarded


_BINOP_GUARDS: dict[type[ast.operator], tuple[str, Callable[[Any, Any], None], Any, Any]] = {
    ast.Add: ("_g_add", _check_add, operator.add, operator.iadd),
    ast.Mult: ("_g_mul", _check_mul, operator.mul, operator.imul),
    ast.Pow: ("_g_pow", _check_pow, operator.pow, operator.ipow),
    ast.LShift: ("_g_lshift", _check_lshift, operator.lshift, operator.ilshift),
    ast.Mod: ("_g_mod", _check_mod, operator.mod, operator.imod),
}


def _g_slice(value: Any, lower: Any, upper: Any, step: Any) -> Any:
    result = value[lower:upper:step]
    _charge_sized(result)
    return result


def _g_in(item: Any, container: Any) -> bool:
    if type(container) in (list, tuple, str):
        _charge(len(container))
    return item in container


_FLAT_TYPES = frozenset({str, int, float, bool, type(None), Decimal, date, datetime, timedelta, uuid.UUID})
_CONTAINER_TYPES = frozenset(
    {list, tuple, set, frozenset, dict, type({}.keys()), type({}.values()), type({}.items())}
)


def _check_rendered_size(value: Any) -> None:
    """Refuse to turn a container into text when the text would be huge (shared references)."""
    if type(value) in _FLAT_TYPES:
        return
    size = 0
    stack = [value]
    while stack:
        item = stack.pop()
        size += 1
        if type(item) is str:
            size += len(item)
        elif type(item) is dict:
            stack.extend(item.keys())
            stack.extend(item.values())
        elif type(item) in _CONTAINER_TYPES:
            stack.extend(item)
        if size > MAX_SEQUENCE_LENGTH:
            raise EvaluationError(f"text would be longer than {MAX_SEQUENCE_LENGTH:,} characters")
    _charge(size)


def _g_fmt(value: Any) -> Any:
    _check_rendered_size(value)
    return value


def _g_fstr(text: str) -> str:
    if len(text) > MAX_SEQUENCE_LENGTH:
        raise EvaluationError(f"text would be longer than {MAX_SEQUENCE_LENGTH:,} characters")
    return text


# --- methods ---------------------------------------------------------------------------------------

#: Methods callable on values of exactly these types. No ``format``/``format_map`` (they reach
#: attributes through the format string), nothing that pads to a caller-chosen width.
SAFE_METHODS: dict[type, frozenset[str]] = {
    str: frozenset(
        {
            "lower",
            "upper",
            "strip",
            "lstrip",
            "rstrip",
            "startswith",
            "endswith",
            "split",
            "rsplit",
            "splitlines",
            "join",
            "replace",
            "count",
            "index",
            "find",
            "title",
            "capitalize",
            "casefold",
            "isdigit",
            "isalpha",
            "isalnum",
            "isspace",
        }
    ),
    list: frozenset({"count", "index", "copy", "append"}),
    tuple: frozenset({"count", "index"}),
    dict: frozenset({"get", "keys", "values", "items", "copy"}),
    date: frozenset({"isoformat", "weekday", "isoweekday"}),
    datetime: frozenset({"isoformat", "weekday", "isoweekday", "date"}),
}
_SAFE_METHOD_NAMES = frozenset().union(*SAFE_METHODS.values())
_MUTATING_METHODS = frozenset({"append"})


def _str_join(separator: str, iterable: Iterable[Any]) -> str:
    items = list(iterable)
    total = sum(len(item) for item in items if type(item) is str) + len(separator) * max(len(items) - 1, 0)
    _check_length(total, "joined text")
    return separator.join(items)


def _str_replace(text: str, old: str, new: str, count: int = -1) -> str:
    if type(old) is str and type(new) is str and type(count) is int:
        matches = len(text) + 1 if old == "" else text.count(old)
        if count >= 0:
            matches = min(matches, count)
        _check_length(len(text) + matches * (len(new) - len(old)), "replaced text")
    return text.replace(old, new, count)


def _sized_method(method: Callable[..., Any]) -> Callable[..., Any]:
    def charged(*args: Any, **kwargs: Any) -> Any:
        _charge_sized(method.__self__)  # type: ignore[attr-defined]
        return method(*args, **kwargs)

    return charged


def _g_method(receiver: Any, name: str) -> Callable[..., Any]:
    """``receiver.name`` for a method call, if that method is safe on the receiver's exact type."""
    allowed = SAFE_METHODS.get(type(receiver))
    if allowed is None or name not in allowed:
        raise EvaluationError(f"method .{name}() is not allowed on {type(receiver).__name__} values")
    if type(receiver) is str and name == "join":
        return functools.partial(_str_join, receiver)
    if type(receiver) is str and name == "replace":
        return functools.partial(_str_replace, receiver)
    method = getattr(receiver, name)
    if name in ("count", "index", "find", "copy", "split", "rsplit", "splitlines", "values", "items"):
        return _sized_method(method)
    return method


# --- builtins --------------------------------------------------------------------------------------

_SIZED_TYPES = frozenset(
    {str, list, tuple, dict, set, frozenset, range, type({}.keys()), type({}.values()), type({}.items())}
)


def _consuming(function: Callable[..., Any]) -> Callable[..., Any]:
    """A builtin that walks its arguments: charge their size to the run's budget."""

    def charged(*args: Any, **kwargs: Any) -> Any:
        for arg in args:
            _charge_sized(arg)
        return function(*args, **kwargs)

    charged.__name__ = charged.__qualname__ = getattr(function, "__name__", "function")
    charged.__doc__ = function.__doc__
    return charged


def _safe_range(*args: int) -> range:
    result = range(*args)
    try:
        length = len(result)
    except OverflowError:
        length = MAX_SEQUENCE_LENGTH + 1
    if length > MAX_SEQUENCE_LENGTH:
        raise EvaluationError(f"range() of {length:,} items is too long (limit {MAX_SEQUENCE_LENGTH:,})")
    return result


def _safe_round(number: Any, ndigits: int | None = None) -> Any:
    if ndigits is None:
        return round(number)
    if isinstance(ndigits, int) and abs(ndigits) > MAX_ROUND_DIGITS:
        raise EvaluationError(f"round() to {ndigits} digits is not allowed (limit {MAX_ROUND_DIGITS})")
    return round(number, ndigits)


def _safe_str(*args: Any, **kwargs: Any) -> str:
    if args:
        _check_rendered_size(args[0])
    return str(*args, **kwargs)


def _safe_sum(iterable: Iterable[Any], /, start: Any = 0) -> Any:
    # sum(lists, []) would concatenate without the + guard.
    if not isinstance(start, int | float | Decimal | timedelta):
        raise EvaluationError("sum() adds numbers only; use + to join lists or text")
    _charge_sized(iterable)
    return sum(iterable, start)


#: What a condition or script may call or name without registering it.
SAFE_BUILTINS: dict[str, Any] = {
    "abs": abs,
    "all": _consuming(all),
    "any": _consuming(any),
    "bool": bool,
    "dict": _consuming(dict),
    "enumerate": _consuming(enumerate),
    "float": float,
    "int": int,
    "len": len,
    "list": _consuming(list),
    "max": _consuming(max),
    "min": _consuming(min),
    "range": _safe_range,
    "round": _safe_round,
    "set": _consuming(set),
    "sorted": _consuming(sorted),
    "str": _safe_str,
    "sum": _safe_sum,
    "tuple": _consuming(tuple),
    "zip": _consuming(zip),
    "True": True,
    "False": False,
    "None": None,
}
_UNCHARGED_BUILTINS = frozenset({"abs", "bool", "float", "int", "len", "range", "round"})

_GUARDS: dict[str, Any] = {
    "_g_iter": _g_iter,
    "_g_slice": _g_slice,
    "_g_in": _g_in,
    "_g_fmt": _g_fmt,
    "_g_fstr": _g_fstr,
    "_g_method": _g_method,
}
for _helper, _check_operands, _operation, _inplace in _BINOP_GUARDS.values():
    _GUARDS[_helper] = _guard(_check_operands, _operation)
    _GUARDS[f"_gi{_helper[2:]}"] = _guard(_check_operands, _inplace)  # for augmented assignment


# --- validation ------------------------------------------------------------------------------------

_ALLOWED_NODES: frozenset[type[ast.AST]] = frozenset(
    {
        # roots
        ast.Module, ast.Expression,
        # statements (scripts only; an expression cannot contain them)
        ast.Assign, ast.AugAssign, ast.For, ast.If, ast.Pass, ast.Break, ast.Continue, ast.Expr,
        ast.Delete,
        # expressions
        ast.BoolOp, ast.BinOp, ast.UnaryOp, ast.IfExp, ast.Dict, ast.Set, ast.List, ast.Tuple,
        ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp, ast.comprehension, ast.Compare,
        ast.Call, ast.keyword, ast.JoinedStr, ast.FormattedValue, ast.Constant, ast.Subscript,
        ast.Slice, ast.Starred, ast.Name,
        # contexts and operators
        ast.Load, ast.Store, ast.Del, ast.And, ast.Or,
        ast.Add, ast.Sub, ast.Mult, ast.Div, ast.FloorDiv, ast.Mod, ast.Pow, ast.LShift, ast.RShift,
        ast.BitOr, ast.BitXor, ast.BitAnd, ast.UAdd, ast.USub, ast.Not, ast.Invert,
        ast.Eq, ast.NotEq, ast.Lt, ast.LtE, ast.Gt, ast.GtE, ast.Is, ast.IsNot, ast.In, ast.NotIn,
    }
)  # fmt: skip

_REFUSALS: dict[type[ast.AST], str] = {
    ast.Import: "import is not allowed",
    ast.ImportFrom: "import is not allowed",
    ast.FunctionDef: "defining functions (def) is not allowed",
    ast.AsyncFunctionDef: "defining functions (def) is not allowed",
    ast.ClassDef: "defining classes is not allowed",
    ast.Lambda: "lambda is not allowed",
    ast.Global: "global declarations are not allowed",
    ast.Nonlocal: "nonlocal declarations are not allowed",
    ast.With: "with blocks are not allowed",
    ast.AsyncWith: "with blocks are not allowed",
    ast.Try: "try blocks are not allowed",
    ast.TryStar: "try blocks are not allowed",
    ast.Raise: "raise is not allowed",
    ast.Assert: "assert is not allowed",
    ast.Return: "return is not allowed",
    ast.Yield: "yield is not allowed",
    ast.YieldFrom: "yield is not allowed",
    ast.Await: "await is not allowed",
    ast.AsyncFor: "async for is not allowed",
    ast.While: "while loops are not allowed (they may never end); use for over a list or range()",
    ast.NamedExpr: "assignment expressions (:=) are not allowed",
    ast.AnnAssign: "annotated assignments are not allowed",
    ast.Match: "match statements are not allowed",
    ast.MatMult: "the @ operator is not allowed",
    ast.Attribute: "attribute access is not allowed (only calls of safe methods such as .get())",
}

_FORMAT_NUMBER = re.compile(r"\d+")


def _private(name: str) -> bool:
    return name.startswith("_")


class _Validator:
    """Walks a parsed tree in source order and raises at the first construct not allowed."""

    def __init__(self, mode: str, function_names: frozenset[str]) -> None:
        self.mode = mode
        self.function_names = function_names
        self.mutates = False

    def check(self, node: ast.AST, line: int | None = None) -> None:
        line = getattr(node, "lineno", line)
        kind = type(node)
        if kind not in _ALLOWED_NODES:
            message = _REFUSALS.get(kind, f"{kind.__name__} is not allowed")
            if isinstance(node, ast.Attribute) and _private(node.attr):
                message = f"attribute '{node.attr}' is not allowed: names beginning with '_' are private"
            raise EvaluationError(message, line)
        visit = getattr(self, f"visit_{kind.__name__}", None)
        if visit is not None:
            visit(node, line)
        else:
            self.children(node, line)

    def children(self, node: ast.AST, line: int | None) -> None:
        for child in ast.iter_child_nodes(node):
            self.check(child, line)

    def visit_Name(self, node: ast.Name, line: int | None) -> None:  # noqa: N802
        if _private(node.id):
            raise EvaluationError(
                f"name '{node.id}' is not allowed: names beginning with '_' are private", line
            )
        if isinstance(node.ctx, ast.Store | ast.Del):
            verb = "assign to" if isinstance(node.ctx, ast.Store) else "delete"
            if node.id in self.function_names:
                raise EvaluationError(f"cannot {verb} '{node.id}': it is a registered function", line)
            if node.id in SAFE_BUILTINS:
                raise EvaluationError(f"cannot {verb} '{node.id}': it is a built-in function", line)

    def visit_Constant(self, node: ast.Constant, line: int | None) -> None:  # noqa: N802
        if type(node.value) not in (str, int, float, bool, type(None)):
            raise EvaluationError(f"constants of type {type(node.value).__name__} are not allowed", line)

    def visit_Call(self, node: ast.Call, line: int | None) -> None:  # noqa: N802
        # Report in source order: `__import__('os').system()` is refused for `__import__`.
        func = node.func
        if isinstance(func, ast.Name):
            if _private(func.id):
                self.visit_Name(func, line)
            if func.id not in SAFE_BUILTINS and func.id not in self.function_names:
                raise EvaluationError(f"function '{func.id}' is not allowed", line)
        elif isinstance(func, ast.Attribute):
            self.check(func.value, line)
            if _private(func.attr):
                raise EvaluationError(
                    f"attribute '{func.attr}' is not allowed: names beginning with '_' are private", line
                )
            if func.attr not in _SAFE_METHOD_NAMES:
                raise EvaluationError(f"method .{func.attr}() is not allowed", line)
            if func.attr in _MUTATING_METHODS:
                if self.mode == "eval":
                    raise EvaluationError(
                        f"method .{func.attr}() changes data: not allowed in a condition", line
                    )
                self.mutates = True
        else:
            self.check(func, line)
            raise EvaluationError(
                "only built-in functions, registered functions and safe methods can be called", line
            )
        for arg in node.args:
            self.check(arg, line)
        for kw in node.keywords:
            self.check(kw, line)

    def visit_keyword(self, node: ast.keyword, line: int | None) -> None:
        if node.arg is not None and _private(node.arg):
            raise EvaluationError(
                f"keyword '{node.arg}' is not allowed: names beginning with '_' are private", line
            )
        self.check(node.value, line)

    def _no_starred_display(self, node: ast.List | ast.Tuple | ast.Set, line: int | None) -> None:
        # [*a, *a] doubles a list without passing the + guard.
        if isinstance(getattr(node, "ctx", ast.Load()), ast.Load) and any(
            isinstance(element, ast.Starred) for element in node.elts
        ):
            raise EvaluationError("unpacking (*) inside a list, tuple or set is not allowed; use +", line)
        self.children(node, line)

    visit_List = visit_Tuple = visit_Set = _no_starred_display  # noqa: N815

    def visit_Subscript(self, node: ast.Subscript, line: int | None) -> None:  # noqa: N802
        if isinstance(node.ctx, ast.Store | ast.Del):
            self.mutates = True
        self.children(node, line)

    def visit_AugAssign(self, node: ast.AugAssign, line: int | None) -> None:  # noqa: N802
        if isinstance(node.target, ast.Subscript) and isinstance(node.target.slice, ast.Slice):
            raise EvaluationError("augmented assignment to a slice is not allowed", line)
        self.mutates = True  # list += and set |= change the object in place
        self.children(node, line)

    def visit_comprehension(self, node: ast.comprehension, line: int | None) -> None:
        if node.is_async:
            raise EvaluationError("async comprehensions are not allowed", line)
        self.children(node, line)

    def visit_FormattedValue(self, node: ast.FormattedValue, line: int | None) -> None:  # noqa: N802
        spec = node.format_spec
        if spec is not None:
            parts = spec.values if isinstance(spec, ast.JoinedStr) else [spec]
            if not all(isinstance(part, ast.Constant) and isinstance(part.value, str) for part in parts):
                raise EvaluationError("f-string format specifications must be constant", line)
            text = "".join(str(part.value) for part in parts if isinstance(part, ast.Constant))
            if any(int(number) > MAX_FORMAT_WIDTH for number in _FORMAT_NUMBER.findall(text)):
                raise EvaluationError(f"f-string width or precision above {MAX_FORMAT_WIDTH}", line)
        self.check(node.value, line)


# --- rewriting -------------------------------------------------------------------------------------


def _name(identifier: str, ctx: ast.expr_context | None = None) -> ast.Name:
    return ast.Name(id=identifier, ctx=ctx or ast.Load())


def _call(helper: str, *args: ast.expr) -> ast.Call:
    return ast.Call(func=_name(helper), args=list(args), keywords=[])


class _Guarder(ast.NodeTransformer):
    """Routes the risky operations of a validated tree through the guards in :data:`_GUARDS`."""

    def visit_BinOp(self, node: ast.BinOp) -> ast.expr:  # noqa: N802
        self.generic_visit(node)
        guard = _BINOP_GUARDS.get(type(node.op))
        if guard is None:
            return node
        return ast.copy_location(_call(guard[0], node.left, node.right), node)

    def visit_AugAssign(self, node: ast.AugAssign) -> ast.stmt | list[ast.stmt]:  # noqa: N802
        self.generic_visit(node)
        guard = _BINOP_GUARDS.get(type(node.op))
        if guard is None:
            return node
        helper = f"_gi{guard[0][2:]}"
        target = node.target
        if isinstance(target, ast.Name):
            value = _call(helper, _name(target.id), node.value)
            return ast.copy_location(ast.Assign(targets=[_name(target.id, ast.Store())], value=value), node)
        # a[k] op= v  ->  _aug_obj = a; _aug_key = k; _aug_obj[_aug_key] = guard(_aug_obj[_aug_key], v)
        assert isinstance(target, ast.Subscript)  # the validator allows nothing else here
        item = ast.Subscript(value=_name("_aug_obj"), slice=_name("_aug_key"), ctx=ast.Load())
        statements: list[ast.stmt] = [
            ast.Assign(targets=[_name("_aug_obj", ast.Store())], value=target.value),
            ast.Assign(targets=[_name("_aug_key", ast.Store())], value=target.slice),
            ast.Assign(
                targets=[ast.Subscript(value=_name("_aug_obj"), slice=_name("_aug_key"), ctx=ast.Store())],
                value=_call(helper, item, node.value),
            ),
        ]
        return [ast.copy_location(statement, node) for statement in statements]

    def visit_For(self, node: ast.For) -> ast.For:  # noqa: N802
        self.generic_visit(node)
        node.iter = ast.copy_location(_call("_g_iter", node.iter), node.iter)
        return node

    def visit_comprehension(self, node: ast.comprehension) -> ast.comprehension:
        self.generic_visit(node)
        node.iter = ast.copy_location(_call("_g_iter", node.iter), node.iter)
        return node

    def visit_Call(self, node: ast.Call) -> ast.Call:  # noqa: N802
        self.generic_visit(node)
        if isinstance(node.func, ast.Attribute):
            receiver = node.func.value
            node.func = ast.copy_location(
                _call("_g_method", receiver, ast.Constant(node.func.attr)), node.func
            )
        return node

    def visit_Subscript(self, node: ast.Subscript) -> ast.expr:  # noqa: N802
        self.generic_visit(node)
        if isinstance(node.slice, ast.Slice) and isinstance(node.ctx, ast.Load):
            bounds = [
                part or ast.Constant(None) for part in (node.slice.lower, node.slice.upper, node.slice.step)
            ]
            return ast.copy_location(_call("_g_slice", node.value, *bounds), node)
        return node

    def visit_Compare(self, node: ast.Compare) -> ast.expr:  # noqa: N802
        self.generic_visit(node)
        if len(node.ops) == 1 and isinstance(node.ops[0], ast.In | ast.NotIn):
            test: ast.expr = _call("_g_in", node.left, node.comparators[0])
            if isinstance(node.ops[0], ast.NotIn):
                test = ast.UnaryOp(op=ast.Not(), operand=test)
            return ast.copy_location(test, node)
        return node

    def visit_FormattedValue(self, node: ast.FormattedValue) -> ast.FormattedValue:  # noqa: N802
        self.generic_visit(node)
        node.value = ast.copy_location(_call("_g_fmt", node.value), node.value)
        return node

    def visit_JoinedStr(self, node: ast.JoinedStr) -> ast.expr:  # noqa: N802
        self.generic_visit(node)
        if not any(isinstance(part, ast.FormattedValue) for part in node.values):
            return node
        return ast.copy_location(_call("_g_fstr", node), node)


# --- compilation cache -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Compiled:
    code: CodeType
    needs_budget: bool  # has loops or calls: the run needs a fresh budget
    mutates: bool  # may change objects in place: run on a deep copy of the data


def _parse(source: str, mode: str) -> ast.AST:
    if not isinstance(source, str):
        raise EvaluationError(f"expected text, got {type(source).__name__}")
    if len(source) > MAX_SOURCE_LENGTH:
        raise EvaluationError(f"source is longer than {MAX_SOURCE_LENGTH:,} characters")
    if mode == "eval":
        # Conditions written in BPMN XML often carry surrounding whitespace and newlines.
        text = source.strip()
        offset = source[: len(source) - len(source.lstrip())].count("\n")
    else:
        text = textwrap.dedent(source)  # keeps line numbers
        offset = 0
    try:
        tree = ast.parse(text, filename=_FILENAME, mode=mode)
    except SyntaxError as err:
        line = err.lineno + offset if err.lineno is not None else None
        raise EvaluationError(f"syntax error: {err.msg}", line) from None
    except (ValueError, RecursionError, MemoryError) as err:  # null bytes, absurd nesting
        raise EvaluationError(f"cannot parse: {err}") from None
    if offset:
        ast.increment_lineno(tree, offset)
    return tree


@functools.lru_cache(maxsize=4096)
def _compile(source: str, mode: str, function_names: frozenset[str]) -> _Compiled:
    tree = _parse(source, mode)
    validator = _Validator(mode, function_names)
    try:
        validator.check(tree)
        guarded = ast.fix_missing_locations(_Guarder().visit(tree))
        code = compile(guarded, _FILENAME, mode)
    except RecursionError:
        raise EvaluationError("expression is too deeply nested") from None
    needs_budget = any(
        isinstance(node, ast.For | ast.comprehension)
        or (
            isinstance(node, ast.Call)
            and not (
                isinstance(node.func, ast.Name)
                and (node.func.id in _UNCHARGED_BUILTINS or node.func.id in function_names)
            )
        )
        for node in ast.walk(guarded)
    )
    return _Compiled(code=code, needs_budget=needs_budget, mutates=validator.mutates)


# --- what scripts may leave in task data -----------------------------------------------------------

#: Scalars a script may store; they match the serializer's converters (engine/workflow.py).
STORABLE_SCALARS: tuple[type, ...] = (str, int, float, bool, type(None), Decimal, date, timedelta, uuid.UUID)


def _check_storable(name: str, value: Any) -> None:
    items = 0
    chars = 0
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        items += 1
        if items > MAX_STORED_ITEMS:
            raise EvaluationError(
                f"variable '{name}' is too large to store (over {MAX_STORED_ITEMS:,} items)"
            )
        if isinstance(item, str):
            chars += len(item)
        elif isinstance(item, STORABLE_SCALARS):
            continue
        elif depth >= MAX_DATA_DEPTH:
            raise EvaluationError(
                f"variable '{name}' is nested more than {MAX_DATA_DEPTH} levels deep (or contains itself)"
            )
        elif isinstance(item, list | tuple):
            stack.extend((element, depth + 1) for element in item)
        elif isinstance(item, dict):
            for key, element in item.items():
                if not isinstance(key, str):
                    raise EvaluationError(
                        f"variable '{name}' has a {type(key).__name__} dictionary key; "
                        "task data keys must be text"
                    )
                chars += len(key)
                stack.append((element, depth + 1))
        else:
            hint = " (use sorted() or list())" if isinstance(item, set | frozenset) else ""
            raise EvaluationError(
                f"variable '{name}' holds a {type(item).__name__}, which cannot be stored in task data{hint}"
            )
        if chars > MAX_STORED_CHARS:
            raise EvaluationError(
                f"variable '{name}' is too large to store (over {MAX_STORED_CHARS:,} characters)"
            )


def _script_line(tb: TracebackType | None) -> int | None:
    line = None
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == _FILENAME:
            line = tb.tb_lineno
        tb = tb.tb_next
    return line


# --- public API ------------------------------------------------------------------------------------

_MISSING = object()


class RestrictedEvaluator:
    """Evaluates BPMN conditions and runs BPMN scripts over task data, with the rules above."""

    def __init__(self, functions: Mapping[str, Callable[..., Any]] | None = None) -> None:
        functions = dict(functions or {})
        for name, function in functions.items():
            if not name.isidentifier() or keyword.iskeyword(name) or _private(name):
                raise ValueError(f"cannot register function under the name {name!r}")
            if name in SAFE_BUILTINS:
                raise ValueError(f"cannot register {name!r}: it would hide a built-in function")
            if not callable(function):
                raise ValueError(f"registered function {name!r} is not callable")
        self._functions = functions
        self._function_names = frozenset(functions)
        # Task data becomes the globals; the guards are written over it (task data cannot hold
        # private names a script could use), functions and builtins are found behind it.
        self._globals = {**_GUARDS, "__builtins__": {**SAFE_BUILTINS, **functions}}

    @property
    def function_names(self) -> frozenset[str]:
        return self._function_names

    def validate_expression(self, source: str) -> None:
        _compile(source, "eval", self._function_names)

    def validate_script(self, source: str) -> None:
        _compile(source, "exec", self._function_names)

    def evaluate(
        self, source: str, data: Mapping[str, Any], *, extra: Mapping[str, Any] | None = None
    ) -> Any:
        """The value of expression ``source`` over ``data`` (``extra``: more read-only names)."""
        compiled = _compile(source, "eval", self._function_names)
        namespace = self._namespace(data, extra, deep=False)
        return self._run(compiled, namespace, data)

    def execute(self, source: str, data: dict[str, Any], *, extra: Mapping[str, Any] | None = None) -> None:
        """Run script ``source``; its assignments and deletions update ``data`` in place.

        ``data`` is changed only if the script succeeds and leaves storable values behind.
        """
        compiled = _compile(source, "exec", self._function_names)
        namespace = self._namespace(data, extra, deep=compiled.mutates)
        self._run(compiled, namespace, data)

        changed: dict[str, Any] = {}
        for name, value in namespace.items():
            if _private(name) or (extra and name in extra and name not in data):
                continue
            if compiled.mutates or data.get(name, _MISSING) is not value:
                _check_storable(name, value)
                changed[name] = value
        removed = [name for name in data if name not in namespace and not _private(name)]
        data.update(changed)
        for name in removed:
            del data[name]

    def _namespace(
        self, data: Mapping[str, Any], extra: Mapping[str, Any] | None, *, deep: bool
    ) -> dict[str, Any]:
        namespace = {**extra, **data} if extra else dict(data)
        if self._function_names and not namespace.keys().isdisjoint(self._function_names):
            clash = ", ".join(sorted(self._function_names.intersection(namespace)))
            raise EvaluationError(f"task data overwrites registered function(s) {clash}: rename them")
        if deep:
            namespace = copy.deepcopy(namespace)
        namespace.update(self._globals)
        return namespace

    def _run(self, compiled: _Compiled, namespace: dict[str, Any], data: Mapping[str, Any]) -> Any:
        token = _BUDGET.set(_Budget()) if compiled.needs_budget else None
        try:
            return eval(compiled.code, namespace)  # noqa: S307 - validated, guarded code; restricted builtins
        except EvaluationError as err:
            if err.line is not None:
                raise
            raise EvaluationError(err.message, _script_line(err.__traceback__)) from err
        except Exception as err:
            message = f"{type(err).__name__}: {err}"
            if isinstance(err, NameError) and err.name:
                known = [*data, *SAFE_BUILTINS, *self._function_names]
                close = difflib.get_close_matches(err.name, known, n=1)
                if close:
                    message += f" (did you mean '{close[0]}'?)"
            raise EvaluationError(message, _script_line(err.__traceback__)) from err
        finally:
            if token is not None:
                _BUDGET.reset(token)


class RestrictedEnvironment(BasePythonScriptEngineEnvironment):
    """Spiff script environment backed by :class:`RestrictedEvaluator`."""

    def __init__(self, functions: Mapping[str, Callable[..., Any]] | None = None) -> None:
        super().__init__({})
        self.evaluator = RestrictedEvaluator(functions)

    def evaluate(self, expression: str, context: Mapping[str, Any], external_context: Any = None) -> Any:
        return self.evaluator.evaluate(expression, context, extra=external_context)

    def execute(self, script: str, context: dict[str, Any], external_context: Any = None) -> bool:
        self.evaluator.execute(script, context, extra=external_context)
        return True

    def call_service(self, context: Any, **kwargs: Any) -> Any:
        raise NotImplementedError("service tasks run through the case service")


class RestrictedScriptEngine(PythonScriptEngine):
    """Spiff script engine whose conditions and scripts run in the restricted evaluator."""

    environment: RestrictedEnvironment

    def __init__(self, functions: Mapping[str, Callable[..., Any]] | None = None) -> None:
        super().__init__(environment=RestrictedEnvironment(functions))

    @property
    def evaluator(self) -> RestrictedEvaluator:
        return self.environment.evaluator

    def validate(self, expression: str) -> None:
        self.environment.evaluator.validate_expression(expression)

    def evaluate(self, task: Any, expression: str, external_context: Any = None) -> Any:
        # PythonScriptEngine.evaluate drops the cause's message; keep it (and the line).
        try:
            return self.environment.evaluate(expression, task.data, external_context)
        except SpiffWorkflowException as err:
            err.add_note(f"Error evaluating expression '{expression}'")
            raise
        except Exception as err:
            raise WorkflowTaskException(
                f"Error evaluating expression '{expression}': {err}",
                task=task,
                exception=err,
                line_number=getattr(err, "line", None),
            ) from err

    def call_service(self, task: Any, **kwargs: Any) -> Any:
        # PythonScriptEngine.call_service refers to an undefined name when the call fails.
        try:
            return self.environment.call_service(task.data, **kwargs)
        except Exception as err:
            raise WorkflowTaskException(f"{type(err).__name__}: {err}", task=task, exception=err) from err

    def get_error_line_number_and_content(self, script: str, err: Exception) -> tuple[int, str]:
        if isinstance(err, EvaluationError) and err.line is not None:
            lines = script.splitlines()
            return err.line, lines[err.line - 1] if 0 < err.line <= len(lines) else ""
        line_number, error_line = super().get_error_line_number_and_content(script, err)
        return line_number, error_line

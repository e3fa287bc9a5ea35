"""HfArgumentParser: build argparse flags from dataclass fields and parse command lines / json / dicts into them.

Mapping (type hint -> flag):
  bool                  `--x` (True), `--x VALUE` with VALUE in true/false/yes/no/1/0; a True default also
                        gets `--no_x`
  Enum                  `--x V` restricted to the enum values
  List[T]               `--x a b c` (one or more T)
  Optional[T]           as T
  other scalar T        `--x V` converted with T
Every `--a_b` flag is also accepted as `--a-b` (torch launchers pass `--local-rank=N`), and an Optional[bool] flag
given alone means True; both are handled when parsing, so the parser's actions are 4.4.2's: a `bool` field without
a default defaults to True, as in 4.4.2.
"""
import dataclasses
import json
import sys
import typing
from argparse import ArgumentParser, ArgumentTypeError
from enum import Enum
from pathlib import Path
from typing import Any, Dict, List, Tuple, Union


_BOOL_WORDS = {**dict.fromkeys(("true", "t", "yes", "y", "1"), True),
               **dict.fromkeys(("false", "f", "no", "n", "0"), False)}


def string_to_bool(v):
    """A command-line word as a bool (case-insensitive); argparse turns the error into a one-line usage error."""
    if isinstance(v, bool):
        return v
    if v.lower() not in _BOOL_WORDS:
        raise ArgumentTypeError(f"{v!r} is not a boolean: write true/false, yes/no, t/f, y/n or 1/0")
    return _BOOL_WORDS[v.lower()]


def _strip_optional(tp):
    """Optional[T] -> T (Union[T, None] with a single non-None member)."""
    if typing.get_origin(tp) is Union:
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(args) == 1:
            return args[0]
    return tp


class HfArgumentParser(ArgumentParser):
    def __init__(self, dataclass_types, **kwargs):
        kwargs.setdefault("allow_abbrev", False)  # a misspelt flag must fail, not silently match a longer one
        super().__init__(**kwargs)
        self._optional_bools = set()
        # one dataclass, or a sequence of them
        self.dataclass_types = [dataclass_types] if isinstance(dataclass_types, type) else list(dataclass_types)
        for dtype in self.dataclass_types:
            self._add_dataclass_arguments(dtype)

    @staticmethod
    def _names(flag: str) -> List[str]:
        return [flag]

    def _normalize(self, argv: List[str]) -> List[str]:
        """`--a-b[=v]` -> `--a_b[=v]` for a known `--a_b`; a bare Optional[bool] flag -> `--flag true`."""
        known = self._option_string_actions
        out = []
        for i, arg in enumerate(argv):
            if arg.startswith("--") and arg not in known:
                name, eq, value = arg.partition("=")
                underscored = "--" + name[2:].replace("-", "_")
                if name not in known and underscored in known:
                    arg = underscored + eq + value
            out.append(arg)
            nxt = argv[i + 1] if i + 1 < len(argv) else None
            if arg in self._optional_bools and (nxt is None or nxt.startswith("-")):
                out.append("true")
        return out

    def parse_known_args(self, args=None, namespace=None):
        argv = sys.argv[1:] if args is None else list(args)
        return super().parse_known_args(self._normalize(argv), namespace)

    def _add_dataclass_arguments(self, dtype):
        hints = typing.get_type_hints(dtype)
        for f in dataclasses.fields(dtype):
            if not f.init:
                continue
            tp = _strip_optional(hints[f.name])
            kwargs: Dict[str, Any] = dict(f.metadata)
            if f.default is not dataclasses.MISSING:
                kwargs["default"] = f.default
            elif f.default_factory is not dataclasses.MISSING:
                kwargs["default"] = f.default_factory()
            else:
                kwargs["required"] = True

            if isinstance(tp, type) and issubclass(tp, Enum):
                kwargs["choices"] = [e.value for e in tp]
                kwargs["type"] = type(kwargs["choices"][0])
                if isinstance(kwargs.get("default"), Enum):
                    kwargs["default"] = kwargs["default"].value
            elif tp is bool and hints[f.name] is not bool and f.default is None:
                kwargs["type"] = string_to_bool  # Optional[bool] = None: unset, or a value
                self._optional_bools.add(f"--{f.name}")
            elif tp is bool:
                if f.default is True:
                    self.add_argument(*self._names(f"--no_{f.name}"), action="store_false", dest=f.name)
                kwargs.update(type=string_to_bool, nargs="?", const=True)
                if kwargs.pop("required", False):
                    kwargs["default"] = True  # 4.4.2: a bool field without a default is a flag that defaults to True
            elif typing.get_origin(tp) in (list, List):
                (kwargs["type"],) = typing.get_args(tp) or (str,)
                kwargs["nargs"] = "+"
            else:
                kwargs["type"] = tp
            self.add_argument(*self._names(f"--{f.name}"), dest=f.name, **kwargs)

    def _field_names(self) -> set:
        return {f.name for d in self.dataclass_types for f in dataclasses.fields(d) if f.init}

    def _build(self, values: Dict[str, Any]) -> List[Any]:
        """One dataclass instance per type, each from the entries of `values` that name its fields."""
        out = []
        for dtype in self.dataclass_types:
            keys = {f.name for f in dataclasses.fields(dtype) if f.init}
            out.append(dtype(**{k: v for k, v in values.items() if k in keys}))
        return out

    def parse_args_into_dataclasses(self, args=None, return_remaining_strings=False) -> Tuple[Any, ...]:
        """Parse `args` (default sys.argv[1:]) into the dataclasses, in order.

        A lone argument ending in `.json` is read as a json file of field values. Arguments added to the parser by
        hand come back as an extra Namespace. Unknown arguments are an error (exit 2) unless
        `return_remaining_strings`, which appends them as a list instead.
        """
        argv = sys.argv[1:] if args is None else list(args)
        if len(argv) == 1 and argv[0].endswith(".json"):
            try:
                outputs = self.parse_json_file(argv[0])
            except (OSError, ValueError) as e:
                self.error(str(e))
            return (*outputs, []) if return_remaining_strings else outputs
        namespace, remaining = self.parse_known_args(argv)
        if remaining and not return_remaining_strings:
            self.error(f"unrecognized arguments: {' '.join(remaining)}")
        values = vars(namespace)
        try:
            outputs = self._build(values)
        except ValueError as e:  # a dataclass rejected a combination of values: report it like a bad flag
            self.error(str(e))
        dataclass_keys = self._field_names()
        extra = {k: v for k, v in values.items() if k not in dataclass_keys}
        if extra:
            outputs.append(type(namespace)(**extra))
        return (*outputs, remaining) if return_remaining_strings else tuple(outputs)

    def error(self, message):
        """One line on stderr and exit status 2 (argparse's default prints the whole, long usage first)."""
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")

    def _check_keys(self, data: Dict[str, Any], source: str):
        unknown = sorted(set(data) - self._field_names())
        if unknown:
            raise ValueError(f"{source}: unknown argument(s) {unknown}; check the spelling against --help")

    def parse_json_file(self, json_file: Union[str, Path]) -> Tuple[Any, ...]:
        """Fill the dataclasses from a json object mapping field names to values (no argparse involved)."""
        try:
            data = json.loads(Path(json_file).read_text())
        except json.JSONDecodeError as e:
            raise ValueError(f"{json_file}: not valid json ({e})") from None
        if not isinstance(data, dict):
            raise ValueError(f"{json_file}: expected a json object of argument names to values")
        self._check_keys(data, str(json_file))
        return tuple(self._build(data))

    def parse_dict(self, args: Dict[str, Any]) -> Tuple[Any, ...]:
        """Fill the dataclasses from a dict of field names to values."""
        self._check_keys(args, "parse_dict")
        return tuple(self._build(args))

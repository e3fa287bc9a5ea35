"""Short run names for hyperparameter-search trials: 'hp_lr0.1_bs8' from {'learning_rate': 0.1, 'batch_size': 8}.

A subclass sets DEFAULTS (parameter -> default value); parameters at their default are left out of the name.
Keys are shortened to the initials of their words ('learning_rate' -> 'lr'), lengthened until they are unique.
"""


class TrialShortNamer:
    PREFIX = "hp"
    DEFAULTS = {}
    NAMING_INFO = None

    @classmethod
    def set_defaults(cls, prefix, defaults):
        cls.PREFIX, cls.DEFAULTS = prefix, defaults
        cls.NAMING_INFO = None

    @classmethod
    def build_naming_info(cls):
        if cls.NAMING_INFO is not None:
            return cls.NAMING_INFO
        short_to_long, long_to_short = {}, {}
        for key in sorted(cls.DEFAULTS):
            words = key.split("_")
            for extra in range(max(len(w) for w in words) + 1):
                short = "".join(w[:1 + extra] for w in words)
                if short not in short_to_long:
                    break
            else:
                short = key
            short_to_long[short], long_to_short[key] = key, short
        cls.NAMING_INFO = {"short_param": long_to_short, "reverse_short_param": short_to_long}
        return cls.NAMING_INFO

    @classmethod
    def shortname(cls, params):
        info = cls.build_naming_info()
        parts = [cls.PREFIX] if cls.PREFIX else []
        for key, value in params.items():
            if key not in cls.DEFAULTS:
                raise KeyError(f"parameter {key!r} has no default in {cls.__name__}.DEFAULTS: add it there")
            if value == cls.DEFAULTS[key]:
                continue
            short = info["short_param"][key]
            if isinstance(value, bool):
                value = int(value)
            parts.append(f"{short}{value}" if isinstance(value, (int, float)) else f"{short}-{value}")
        return "_".join(parts)

    @classmethod
    def parse_repr(cls, repr):
        """The parameters back from a shortname (numbers as float; defaults filled in)."""
        info = cls.build_naming_info()
        parts = repr.split("_")[1:] if cls.PREFIX else repr.split("_")
        params = dict(cls.DEFAULTS)
        for part in parts:
            if "-" in part:
                short, value = part.split("-", 1)
            else:
                split = next((i for i, c in enumerate(part) if c.isdigit() or c in ".-"), len(part))
                short, value = part[:split], float(part[split:])
            params[info["reverse_short_param"][short]] = value
        return params

from .data_collator import DataCollator, DataCollatorWithPadding, default_data_collator  # noqa: F401

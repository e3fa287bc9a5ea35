from .data_collator import DataCollator, DataCollatorWithPadding, default_data_collator  # noqa: F401
from .glue import GLUE_TASKS, GlueDataError, glue_compute_metrics, glue_submission, load_glue  # noqa: F401

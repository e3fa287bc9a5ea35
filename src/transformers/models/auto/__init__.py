from .auto import (MODEL_TYPES, AutoConfig, AutoModel, AutoModelForSequenceClassification, AutoTokenizer)

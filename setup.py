"""Install the LoRA NLU fork of Transformers 4.4.2: `pip install -e .` then `import transformers`."""
from setuptools import find_packages, setup

setup(
    name="transformers",
    version="4.4.2",
    description="Clean-room rebuild of the LoRA paper's Transformers 4.4.2 fork for GLUE (RoBERTa, DeBERTa-V2, BERT)",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    license="MIT",
    package_dir={"": "src"},
    packages=find_packages("src"),
    python_requires=">=3.9",
    install_requires=[
        "torch>=2.1",
        "loralib>=0.1.2",
        "tokenizers>=0.13",
        "sentencepiece>=0.1.99",
        "safetensors>=0.3",
        "huggingface_hub>=0.16",
        "numpy",
        "tqdm",
        "datasets>=2.14",
        "scikit-learn",
        "scipy",
        "tensorboardX",
        "filelock",
        "packaging",
    ],
    extras_require={
        "dev": ["pytest>=7", "accelerate>=0.20", "matplotlib"],
        "deepspeed": ["deepspeed"],
        "plot": ["matplotlib"],  # scripts/summarize.py --plots
    },
)

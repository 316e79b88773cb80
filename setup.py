from setuptools import find_packages, setup

with open("requirements.txt", encoding="utf-8") as f:
    requirements = [line.strip() for line in f if line.strip() and not line.startswith("#")]

setup(
    name="mindclip",
    version="0.1.0",
    description="MindSpore-native pre-training, evaluation and deployment of lightweight CLIP models "
    "(CLIP, LightCLIP, PyramidCLIP) on Ascend, GPU and CPU.",
    packages=find_packages(include=["mindclip", "mindclip.*"]),
    package_data={
        "mindclip": ["assets/*", "models/model_configs/*.yaml", "eval/data/*", "data/*.tsv",
                     "ablation/tables/*.yaml"],
    },
    include_package_data=True,
    python_requires=">=3.9",
    install_requires=requirements,
    extras_require={"test": ["pytest"]},
)

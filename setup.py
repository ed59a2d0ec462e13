"""What pyproject.toml cannot say alone: the top-level templates/ and examples/ folders ship
inside the wheel as the package data of `tongfa_data.templates` and `tongfa_data.examples`
(read with importlib.resources, channels/templating.py), so the source tree keeps its layout
and an installed tongfa never looks for files beside site-packages. Everything else about the
build is in pyproject.toml."""

from setuptools import find_namespace_packages, setup

DATA = {"tongfa_data.templates": "templates", "tongfa_data.examples": "examples"}

setup(
    packages=[
        *find_namespace_packages(
            include=["orchestrator*", "channels*", "workers*"], exclude=["*.__pycache__"]
        ),
        *DATA,
    ],
    package_dir=DATA,
)

"""The package's layout beyond what pyproject.toml can say: the files shared with the TypeScript
orchestrator (``catalog/``, outside the package in the repository) become the package
``twice_inference.catalog``, whose data (pyproject.toml's package-data) an installed wheel carries;
twice_inference/catalog_files.py reads whichever copy is present."""

from setuptools import find_packages, setup

setup(
    packages=[*find_packages(include=["twice_inference*"]), "twice_inference.catalog"],
    package_dir={"twice_inference.catalog": "catalog"},
)

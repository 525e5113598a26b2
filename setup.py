"""pyproject.toml describes the package; this adds the one thing its find directive cannot say: the repository's
configs/ folder installs as the package ``kidconsole.configs``, so a wheel carries the shipped configs."""

from setuptools import find_namespace_packages, setup

setup(packages=find_namespace_packages(include=["kidconsole*", "trainers*"]) + ["kidconsole.configs"],
      package_dir={"kidconsole.configs": "configs"})

"""recbole-tpad: TPAD as a RecBole plugin.

RecBole itself is installed separately with ``pip install --no-deps recbole==1.2.1``: its
metadata pins ray<=2.6.3 and would downgrade Ray (see README, Install). Its own runtime
requirements are in requirements/base.txt.
"""

from setuptools import find_packages, setup

setup(
    name="recbole-tpad",
    version="0.1.0",
    description="TPAD (multimodal LLM-enhanced session-based recommendation) as a RecBole plugin",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    python_requires=">=3.9",
    packages=find_packages(include=["recbole_tpad", "recbole_tpad.*", "dataset_tools",
                                    "dataset_tools.*"]) + ["recbole_tpad.properties"],
    # properties/ lives at the top of the checkout (where users edit it); a wheel ships a copy.
    package_dir={"recbole_tpad.properties": "properties"},
    package_data={"recbole_tpad.properties": ["*.yaml", "*/*.yaml"]},
    install_requires=[line.split("#")[0].strip() for line in open("requirements/base.txt")
                      if line.split("#")[0].strip()],
    extras_require={"test": ["pytest>=7"]},
    license="MIT",
)

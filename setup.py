"""Packages of the distribution (the rest of the metadata is in setup.cfg).

Two roots: the library ``riskcontrol`` at the top, and the Scrapy project ``riskcrawl``
under ``crawlers/`` (where ``scrapy.cfg`` expects it). Installing both makes
``python -m riskcrawl.run`` work from any folder and ships the crawlers to a cluster
with the library, without anyone editing ``sys.path``.
"""

from setuptools import find_packages, setup

setup(
    packages=[
        *find_packages(include=["riskcontrol", "riskcontrol.*"]),
        *find_packages("crawlers", include=["riskcrawl", "riskcrawl.*"]),
    ],
    package_dir={"riskcrawl": "crawlers/riskcrawl"},
)

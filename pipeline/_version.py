"""newsbeam's version, written only here: setup.py reads this file, and `newsbeam --version`, `pipeline.__version__`
and `newsbeam.__version__` import it (no package metadata lookup, so a source tree says the same as an install)."""
__version__ = "0.1.0"

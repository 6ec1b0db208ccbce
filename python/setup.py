"""Builds snapsafe's optional C extension (snapsafe._native) next to the pure-Python
package. It includes no snapsafe header and links nothing of snapsafe's: it dlopen()s the
libsnapsafe.so that snapsafe/_library.py finds, so the wheel works with any installed
libsnapsafe. SNAPSAFE_PYTHON_NO_EXTENSION=1 builds the ctypes-only package."""
import os

from setuptools import Extension, setup

extensions = []
if os.environ.get("SNAPSAFE_PYTHON_NO_EXTENSION") != "1":
    extensions.append(Extension("snapsafe._native", ["snapsafe/_native.c"],
                                extra_compile_args=["-O2", "-Wall", "-Wextra", "-Werror"],
                                libraries=["dl"]))
setup(ext_modules=extensions)

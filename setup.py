"""The compiled parse path (csrc/, see csrc/fast.h): everything else is in
pyproject.toml. ``optional=True``: without a C compiler the install still succeeds and every
frame takes the Python parsers (same results, slower); tests/test_fastparse.py fails loudly
then, so CI never runs without it unnoticed."""

from glob import glob

from setuptools import Extension, setup

FAST = "csrc"

setup(ext_modules=[Extension(
    "liqstress.streams._fast",
    sources=[f"{FAST}/module.c"],
    depends=sorted(glob(f"{FAST}/*.[ch]")),
    extra_compile_args=["-O2"],
    libraries=["z"],  # gzip frames (HTX) inflate in C
    optional=True,
)])

"""Builds the optional compiled ingestion core (pgshim/_ingest_core.pyx, Cython).

Everything else is declared in pyproject.toml. When the core cannot be built (no C compiler,
no Cython), pgshim installs without it and ingests through its pure-Python decoders.
"""

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext


class OptionalBuildExt(build_ext):
    def run(self) -> None:
        try:
            super().run()
        except Exception as exc:  # noqa: BLE001 - any build failure leaves the pure-Python path
            print(f"pgshim: compiled ingestion core not built ({exc}); using pure Python")

    def build_extension(self, ext: Extension) -> None:
        try:
            super().build_extension(ext)
        except Exception as exc:  # noqa: BLE001
            print(f"pgshim: {ext.name} not built ({exc}); using pure Python")


def _extensions() -> list[Extension]:
    try:
        from Cython.Build import cythonize
    except ImportError:
        print("pgshim: Cython is not available; the compiled ingestion core is not built")
        return []
    return cythonize(
        [
            Extension(
                "pgshim._ingest_core",
                ["pgshim/_ingest_core.pyx"],
                extra_compile_args=["-O2"],
                libraries=["z"],  # crc32 of spool frames
            )
        ],
        compiler_directives={"language_level": 3},
        quiet=True,
    )


setup(ext_modules=_extensions(), cmdclass={"build_ext": OptionalBuildExt})

"""Build hook for the optional C speedups; everything else is in pyproject.toml.

``amqp_client._speedups`` speeds up field tables (encoding and decoding),
the generated classes' decoders (method arguments and content properties)
and the content-properties encoder. It is optional: where it cannot be
compiled (no C compiler), the install goes on without it and the pure-Python
code runs, which is the reference the extension is tested against
(``AMQP_CLIENT_NO_SPEEDUPS=1`` runs that code with the extension installed).
It includes ``generated/spec.h`` (the layout kinds and frame constants the
generator writes), so generated/ is on its include path; MANIFEST.in puts
the header in the sdist beside the C source.
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "amqp_client._speedups",
            ["amqp_client/_speedups.c"],
            include_dirs=["generated"],
            depends=["generated/spec.h"],
            optional=True,
        )
    ]
)

"""Build hook for the optional C speedups; everything else is in pyproject.toml.

``amqp_client._speedups`` speeds up field tables (encoding and decoding),
the generated classes' decoders (method arguments and content properties)
and the content-properties encoder. It is optional: where it cannot be
compiled (no C compiler), the install goes on without it and the pure-Python
code runs, which is the reference the extension is tested against
(``AMQP_CLIENT_NO_SPEEDUPS=1`` runs that code with the extension installed).
The C source goes into the sdist by itself, as the extension's source.
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "amqp_client._speedups",
            ["amqp_client/_speedups.c"],
            optional=True,
        )
    ]
)

"""Build hook for the optional C speedups; everything else is in pyproject.toml.

``amqp_client._speedups`` speeds up field-table encoding and decoding. It is
optional: where it cannot be compiled (no C compiler), the install goes on
without it and amqp_client.wire runs its pure-Python code, which is the
reference the extension is tested against.
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

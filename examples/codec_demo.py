"""Encode a publish into AMQP frames, read it back, and show the spec docs.

No broker needed: this runs the generated protocol layer on its own.
Run it with ``make demo`` or ``python examples/codec_demo.py``.
"""

from __future__ import annotations

import inspect
import time

from amqp_client import spec
from amqp_client.frames import FrameReader, content_frames


def main() -> None:
    method = spec.BasicPublish(exchange="logs", routing_key="app.info")
    properties = spec.BasicProperties(
        content_type="text/plain", delivery_mode=2, headers={"x-trace": "abc", "n": 1}
    )
    body = b"hello, world"
    wire = b"".join(content_frames(1, method, properties, body, 131072))
    print(f"one publish is {len(wire)} bytes on the wire:")
    print(f"  {wire.hex(' ', 4)}")

    reader = FrameReader()
    for frame in reader.feed(wire):
        print(f"  read back: {frame!r}")

    count = 20_000
    start = time.perf_counter()
    for _ in range(count):
        b"".join(
            content_frames(
                1,
                spec.BasicPublish(exchange="logs", routing_key="app.info"),
                spec.BasicProperties(
                    content_type="text/plain",
                    delivery_mode=2,
                    headers={"x-trace": "abc", "n": 1},
                ),
                body,
                131072,
            )
        )
    elapsed = time.perf_counter() - start
    print(f"encoded {count:,} publishes in {elapsed:.3f} s ({count / elapsed:,.0f}/s)")

    print(
        "\nThe spec's own words, as `python -m amqp_client doc basic.publish` shows:\n"
    )
    print("\n".join(inspect.cleandoc(spec.BasicPublish.__doc__ or "").splitlines()[:8]))


if __name__ == "__main__":
    main()

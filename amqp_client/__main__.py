"""``python -m amqp_client``: the command line (see :mod:`amqp_client.cli`)."""

import sys

from amqp_client.cli import main

sys.exit(main())

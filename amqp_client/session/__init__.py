"""The session layer: what both fronts share above the sans-IO core.

Plain, typed objects that both fronts compose; no sockets, no asyncio, no
threads, no clock of their own. A front adds bytes, the time, waiters and
the way it runs callbacks; everything else (which waiter gets which reply,
consumers and their buffered deliveries, confirmations and returns,
channel.flow, the read pause, the topology record, connecting and
recovering as sequences of steps) is decided here, once.

Modules:

* :mod:`~amqp_client.session.link`: the small protocols at the seams
  (waiters, what a channel needs from its connection, what a front
  provides to its channels);
* :mod:`~amqp_client.session.consumers`: consumers and delivery accounting;
* :mod:`~amqp_client.session.channel`: per-channel state;
* :mod:`~amqp_client.session.router`: channel id -> channel, event routing;
* :mod:`~amqp_client.session.connection`: the connection's session over
  one core at a time;
* :mod:`~amqp_client.session.recovery`: topology, backoff, restore plan;
* :mod:`~amqp_client.session.connect`: ``connect()``'s arguments and the
  connect and recovery plans.
* :mod:`~amqp_client.session.credentials`: who each attempt logs in as,
  and the credentials refresh plan.
"""

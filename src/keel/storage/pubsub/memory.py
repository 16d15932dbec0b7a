"""``MemoryPubSub``: channels inside one process, for a single-worker deployment.

Each channel maps to the set of subscriptions listening on it; ``publish``
appends the message to each one's bounded buffer and returns at once, so a
slow reader never blocks a publisher (it loses its oldest messages instead,
see :mod:`keel.storage.pubsub.pubsub`). Nothing crosses a process boundary.
"""

from __future__ import annotations

from keel.storage.pubsub.pubsub import (
    DEFAULT_BUFFER_SIZE,
    BufferedSubscription,
    PubSubError,
    check_channel,
    check_channels,
    check_message,
)


class MemorySubscription(BufferedSubscription):
    """A subscription to channels of a :class:`MemoryPubSub`."""

    def __init__(self, owner: MemoryPubSub, channels: tuple[str, ...], buffer_size: int) -> None:
        super().__init__(buffer_size)
        self._owner = owner
        self.channels = channels

    async def _release(self) -> None:
        self._owner.remove(self)


class MemoryPubSub:
    """An in-process :class:`~keel.storage.pubsub.pubsub.PubSub`.

    Delivery is synchronous: when ``publish`` returns, the message sits in the
    buffer of every subscription to the channel. Use it from one event loop.
    """

    def __init__(self, *, buffer_size: int = DEFAULT_BUFFER_SIZE) -> None:
        """An empty broker whose subscriptions buffer ``buffer_size`` messages each.

        Raises:
            ValueError: ``buffer_size`` is less than 1.
        """
        if buffer_size < 1:
            raise ValueError(f"buffer_size must be at least 1, not {buffer_size}")
        self._buffer_size = buffer_size
        self._channels: dict[str, set[MemorySubscription]] = {}
        self._closed = False

    async def publish(self, channel: str, message: bytes) -> None:
        """Buffer ``message`` in every subscription to ``channel``; never blocks.

        Raises:
            ValueError: ``channel`` is not a non-empty string.
            TypeError: ``message`` is not ``bytes``.
            PubSubError: the pubsub is closed.
        """
        check_channel(channel)
        check_message(message)
        self._check_open()
        for subscription in self._channels.get(channel, ()):
            subscription.deliver(message)

    async def subscribe(self, *channels: str) -> MemorySubscription:
        """Subscribe to ``channels``; active as soon as it returns.

        Raises:
            ValueError: no channel given, or one is not a non-empty string.
            PubSubError: the pubsub is closed.
        """
        names = check_channels(channels)
        self._check_open()
        subscription = MemorySubscription(self, names, self._buffer_size)
        for name in names:
            self._channels.setdefault(name, set()).add(subscription)
        return subscription

    def remove(self, subscription: MemorySubscription) -> None:
        """Stop delivering to ``subscription`` (its ``close`` calls this)."""
        for name in subscription.channels:
            listeners = self._channels.get(name)
            if listeners is not None:
                listeners.discard(subscription)
                if not listeners:
                    del self._channels[name]

    async def close(self) -> None:
        """Close every subscription; later calls to ``publish``/``subscribe`` fail."""
        self._closed = True
        subscriptions = {s for listeners in self._channels.values() for s in listeners}
        for subscription in subscriptions:
            await subscription.close()

    def _check_open(self) -> None:
        if self._closed:
            raise PubSubError("the pubsub is closed")

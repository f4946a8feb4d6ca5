"""The guarded RabbitMQ broker: its consumers record what they cannot decode as dead letters, and pause."""

from __future__ import annotations

import threading

import pika
from dramatiq import Message
from dramatiq.brokers.rabbitmq import RabbitmqBroker, _RabbitmqConsumer, _RabbitmqMessage
from dramatiq.common import q_name
from dramatiq.errors import ConnectionClosed

from workers.dramatiq_internals.admission import PAUSED_POLL, check_queue, is_paused, refuse
from workers.dramatiq_internals.worker import withdraw_waiting


class GuardedRabbitmqBroker(RabbitmqBroker):
    """Dramatiq's RabbitmqBroker whose consumers record what they cannot decode as dead letters."""

    @property
    def consumer_class(self):
        return GuardedRabbitmqConsumer


class GuardedRabbitmqConsumer(_RabbitmqConsumer):
    def __next__(self):
        # Dramatiq's consumer already rejects a body that does not decode (RabbitMQ then
        # dead-letters it); here it is also recorded, and a message without a usable shape is
        # refused before the consumer thread trips over it.
        try:
            if is_paused(self.broker, self.queue_name):
                # What RabbitMQ already pushed to this consumer stays unacknowledged in its buffer;
                # what waits for a worker thread goes back to the queue.
                for message in withdraw_waiting(threading.current_thread(), self.queue_name):
                    self.known_tags.discard(message._tag)
                    self.channel.basic_nack(message._tag, requeue=True)
                self.connection.sleep(PAUSED_POLL)  # keeps the connection's heartbeats going
                return None
            method, _properties, body = next(self.iterator)
            if method is None:
                return None
        except (AssertionError, pika.exceptions.AMQPConnectionError, pika.exceptions.AMQPChannelError) as error:
            if getattr(error, "reply_code", None) == 404:
                self.broker.queues_pending.add(q_name(self.queue_name))
            raise ConnectionClosed(error) from None
        try:
            message = Message.decode(body)
            check_queue(message, self.queue_name)
        except Exception as error:
            refuse(body, error, queue_name=q_name(self.queue_name), message_id=None, logger=self.logger)
            self._nack(method.delivery_tag)
            return None
        self.known_tags.add(method.delivery_tag)
        return _RabbitmqMessage(method.redelivered, method.delivery_tag, message)

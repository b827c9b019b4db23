#!/usr/bin/env bash
# Starts the local RabbitMQ and PostgreSQL that the backend tests use, if they are down.
# Tests find them at THUMBD_TEST_AMQP_URL / THUMBD_TEST_DATABASE_URL (defaults: loopback).
set -uo pipefail

up() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

wait_for() { # port name
  for _ in $(seq 1 60); do up "$1" && { echo "$2 is up on 127.0.0.1:$1"; return 0; }; sleep 1; done
  echo "$2 did not come up on 127.0.0.1:$1" >&2
  return 1
}

# A broker can hold its port open and still complete no connection: one must open within
# 15 s (with pika when it is installed, a whole handshake as guest; else the server must at
# least answer the protocol header).
amqp_answers() {
  if python3 -c 'import pika' 2>/dev/null; then
    timeout 20 python3 -c 'import pika; pika.BlockingConnection(pika.URLParameters("amqp://guest:guest@127.0.0.1:5672/%2f?socket_timeout=15")).close()' 2>/dev/null
  else
    timeout 15 bash -c 'exec 3<>/dev/tcp/127.0.0.1/5672 && printf "AMQP\0\0\11\1" >&3 && head -c 8 <&3 >/dev/null' 2>/dev/null
  fi
}

if up 5672 && ! amqp_answers; then
  echo "RabbitMQ holds its port but does not answer: restarting it"
  pkill -9 -u rabbitmq beam.smp || true
  pkill -9 -u rabbitmq epmd || true
  sleep 2
fi
if ! up 5672; then
  echo "RabbitMQ is down: starting it"
  rabbitmq-server -detached || true
  wait_for 5672 RabbitMQ || true
fi
if ! up 5432; then
  echo "PostgreSQL is down: starting it"
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -1)" main start || true
  wait_for 5432 PostgreSQL || true
fi
# A service that cannot be started makes the tests that need it fail (THUMBD_REQUIRE_SERVICES=1).
exit 0

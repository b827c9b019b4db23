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

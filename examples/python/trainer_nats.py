#!/usr/bin/env python3
"""The same trainer over NATS, with nats-py (pip install nats-py; Python 3.8+). NOT RUN in this repository's
tests: nats-py could not be installed where they run; it is written against nats-py's documented API and
compiled (python3 -m py_compile) by the tests. docs/integrations/python.md says what to check first.

    WARDEN_NATS=nats://127.0.0.1:4222 TRAINER_NATS_PASSWORD=... PRODUCER_NATS_PASSWORD=... \
        python3 trainer_nats.py hex8_2p

With nats.conf's users, reading "may I train?" is the trainer user's right and publishing results the
producer's: this example uses one connection for each. Each connects with its own reply inbox prefix
(`_INBOX_<user>`): nats.conf allows a user no other.
"""

import asyncio
import json
import math
import os
import sys
import time

import nats
from nats.js.errors import KeyNotFoundError

SERVER = os.environ.get("WARDEN_NATS", "nats://127.0.0.1:4222")
PREFIX = os.environ.get("WARDEN_NATS_PREFIX", "warden")


async def connect(user, password):
    return await nats.connect(
        servers=[SERVER],
        user=user,
        password=password,
        inbox_prefix=("_INBOX_" + user).encode(),
        max_reconnect_attempts=3,
    )


async def may_train(js, config_key, known_keys):
    """The training KV holds the configs Warden acted on; no entry means it never paused them.

    Over NATS an absent entry cannot tell "never paused" from "never heard of": check the key against the
    keys this trainer is meant to train (or ask GET /v1/training/<key> once, which answers `known`).
    """
    if config_key not in known_keys:
        return False, "config key %r is not one this trainer knows: refusing (typo?)" % config_key
    kv = await js.key_value(PREFIX + "_training")
    try:
        entry = await kv.get(config_key)
    except KeyNotFoundError:
        return True, "never paused"
    status = json.loads(entry.value)
    if status["status"] == "paused":
        return False, "paused by %s: %s" % (status.get("by"), status.get("reason"))
    return True, "running"


def finite(name, value):
    if not math.isfinite(value):
        raise ValueError("%s: expected a finite number, received %r" % (name, value))
    return float(value)


async def publish_evaluation(js, model_id, current_elo, games_played, metadata):
    body = {
        "model_id": model_id,
        "current_elo": finite("current_elo", current_elo),
        "games_played": int(games_played),
        "timestamp": time.time(),
        # Free-form fields (run id, host) go here: unknown top-level fields are refused.
        "metadata": metadata,
    }
    # allow_nan=False: never send NaN or Infinity, which is not JSON.
    payload = json.dumps(body, allow_nan=False).encode()
    # Through JetStream: the ack says the input stream stored it (Warden is free to be restarting).
    ack = await js.publish("%s.in.evaluation.%s" % (PREFIX, model_id), payload)
    return ack.seq


async def main(config_key):
    trainer = await connect("trainer", os.environ["TRAINER_NATS_PASSWORD"])
    producer = await connect("producer", os.environ["PRODUCER_NATS_PASSWORD"])
    try:
        allowed, why = await may_train(trainer.jetstream(), config_key, known_keys={config_key})
        print("%s: %s" % (config_key, why))
        if not allowed:
            return 3
        # ... train, promote, evaluate; then publish the result:
        seq = await publish_evaluation(
            producer.jetstream(), config_key, 1471.0, 400, {"run_id": "r-17", "host": os.uname().nodename}
        )
        print("evaluation stored as message %d of the input stream" % seq)
        # Refusals (a malformed payload) are published on <prefix>.evt.rejected.evaluation.
        return 0
    finally:
        await producer.drain()
        await trainer.drain()


if __name__ == "__main__":
    sys.exit(asyncio.run(main(sys.argv[1] if len(sys.argv) > 1 else "hex8_2p")))

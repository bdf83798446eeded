#!/usr/bin/env python3
"""A trainer that feeds Warden over HTTP with the standard library only (Python 3.8+).

Before training:   python3 trainer_http.py may-train hex8_2p
After promoting:   python3 trainer_http.py promote hex8_2p v43 --elo 1540
After evaluating:  python3 trainer_http.py evaluate hex8_2p --elo 1471 --games 400 --meta run_id=r-17

Settings: WARDEN_URL (default http://127.0.0.1:8080) and WARDEN_PRODUCER_TOKEN (needed for promotions and
evaluations once Warden has tokens). Exit codes: 0 done or may train, 2 bad input (refused here or by
Warden), 3 paused: do not train, 4 config key unknown to Warden: do not train, 5 Warden unreachable.
docs/integrations/python.md explains each step.
"""

import argparse
import json
import math
import os
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

WARDEN_URL = os.environ.get("WARDEN_URL", "http://127.0.0.1:8080").rstrip("/")
TOKEN = os.environ.get("WARDEN_PRODUCER_TOKEN")


class WardenError(Exception):
    """Warden answered with an error: {"error": {"code", "message", "issues"?}}."""

    def __init__(self, status, body):
        error = body.get("error", {}) if isinstance(body, dict) else {}
        self.status = status
        self.code = error.get("code", "internal")
        self.issues = error.get("issues", [])
        super().__init__(error.get("message", "HTTP %d" % status))


def request(method, path, body=None):
    data = None
    headers = {"Accept": "application/json"}
    if body is not None:
        # allow_nan=False: json.dumps would otherwise write NaN or Infinity, which is not JSON and which
        # Warden refuses. Raising here points at the metric that went wrong, before anything is sent.
        data = json.dumps(body, allow_nan=False).encode("utf-8")
        headers["Content-Type"] = "application/json"
        if TOKEN:
            headers["Authorization"] = "Bearer " + TOKEN
    req = urllib.request.Request(WARDEN_URL + path, data=data, headers=headers, method=method)
    try:
        with urllib.request.urlopen(req, timeout=15) as response:
            return json.loads(response.read().decode("utf-8"))
    except urllib.error.HTTPError as error:
        text = error.read().decode("utf-8", "replace")
        try:
            raise WardenError(error.code, json.loads(text)) from None
        except ValueError:
            raise WardenError(error.code, {"error": {"message": text[:200]}}) from None


def may_train(config_key):
    """The safe question: paused, or a key Warden has never seen (a typo), both mean no."""
    status = request("GET", "/v1/training/" + urllib.parse.quote(config_key, safe=""))
    if not status.get("known", True):
        return False, "Warden has never seen config key %r: check the spelling" % config_key, 4
    if not status["may_train"]:
        return False, "paused by %s: %s" % (status.get("by"), status.get("reason")), 3
    return True, "may train", 0


def finite(name, value):
    """Metrics from numpy or a failed run may be NaN or infinite: refuse them by name, here."""
    if value is not None and not math.isfinite(float(value)):
        raise ValueError("%s: expected a finite number, received %r" % (name, value))
    return None if value is None else float(value)


def parse_metadata(pairs):
    """--meta run_id=r-17 --meta host=gpu-7: extra fields go here, never as top-level keys (refused)."""
    metadata = {}
    for pair in pairs or []:
        name, sep, value = pair.partition("=")
        if not sep:
            raise ValueError("--meta: expected name=value, received %r" % pair)
        metadata[name] = value
    return metadata


def promote(model_id, version, elo=None, metadata=None):
    body = {"model_id": model_id, "version": version, "timestamp": time.time()}
    if elo is not None:
        body["elo"] = finite("elo", elo)
    if metadata:
        body["metadata"] = metadata
    return request("POST", "/v1/promotions", body)


def evaluate(model_id, current_elo, games_played, baseline_elo=None, metadata=None, event_id=None):
    body = {
        "model_id": model_id,
        "current_elo": finite("current_elo", current_elo),
        "games_played": int(games_played),
        "timestamp": time.time(),
    }
    if baseline_elo is not None:
        body["baseline_elo"] = finite("baseline_elo", baseline_elo)
    if event_id is not None:
        # A retry with the same event_id is recognised by Warden and not counted twice.
        body["event_id"] = event_id
    if metadata:
        body["metadata"] = metadata
    return request("POST", "/v1/evaluations", body)


def main(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    may = sub.add_parser("may-train", help="may this training config train now?")
    may.add_argument("config_key")
    pro = sub.add_parser("promote", help="a new production version")
    pro.add_argument("model_id")
    pro.add_argument("version")
    pro.add_argument("--elo", type=float)
    pro.add_argument("--meta", action="append")
    ev = sub.add_parser("evaluate", help="an evaluation of the production version")
    ev.add_argument("model_id")
    ev.add_argument("--elo", type=float, required=True)
    ev.add_argument("--baseline-elo", type=float)
    ev.add_argument("--games", type=int, required=True)
    ev.add_argument("--event-id")
    ev.add_argument("--meta", action="append")
    args = parser.parse_args(argv)
    try:
        if args.command == "may-train":
            allowed, why, code = may_train(args.config_key)
            print("%s: %s" % (args.config_key, why))
            return code
        metadata = parse_metadata(args.meta)
        if args.command == "promote":
            reply = promote(args.model_id, args.version, args.elo, metadata)
        else:
            reply = evaluate(args.model_id, args.elo, args.games, args.baseline_elo, metadata, args.event_id)
        outcome = reply["outcome"]
        print("%s %s: %s, now %s" % (args.command, reply["model_id"], outcome["kind"], reply["state"]))
        return 0
    except ValueError as error:
        print("refused before sending: %s" % error, file=sys.stderr)
        return 2
    except WardenError as error:
        print("Warden refused it (%s): %s" % (error.code, error), file=sys.stderr)
        for issue in error.issues:
            print("  " + issue, file=sys.stderr)
        return 2 if error.status == 400 else 1
    except urllib.error.URLError as error:
        print("cannot reach Warden at %s: %s" % (WARDEN_URL, error.reason), file=sys.stderr)
        return 5


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

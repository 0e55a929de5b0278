"""The `seed-python` peer: the seed's own Initiator (nsqworker 0.2.11 on
pynsq), running the demo-style worker in seedworkers/bench/ against topic
TOPIC_PREFIX + "bench", channel "drain_noop", found through nsqlookupd.

    python seed_main.py --lookupd http://127.0.0.1:4161 --topic-prefix x_ \
        --max-in-flight 200

Logging is at WARNING, as the daemon's is in the bench. It exits when its
stdin reaches EOF (the bench went away) and after 30 minutes in any case.
"""
import argparse
import logging

from nsqworker.initiator import Initiator

from parent import exit_with_parent


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--lookupd", required=True)
    parser.add_argument("--topic-prefix", required=True)
    parser.add_argument("--max-in-flight", type=int, required=True)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    exit_with_parent()
    print("starting", flush=True)
    Initiator(
        "bench",
        "drain",
        topic_prefix=args.topic_prefix,
        nsqlookupd_http_addresses=[args.lookupd],
    ).run(workers_module="seedworkers", max_in_flight=args.max_in_flight)


if __name__ == "__main__":
    main()

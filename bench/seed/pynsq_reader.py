"""A bare pynsq Reader that finishes every message: what `seed-python`
measures in place of the seed when the seed itself cannot run here (the
bench says why in the result's `note`). Same topic, channel and lookupd as
seed_main.py, so the two are interchangeable.

    python pynsq_reader.py --lookupd http://127.0.0.1:4161 --topic-prefix x_ \
        --max-in-flight 200
"""
import argparse
import logging

import nsq

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
    nsq.Reader(
        topic=args.topic_prefix + "bench",
        channel="drain_noop",
        message_handler=lambda message: True,
        lookupd_http_addresses=[args.lookupd],
        max_in_flight=args.max_in_flight,
    )
    nsq.run()


if __name__ == "__main__":
    main()

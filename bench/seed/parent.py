"""Ties a bench child's life to the bench: exit when stdin (a pipe the bench
holds open) reaches EOF, and after MAX_LIFE_S in any case."""
import os
import sys
import threading

MAX_LIFE_S = 30 * 60


def exit_with_parent():
    def watch():
        try:
            while sys.stdin.buffer.read(4096):
                pass
        finally:
            os._exit(3)

    threading.Thread(target=watch, daemon=True).start()
    timer = threading.Timer(MAX_LIFE_S, lambda: os._exit(3))
    timer.daemon = True
    timer.start()

# The seed's demo worker (nsqworker/workers/demo/demo_pageview_worker.py),
# renamed by the seed's conventions: topic "bench", channel "drain", one
# handler "noop" (so it reads channel "drain_noop"). It logs at info, as the
# demo does, and returns True.
import logging

from nsqworker import Worker

logger = logging.getLogger(__name__)


class BenchDrainWorker(Worker):
    def noop_handler(self, message):
        logger.info("bench: clicks %s", message.body.get("clicks", 1))
        return True

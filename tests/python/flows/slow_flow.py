"""A flow whose `nap` step prints a line and then sleeps for NAP_SECONDS (default 300),
for the Runner tests of streaming, waiting with a timeout and killing."""

import os
import time

from metaflow import FlowSpec, step


class SlowFlow(FlowSpec):
    @step
    def start(self):
        self.next(self.nap)

    @step
    def nap(self):
        print("napping", flush=True)
        time.sleep(float(os.environ.get("NAP_SECONDS", "300")))
        self.rested = True
        self.next(self.end)

    @step
    def end(self):
        print("woke up")


if __name__ == "__main__":
    SlowFlow()

"""A flow for the client tests: a parameter, a foreach, a join, logs on both streams,
and a step that fails while CLIENT_FLOW_FAIL is set (so `flowc resume` can fix it)."""

import os
import sys

from metaflow import FlowSpec, Parameter, step


class ClientFlow(FlowSpec):
    alpha = Parameter("alpha", type=float, default=0.5)
    label = Parameter("run-label", default="plain")

    @step
    def start(self):
        self.items = [1, 2, 3]
        print("starting with alpha", self.alpha)
        print("a warning on stderr", file=sys.stderr)
        self.next(self.square, foreach="items")

    @step
    def square(self):
        self.value = self.input ** 2
        print("square of", self.input, "is", self.value)
        self.next(self.join)

    @step
    def join(self, inputs):
        self.total = sum(task.value for task in inputs)
        self.model = {"weights": sorted(task.value for task in inputs), "alpha": self.alpha}
        self.next(self.train)

    @step
    def train(self):
        if os.environ.get("CLIENT_FLOW_FAIL"):
            raise RuntimeError("training diverged")
        self.score = self.total * self.alpha
        self.next(self.end)

    @step
    def end(self):
        self.done = True
        print("score", self.score)


if __name__ == "__main__":
    ClientFlow()

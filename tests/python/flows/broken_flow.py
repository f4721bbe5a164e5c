"""A flow with a graph error (`start` names a step that does not exist): flowc refuses it."""

from metaflow import FlowSpec, step


class BrokenFlow(FlowSpec):
    @step
    def start(self):
        self.next(self.trian)

    @step
    def train(self):
        self.next(self.end)

    @step
    def end(self):
        pass

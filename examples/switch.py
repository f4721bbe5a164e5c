"""Conditional routing with a switch: exactly one case runs, and the cases meet again
without a join. A case may also loop back to its own step.

    flowc check examples/switch.py
    flowc graph examples/switch.py
"""

from metaflow import FlowSpec, Parameter, step


class DeployGateFlow(FlowSpec):
    """Evaluate a candidate model and either deploy it, or retrain until it is good."""

    min_accuracy = Parameter("min-accuracy", type=float, default=0.9)
    max_attempts = Parameter("max-attempts", type=int, default=5)

    @step
    def start(self):
        self.attempt = 0
        self.accuracy = 0.6
        self.next(self.train)

    @step
    def train(self):
        """Train once more; the switch decides whether to loop back here."""
        self.attempt += 1
        self.accuracy = min(1.0, self.accuracy + 0.1)
        good = self.accuracy >= self.min_accuracy
        self.outcome = "deploy" if good else ("retry" if self.attempt < self.max_attempts else "give_up")
        self.next(
            {"retry": self.train, "deploy": self.deploy, "give_up": self.alert},
            condition="outcome",
        )

    @step
    def deploy(self):
        self.message = f"deployed after {self.attempt} attempts"
        self.next(self.end)

    @step
    def alert(self):
        self.message = f"accuracy {self.accuracy:.2f} after {self.attempt} attempts"
        self.next(self.end)

    @step
    def end(self):
        """Only one of deploy/alert ran, so end is a plain step."""
        print(self.message)


if __name__ == "__main__":
    DeployGateFlow()
